/**
 * What every leader loop is given, and the level-triggered controller
 * skeleton: watches feed keys into a work queue, a periodic resync re-adds
 * every key, workers reconcile keys (never one key on two workers), and a
 * failed reconcile comes back after a backoff.
 */
import type { Logger } from 'pino';
import { ApiObject } from '../../../api/types';
import { AdmissionEnv } from '../../admission';
import { ClusterStore } from '../../store/cluster-store';
import { Change } from '../../store/watch-hub';
import { EventRecorder } from './events';
import { WorkQueue } from './work-queue';
import { WriteError, Writer } from './writer';

/** When each node last proved it was alive (the dispatcher's heartbeats; in memory, never in the log). */
export interface NodeHeartbeats {
  /** Milliseconds since the epoch, or undefined when the node never reported to this leader. */
  lastHeartbeat(node: string): number | undefined;
  /** When this leader started listening for heartbeats (a grace period starts there). */
  readonly since: number;
  /** Calls `fn` when a node opens a session (it may have been NotReady until then). */
  onSessionStarted(fn: (node: string) => void): () => void;
}

export interface ControllerContext {
  /** This leader's replica: everything committed before the loops started is applied. */
  store: ClusterStore;
  writer: Writer;
  events: EventRecorder;
  env: AdmissionEnv;
  log: Logger;
  /** Aborted the moment this master stops being the leader. */
  signal: AbortSignal;
  heartbeats: NodeHeartbeats;
  /** Settings of the loops (grace periods and delays). */
  settings: LoopSettings;
}

export interface LoopSettings {
  /** A node silent for this long becomes NotReady. */
  nodeGracePeriodMs: number;
  /** Pods on a NotReady node are replaced after this long. */
  podEvictionDelayMs: number;
  /** Every controller re-reconciles every key this often. */
  resyncMs: number;
  /** Node pod CIDRs are blocks of this range… */
  clusterCIDR: string;
  /** …of this prefix length. */
  nodeCIDRMaskSize: number;
}

export const DEFAULT_SETTINGS: LoopSettings = {
  nodeGracePeriodMs: 6_000,
  podEvictionDelayMs: 2_000,
  resyncMs: 30_000,
  clusterCIDR: '10.244.0.0/16',
  nodeCIDRMaskSize: 24,
};

/** The work-queue key of an object: "namespace/name" (or "name" for cluster objects). */
export function keyFor(o: ApiObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf('/');
  return i < 0
    ? { namespace: undefined, name: key }
    : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Calls `fn` for every committed change to `kind` until `signal` aborts. */
export function watchKind(
  store: ClusterStore,
  signal: AbortSignal,
  kind: string,
  fn: (c: Change) => void,
): void {
  const stop = store.watch.subscribe({
    query: { kind },
    deliver: (changes) => {
      for (const c of changes) fn(c);
    },
  });
  signal.addEventListener('abort', stop, { once: true });
}

export abstract class Controller {
  abstract readonly name: string;
  /** The kind whose objects are the queue's keys. */
  protected abstract readonly kind: string;
  protected readonly queue = new WorkQueue();
  protected readonly log: Logger;

  constructor(
    protected readonly ctx: ControllerContext,
    private readonly workers = 4,
  ) {
    this.log = ctx.log;
  }

  /** Subscribes to what should trigger reconciles (besides changes to `kind`, which are always watched). */
  protected watchOthers(): void {}

  /**
   * Brings one object's world to what it declares. Returns a delay in ms
   * to be called again after (for time-based conditions), or nothing.
   */
  protected abstract reconcile(key: string): Promise<number | void>;

  protected watch(kind: string, fn: (c: Change) => void): void {
    watchKind(this.ctx.store, this.ctx.signal, kind, fn);
  }

  /** Queues the key of the controller owning `o`, if it is of this controller's kind. */
  protected enqueueOwner(o: ApiObject): void {
    const ref = o.metadata.ownerReferences?.find((r) => r.controller && r.kind === this.kind);
    if (ref) this.queue.add(`${o.metadata.namespace}/${ref.name}`);
  }

  private enqueueAll(): void {
    for (const s of this.ctx.store.list({ kind: this.kind })) this.queue.add(keyFor(s.object));
  }

  /** Runs until the context's signal aborts. */
  async run(): Promise<void> {
    const { signal } = this.ctx;
    if (signal.aborted) return;
    this.watch(this.kind, (c) => this.queue.add(keyFor(c.object)));
    this.watchOthers();
    this.enqueueAll();
    const resync = setInterval(() => this.enqueueAll(), this.ctx.settings.resyncMs);
    resync.unref();
    signal.addEventListener('abort', () => {
      clearInterval(resync);
      this.queue.shutDown();
    });
    await Promise.all(Array.from({ length: this.workers }, () => this.worker()));
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined || this.ctx.signal.aborted) return;
      try {
        const again = await this.reconcile(key);
        this.queue.forget(key);
        if (typeof again === 'number') this.queue.addAfter(key, again);
      } catch (err) {
        if (this.ctx.signal.aborted) return;
        const quiet = err instanceof WriteError && err.code === 'CONFLICT';
        if (!quiet) this.log.warn({ err, key, controller: this.name }, 'reconcile failed');
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }
}

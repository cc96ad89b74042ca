/**
 * A test bed for the leader's loops: a real ClusterStore whose commands are
 * applied at once (standing in for the Raft log, one leader, one term), with
 * the real writer, coalescer and event recorder around it, a clock that
 * tests can move forward, and a stand-in for the node agents that reports
 * pods running and ready.
 */
import { randomUUID } from 'node:crypto';
import { formatIssues, validateObject } from '../../src/api/schema';
import { ApiObject } from '../../src/api/types';
import { silentLogger } from '../../src/common/log';
import {
  ControllerContext,
  DEFAULT_SETTINGS,
  LoopSettings,
  NodeHeartbeats,
} from '../../src/master/controllers/runtime/controller';
import { EventRecorder } from '../../src/master/controllers/runtime/events';
import { Coalescer, Writer } from '../../src/master/controllers/runtime/writer';
import { AdmissionEnv, admitCreate, timestamp } from '../../src/master/admission';
import { ClusterStore } from '../../src/master/store/cluster-store';
import { Command, CommandResult } from '../../src/master/store/commands';
import { StoredObject } from '../../src/master/store/object-index';

export class ManualHeartbeats implements NodeHeartbeats {
  readonly beats = new Map<string, number>();
  constructor(
    private readonly now: () => number,
    readonly since = now(),
  ) {}
  lastHeartbeat(node: string): number | undefined {
    return this.beats.get(node);
  }
  private readonly listeners = new Set<(node: string) => void>();
  beat(node: string): void {
    this.beats.set(node, this.now());
  }
  /** A node (re)connects: a heartbeat, and the lifecycle controller is told. */
  connect(node: string): void {
    this.beat(node);
    for (const l of this.listeners) l(node);
  }
  onSessionStarted(fn: (node: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

export class ControllerBed {
  readonly store = new ClusterStore();
  private index = 0;
  readonly term = 1;
  /** Added to the real clock: tests move time forward with `advance`. */
  private offsetMs = 0;
  /** Where `freeze` stopped the clock: it stays there until `advance` moves it. */
  private frozenAt?: number;
  private counter = 0;
  readonly env: AdmissionEnv = {
    now: () => new Date(this.frozenAt ?? Date.now() + this.offsetMs),
    uid: () => randomUUID(),
    suffix: () => (++this.counter).toString(36).padStart(5, 'x'),
  };
  readonly coalescer: Coalescer;
  readonly writer: Writer;
  readonly events: EventRecorder;
  readonly heartbeats = new ManualHeartbeats(() => this.env.now().getTime());
  private readonly abort = new AbortController();
  /** Every command proposed by the loops, in order. */
  readonly proposed: Command[] = [];
  /** How many entries (proposals) the loops' commands took. */
  entries = 0;
  private readonly running: Promise<void>[] = [];

  constructor(readonly settings: LoopSettings = { ...DEFAULT_SETTINGS, resyncMs: 100 }) {
    this.coalescer = new Coalescer(async (commands) => {
      this.proposed.push(...commands);
      this.entries++;
      return this.applyNow({ op: 'fenced', term: this.term, command: { op: 'each', commands } })
        .results!;
    });
    this.writer = new Writer(this.store, this.env, this.coalescer);
    this.events = new EventRecorder(this.store, this.coalescer, this.env, silentLogger());
  }

  get ctx(): ControllerContext {
    return {
      store: this.store,
      writer: this.writer,
      events: this.events,
      env: this.env,
      log: silentLogger(),
      signal: this.abort.signal,
      heartbeats: this.heartbeats,
      settings: this.settings,
    };
  }

  /** Starts a loop (anything with `run()`); it runs until `stop`. */
  start(loop: { run(): Promise<void> }): void {
    this.running.push(loop.run());
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.running);
  }

  /**
   * Stops the bed's clock where it is: from now on only `advance` moves it,
   * so what depends on time passing happens when the test says, however
   * slowly the machine runs (the loops' own timers still run on real time).
   */
  freeze(): void {
    this.frozenAt = this.now();
  }

  advance(ms: number): void {
    if (this.frozenAt !== undefined) this.frozenAt += ms;
    else this.offsetMs += ms;
  }

  now(): number {
    return this.env.now().getTime();
  }

  /** Applies a command right away, as if it had been committed. */
  applyNow(c: Command): Extract<CommandResult, { ok: true }> {
    const r = this.store.applyCommand(c, ++this.index, this.term);
    if (!r.ok && c.op !== 'fenced') throw new Error(`${r.code}: ${r.message}`);
    return r as Extract<CommandResult, { ok: true }>;
  }

  /** Validates, admits and stores a new object (as the API would). */
  create<T extends ApiObject>(o: T): T {
    const v = validateObject(o);
    if (!v.ok) throw new Error(formatIssues(v.errors));
    const admitted = admitCreate(this.store, v.object, this.env);
    return this.applyNow({ op: 'create', object: admitted }).object as T;
  }

  /** Replaces the spec (and labels) of a stored object, as `baton apply` would. */
  update<T extends ApiObject>(o: T): T {
    const cur = this.get(o.kind, o.metadata.namespace, o.metadata.name)!;
    const v = validateObject({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
    if (!v.ok) throw new Error(formatIssues(v.errors));
    return this.applyNow({ op: 'update', object: v.object, uid: cur.object.metadata.uid! })
      .object as T;
  }

  setStatus(o: ApiObject, status: unknown): ApiObject {
    return this.applyNow({
      op: 'update',
      object: { ...o, status },
      uid: o.metadata.uid!,
      subresource: 'status',
    }).object!;
  }

  remove(o: ApiObject): void {
    this.applyNow({
      op: 'delete',
      kind: o.kind,
      namespace: o.metadata.namespace,
      name: o.metadata.name,
      propagation: 'Background',
    });
  }

  get(kind: string, namespace: string | undefined, name: string): StoredObject | undefined {
    return this.store.get(kind, namespace, name);
  }

  list(kind: string, namespace?: string): ApiObject[] {
    return this.store.list({ kind, namespace }).map((s) => s.object);
  }

  /** Adds a Ready node with the given allocatable resources and labels. */
  addNode(
    name: string,
    opts: {
      cpu?: string;
      memory?: string;
      pods?: number;
      labels?: Record<string, string>;
      taints?: unknown[];
      extra?: Record<string, string>;
    } = {},
  ): ApiObject {
    const allocatable = {
      cpu: opts.cpu ?? '4',
      memory: opts.memory ?? '8Gi',
      pods: String(opts.pods ?? 110),
      ...opts.extra,
    };
    this.heartbeats.beat(name);
    return this.create({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        labels: { 'kubernetes.io/hostname': name, ...opts.labels },
      },
      spec: opts.taints ? { taints: opts.taints } : {},
      status: {
        capacity: allocatable,
        allocatable,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'BatonNodeReady',
            lastHeartbeatTime: timestamp(this.env.now()),
            lastTransitionTime: timestamp(this.env.now()),
          },
        ],
        addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
      },
    } as ApiObject);
  }

  /** What a node agent reports for a started pod: Running, and Ready unless told otherwise. */
  markRunning(pod: ApiObject, ready = true, ip = '10.1.0.1'): ApiObject {
    const cur = this.get('Pod', pod.metadata.namespace, pod.metadata.name)!.object;
    const at = timestamp(this.env.now());
    return this.setStatus(cur, {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      startTime: at,
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
        { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: at },
      ],
    });
  }

  /** What a node agent reports for a finished pod. */
  markFinished(pod: ApiObject, succeeded: boolean, exitCode = succeeded ? 0 : 1): ApiObject {
    const cur = this.get('Pod', pod.metadata.namespace, pod.metadata.name)!.object;
    const at = timestamp(this.env.now());
    const c = (cur.spec as { containers: { name: string; image: string }[] }).containers[0];
    return this.setStatus(cur, {
      phase: succeeded ? 'Succeeded' : 'Failed',
      conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: at }],
      containerStatuses: [
        {
          name: c.name,
          image: c.image,
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode, finishedAt: at } },
        },
      ],
    });
  }

  /** Resolves once `check` holds (polled), or fails with `what` after `ms`. */
  async until(what: string, check: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  podsOf(owner: ApiObject): ApiObject[] {
    return this.list('Pod', owner.metadata.namespace).filter((p) =>
      p.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid),
    );
  }
}

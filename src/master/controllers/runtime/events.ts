/**
 * Events: what the controllers and the scheduler decided, stored as Event
 * objects next to what they are about (`baton get events`, `baton describe`).
 * Like Kubernetes' recorder, repeats of one event (same object, reason and
 * message) update a count instead of piling up, and events expire after an
 * hour. Events are best effort: a failed write is logged, never retried.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ApiObject } from '../../../api/types';
import { AdmissionEnv, timestamp } from '../../admission';
import { ClusterStore } from '../../store/cluster-store';
import { Coalescer } from './writer';

export type EventType = 'Normal' | 'Warning';

interface Series {
  name: string;
  namespace: string;
  count: number;
  first: string;
  last: string;
  /** A count update is waiting to be written. */
  dirty: boolean;
}

export interface EventRecorderOptions {
  /** Events older than this are deleted. */
  ttlMs?: number;
  /** Repeats are written at most this often per series. */
  repeatFlushMs?: number;
}

export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly ttlMs: number;
  private readonly flushMs: number;
  private flushTimer?: NodeJS.Timeout;
  private gcTimer?: NodeJS.Timeout;

  constructor(
    private readonly store: ClusterStore,
    private readonly coalescer: Coalescer,
    private readonly env: AdmissionEnv,
    private readonly log: Logger,
    opts: EventRecorderOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 3_600_000;
    this.flushMs = opts.repeatFlushMs ?? 1000;
  }

  /** Records that `component` did or saw something about `about`. */
  record(
    about: ApiObject,
    component: string,
    type: EventType,
    reason: string,
    message: string,
  ): void {
    const namespace = about.metadata.namespace ?? 'default';
    const key = `${about.metadata.uid ?? about.metadata.name}\0${reason}\0${message}`;
    const now = timestamp(this.env.now());
    const s = this.series.get(key);
    if (s && this.store.get('Event', s.namespace, s.name)) {
      s.count++;
      s.last = now;
      s.dirty = true;
      this.flushTimer ??= setTimeout(() => this.flushRepeats(), this.flushMs).unref();
      return;
    }
    const name = `${about.metadata.name}.${randomBytes(8).toString('hex')}`;
    this.series.set(key, { name, namespace, count: 1, first: now, last: now, dirty: false });
    const event: ApiObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace, uid: this.env.uid(), creationTimestamp: now },
      involvedObject: {
        kind: about.kind,
        apiVersion: about.apiVersion,
        namespace: about.metadata.namespace,
        name: about.metadata.name,
        uid: about.metadata.uid,
        resourceVersion: about.metadata.resourceVersion,
      },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component },
      reportingComponent: component,
    };
    this.write({ op: 'create', object: event });
  }

  private flushRepeats(): void {
    this.flushTimer = undefined;
    for (const s of this.series.values()) {
      if (!s.dirty) continue;
      s.dirty = false;
      const cur = this.store.get('Event', s.namespace, s.name);
      if (!cur) continue;
      const next = { ...cur.object, count: s.count, lastTimestamp: s.last };
      next.metadata = { ...cur.object.metadata };
      this.write({ op: 'update', object: next, uid: cur.object.metadata.uid! });
    }
  }

  private write(command: Parameters<Coalescer['submit']>[0]): void {
    this.coalescer.submit(command).then(
      (r) => {
        if (!r.ok && r.code !== 'FENCED' && r.code !== 'NOT_FOUND')
          this.log.debug({ code: r.code, message: r.message }, 'event not recorded');
      },
      (err: Error) => this.log.debug({ err }, 'event not recorded'),
    );
  }

  /** Deletes expired events now and then, until `signal` aborts. */
  startGarbageCollection(signal: AbortSignal, everyMs = 60_000): void {
    const sweep = () => {
      const cutoff = this.env.now().getTime() - this.ttlMs;
      for (const s of this.store.list({ kind: 'Event' })) {
        const last =
          (s.object.lastTimestamp as string | undefined) ?? s.object.metadata.creationTimestamp;
        if (last && Date.parse(last) < cutoff)
          this.write({
            op: 'delete',
            kind: 'Event',
            namespace: s.object.metadata.namespace,
            name: s.object.metadata.name,
            uid: s.object.metadata.uid,
            propagation: 'Background',
          });
      }
      for (const [k, s] of this.series) if (Date.parse(s.last) < cutoff) this.series.delete(k);
    };
    this.gcTimer = setInterval(sweep, everyMs).unref();
    signal.addEventListener('abort', () => {
      clearInterval(this.gcTimer);
      clearTimeout(this.flushTimer);
    });
  }
}

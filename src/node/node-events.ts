/**
 * Events the node daemon records about its pods (Pulling, Started,
 * Killing, Unhealthy, BackOff, Failed…), written through the masters' API
 * like any client would, so `baton describe pod` shows why a pod is not
 * running. Repeats of one event update its count at most every few
 * seconds instead of piling up. Best effort: a failed write is logged at
 * debug and dropped; a cut-off node does not queue events.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ApiObject } from '../api/types';
import type { BatonClient } from '../client/cluster-client';

interface Series {
  event: ApiObject;
  count: number;
  dirty: boolean;
  last: number;
}

const stamp = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class NodeEvents {
  private readonly series = new Map<string, Series>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly client: BatonClient | undefined,
    private readonly nodeName: string,
    private readonly log: Logger,
    private readonly repeatFlushMs = 5000,
  ) {}

  record(
    pod: ApiObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    fieldPath?: string,
  ): void {
    this.log.debug({ pod: pod.metadata.name, reason, message }, 'event');
    if (!this.client) return;
    const key = `${pod.metadata.uid}\0${reason}\0${message}`;
    const s = this.series.get(key);
    const at = stamp();
    if (s) {
      s.count++;
      s.dirty = true;
      s.event = { ...s.event, count: s.count, lastTimestamp: at };
      this.timer ??= setTimeout(() => this.flush(), this.repeatFlushMs).unref();
      return;
    }
    const event: ApiObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${pod.metadata.name}.${randomBytes(8).toString('hex')}`,
        namespace: pod.metadata.namespace ?? 'default',
      },
      involvedObject: {
        kind: 'Pod',
        apiVersion: 'v1',
        namespace: pod.metadata.namespace ?? 'default',
        name: pod.metadata.name,
        uid: pod.metadata.uid,
        ...(fieldPath ? { fieldPath } : {}),
      },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: at,
      lastTimestamp: at,
      source: { component: 'baton-node', host: this.nodeName },
      reportingComponent: 'baton-node',
      reportingInstance: this.nodeName,
    };
    this.series.set(key, { event, count: 1, dirty: false, last: Date.now() });
    this.client.create(JSON.stringify(event)).catch((err: Error) => {
      this.series.delete(key);
      this.log.debug({ err: err.message }, 'event not recorded');
    });
    if (this.series.size > 5000) this.gc();
  }

  /** Forgets a pod's series (it was deleted). */
  forget(uid: string): void {
    for (const k of this.series.keys()) if (k.startsWith(`${uid}\0`)) this.series.delete(k);
  }

  private gc(): void {
    const cutoff = Date.now() - 3_600_000;
    for (const [k, s] of this.series) if (s.last < cutoff) this.series.delete(k);
  }

  private flush(): void {
    this.timer = undefined;
    for (const s of this.series.values()) {
      if (!s.dirty) continue;
      s.dirty = false;
      s.last = Date.now();
      this.client!.apply(JSON.stringify(s.event)).catch((err: Error) =>
        this.log.debug({ err: err.message }, 'event count not recorded'),
      );
    }
  }
}

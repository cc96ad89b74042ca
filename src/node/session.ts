/**
 * The node's end of its session with the leader's dispatcher: find the
 * leader (any master answers with where it is), say hello, keep
 * heartbeating, keep the assigned pods in step (a complete set, then deltas
 * that must chain by version, else ask for a resync), and send pod statuses
 * in batches. A lost session is reopened at once, with back-off while no
 * master answers; the assignments are kept meanwhile, so nothing running
 * is touched because the leader changed.
 */
import * as grpc from '@grpc/grpc-js';
import { TLS_CHANNEL_OPTIONS } from '../ca/tls';
import type { Logger } from 'pino';
import { ApiObject, sessionObjectKey } from '../api/types';
import { silentLogger } from '../common/log';
import { Assignments, DispatcherClient, LeaderMessage, NodeMessage, PodStatus } from '../gen/node';

export interface SessionOptions {
  nodeName: string;
  /** Master addresses (host:port); the leader is found through any of them. */
  masters: string[];
  /** The Node object as this node sees itself, sent on every (re)connect. */
  describe(): ApiObject;
  /** Called after every change of the assigned pods (uid → pod). */
  onAssignments(
    pods: ReadonlyMap<string, ApiObject>,
    changed: ApiObject[],
    removed: string[],
  ): void;
  /** Called after every change of the cluster objects (Services, Endpoints, Nodes); `full` on a complete set. */
  onObjects?(changed: ApiObject[], removed: string[], full: boolean): void;
  log?: Logger;
  /** Shared gRPC clients by address (many hollow nodes share one connection). */
  clients?: Map<string, DispatcherClient>;
  /** Most statuses per message. */
  statusBatch?: number;
  /** Longest wait between reconnection attempts. */
  maxBackoffMs?: number;
  /** Mutual TLS to the masters (TlsIdentity.channelCredentials); plaintext when absent. */
  credentials?: grpc.ChannelCredentials;
}

export class NodeSession {
  readonly pods = new Map<string, ApiObject>();
  /** Services, Endpoints and (cut-down) Nodes by `Kind/namespace/name`. */
  readonly objects = new Map<string, ApiObject>();
  /** The cluster's address ranges, as the leader last said (empty until then). */
  network = { serviceCIDR: '', clusterCIDR: '' };
  private version = 0;
  private call?: grpc.ClientDuplexStream<NodeMessage, LeaderMessage>;
  private heartbeat?: NodeJS.Timeout;
  private leaderHint?: string;
  private next = 0;
  private pendingStatus = new Map<string, PodStatus>();
  private flushTimer?: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly clients: Map<string, DispatcherClient>;
  private readonly ownClients: boolean;
  /** Connected to the leader and registered. */
  connected = false;
  /** A complete set of assignments arrived at least once (before that, an empty set means "not told yet"). */
  hasAssignments = false;
  /** The last session failed (its warning was logged; repeats go to debug). */
  private failing = false;
  /** How many sessions were opened (for tests and metrics). */
  sessions = 0;

  get nodeName(): string {
    return this.opts.nodeName;
  }

  constructor(private readonly opts: SessionOptions) {
    this.log = (opts.log ?? silentLogger()).child({ node: opts.nodeName });
    this.ownClients = !opts.clients;
    this.clients = opts.clients ?? new Map();
  }

  private client(address: string): DispatcherClient {
    let c = this.clients.get(address);
    if (!c)
      this.clients.set(
        address,
        (c = new DispatcherClient(
          address,
          this.opts.credentials ?? grpc.credentials.createInsecure(),
          {
            ...TLS_CHANNEL_OPTIONS,
            'grpc.max_receive_message_length': -1,
          },
        )),
      );
    return c;
  }

  /** Keeps a session open until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let backoff = 50;
    while (!signal.aborted) {
      const address = this.leaderHint ?? this.opts.masters[this.next++ % this.opts.masters.length];
      this.leaderHint = undefined;
      const outcome = await this.once(address, signal);
      if (signal.aborted) break;
      if (outcome === 'redirected') continue;
      if (outcome === 'served') backoff = 50;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 1000);
    }
    if (this.ownClients) for (const c of this.clients.values()) c.close();
  }

  /** One session; says how it ended. */
  private once(address: string, signal: AbortSignal): Promise<'redirected' | 'served' | 'failed'> {
    return new Promise((resolve) => {
      let outcome: 'redirected' | 'served' | 'failed' = 'failed';
      const call = this.client(address).session();
      this.call = call;
      const finish = () => {
        clearInterval(this.heartbeat);
        signal.removeEventListener('abort', abort);
        if (this.call === call) {
          this.call = undefined;
          this.connected = false;
        }
        resolve(outcome);
      };
      const abort = () => call.cancel();
      signal.addEventListener('abort', abort, { once: true });
      call.on('data', (m: LeaderMessage) => {
        switch (m.msg?.$case) {
          case 'notLeader':
            if (m.msg.value.leaderAddress && m.msg.value.leaderAddress !== address) {
              this.leaderHint = m.msg.value.leaderAddress;
              outcome = 'redirected';
            }
            call.cancel();
            break;
          case 'session': {
            outcome = 'served';
            if (this.failing) this.log.info({ address }, 'session open again');
            this.failing = false;
            this.connected = true;
            this.sessions++;
            this.network = {
              serviceCIDR: m.msg.value.serviceCidr,
              clusterCIDR: m.msg.value.clusterCidr,
            };
            const period = Math.max(50, m.msg.value.heartbeatPeriodMs || 1000);
            clearInterval(this.heartbeat);
            this.heartbeat = setInterval(
              () => this.send({ $case: 'heartbeat', value: {} }),
              period,
            );
            this.heartbeat.unref();
            this.log.debug({ address, session: m.msg.value.sessionId }, 'session open');
            this.flushStatus();
            break;
          }
          case 'assignments':
            this.apply(m.msg.value);
            break;
          default:
            break;
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        // Our own cancel (redirect, stop) is not worth a word; anything else is,
        // once: while no master answers, the retries say it again at debug.
        if (err.code !== grpc.status.CANCELLED) {
          const what = { address, code: grpc.status[err.code], err: err.details };
          if (this.failing) this.log.debug(what, 'session failed');
          else this.log.warn(what, 'session failed; retrying (further failures at debug)');
          this.failing = true;
        }
        finish();
      });
      call.on('end', () => finish());
      call.write({
        msg: {
          $case: 'hello',
          value: { nodeName: this.opts.nodeName, nodeJson: JSON.stringify(this.opts.describe()) },
        },
      });
    });
  }

  private send(msg: NonNullable<NodeMessage['msg']>): boolean {
    const call = this.call;
    if (!call || !this.connected) return false;
    call.write({ msg });
    return true;
  }

  private apply(a: Assignments): void {
    const changed: ApiObject[] = [];
    const removed: string[] = [];
    if (a.full) {
      const next = new Map<string, ApiObject>();
      for (const j of a.upserts) {
        const p = JSON.parse(j) as ApiObject;
        next.set(p.metadata.uid!, p);
        changed.push(p);
      }
      for (const uid of this.pods.keys()) if (!next.has(uid)) removed.push(uid);
      this.pods.clear();
      for (const [k, v] of next) this.pods.set(k, v);
      this.hasAssignments = true;
    } else {
      if (a.baseVersion !== this.version) {
        // A delta on top of something we do not have: start over from a full set.
        this.log.warn(
          { have: this.version, base: a.baseVersion },
          'assignment chain broken: resync',
        );
        this.send({ $case: 'resync', value: {} });
        return;
      }
      for (const j of a.upserts) {
        const p = JSON.parse(j) as ApiObject;
        this.pods.set(p.metadata.uid!, p);
        changed.push(p);
      }
      for (const uid of a.removed) if (this.pods.delete(uid)) removed.push(uid);
    }
    this.version = a.version;
    this.applyObjects(a);
    this.opts.onAssignments(this.pods, changed, removed);
  }

  private applyObjects(a: Assignments): void {
    if (!a.full && a.objects.length === 0 && a.removedObjects.length === 0) return;
    const changed = a.objects.map((j) => JSON.parse(j) as ApiObject);
    const removed: string[] = [];
    if (a.full) {
      const keep = new Set(changed.map(sessionObjectKey));
      for (const k of this.objects.keys()) if (!keep.has(k)) removed.push(k);
      this.objects.clear();
    }
    for (const o of changed) this.objects.set(sessionObjectKey(o), o);
    for (const k of a.removedObjects) if (this.objects.delete(k)) removed.push(k);
    this.opts.onObjects?.(changed, removed, a.full);
  }

  /** Reports a pod's status; statuses are sent in batches, the latest per pod. */
  reportStatus(pod: ApiObject, status: unknown): void {
    const { namespace, name, uid } = pod.metadata;
    this.pendingStatus.set(uid!, {
      namespace: namespace!,
      name,
      uid: uid!,
      statusJson: JSON.stringify(status),
    });
    this.flushTimer ??= setTimeout(() => this.flushStatus(), 10);
  }

  private flushStatus(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingStatus.size === 0 || !this.connected) return;
    const all = [...this.pendingStatus.values()];
    const size = this.opts.statusBatch ?? 500;
    for (let i = 0; i < all.length; i += size)
      if (!this.send({ $case: 'statuses', value: { statuses: all.slice(i, i + size) } })) return;
    this.pendingStatus.clear();
  }
}

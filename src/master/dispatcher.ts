/**
 * The dispatcher (swarmkit's name): the leader's end of every node's
 * session. It registers the node, keeps its heartbeats in memory, streams
 * the pods assigned to it (a complete set, then deltas chained by version)
 * and writes the statuses the node reports, batched into few Raft entries.
 * Every session also carries what each node's proxy, DNS and routes need:
 * all Services and Endpoints, and every Node's pod CIDR and addresses.
 * On any master that does not lead, a session is answered with where the
 * leader is; when leadership ends, every session ends and nodes reconnect.
 */
import * as grpc from '@grpc/grpc-js';
import { callerOf } from '../ca/authz';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { formatIssues, validateObject } from '../api/schema';
import { podStatus } from '../api/schema/pod';
import { ApiObject, sessionObjectKey } from '../api/types';
import {
  Assignments,
  DispatcherServer,
  Hello,
  LeaderMessage,
  NodeMessage,
  PodStatus,
} from '../gen/node';
import { RaftNode } from '../raft/raft-node';
import { ControllerContext, NodeHeartbeats } from './controllers/runtime/controller';
import { stableStringify } from './store/stable-json';
import { Change } from './store/watch-hub';

export interface DispatcherOptions {
  node: RaftNode;
  log: Logger;
  /** Nodes are told to send a heartbeat this often. */
  heartbeatPeriodMs?: number;
  /** Longest wait for the leader's loops to start before answering "not the leader". */
  startWaitMs?: number;
  /** The cluster's address ranges, told to every node. */
  network?: { serviceCIDR: string; clusterCIDR: string };
}

/** The kinds every node watches, besides its own pods. */
const WATCHED_KINDS = ['Service', 'Endpoints', 'Node'] as const;

/**
 * What a node is sent of a cluster object: Services and Endpoints whole, a
 * Node cut down to its pod CIDR and addresses (its status changes often and
 * other nodes only route to it). Undefined for other kinds.
 */
export function clusterObjectJson(o: ApiObject, json: string): string | undefined {
  if (o.kind === 'Service' || o.kind === 'Endpoints') return json;
  if (o.kind !== 'Node') return undefined;
  const spec = o.spec as { podCIDR?: string } | undefined;
  const status = o.status as { addresses?: unknown[] } | undefined;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: o.metadata.name, uid: o.metadata.uid },
    spec: spec?.podCIDR ? { podCIDR: spec.podCIDR } : {},
    status: { addresses: status?.addresses ?? [] },
  });
}

/** Heartbeats of one term: a new leader starts with none (and a grace period from `since`). */
export class TermHeartbeats implements NodeHeartbeats {
  private readonly beats = new Map<string, number>();
  private readonly listeners = new Set<(node: string) => void>();
  readonly since = Date.now();

  lastHeartbeat(node: string): number | undefined {
    return this.beats.get(node);
  }

  beat(node: string): void {
    this.beats.set(node, Date.now());
  }

  /** A node opened a session (it may have been NotReady until now). */
  sessionStarted(node: string): void {
    this.beat(node);
    for (const l of this.listeners) l(node);
  }

  onSessionStarted(fn: (node: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

type Stream = grpc.ServerDuplexStream<NodeMessage, LeaderMessage>;

/** Built once: zod compiles a schema on its first use, which is costly. */
let podStatusSchema: ReturnType<typeof podStatus> | undefined;

/** One node's open session while this master leads. */
class Session {
  readonly id = randomUUID();
  version = 0;
  /** Changes since the last delta: uid → pod JSON, or null when removed. */
  private pending = new Map<string, string | null>();
  /** Cluster objects changed since the last delta: key → JSON, or null when removed. */
  private pendingObjects = new Map<string, string | null>();
  private flushScheduled = false;

  constructor(
    readonly nodeName: string,
    private readonly stream: Stream,
  ) {}

  sendFull(pods: { json: string }[], objects: string[]): void {
    this.pending.clear();
    this.pendingObjects.clear();
    this.version++;
    this.send({
      full: true,
      version: this.version,
      baseVersion: 0,
      upserts: pods.map((p) => p.json),
      removed: [],
      objects,
      removedObjects: [],
    });
  }

  note(uid: string, json: string | null): void {
    this.pending.set(uid, json);
    this.schedule();
  }

  noteObject(key: string, json: string | null): void {
    this.pendingObjects.set(key, json);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Changes committed together go out together.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.size === 0 && this.pendingObjects.size === 0) return;
    const upserts: string[] = [];
    const removed: string[] = [];
    for (const [uid, json] of this.pending) {
      if (json === null) removed.push(uid);
      else upserts.push(json);
    }
    const objects: string[] = [];
    const removedObjects: string[] = [];
    for (const [key, json] of this.pendingObjects) {
      if (json === null) removedObjects.push(key);
      else objects.push(json);
    }
    this.pending.clear();
    this.pendingObjects.clear();
    const base = this.version++;
    this.send({
      full: false,
      version: this.version,
      baseVersion: base,
      upserts,
      removed,
      objects,
      removedObjects,
    });
  }

  private send(a: Assignments): void {
    if (!this.stream.writable) return;
    this.stream.write({ msg: { $case: 'assignments', value: a } });
  }

  end(): void {
    this.stream.end();
  }
}

export class Dispatcher {
  private ctx?: ControllerContext;
  private heartbeats = new TermHeartbeats();
  private readonly sessions = new Map<string, Session>();
  private readonly started = new Set<() => void>();
  private readonly log: Logger;

  constructor(private readonly opts: DispatcherOptions) {
    this.log = opts.log.child({ component: 'dispatcher' });
  }

  /** Fresh heartbeats for a new term (LeaderLoops calls this before starting the loops). */
  heartbeatsFor(): TermHeartbeats {
    this.heartbeats = new TermHeartbeats();
    return this.heartbeats;
  }

  /** The leader loop: routes pod changes to sessions until leadership ends. */
  loop(ctx: ControllerContext): { run(): Promise<void> } {
    return {
      run: async () => {
        if (ctx.signal.aborted) return;
        this.ctx = ctx;
        const stops = [
          ctx.store.watch.subscribe({ query: { kind: 'Pod' }, deliver: (cs) => this.route(cs) }),
          ...WATCHED_KINDS.map((kind) =>
            ctx.store.watch.subscribe({ query: { kind }, deliver: (cs) => this.broadcast(cs) }),
          ),
        ];
        for (const w of this.started) w();
        this.started.clear();
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        for (const stop of stops) stop();
        this.ctx = undefined;
        this.lastObjects.clear();
        for (const s of this.sessions.values()) s.end();
        this.sessions.clear();
      },
    };
  }

  private route(changes: Change[]): void {
    for (const c of changes) {
      const node = (c.object.spec as { nodeName?: string } | undefined)?.nodeName;
      if (!node) continue;
      const s = this.sessions.get(node);
      if (!s) continue;
      s.note(c.object.metadata.uid!, c.type === 'DELETED' ? null : c.json);
    }
  }

  /** Last JSON sent per cluster object: a Node whose slim form did not change is not resent. */
  private readonly lastObjects = new Map<string, string>();

  private broadcast(changes: Change[]): void {
    for (const c of changes) {
      const key = sessionObjectKey(c.object);
      let json: string | null = null;
      if (c.type !== 'DELETED') {
        json = clusterObjectJson(c.object, c.json) ?? null;
        if (json === null || this.lastObjects.get(key) === json) continue;
        this.lastObjects.set(key, json);
      } else if (!this.lastObjects.delete(key)) continue;
      for (const s of this.sessions.values()) s.noteObject(key, json);
    }
  }

  /** Every cluster object a node watches, as sent (and remembered for `broadcast`). */
  private clusterObjects(ctx: ControllerContext): string[] {
    const out: string[] = [];
    for (const kind of WATCHED_KINDS)
      for (const s of ctx.store.list({ kind })) {
        const json = clusterObjectJson(s.object, s.json)!;
        this.lastObjects.set(sessionObjectKey(s.object), json);
        out.push(json);
      }
    return out;
  }

  /** The gRPC service (registered on every master). */
  service(): DispatcherServer {
    return { session: (stream) => void this.session(stream) };
  }

  private async waitForLoops(): Promise<ControllerContext | undefined> {
    if (this.ctx || !this.opts.node.isLeader()) return this.ctx;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.started.delete(done);
        resolve();
      };
      const t = setTimeout(done, this.opts.startWaitMs ?? 3000);
      this.started.add(done);
    });
    return this.ctx;
  }

  private notLeader(stream: Stream): void {
    const leaderAddress = this.opts.node.leaderAddress() ?? '';
    stream.write({ msg: { $case: 'notLeader', value: { leaderAddress } } });
    stream.end();
  }

  private async session(stream: Stream): Promise<void> {
    const first = await new Promise<NodeMessage | undefined>((resolve) => {
      stream.once('data', (m: NodeMessage) => resolve(m));
      stream.once('end', () => resolve(undefined));
      stream.once('error', () => resolve(undefined));
    });
    if (first?.msg?.$case !== 'hello') {
      stream.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: 'the first message of a session must be hello',
      });
      return;
    }
    const ctx = await this.waitForLoops();
    if (!ctx || ctx.signal.aborted) return this.notLeader(stream);
    const hello = first.msg.value;
    const nodeName = hello.nodeName;
    const who = callerOf(stream);
    if (who && who.role === 'node' && who.name !== nodeName) {
      stream.emit('error', {
        code: grpc.status.PERMISSION_DENIED,
        details: `node "${who.name}" may not open a session as node "${nodeName}" (its certificate names it "${who.name}")`,
      });
      return;
    }
    try {
      await this.register(ctx, hello);
    } catch (err) {
      stream.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: `registering node "${nodeName}": ${(err as Error).message}`,
      });
      return;
    }
    if (ctx.signal.aborted) return this.notLeader(stream);
    const heartbeats = this.heartbeats;
    const session = new Session(nodeName, stream);
    this.sessions.get(nodeName)?.end(); // a reconnect replaces the old session
    this.sessions.set(nodeName, session);
    heartbeats.sessionStarted(nodeName);
    this.log.info({ node: nodeName, session: session.id }, 'node session started');
    stream.write({
      msg: {
        $case: 'session',
        value: {
          sessionId: session.id,
          heartbeatPeriodMs: this.opts.heartbeatPeriodMs ?? 1000,
          leaderId: this.opts.node.id,
          serviceCidr: this.opts.network?.serviceCIDR ?? '',
          clusterCidr: this.opts.network?.clusterCIDR ?? '',
        },
      },
    });
    const assigned = () =>
      ctx.store.list({
        kind: 'Pod',
        fields: { terms: [{ path: 'spec.nodeName', op: '=', value: nodeName }] },
      });
    session.sendFull(assigned(), this.clusterObjects(ctx));
    stream.on('data', (m: NodeMessage) => {
      heartbeats.beat(nodeName);
      switch (m.msg?.$case) {
        case 'statuses':
          this.writeStatuses(ctx, nodeName, m.msg.value.statuses);
          break;
        case 'resync':
          session.sendFull(assigned(), this.clusterObjects(ctx));
          break;
        default:
          break;
      }
    });
    const close = () => {
      if (this.sessions.get(nodeName) === session) this.sessions.delete(nodeName);
    };
    stream.on('end', () => {
      close();
      stream.end();
    });
    stream.on('error', close);
    stream.on('close', close);
  }

  /** Creates the Node object, or refreshes what the node owns in it (its status and own labels). */
  private async register(ctx: ControllerContext, hello: Hello): Promise<void> {
    let reported: ApiObject;
    try {
      reported = JSON.parse(hello.nodeJson) as ApiObject;
    } catch (err) {
      throw new Error(`node_json is not valid JSON: ${(err as Error).message}`);
    }
    if (reported?.metadata?.name !== hello.nodeName)
      throw new Error(
        `node_json names "${reported?.metadata?.name}", the session "${hello.nodeName}"`,
      );
    const v = validateObject(reported);
    if (!v.ok) throw new Error(formatIssues(v.errors));
    const cur = ctx.store.get('Node', undefined, hello.nodeName)?.object;
    if (!cur) {
      await ctx.writer.create(v.object);
      return;
    }
    const status = (v.object.status ?? {}) as { conditions?: unknown[] };
    const curStatus = (cur.status ?? {}) as { conditions?: unknown[] };
    const labels = { ...(cur.metadata.labels ?? {}), ...(v.object.metadata.labels ?? {}) };
    let latest = cur;
    if (stableStringify(labels) !== stableStringify(cur.metadata.labels ?? {}))
      latest = await ctx.writer.update({ ...cur, metadata: { ...cur.metadata, labels } });
    // Conditions belong to the node lifecycle controller.
    await ctx.writer.updateStatus({
      ...latest,
      status: { ...status, conditions: curStatus.conditions ?? status.conditions },
    });
  }

  private writeStatuses(ctx: ControllerContext, nodeName: string, statuses: PodStatus[]): void {
    const schema = (podStatusSchema ??= podStatus());
    for (const s of statuses) {
      const cur = ctx.store.get('Pod', s.namespace, s.name)?.object;
      if (!cur || cur.metadata.uid !== s.uid) continue;
      if ((cur.spec as { nodeName?: string }).nodeName !== nodeName) continue; // not its pod
      let parsed: unknown;
      try {
        parsed = JSON.parse(s.statusJson);
      } catch {
        this.log.warn({ node: nodeName, pod: s.name }, 'pod status is not JSON: ignored');
        continue;
      }
      const r = schema.safeParse(parsed);
      if (!r.success) {
        this.log.warn(
          { node: nodeName, pod: s.name, err: r.error.message },
          'bad pod status: ignored',
        );
        continue;
      }
      // The node is the authority on a pod's status: no resourceVersion guard, only the uid.
      void ctx.writer
        .command({
          op: 'update',
          // Only what a status write needs: the log carries no copy of the spec.
          object: {
            apiVersion: cur.apiVersion,
            kind: 'Pod',
            metadata: { name: cur.metadata.name, namespace: cur.metadata.namespace },
            status: r.data,
          },
          uid: s.uid,
          subresource: 'status',
        })
        .catch((err: Error) => this.log.debug({ err }, 'pod status not written'));
    }
  }
}

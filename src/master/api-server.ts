import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  FieldSelector,
  LabelSelector,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from '../api/selectors';
import { ApiObject, DEFAULT_NAMESPACE, KindInfo, resolveKind } from '../api/types';
import { VERSION } from '../common/version';
import {
  ClusterClient,
  ClusterServer,
  ClusterStatusResponse,
  DeleteResponse,
  EventType,
  GetResponse,
  ListResponse,
  PropagationPolicy,
  WatchEvent,
  WatchRequest,
  WriteResponse,
} from '../gen/api';
import { NodeApiClient } from '../gen/node';
import { RaftNode } from '../raft/raft-node';
import { RaftError } from '../raft/types';
import {
  AdmissionEnv,
  admitCreate,
  mergeForApply,
  recordLastApplied,
  updateCommand,
  validateJson,
} from './admission';
import { DEFAULT_SERVICE_NETWORK, ServiceAllocator } from './service-alloc';
import { ApiError, storeError } from './api-error';
import { proxyExec, proxyLogs } from './pod-streams';
import { top } from './top';
import { Command, CommandResult, encodeCommand } from './store/commands';
import { ClusterStore, describe } from './store/cluster-store';
import { Query, StoredObject } from './store/object-index';
import { namespaceUsage } from './store/quota';
import { Change, TooOldError } from './store/watch-hub';

const FORWARDED = 'baton-forwarded';
/** Set by a master that forwards a write it has already validated. */
const VALIDATED = 'baton-validated';
/** A watch whose client reads slower than this many buffered bytes is ended (it resumes from its revision). */
const WATCH_BUFFER_LIMIT = 64 * 1024 * 1024;

export interface ApiServerDeps {
  node: RaftNode;
  store: ClusterStore;
  env: AdmissionEnv;
  log: Logger;
  /**
   * Where writes are admitted. 'leader': a follower forwards the call to the
   * leader's API, which admits and proposes. 'local': the master that gets
   * the call admits it and proposes; Raft forwards the proposal to the
   * leader. Either way the checks that decide (existence, resourceVersion,
   * owners, quota) run again in the deterministic apply.
   */
  admission?: 'leader' | 'local';
  /** A client for another master's API, by address (the leader's, to forward writes). */
  peerClient(address: string): ClusterClient;
  /** A client for a node's API, by address (for logs and exec). */
  nodeClient(address: string): NodeApiClient;
  /** Hands out Service addresses and node ports (default: DEFAULT_SERVICE_NETWORK). */
  services?: ServiceAllocator;
}

function toApiError(err: unknown, node: RaftNode): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RaftError) {
    const hint = node.leaderAddress() ? ` (leader: ${node.leaderAddress()})` : '';
    switch (err.code) {
      case 'TIMEOUT':
        return new ApiError(
          grpc.status.DEADLINE_EXCEEDED,
          `${err.message}; the write may still take effect`,
        );
      case 'LEADER_CHANGED':
        return new ApiError(grpc.status.UNAVAILABLE, `${err.message}; retry${hint}`);
      default:
        return new ApiError(grpc.status.UNAVAILABLE, `${err.message}${hint}`);
    }
  }
  if (err instanceof SelectorError) return new ApiError(grpc.status.INVALID_ARGUMENT, err.message);
  if (err instanceof TooOldError) return new ApiError(grpc.status.OUT_OF_RANGE, err.message);
  const e = err as { code?: unknown; details?: unknown };
  if (typeof e?.code === 'number' && typeof e.details === 'string')
    return new ApiError(e.code, e.details);
  return new ApiError(grpc.status.INTERNAL, String((err as Error | undefined)?.stack ?? err));
}

/** Runs an async handler, answering with its value or with a status a person can act on. */
function unary<Req, Res>(
  node: RaftNode,
  log: Logger,
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, cb) => {
    fn(call.request, call).then(
      (res) => cb(null, res),
      (err) => {
        const e = toApiError(err, node);
        if (e.code === grpc.status.INTERNAL) log.error({ err }, 'internal error');
        cb({ code: e.code, details: e.message });
      },
    );
  };
}

function kindOf(name: string): KindInfo {
  const k = resolveKind(name);
  if (!k) throw new ApiError(grpc.status.INVALID_ARGUMENT, `kind: unknown kind "${name}"`);
  return k;
}

/** The Cluster service of one master. Writes run on the leader (followers forward); reads run anywhere. */
export function clusterService(deps: ApiServerDeps): ClusterServer {
  const { node, store, env, log } = deps;
  const services = deps.services ?? new ServiceAllocator(DEFAULT_SERVICE_NETWORK);

  async function leaderAddress(): Promise<string | undefined> {
    const deadline = Date.now() + 5000;
    while (node.leader() === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    if (node.isLeader()) return undefined;
    const addr = node.leaderAddress();
    if (!addr)
      throw new ApiError(grpc.status.UNAVAILABLE, `no leader elected among the masters yet; retry`);
    return addr;
  }

  /** Sends a call on to the leader, unless this master is the leader (then undefined). */
  async function forward<Req, Res>(
    method: keyof ClusterClient & string,
    req: Req,
    call: grpc.ServerUnaryCall<Req, Res>,
    validated = false,
  ): Promise<Res | undefined> {
    const addr = await leaderAddress();
    if (addr === undefined) return undefined;
    if (call.metadata.get(FORWARDED).length > 0)
      throw new ApiError(
        grpc.status.UNAVAILABLE,
        `master ${node.id} is not the leader (leader: ${addr}); retry`,
      );
    const md = new grpc.Metadata();
    md.set(FORWARDED, String(node.id));
    if (validated) md.set(VALIDATED, '1');
    const client = deps.peerClient(addr) as unknown as Record<
      string,
      (
        r: Req,
        md: grpc.Metadata,
        o: grpc.CallOptions,
        cb: (e: grpc.ServiceError | null, v: Res) => void,
      ) => void
    >;
    return new Promise<Res>((resolve, reject) =>
      client[method](req, md, { deadline: call.getDeadline() }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  }

  async function propose(cmd: Command): Promise<{ index: number; result: CommandResult }> {
    const r = await node.propose(encodeCommand(cmd));
    const result = r.result as CommandResult;
    if (!result.ok) throw storeError(result.code, result.message);
    return { index: r.index, result };
  }

  async function readBarrier(local: boolean): Promise<void> {
    if (!local) await node.readIndex();
  }

  /** The JSON a client sees; a ResourceQuota shows what its namespace uses now. */
  function present(s: StoredObject): string {
    if (s.object.kind !== 'ResourceQuota') return s.json;
    const hard =
      (s.object.spec as { hard?: Record<string, string | number> } | undefined)?.hard ?? {};
    const usage = namespaceUsage(store.objects, s.object.metadata.namespace!);
    const used = Object.fromEntries(Object.keys(hard).map((r) => [r, String(usage.get(r) ?? 0)]));
    return JSON.stringify({ ...s.object, status: { hard, used } });
  }

  function written(
    o: ApiObject,
    index: number,
    warnings: string[],
    extra: Partial<WriteResponse> = {},
  ): WriteResponse {
    return {
      objectJson: JSON.stringify(o),
      warnings,
      revision: index,
      created: false,
      unchanged: false,
      ...extra,
    };
  }

  /**
   * The object of a write, validated with defaults filled in. The master
   * that received the call validates it (spreading that work over every
   * master); the leader trusts an object a peer forwarded as validated.
   */
  function validated<Req, Res>(
    json: string,
    call: grpc.ServerUnaryCall<Req, Res>,
    apply = false,
  ): { object: ApiObject; warnings: string[] } {
    if (call.metadata.get(VALIDATED).length > 0 && call.metadata.get(FORWARDED).length > 0)
      return { object: JSON.parse(json) as ApiObject, warnings: [] };
    return validateJson(apply ? recordLastApplied(json) : json);
  }

  /** Forwards a validated write to the leader, keeping the warnings found here. */
  async function forwardWrite<Req extends { objectJson: string }>(
    method: 'create' | 'apply' | 'update',
    req: Req,
    call: grpc.ServerUnaryCall<Req, WriteResponse>,
    v: { object: ApiObject; warnings: string[] },
  ): Promise<WriteResponse | undefined> {
    if (deps.admission === 'local') return undefined;
    const fwd = await forward(method, { ...req, objectJson: JSON.stringify(v.object) }, call, true);
    return fwd && { ...fwd, warnings: [...v.warnings, ...fwd.warnings] };
  }

  async function create(
    { object, warnings }: { object: ApiObject; warnings: string[] },
    dryRun: boolean,
  ): Promise<WriteResponse> {
    const o = admitCreate(store, object, env);
    const release = services.admit(store, o);
    try {
      if (dryRun) return written(o, store.revision, warnings, { created: true });
      const r = await propose({ op: 'create', object: o });
      return written(r.result.ok ? r.result.object! : o, r.index, warnings, { created: true });
    } finally {
      release();
    }
  }

  /** Proposes an update of `cur` to `o` (Service allocations kept or made first). */
  async function proposeUpdate(
    cur: ApiObject,
    o: ApiObject,
    subresource: 'status' | undefined,
    expectedRevision: number | undefined,
    warnings: string[],
    dryRun: boolean,
  ): Promise<WriteResponse> {
    const release = subresource ? () => {} : services.admit(store, o, cur);
    try {
      if (dryRun) return written(o, store.revision, warnings);
      const r = await propose(updateCommand(cur, o, subresource, expectedRevision));
      return written(r.result.ok ? r.result.object! : o, r.index, warnings);
    } finally {
      release();
    }
  }

  return {
    version: unary(node, log, async () => ({ version: VERSION, nodeName: `master-${node.id}` })),

    create: unary(node, log, async (req, call) => {
      const v = validated(req.objectJson, call);
      return (await forwardWrite('create', req, call, v)) ?? create(v, req.dryRun);
    }),

    apply: unary(node, log, async (req, call) => {
      const v = validated(req.objectJson, call, true);
      const fwd = await forwardWrite('apply', req, call, v);
      if (fwd) return fwd;
      const { object, warnings } = v;
      // A concurrent writer can slip in between reading and proposing: the
      // apply-time check then fails with a conflict, and we merge again.
      for (let attempt = 0; ; attempt++) {
        const cur = object.metadata.name
          ? store.get(object.kind, object.metadata.namespace, object.metadata.name)
          : undefined;
        try {
          if (!cur) return await create(v, req.dryRun);
          const merged = mergeForApply(cur.object, object);
          if (!merged) return written(cur.object, cur.revision, warnings, { unchanged: true });
          return await proposeUpdate(
            cur.object,
            merged,
            undefined,
            cur.revision,
            warnings,
            req.dryRun,
          );
        } catch (err) {
          const retry =
            err instanceof ApiError &&
            (err.code === grpc.status.ABORTED ||
              err.code === grpc.status.ALREADY_EXISTS ||
              err.code === grpc.status.NOT_FOUND);
          if (!retry || attempt >= 4) throw err;
        }
      }
    }),

    update: unary(node, log, async (req, call) => {
      if (req.subresource !== '' && req.subresource !== 'status')
        throw new ApiError(
          grpc.status.INVALID_ARGUMENT,
          `subresource: must be "" or "status", not "${req.subresource}"`,
        );
      const v = validated(req.objectJson, call);
      const fwd = await forwardWrite('update', req, call, v);
      if (fwd) return fwd;
      const { object, warnings } = v;
      const cur = store.get(object.kind, object.metadata.namespace, object.metadata.name);
      if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `${describe(object)} not found`);
      if (object.metadata.uid && object.metadata.uid !== cur.object.metadata.uid)
        throw new ApiError(
          grpc.status.ABORTED,
          `${describe(object)}: metadata.uid ${object.metadata.uid} does not match the stored object`,
        );
      const rv = object.metadata.resourceVersion;
      if (rv !== undefined && !/^\d+$/.test(rv))
        throw new ApiError(
          grpc.status.INVALID_ARGUMENT,
          `metadata.resourceVersion: must be a number, got "${rv}"`,
        );
      return proposeUpdate(
        cur.object,
        object,
        req.subresource === 'status' ? 'status' : undefined,
        rv === undefined ? undefined : Number(rv),
        warnings,
        req.dryRun,
      );
    }),

    delete: unary(node, log, async (req, call): Promise<DeleteResponse> => {
      const fwd = deps.admission === 'local' ? undefined : await forward('delete', req, call);
      if (fwd) return fwd;
      const k = kindOf(req.kind);
      if (!req.name) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'name: required');
      const rv = req.resourceVersion;
      if (rv !== '' && !/^\d+$/.test(rv))
        throw new ApiError(
          grpc.status.INVALID_ARGUMENT,
          `resource_version: must be a number, got "${rv}"`,
        );
      const cmd: Command = {
        op: 'delete',
        kind: k.kind,
        namespace: k.namespaced ? req.namespace || DEFAULT_NAMESPACE : undefined,
        name: req.name,
        uid: req.uid || undefined,
        expectedRevision: rv === '' ? undefined : Number(rv),
        propagation:
          req.propagation === PropagationPolicy.ORPHAN
            ? 'Orphan'
            : req.propagation === PropagationPolicy.FOREGROUND
              ? 'Foreground'
              : 'Background',
      };
      if (req.dryRun) {
        const cur = store.get(k.kind, cmd.namespace, req.name);
        if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `${k.kind} "${req.name}" not found`);
        return { objectJson: cur.json, revision: store.revision, alsoDeleted: [] };
      }
      const r = await propose(cmd);
      const res = r.result as Extract<CommandResult, { ok: true }>;
      return {
        objectJson: JSON.stringify(res.object),
        revision: r.index,
        alsoDeleted: res.alsoDeleted,
      };
    }),

    get: unary(node, log, async (req): Promise<GetResponse> => {
      const k = kindOf(req.kind);
      await readBarrier(req.local);
      const ns = k.namespaced ? req.namespace || DEFAULT_NAMESPACE : undefined;
      const s = store.get(k.kind, ns, req.name);
      if (!s)
        throw new ApiError(
          grpc.status.NOT_FOUND,
          `${k.kind} "${req.name}" not found${ns ? ` in namespace "${ns}"` : ''}`,
        );
      return { objectJson: present(s), revision: store.revision };
    }),

    list: unary(node, log, async (req): Promise<ListResponse> => {
      const q = query(req);
      await readBarrier(req.local);
      return { itemsJson: store.list(q).map(present), revision: store.revision };
    }),

    watch: (call) => watch(deps, call),

    status: unary(node, log, async (_req, call): Promise<ClusterStatusResponse> => {
      if (!node.isLeader() && node.leaderAddress() && call.metadata.get(FORWARDED).length === 0) {
        try {
          const r = await forward('status', _req, call);
          if (r) return { ...r, answeredBy: node.id };
        } catch {
          // The leader is unreachable from here: answer with what this master knows.
        }
      }
      return statusOf(node, store);
    }),

    join: unary(node, log, async (req, call) => {
      const fwd = await forward('join', req, call);
      if (fwd) return fwd;
      if (!req.id || !/^[^\s:]+:\d+$/.test(req.address))
        throw new ApiError(grpc.status.INVALID_ARGUMENT, 'id and address (host:port) are required');
      if (
        node.status().confState.voters.includes(req.id) &&
        node.status().peers[req.id] !== req.address
      )
        throw new ApiError(
          grpc.status.ALREADY_EXISTS,
          `master ${req.id} is already a member with another address`,
        );
      await node.addMember(req.id, req.address);
      return statusOf(node, store);
    }),

    // Served by any master from its own store: no leader needed.
    logs: (call) => proxyLogs(deps, call),
    exec: (call) => proxyExec(deps, call),
    top: unary(node, log, (req) => top(deps, req)),
  };
}

function query(req: {
  kind: string;
  namespace: string;
  labelSelector: string;
  fieldSelector: string;
}): Query {
  const kind = req.kind ? kindOf(req.kind) : undefined;
  let labels: LabelSelector | undefined;
  let fields: FieldSelector | undefined;
  if (req.labelSelector) labels = parseLabelSelector(req.labelSelector);
  if (req.fieldSelector) fields = parseFieldSelector(req.fieldSelector);
  return {
    kind: kind?.kind,
    namespace: req.namespace && kind?.namespaced !== false ? req.namespace : undefined,
    labels,
    fields,
  };
}

export function statusOf(node: RaftNode, store: ClusterStore): ClusterStatusResponse {
  const s = node.status();
  const ids = [
    ...new Set([...s.confState.voters, ...s.confState.learners, ...s.confState.votersOutgoing]),
  ].sort((a, b) => a - b);
  return {
    answeredBy: node.id,
    leader: s.leader,
    leaderAddress: node.leaderAddress() ?? '',
    term: s.term,
    commitIndex: s.commit,
    appliedIndex: s.applied,
    fromLeader: s.progress !== undefined,
    version: VERSION,
    objects: store.objects.size,
    members: ids.map((id) => {
      const p = s.progress?.[id];
      return {
        id,
        address: s.peers[id] ?? '',
        leader: id === s.leader,
        voter: !s.confState.learners.includes(id),
        healthy: id === s.id && s.leader === s.id ? true : (p?.active ?? false),
        matchIndex: p?.match ?? 0,
        replication: p?.state ?? '',
      };
    }),
  };
}

const EVENT_TYPES = {
  ADDED: EventType.ADDED,
  MODIFIED: EventType.MODIFIED,
  DELETED: EventType.DELETED,
};

/**
 * One watch stream: the changes after `from_revision` from the kept
 * history, then live changes, with no gap and no duplicate between the two
 * (both are taken in the same tick, and apply runs on the same thread).
 */
function watch(
  deps: ApiServerDeps,
  call: grpc.ServerWritableStream<WatchRequest, WatchEvent>,
): void {
  const { store, node } = deps;
  const fail = (err: unknown) => {
    const e = toApiError(err, node);
    // grpc-js ends a server stream with this status (destroy() would not send it).
    call.emit('error', { code: e.code, details: e.message });
  };
  let q: Query;
  try {
    q = query(call.request);
  } catch (err) {
    return fail(err);
  }
  let unsubscribe = () => {};
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const close = () => {
    closed = true;
    unsubscribe();
    if (timer) clearInterval(timer);
  };
  call.on('cancelled', close);
  call.on('close', close);
  call.on('error', close);

  const send = (changes: Change[], floor: number) => {
    if (closed) return;
    for (const c of changes) {
      if (c.revision <= floor) continue;
      call.write({ type: EVENT_TYPES[c.type], objectJson: c.json, revision: c.revision });
    }
    if (call.writableLength > WATCH_BUFFER_LIMIT) {
      close();
      fail(
        new ApiError(
          grpc.status.RESOURCE_EXHAUSTED,
          'watch client reads too slowly; resume from your last revision',
        ),
      );
    }
  };

  const start = async () => {
    let floor = Number(call.request.fromRevision);
    if (floor === 0) {
      // Like Kubernetes' watch without a resourceVersion: the current state first.
      await node.readIndex();
      if (closed) return;
      floor = store.revision;
      // All at the list's revision, then a BOOKMARK marking the end of the
      // initial state (Kubernetes' "initial-events-end").
      for (const s of store.list(q))
        call.write({ type: EventType.ADDED, objectJson: s.json, revision: floor });
      call.write({ type: EventType.BOOKMARK, objectJson: '', revision: floor });
    }
    const backlog = store.watch.since(floor, q);
    unsubscribe = store.watch.subscribe({ query: q, deliver: (cs) => send(cs, floor) });
    send(backlog, floor);
    const ms = call.request.bookmarkMs;
    if (ms > 0)
      timer = setInterval(() => {
        if (!closed && call.writableLength === 0)
          call.write({
            type: EventType.BOOKMARK,
            objectJson: '',
            revision: Math.max(floor, store.revision),
          });
      }, ms);
  };
  start().catch((err) => {
    close();
    fail(err);
  });
}

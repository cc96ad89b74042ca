import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  FieldSelector,
  LabelSelector,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from '../api/selectors';
import { ANSWERED_BY } from '../api/answered-by';
import { ApiObject, DEFAULT_NAMESPACE, KindInfo, resolveKind } from '../api/types';
import { VERSION } from '../common/version';
import {
  ClusterClient,
  ClusterServer,
  ClusterStatusResponse,
  DeleteRequest,
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
import { callerOf } from '../ca/authz';
import { checkCreate, checkGet, checkList, visibleKind } from './access';
import { enrollmentHandlers, SecurityOptions } from './enrollment';
import { ApiError, storeError } from './api-error';
import { proxyExec, proxyLogs } from './pod-streams';
import { top } from './top';
import { joinRefusal, KEYED_WRITES, MASTER_FEATURES } from './features';
import {
  deletedStub,
  FORWARDED,
  forwardKey,
  keyed,
  targetOf,
  writeKey,
  WriteKey,
} from './idempotency';
import { Command, CommandResult } from './store/commands';
import { AppliedRequest, reused, reusedKey } from './store/request-log';
import { ClusterStore, describe } from './store/cluster-store';
import { Query, StoredObject } from './store/object-index';
import { namespaceUsage } from './store/quota';
import { Change, TooOldError } from './store/watch-hub';

/** The calls an idempotency key applies to. */
const WRITES: ReadonlySet<string> = new Set(['create', 'apply', 'update', 'delete']);
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
  /** The cluster CA and this master's certificate; absent when running without TLS. */
  security?: SecurityOptions;
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
        // Says that this master answered, whatever the message (see ANSWERED_BY).
        const metadata = new grpc.Metadata();
        metadata.set(ANSWERED_BY, String(node.id));
        cb({ code: e.code, details: e.message, metadata });
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
    /** Forward even a call that was forwarded here (this master just handed leadership over). */
    again = false,
  ): Promise<Res | undefined> {
    const addr = await leaderAddress();
    if (addr === undefined) return undefined;
    const leader = node.leader();
    if (!again && call.metadata.get(FORWARDED).length > 0)
      throw new ApiError(
        grpc.status.UNAVAILABLE,
        `master ${node.id} is not the leader (leader: ${addr}); retry`,
      );
    const md = new grpc.Metadata();
    md.set(FORWARDED, String(node.id));
    if (validated) md.set(VALIDATED, '1');
    // Only writes are keyed: a key on any other call is ignored, not refused.
    if (WRITES.has(method)) forwardKey(md, writeKey(call, method));
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
      client[method](req, md, { deadline: call.getDeadline() }, (err, res) => {
        if (!err) return resolve(res);
        // The leader did not answer (it died; an election is under way, or
        // about to be): say so as this master's answer, not as if the
        // caller had failed to reach this master.
        if (
          err.code === grpc.status.UNAVAILABLE &&
          (err.metadata?.get(ANSWERED_BY).length ?? 0) === 0
        )
          return reject(
            new ApiError(
              grpc.status.UNAVAILABLE,
              `master ${node.id} cannot reach the leader (${leader} at ${addr}): ${err.details}; retry`,
            ),
          );
        reject(err);
      }),
    );
  }

  /** Proposes a command (keyed: applied once however often it is retried) and waits for its result. */
  async function propose(
    cmd: Command,
    key?: WriteKey,
  ): Promise<{ index: number; result: CommandResult }> {
    // Keyed entries only once every master can apply them (see features.ts).
    const k = store.features.has(KEYED_WRITES) ? key : undefined;
    const r = await node.propose(store.codec.encode(keyed(cmd, k, Date.now())));
    const result = r.result as CommandResult;
    if (!result.ok) throw storeError(result.code, result.message);
    if (result.duplicateOf === undefined) return { index: r.index, result };
    // A retry of a write the log already holds: answer as the original would have.
    const t = targetOf(cmd);
    const object = result.object ?? (t && now(t));
    return { index: result.duplicateOf, result: { ...result, object } };
  }

  /** The object a write names as it is now, or (deleted) a stub of it: a retry's answer once the original's is gone. */
  function now(t: { kind: string; namespace?: string; name: string }): ApiObject {
    return store.get(t.kind, t.namespace, t.name)?.object ?? deletedStub(t);
  }

  /**
   * Runs a keyed write at most once: the retry of a write already applied
   * gets the original's answer. A retry can also race its original's apply
   * here, and then be refused by admission (the object it creates exists
   * now): a refusal is looked at again once this master has applied all that
   * is committed.
   */
  async function once<Res>(
    key: WriteKey | undefined,
    again: (seen: AppliedRequest) => Res,
    write: () => Promise<Res>,
  ): Promise<Res> {
    if (key === undefined) return write();
    const before = appliedAs(key);
    if (before) return again(before);
    try {
      return await write();
    } catch (err) {
      const answered =
        err instanceof ApiError &&
        err.code !== grpc.status.UNAVAILABLE &&
        err.code !== grpc.status.DEADLINE_EXCEEDED;
      if (!answered) throw err;
      const seen = await node.readIndex().then(
        () => appliedAs(key),
        () => undefined,
      );
      if (seen) return again(seen);
      throw err;
    }
  }

  /** The write a key applied, if any: refused when that write was another request than this one. */
  function appliedAs(k: WriteKey): AppliedRequest | undefined {
    const seen = store.requests.lookup(k.key);
    if (seen && reused(seen, k.digest))
      throw new ApiError(grpc.status.INVALID_ARGUMENT, reusedKey(seen.index));
    return seen;
  }

  /** The answer to a retried create, apply or update whose original was applied. */
  function writtenAgain(seen: AppliedRequest, o: ApiObject, warnings: string[]): WriteResponse {
    const obj =
      seen.result?.object ??
      now({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name ?? '' });
    return written(obj, seen.index, warnings, { created: seen.created ?? false });
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
    key?: WriteKey,
  ): Promise<WriteResponse> {
    const o = admitCreate(store, object, env);
    const release = services.admit(store, o);
    try {
      if (dryRun) return written(o, store.revision, warnings, { created: true });
      const r = await propose({ op: 'create', object: o }, key);
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
    key?: WriteKey,
  ): Promise<WriteResponse> {
    const release = subresource ? () => {} : services.admit(store, o, cur);
    try {
      if (dryRun) return written(o, store.revision, warnings);
      const r = await propose(updateCommand(cur, o, subresource, expectedRevision), key);
      return written(r.result.ok ? r.result.object! : o, r.index, warnings);
    } finally {
      release();
    }
  }

  async function update(
    object: ApiObject,
    warnings: string[],
    subresource: string,
    dryRun: boolean,
    key: WriteKey | undefined,
  ): Promise<WriteResponse> {
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
      subresource === 'status' ? 'status' : undefined,
      rv === undefined ? undefined : Number(rv),
      warnings,
      dryRun,
      key,
    );
  }

  async function remove(req: DeleteRequest, key: WriteKey | undefined): Promise<DeleteResponse> {
    const cmd = deleteCommand(req);
    if (req.dryRun) {
      const cur = store.get(cmd.kind, cmd.namespace, cmd.name);
      if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `${cmd.kind} "${cmd.name}" not found`);
      return { objectJson: cur.json, revision: store.revision, alsoDeleted: [] };
    }
    const r = await propose(cmd, key);
    const res = r.result as Extract<CommandResult, { ok: true }>;
    return {
      objectJson: JSON.stringify(res.object),
      revision: r.index,
      alsoDeleted: res.alsoDeleted,
    };
  }

  const enrollment = enrollmentHandlers({
    security: deps.security,
    store,
    log,
    now: env.now,
    forward,
    propose,
  });

  return {
    version: unary(node, log, async () => ({
      version: VERSION,
      nodeName: `master-${node.id}`,
      features: [...MASTER_FEATURES],
    })),

    create: unary(node, log, async (req, call) => {
      const key = req.dryRun ? undefined : writeKey(call, 'create');
      const v = validated(req.objectJson, call);
      checkCreate(callerOf(call), v.object.kind);
      return (
        (await forwardWrite('create', req, call, v)) ??
        once(
          key,
          (seen) => writtenAgain(seen, v.object, v.warnings),
          () => create(v, req.dryRun, key),
        )
      );
    }),

    apply: unary(node, log, async (req, call) => {
      const key = req.dryRun ? undefined : writeKey(call, 'apply');
      const v = validated(req.objectJson, call, true);
      const fwd = await forwardWrite('apply', req, call, v);
      if (fwd) return fwd;
      const { object, warnings } = v;
      return once(
        key,
        (seen) => writtenAgain(seen, object, warnings),
        async () => {
          // A concurrent writer can slip in between reading and proposing: the
          // apply-time check then fails with a conflict, and we merge again.
          for (let attempt = 0; ; attempt++) {
            const cur = object.metadata.name
              ? store.get(object.kind, object.metadata.namespace, object.metadata.name)
              : undefined;
            try {
              if (!cur) return await create(v, req.dryRun, key);
              const merged = mergeForApply(cur.object, object);
              if (!merged) return written(cur.object, cur.revision, warnings, { unchanged: true });
              return await proposeUpdate(
                cur.object,
                merged,
                undefined,
                cur.revision,
                warnings,
                req.dryRun,
                key,
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
        },
      );
    }),

    update: unary(node, log, async (req, call) => {
      if (req.subresource !== '' && req.subresource !== 'status')
        throw new ApiError(
          grpc.status.INVALID_ARGUMENT,
          `subresource: must be "" or "status", not "${req.subresource}"`,
        );
      const key = req.dryRun ? undefined : writeKey(call, 'update');
      const v = validated(req.objectJson, call);
      const fwd = await forwardWrite('update', req, call, v);
      if (fwd) return fwd;
      const { object, warnings } = v;
      return once(
        key,
        (seen) => writtenAgain(seen, object, warnings),
        () => update(object, warnings, req.subresource, req.dryRun, key),
      );
    }),

    delete: unary(node, log, async (req, call): Promise<DeleteResponse> => {
      const key = req.dryRun ? undefined : writeKey(call, 'delete');
      const fwd = deps.admission === 'local' ? undefined : await forward('delete', req, call);
      if (fwd) return fwd;
      return once(
        key,
        (seen) => ({
          objectJson: JSON.stringify(seen.result?.object ?? deletedStub(deleteCommand(req))),
          revision: seen.index,
          alsoDeleted: seen.result?.alsoDeleted ?? [],
        }),
        () => remove(req, key),
      );
    }),

    get: unary(node, log, async (req, call): Promise<GetResponse> => {
      const k = kindOf(req.kind);
      await readBarrier(req.local);
      const ns = k.namespaced ? req.namespace || DEFAULT_NAMESPACE : undefined;
      checkGet(store, callerOf(call), k.kind, ns, req.name);
      const s = store.get(k.kind, ns, req.name);
      if (!s)
        throw new ApiError(
          grpc.status.NOT_FOUND,
          `${k.kind} "${req.name}" not found${ns ? ` in namespace "${ns}"` : ''}`,
        );
      return { objectJson: present(s), revision: store.revision };
    }),

    list: unary(node, log, async (req, call): Promise<ListResponse> => {
      const q = query(req);
      const who = callerOf(call);
      checkList(who, q.kind ?? '');
      await readBarrier(req.local);
      return {
        itemsJson: store
          .list(q)
          .filter((s) => visibleKind(who, s.object.kind))
          .map(present),
        revision: store.revision,
      };
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
      if (node.isRemoved(req.id))
        throw new ApiError(
          grpc.status.FAILED_PRECONDITION,
          `master ${req.id} was removed from the cluster and cannot join again under that id: start it with a new --id and an empty data directory`,
        );
      if (
        node.status().confState.voters.includes(req.id) &&
        node.status().peers[req.id] !== req.address
      )
        throw new ApiError(
          grpc.status.ALREADY_EXISTS,
          `master ${req.id} is already a member with another address`,
        );
      const refusal = await joinRefusal(store, deps.peerClient(req.address), req.id);
      if (refusal)
        throw new ApiError(
          refusal.endsWith('retry') ? grpc.status.UNAVAILABLE : grpc.status.FAILED_PRECONDITION,
          refusal,
        );
      await node.addMember(req.id, req.address);
      return statusOf(node, store);
    }),

    getCa: unary(node, log, enrollment.getCa),
    enroll: unary(node, log, enrollment.enroll),
    renewCertificate: unary(node, log, enrollment.renewCertificate),
    removeMember: unary(node, log, async (req, call) => {
      const fwd = await forward('removeMember', req, call);
      if (fwd) return fwd;
      let refusal = removalRefusal(node, req.id);
      // Whether a member answered recently is reset every election timeout
      // and set again by its next answer: look twice before saying no.
      if (refusal?.code === grpc.status.FAILED_PRECONDITION && refusal.quorum) {
        await new Promise((r) => setTimeout(r, 300));
        refusal = removalRefusal(node, req.id);
      }
      if (refusal) throw refusal;
      if (req.id === node.id) {
        // The core will not let a leader propose its own removal: hand
        // leadership over, then ask the new leader to remove this master.
        const to = await node.handOffLeadership(10_000);
        log.info({ to }, 'handed leadership over to be removed');
        const fwd = await forward('removeMember', req, call, false, true);
        if (fwd) return fwd;
        throw new ApiError(grpc.status.UNAVAILABLE, 'this master leads again; retry');
      }
      await node.removeMember(req.id);
      log.info({ removed: req.id }, 'removed a master from the cluster');
      return statusOf(node, store);
    }),

    // Served by any master from its own store: no leader needed.
    logs: (call) => proxyLogs(deps, call),
    exec: (call) => proxyExec(deps, call),
    top: unary(node, log, (req) => top(deps, req)),
  };
}

/** The delete command a request asks for (checked: a known kind, a name, a numeric resourceVersion). */
function deleteCommand(req: DeleteRequest): Extract<Command, { op: 'delete' }> {
  const k = kindOf(req.kind);
  if (!req.name) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'name: required');
  const rv = req.resourceVersion;
  if (rv !== '' && !/^\d+$/.test(rv))
    throw new ApiError(
      grpc.status.INVALID_ARGUMENT,
      `resource_version: must be a number, got "${rv}"`,
    );
  return {
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

/** A refusal to remove a master; `quorum`: refused because too few voters would answer. */
class RemovalRefusal extends ApiError {
  constructor(
    code: grpc.status,
    message: string,
    readonly quorum = false,
  ) {
    super(code, message);
  }
}

/** Why the leader must refuse to remove master `id`, or undefined. */
function removalRefusal(node: RaftNode, id: number): RemovalRefusal | undefined {
  const s = node.status();
  const { voters, learners } = s.confState;
  if (!Number.isSafeInteger(id) || id <= 0)
    return new RemovalRefusal(
      grpc.status.INVALID_ARGUMENT,
      `id: a master's id is a positive integer, not ${id}`,
    );
  if (!voters.includes(id) && !learners.includes(id)) {
    const members = [...voters, ...learners].sort((a, b) => a - b).join(', ');
    return new RemovalRefusal(
      grpc.status.NOT_FOUND,
      node.isRemoved(id)
        ? `master ${id} was already removed from the cluster`
        : `master ${id} is not a member of the cluster (members: ${members})`,
    );
  }
  if (s.confState.votersOutgoing.length > 0)
    return new RemovalRefusal(
      grpc.status.FAILED_PRECONDITION,
      'a membership change is still in progress; retry',
    );
  if (!voters.includes(id)) return undefined; // a learner: the quorum does not change
  const rest = voters.filter((v) => v !== id);
  if (rest.length < 1)
    return new RemovalRefusal(
      grpc.status.FAILED_PRECONDITION,
      `master ${id} is the only voter: a cluster needs at least one; add another master first`,
    );
  // etcd's strict reconfiguration check: the voters that remain must still
  // make a quorum among those that answer, or the removal wedges the cluster.
  const answering = rest.filter((v) => v === s.id || s.progress?.[v]?.active).length;
  const quorum = Math.floor(rest.length / 2) + 1;
  if (answering < quorum)
    return new RemovalRefusal(
      grpc.status.FAILED_PRECONDITION,
      `removing master ${id} would leave ${rest.length} voter(s) of which ${answering} answer the leader, fewer than the ${quorum} a quorum needs; bring the others back first`,
      true,
    );
  return undefined;
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
  const who = callerOf(call);
  try {
    q = query(call.request);
    checkList(who, q.kind ?? '');
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
      if (c.revision <= floor || !visibleKind(who, c.object.kind)) continue;
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
        if (visibleKind(who, s.object.kind))
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

import { ApiObject, DEFAULT_NAMESPACE, kindInfo } from '../../api/types';
import { SYSTEM_NAMESPACE } from '../../ca/tokens';
import type { StateMachine } from '../../raft/raft-node';
import { CommandCodec, PLAIN_CODEC } from './command-codec';
import { Command, CommandResult, StoreError } from './commands';
import {
  keyOf,
  ObjectIndex,
  objectKey,
  Query,
  serviceAllocations,
  StoredObject,
} from './object-index';
import { quotaViolation } from './quota';
import { RequestLog, RequestLogEntry, reused, reusedKey } from './request-log';
import { stableStringify } from './stable-json';
import { Change, WatchHub } from './watch-hub';

interface Undo {
  key: string;
  prev?: StoredObject;
}

/**
 * The replicated object store: the state machine every master applies the
 * Raft log to. `resourceVersion` is the Raft index of an object's last
 * write, and the store's revision is the index of the last applied entry.
 * Apply is deterministic — no clock, no randomness, no I/O — so every
 * master holds the same objects. Its codec reads entries and writes and
 * reads snapshots: with a key ring, Secrets are sealed in both (the objects
 * held here, and served, are plain).
 */
/** Objects serialized per slice of a snapshot capture. */
const CAPTURE_SLICE = 2000;
const COMMA = Buffer.from(',');
const TAIL = Buffer.from(']}');

export class ClusterStore implements StateMachine {
  readonly objects = new ObjectIndex();
  readonly watch: WatchHub;
  /** The keyed client writes applied lately, so a retried one is not applied twice. */
  readonly requests: RequestLog;
  /** Log features turned on (every member can apply them): replicated, in snapshots. */
  readonly features = new Set<string>();
  private rev = 0;
  private readonly appliedListeners = new Set<(revision: number) => void>();
  /** How commands become log entries and objects snapshot bytes; writers encode with it too. */
  readonly codec: CommandCodec;

  constructor(opts: { watchHistory?: number; codec?: CommandCodec; requests?: RequestLog } = {}) {
    this.watch = new WatchHub(opts.watchHistory);
    this.requests = opts.requests ?? new RequestLog();
    this.codec = opts.codec ?? PLAIN_CODEC;
  }

  get revision(): number {
    return this.rev;
  }

  /** Called after every applied entry (after watchers were told). */
  onApplied(fn: (revision: number) => void): () => void {
    this.appliedListeners.add(fn);
    return () => this.appliedListeners.delete(fn);
  }

  get(kind: string, namespace: string | undefined, name: string): StoredObject | undefined {
    return this.objects.get(
      objectKey(kind, kindInfo(kind)?.namespaced ? namespace : undefined, name),
    );
  }

  list(q: Query): StoredObject[] {
    return this.objects.list(q);
  }

  /** Whether objects may be created in `ns` (it exists, or is the implicit default namespace). */
  namespaceExists(ns: string): boolean {
    // Like kube-system, baton-system always exists (join token records live there).
    return (
      ns === DEFAULT_NAMESPACE ||
      ns === SYSTEM_NAMESPACE ||
      this.objects.get(objectKey('Namespace', undefined, ns)) !== undefined
    );
  }

  // ---- the state machine --------------------------------------------------

  apply(data: Uint8Array, index: number, term = 0): CommandResult {
    const result = this.applyCommand(this.codec.decode(data), index, term);
    this.rev = index;
    for (const fn of this.appliedListeners) fn(index);
    return result;
  }

  /** Applies one decoded command at `index`; it takes ownership of the objects in `cmd`. */
  applyCommand(cmd: Command, index: number, term = 0): CommandResult {
    if (cmd.op === 'feature') {
      this.features.add(cmd.name);
      return { ok: true, alsoDeleted: [] };
    }
    if (cmd.op === 'once') {
      const seen = this.requests.lookup(cmd.key);
      if (seen && reused(seen, cmd.digest))
        return { ok: false, code: 'INVALID', message: reusedKey(seen.index) };
      if (seen)
        return { ...(seen.result ?? { ok: true, alsoDeleted: [] }), duplicateOf: seen.index };
      const r = this.applyCommand(cmd.command, index, term);
      // Only a write that took effect is remembered: a failed one changed nothing, and its retry may succeed.
      if (r.ok)
        this.requests.record(
          cmd.key,
          {
            index,
            at: cmd.at,
            ...(cmd.digest === undefined
              ? {}
              : { digest: cmd.digest, created: cmd.command.op === 'create' }),
          },
          r,
        );
      return r;
    }
    if (cmd.op === 'fenced') {
      if (cmd.term !== term)
        return {
          ok: false,
          code: 'FENCED',
          message: `written by the leader of term ${cmd.term}, but appended in term ${term}: that leader was deposed`,
        };
      return this.applyCommand(cmd.command, index, term);
    }
    if (cmd.op === 'each') {
      // One undo scope per command: each stands or falls alone.
      const results = cmd.commands.map((c) => this.applyCommand(c, index, term));
      return { ok: true, alsoDeleted: [], results };
    }
    const undo: Undo[] = [];
    const changes: Change[] = [];
    try {
      const r = this.exec(cmd, index, undo, changes);
      this.watch.publish(changes);
      return r;
    } catch (err) {
      // Roll back whatever part of a batch had been done: all or nothing.
      for (let i = undo.length - 1; i >= 0; i--) {
        const u = undo[i];
        if (u.prev) this.objects.put(u.prev);
        else this.objects.delete(u.key);
      }
      if (err instanceof StoreError) return { ok: false, code: err.code, message: err.message };
      throw err;
    }
  }

  snapshot(): Uint8Array {
    const parts = this.objects.all().map((s) => this.codec.snapshotJson(s));
    return Buffer.from(
      `{"revision":${this.rev},${this.requestsJson()}"objects":[${parts.join(',')}]}`,
    );
  }

  /**
   * The state for a Raft snapshot: captured now (stored JSON is never
   * changed in place, so holding the strings is a consistent copy), then
   * serialized in slices that yield to the event loop. Serialized at once,
   * a 100 MB state held a loaded leader's event loop for over a second, long
   * enough for the followers to elect another (seen in bench:scheduler).
   * Objects come in no particular order; restore does not care.
   */
  capture(): Promise<Uint8Array> {
    const parts: string[] = [];
    // Sealing (with a key ring) happens here, not in the slices: it is the capture.
    for (const s of this.objects.values()) parts.push(this.codec.snapshotJson(s));
    const head = Buffer.from(`{"revision":${this.rev},${this.requestsJson()}"objects":[`);
    return (async () => {
      const chunks: Buffer[] = [head];
      for (let i = 0; i < parts.length; i += CAPTURE_SLICE) {
        if (i > 0) {
          chunks.push(COMMA);
          await new Promise((r) => setImmediate(r));
        }
        chunks.push(Buffer.from(parts.slice(i, i + CAPTURE_SLICE).join(',')));
      }
      chunks.push(TAIL);
      return Buffer.concat(chunks);
    })();
  }

  restore(data: Uint8Array): void {
    const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    const snap = (text === '' ? { revision: 0, objects: [] } : JSON.parse(text)) as {
      revision: number;
      /** Absent from snapshots written before keyed writes existed. */
      requests?: RequestLogEntry[];
      features?: string[];
      objects: Parameters<CommandCodec['restoreObject']>[0][];
    };
    // Opened before anything is dropped: a snapshot this master cannot read leaves the store as it was.
    const objects = snap.objects.map((o) => this.codec.restoreObject(o));
    for (const s of this.objects.all()) this.objects.delete(s.key);
    for (const o of objects) {
      this.objects.put({
        key: keyOf(o),
        object: o,
        json: JSON.stringify(o),
        revision: Number(o.metadata.resourceVersion),
      });
    }
    this.requests.restore(snap.requests ?? []);
    this.features.clear();
    for (const f of snap.features ?? []) this.features.add(f);
    this.rev = snap.revision;
    this.watch.reset(snap.revision);
  }

  /** The features and the request log as snapshot fields (each with its comma), or nothing when empty. */
  private requestsJson(): string {
    const features =
      this.features.size === 0 ? '' : `"features":${JSON.stringify([...this.features].sort())},`;
    const requests =
      this.requests.size === 0 ? '' : `"requests":${JSON.stringify(this.requests.entries())},`;
    return features + requests;
  }

  // ---- commands -----------------------------------------------------------

  private exec(cmd: Command, index: number, undo: Undo[], changes: Change[]): CommandResult {
    switch (cmd.op) {
      case 'create':
        return this.create(cmd.object, index, undo, changes);
      case 'update':
        return this.update(cmd, index, undo, changes);
      case 'delete':
        return this.remove(cmd, index, undo, changes);
      case 'bind':
        return this.bind(cmd, index, undo, changes);
      case 'batch': {
        const results = cmd.commands.map((c) => {
          const r = this.exec(c, index, undo, changes);
          if (!r.ok) throw new StoreError(r.code, r.message);
          return r;
        });
        return {
          ok: true,
          alsoDeleted: results.flatMap((r) => (r.ok ? r.alsoDeleted : [])),
          results,
        };
      }
      default:
        // 'once', 'fenced' and 'each' are only valid at the top of an entry.
        throw new StoreError('INVALID', `unexpected command ${(cmd as { op: string }).op}`);
    }
  }

  /** Every owner an object names must exist: a dependent never outlives, or precedes, its owner. */
  private checkOwners(o: ApiObject): void {
    for (const [i, ref] of (o.metadata.ownerReferences ?? []).entries()) {
      if (!this.objects.getByUid(ref.uid))
        throw new StoreError(
          'NOT_FOUND',
          `metadata.ownerReferences[${i}]: owner ${ref.kind} "${ref.name}" (uid ${ref.uid}) does not exist`,
        );
    }
  }

  /**
   * A service address or node port belongs to one Service: the leader
   * allocates free ones, and this check (the same on every replica) refuses
   * a write that would share one, whoever admitted it.
   */
  private checkAllocations(o: ApiObject, key: string): void {
    for (const a of serviceAllocations(o)) {
      const holder = this.objects.allocatedTo(a);
      if (holder === undefined || holder === key) continue;
      const [what, value] = a.startsWith('ip:')
        ? ['spec.clusterIP', `"${a.slice(3)}": provided IP`]
        : ['spec.ports[].nodePort', `${a.slice(9)}: provided port`];
      throw new StoreError(
        'INVALID',
        `${describe(o)} is invalid: ${what}: Invalid value ${value} is already allocated (to Service "${holder.split('/').slice(1).join('/')}")`,
      );
    }
  }

  private write(o: ApiObject, index: number, undo: Undo[]): StoredObject {
    o.metadata.resourceVersion = String(index);
    const s: StoredObject = { key: keyOf(o), object: o, json: JSON.stringify(o), revision: index };
    undo.push({ key: s.key, prev: this.objects.put(s) });
    return s;
  }

  private create(obj: ApiObject, index: number, undo: Undo[], changes: Change[]): CommandResult {
    // Commands come fresh from decoding the log entry: they are ours to fill in.
    const o = obj;
    const key = keyOf(o);
    const what = describe(o);
    if (this.objects.get(key)) throw new StoreError('ALREADY_EXISTS', `${what} already exists`);
    const ns = o.metadata.namespace;
    if (kindInfo(o.kind)?.namespaced && ns !== undefined && !this.namespaceExists(ns))
      throw new StoreError(
        'NOT_FOUND',
        `namespace "${ns}" not found (create it first, or pick another)`,
      );
    this.checkOwners(o);
    this.checkAllocations(o, key);
    const quota = quotaViolation(this.objects, o);
    if (quota) throw new StoreError('QUOTA', `${what} is forbidden: ${quota}`);
    if (o.spec !== undefined) o.metadata.generation = 1;
    const s = this.write(o, index, undo);
    changes.push({ type: 'ADDED', revision: index, object: s.object, json: s.json });
    return { ok: true, object: s.object, alsoDeleted: [] };
  }

  private update(
    cmd: Extract<Command, { op: 'update' }>,
    index: number,
    undo: Undo[],
    changes: Change[],
  ): CommandResult {
    const key = keyOf(cmd.object);
    const cur = this.objects.get(key);
    const what = describe(cmd.object);
    if (!cur || cur.object.metadata.uid !== cmd.uid)
      throw new StoreError(
        'NOT_FOUND',
        `${what} not found${cur ? ' (it was deleted and created again)' : ''}`,
      );
    if (cmd.expectedRevision !== undefined && cur.revision !== cmd.expectedRevision)
      throw new StoreError(
        'CONFLICT',
        `${what} was modified: you sent resourceVersion ${cmd.expectedRevision}, it is now ${cur.revision}; get it again and reapply your change`,
      );
    const old = cur.object;
    let o: ApiObject;
    if (cmd.subresource === 'status') {
      // Stored objects are never mutated: share everything but the metadata
      // (write() sets its resourceVersion) and take the command's own status.
      o = { ...old, metadata: { ...old.metadata }, status: cmd.object.status };
    } else {
      o = cmd.object;
      // Stored objects are never mutated, so the new one may share the old status.
      if (old.status !== undefined) o.status = old.status;
      else delete o.status;
      // The system owns these fields; a client cannot rewrite them.
      o.metadata.uid = old.metadata.uid;
      o.metadata.creationTimestamp = old.metadata.creationTimestamp;
      o.metadata.generation = old.metadata.generation;
      if (
        o.metadata.generation !== undefined &&
        stableStringify(o.spec) !== stableStringify(old.spec)
      )
        o.metadata.generation++;
    }
    this.checkOwners(o);
    this.checkAllocations(o, key);
    const s = this.write(o, index, undo);
    changes.push({ type: 'MODIFIED', revision: index, object: s.object, json: s.json });
    return { ok: true, object: s.object, alsoDeleted: [] };
  }

  private bind(
    cmd: Extract<Command, { op: 'bind' }>,
    index: number,
    undo: Undo[],
    changes: Change[],
  ): CommandResult {
    const cur = this.get('Pod', cmd.namespace, cmd.name);
    const what = `Pod "${cmd.name}" in namespace "${cmd.namespace}"`;
    if (!cur || cur.object.metadata.uid !== cmd.uid)
      throw new StoreError('NOT_FOUND', `${what} not found`);
    const spec = cur.object.spec as { nodeName?: string };
    if (spec.nodeName)
      throw new StoreError('CONFLICT', `${what} is already assigned to node "${spec.nodeName}"`);
    const o: ApiObject = { ...cur.object, spec: { ...spec, nodeName: cmd.node } };
    o.metadata = { ...o.metadata };
    const s = this.write(o, index, undo);
    changes.push({ type: 'MODIFIED', revision: index, object: s.object, json: s.json });
    return { ok: true, object: s.object, alsoDeleted: [] };
  }

  private remove(
    cmd: Extract<Command, { op: 'delete' }>,
    index: number,
    undo: Undo[],
    changes: Change[],
  ): CommandResult {
    const cur = this.get(cmd.kind, cmd.namespace, cmd.name);
    const what = `${cmd.kind} "${cmd.name}"${kindInfo(cmd.kind)?.namespaced ? ` in namespace "${cmd.namespace}"` : ''}`;
    // Checked first: the default namespace exists implicitly even before its object does.
    if (cmd.kind === 'Namespace' && cmd.name === DEFAULT_NAMESPACE)
      throw new StoreError('FORBIDDEN', 'namespace "default" may not be deleted');
    if (!cur) throw new StoreError('NOT_FOUND', `${what} not found`);
    if (cmd.uid && cur.object.metadata.uid !== cmd.uid)
      throw new StoreError(
        'CONFLICT',
        `${what}: precondition failed: uid is ${cur.object.metadata.uid}, not ${cmd.uid}`,
      );
    if (cmd.expectedRevision !== undefined && cur.revision !== cmd.expectedRevision)
      throw new StoreError(
        'CONFLICT',
        `${what}: precondition failed: resourceVersion is ${cur.revision}, not ${cmd.expectedRevision}`,
      );
    const alsoDeleted: string[] = [];
    const gone = new Set<string>();
    const drop = (s: StoredObject, cascade: boolean) => {
      if (gone.has(s.key)) return;
      gone.add(s.key);
      this.objects.delete(s.key);
      undo.push({ key: s.key, prev: s });
      const o = { ...s.object, metadata: { ...s.object.metadata, resourceVersion: String(index) } };
      changes.push({ type: 'DELETED', revision: index, object: o, json: JSON.stringify(o) });
      if (s !== cur)
        alsoDeleted.push(
          `${s.object.kind}/${s.object.metadata.namespace ?? ''}/${s.object.metadata.name}`.replace(
            '//',
            '/',
          ),
        );
      const uid = s.object.metadata.uid;
      if (s.object.kind === 'Namespace')
        for (const k of this.objects.inNamespace(s.object.metadata.name))
          drop(this.objects.get(k)!, true);
      if (!uid) return;
      for (const k of this.objects.dependents(uid)) {
        const d = this.objects.get(k)!;
        if (cascade) drop(d, true);
        else {
          // Orphan: the dependent stays, without its reference to the owner.
          const o2 = structuredClone(d.object);
          o2.metadata.ownerReferences = o2.metadata.ownerReferences?.filter((r) => r.uid !== uid);
          if (o2.metadata.ownerReferences?.length === 0) delete o2.metadata.ownerReferences;
          const w = this.write(o2, index, undo);
          changes.push({ type: 'MODIFIED', revision: index, object: w.object, json: w.json });
        }
      }
    };
    drop(cur, cmd.propagation !== 'Orphan');
    const last = changes.find(
      (c) => c.type === 'DELETED' && c.object.metadata.uid === cur.object.metadata.uid,
    );
    return { ok: true, object: last?.object ?? cur.object, alsoDeleted };
  }
}

export function describe(o: ApiObject): string {
  const ns = kindInfo(o.kind)?.namespaced ? ` in namespace "${o.metadata.namespace}"` : '';
  return `${o.kind} "${o.metadata.name}"${ns}`;
}

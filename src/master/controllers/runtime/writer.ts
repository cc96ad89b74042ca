/**
 * How the leader's loops write: every write is a store command guarded by
 * what the writer read (uid and resourceVersion), fenced by the leader's
 * term, and coalesced with the other loops' writes of the same moment into
 * one Raft entry — so throughput is not one commit per pod.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { formatIssues, validateObject } from '../../../api/schema';
import { ApiObject } from '../../../api/types';
import { AdmissionEnv, admitCreate } from '../../admission';
import { ApiError } from '../../api-error';
import { ClusterStore } from '../../store/cluster-store';
import { Command, CommandResult, ErrorCode } from '../../store/commands';

/** A failed write; `code` says whether to re-read (CONFLICT), give up (NOT_FOUND) or stop (FENCED). */
export class WriteError extends Error {
  constructor(
    readonly code: ErrorCode | 'UNAVAILABLE',
    message: string,
  ) {
    super(message);
    this.name = 'WriteError';
  }
}

/** Proposes one entry holding independent commands; resolves with one result per command. */
export type ProposeEach = (commands: Command[]) => Promise<CommandResult[]>;

export interface WriterOptions {
  /** Most commands in one entry. */
  maxBatch?: number;
  /** Most entries proposed and not yet applied. */
  maxInflight?: number;
}

interface Pending {
  command: Command;
  resolve(r: CommandResult): void;
  reject(e: Error): void;
}

/** Collects the commands issued in one turn of the event loop into few entries. */
export class Coalescer {
  private pending: Pending[] = [];
  private inflight = 0;
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly maxInflight: number;

  constructor(
    private readonly proposeEach: ProposeEach,
    opts: WriterOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxInflight = opts.maxInflight ?? 4;
  }

  submit(command: Command): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ command, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.inflight < this.maxInflight) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.inflight++;
      this.proposeEach(batch.map((p) => p.command))
        .then(
          (results) => batch.forEach((p, i) => p.resolve(results[i])),
          (err: Error) => batch.forEach((p) => p.reject(err)),
        )
        .finally(() => {
          this.inflight--;
          this.flush();
        });
    }
  }
}

function check(r: CommandResult): ApiObject {
  if (!r.ok) throw new WriteError(r.code, r.message);
  return r.object!;
}

export interface Binding {
  namespace: string;
  name: string;
  uid: string;
  node: string;
}

/** The typed writes controllers make. */
export class Writer {
  constructor(
    private readonly store: ClusterStore,
    private readonly env: AdmissionEnv,
    private readonly coalescer: Coalescer,
  ) {}

  private async run(command: Command): Promise<ApiObject> {
    return check(await this.coalescer.submit(command));
  }

  /** Validates, admits (names, uid, LimitRange, quota) and creates `o`. */
  async create<T extends ApiObject>(o: T): Promise<T> {
    const v = validateObject(o);
    if (!v.ok)
      throw new WriteError(
        'INVALID',
        `${o.kind} "${o.metadata.name ?? o.metadata.generateName}" is invalid:\n${formatIssues(v.errors)}`,
      );
    let admitted: ApiObject;
    try {
      admitted = admitCreate(this.store, v.object, this.env);
    } catch (err) {
      if (err instanceof ApiError)
        throw new WriteError(
          err.code === grpcStatus.ALREADY_EXISTS
            ? 'ALREADY_EXISTS'
            : err.code === grpcStatus.NOT_FOUND
              ? 'NOT_FOUND'
              : 'FORBIDDEN',
          err.message,
        );
      throw err;
    }
    return (await this.run({ op: 'create', object: admitted })) as T;
  }

  /** Replaces everything but the status, if `o` is still at the resourceVersion it carries. */
  async update<T extends ApiObject>(o: T): Promise<T> {
    return (await this.run(this.updateCommand(o, undefined))) as T;
  }

  /** Replaces the status, if `o` is still at the resourceVersion it carries. */
  async updateStatus<T extends ApiObject>(o: T): Promise<T> {
    return (await this.run(this.updateCommand(o, 'status'))) as T;
  }

  private updateCommand(o: ApiObject, subresource: 'status' | undefined): Command {
    const rv = Number(o.metadata.resourceVersion);
    if (!o.metadata.uid || !Number.isFinite(rv))
      throw new WriteError('INVALID', `${o.kind} "${o.metadata.name}": no uid or resourceVersion`);
    return { op: 'update', object: o, uid: o.metadata.uid, expectedRevision: rv, subresource };
  }

  /** Deletes `o` if it is still the object with that uid (and, when `exact`, that resourceVersion). */
  async delete(
    o: ApiObject,
    opts: { exact?: boolean; propagation?: 'Background' | 'Orphan' } = {},
  ): Promise<void> {
    await this.run({
      op: 'delete',
      kind: o.kind,
      namespace: o.metadata.namespace,
      name: o.metadata.name,
      uid: o.metadata.uid,
      expectedRevision: opts.exact ? Number(o.metadata.resourceVersion) : undefined,
      propagation: opts.propagation ?? 'Background',
    });
  }

  /** Binds a pod to a node; fails with CONFLICT when it is already bound. */
  async bind(b: Binding): Promise<ApiObject> {
    return this.run({ op: 'bind', ...b });
  }

  /** Any command (for writes the typed methods do not cover). */
  async command(c: Command): Promise<CommandResult> {
    return this.coalescer.submit(c);
  }
}

/**
 * The writes already applied, by the key their client gave them, so that a
 * write retried after its outcome was lost (its leader died after proposing
 * it, or the connection dropped before the answer) takes effect once. This
 * is the client-session table of the Raft thesis (§6.3), keyed the way HTTP
 * APIs key idempotent retries: the client sends one random key per logical
 * write and the same key with every retry of it.
 *
 * The table is part of the replicated state: it changes only in apply, is
 * pruned by what the log says (a count, and the leader's clock as written
 * into each entry, never this master's), and travels in snapshots, so every
 * master answers a retry alike. The results themselves (the objects) are
 * kept for the latest writes only and are not replicated: they make a
 * retry's answer the original's, and when gone the API answers with the
 * object as it is now.
 */
import { IDEMPOTENCY_KEY } from '../../api/idempotency';
import { CommandResult } from './commands';

/** How long a key is remembered, by the proposing leaders' clocks: far longer than any client retries. */
export const REQUEST_TTL_MS = 10 * 60_000;
/** At most this many keys are remembered (the oldest go first). */
export const REQUEST_LOG_CAP = 100_000;
/**
 * The latest this many keys are never forgotten by age, only by count: a
 * master whose clock runs far ahead (keyed entries carry the proposing
 * master's time) cannot make the log forget the writes being retried now.
 */
export const REQUEST_LOG_FLOOR = 20_000;
/** The results of this many latest keyed writes are kept to answer their retries with. */
const RESULT_CAP = 1024;

/** One key's record: the index of the entry that applied it, and when its leader proposed it. */
export interface AppliedRequest {
  index: number;
  at: number;
  /** The request's digest (absent for entries written without one). */
  digest?: string;
  /** Whether the write created its object (a retried apply says so too). */
  created?: boolean;
  /** The original result, while it is among the latest (this master only). */
  result?: Extract<CommandResult, { ok: true }>;
}

/** [key, index, at] or [key, index, at, digest, created 0|1] as a snapshot holds it. */
export type RequestLogEntry = [string, number, number] | [string, number, number, string, 0 | 1];

type Applied = Omit<AppliedRequest, 'result'>;

/** Why a key already used by another request is refused (the API and the store say it alike). */
export function reusedKey(index: number): string {
  return `metadata ${IDEMPOTENCY_KEY}: already used by another write (the one applied at revision ${index}); send a new key with each write, and the same key only with its retries`;
}

/** Whether a key applied before comes now with another request (both digests known and different). */
export function reused(seen: AppliedRequest, digest: string | undefined): boolean {
  return digest !== undefined && seen.digest !== undefined && seen.digest !== digest;
}

export class RequestLog {
  private readonly applied = new Map<string, Applied>();
  private readonly results = new Map<string, Extract<CommandResult, { ok: true }>>();

  constructor(
    private readonly ttlMs = REQUEST_TTL_MS,
    private readonly cap = REQUEST_LOG_CAP,
    private readonly floor = REQUEST_LOG_FLOOR,
  ) {}

  get size(): number {
    return this.applied.size;
  }

  lookup(key: string): AppliedRequest | undefined {
    const a = this.applied.get(key);
    return a && { ...a, result: this.results.get(key) };
  }

  /**
   * Records a write applied at `index` (in apply, after it succeeded). Its
   * proposal time is "now" for pruning: not the largest time ever seen, so a
   * leader whose clock ran ahead makes the log forget early once, not for as
   * long as its clock was ahead.
   */
  record(key: string, applied: Applied, result: Extract<CommandResult, { ok: true }>) {
    this.applied.set(key, applied);
    this.results.set(key, result);
    if (this.results.size > RESULT_CAP) this.results.delete(this.results.keys().next().value!);
    this.prune(applied.at);
  }

  entries(): RequestLogEntry[] {
    return [...this.applied].map(([k, a]) =>
      a.digest === undefined ? [k, a.index, a.at] : [k, a.index, a.at, a.digest, a.created ? 1 : 0],
    );
  }

  restore(entries: RequestLogEntry[]): void {
    this.applied.clear();
    this.results.clear();
    for (const [k, index, at, digest, created] of entries)
      this.applied.set(
        k,
        digest === undefined ? { index, at } : { index, at, digest, created: created === 1 },
      );
  }

  private prune(now: number): void {
    // Keys are held in apply order; proposal times are nearly so (leaders' clocks differ a
    // little), and a key kept a little past its time does no harm.
    for (const [k, a] of this.applied) {
      if (
        this.applied.size <= this.cap &&
        (this.applied.size <= this.floor || a.at >= now - this.ttlMs)
      )
        break;
      this.applied.delete(k);
      this.results.delete(k);
    }
  }
}

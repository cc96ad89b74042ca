/**
 * A linearizability checker: the Wing–Gong search with Lowe's memoisation
 * ("Testing for linearizability", 2017), partitioned per key the way
 * Porcupine does it. A history is linearizable when some total order of its
 * operations (1) respects real time — an operation that returned before
 * another was called comes first — and (2) is a legal run of the sequential
 * model.
 *
 * Operations whose outcome is unknown (the client timed out, or the server
 * crashed before answering) carry `return: Infinity`: they may take effect at
 * any moment after their call, or never — "never" is the same as taking
 * effect after everything else, which the search allows because nothing
 * returns after Infinity.
 */

export interface Operation<I, O> {
  clientId: number;
  input: I;
  output: O;
  /** When the client called (any monotonic unit). */
  call: number;
  /** When the client got the answer; Infinity when it never did. */
  return: number;
}

export interface Model<S, I, O> {
  init(): S;
  /** Applies one operation to a state: whether `output` is legal, and the next state. */
  step(state: S, input: I, output: O): { ok: boolean; state: S };
  /** A string that is equal for equal states (used for the memo cache). */
  key(state: S): string;
  /** Splits a history into independent sub-histories (e.g. per key); default: one. */
  partition?(ops: Operation<I, O>[]): Operation<I, O>[][];
  describe?(op: Operation<I, O>): string;
}

export type Verdict = 'ok' | 'illegal' | 'unknown';

export interface CheckResult<I, O> {
  verdict: Verdict;
  /** For 'illegal': the partition that failed, and the longest linearizable prefix found. */
  partition?: Operation<I, O>[];
  longestPrefix?: Operation<I, O>[];
  /** For 'illegal': an operation that could not be placed after the longest prefix. */
  stuckAt?: Operation<I, O>;
  /** Human-readable explanation. */
  explain: string;
}

interface Entry<I, O> {
  id: number;
  isCall: boolean;
  op: Operation<I, O>;
  time: number;
  /** For a call entry: its return entry. */
  match?: Entry<I, O>;
  prev?: Entry<I, O>;
  next?: Entry<I, O>;
}

/** A fixed-size bit set with a cheap string key for the memo cache. */
class BitSet {
  constructor(private readonly words: Uint32Array) {}
  static of(size: number): BitSet {
    return new BitSet(new Uint32Array(Math.ceil(size / 32) || 1));
  }
  set(i: number): void {
    this.words[i >>> 5] |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5] &= ~(1 << (i & 31));
  }
  withBit(i: number): BitSet {
    const b = new BitSet(this.words.slice());
    b.set(i);
    return b;
  }
  key(): string {
    return Array.from(this.words, (w) => w.toString(36)).join(',');
  }
}

/** Builds the doubly linked list of call/return events with a sentinel head. */
function makeList<I, O>(ops: Operation<I, O>[]): Entry<I, O> {
  const events: Entry<I, O>[] = [];
  ops.forEach((op, id) => {
    if (!(op.call <= op.return))
      throw new Error(`operation ${id} returns (${op.return}) before its call (${op.call})`);
    const call: Entry<I, O> = { id, isCall: true, op, time: op.call };
    const ret: Entry<I, O> = { id, isCall: false, op, time: op.return };
    call.match = ret;
    events.push(call, ret);
  });
  // At equal times calls come first: the operations are then taken as
  // concurrent, which never turns a legal history into an illegal one.
  events.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall));
  const head: Entry<I, O> = { id: -1, isCall: false, op: undefined as never, time: -Infinity };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

/** Removes a call and its return from the list (the operation is linearized). */
function lift<I, O>(call: Entry<I, O>): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Puts a lifted call and its return back (in the reverse order of lift). */
function unlift<I, O>(call: Entry<I, O>): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

/** Checks one partition; `deadline` bounds the search (the verdict is then 'unknown'). */
function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: Operation<I, O>[],
  deadline: number,
): { verdict: Verdict; longest: Operation<I, O>[]; stuckAt?: Operation<I, O> } {
  const head = makeList(ops);
  const linearized = BitSet.of(ops.length);
  const cache = new Set<string>();
  const stack: { entry: Entry<I, O>; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let longest: Operation<I, O>[] = [];
  let stuckAt: Operation<I, O> | undefined;
  let steps = 0;
  while (head.next) {
    if ((++steps & 0x3ff) === 0 && Date.now() > deadline)
      return { verdict: 'unknown', longest, stuckAt };
    const e = entry!;
    if (e.isCall) {
      const r = model.step(state, e.op.input, e.op.output);
      if (r.ok) {
        const bits = linearized.withBit(e.id);
        const memo = `${bits.key()}|${model.key(r.state)}`;
        if (!cache.has(memo)) {
          // A new (set of linearized operations, state) pair: go deeper.
          cache.add(memo);
          stack.push({ entry: e, state });
          state = r.state;
          linearized.set(e.id);
          lift(e);
          entry = head.next;
          continue;
        }
      }
      entry = e.next;
    } else {
      // The earliest pending return: its operation must already be linearized
      // for this prefix to work, and it is not. Backtrack.
      if (stack.length >= longest.length) {
        longest = stack.map((s) => s.entry.op);
        stuckAt = e.op;
      }
      const top = stack.pop();
      if (!top) return { verdict: 'illegal', longest, stuckAt };
      state = top.state;
      linearized.clear(top.entry.id);
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { verdict: 'ok', longest: [] };
}

export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: Operation<I, O>[],
  opts: { timeoutMs?: number } = {},
): CheckResult<I, O> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const parts = model.partition ? model.partition(history) : [history];
  let timedOut = false;
  for (const part of parts) {
    const r = checkPartition(model, part, deadline);
    if (r.verdict === 'unknown') {
      timedOut = true;
      continue;
    }
    if (r.verdict === 'illegal') {
      const show = (op: Operation<I, O>) =>
        model.describe ? model.describe(op) : JSON.stringify(op);
      const prefix = r.longest.map(show).join('\n  ');
      return {
        verdict: 'illegal',
        partition: part,
        longestPrefix: r.longest,
        stuckAt: r.stuckAt,
        explain:
          `not linearizable: ${part.length} operations, the longest legal order covers ${r.longest.length}:\n  ${prefix}\n` +
          `and then cannot place: ${r.stuckAt ? show(r.stuckAt) : '?'}`,
      };
    }
  }
  return timedOut
    ? { verdict: 'unknown', explain: `search gave up after ${opts.timeoutMs ?? 60_000} ms` }
    : { verdict: 'ok', explain: 'linearizable' };
}

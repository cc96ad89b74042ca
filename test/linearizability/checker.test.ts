import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkOperations } from '../support/linearizability/checker';
import { KvOp, kvModel } from '../support/linearizability/kv-model';

/** Shorthand: put(client, key, value, call, return) and get(client, key, value, call, return). */
let nextClient = 0;
const put = (key: string, value: string, call: number, ret: number): KvOp => ({
  clientId: ++nextClient,
  input: { op: 'put', key, value },
  output: ret === Infinity ? { unknown: true } : {},
  call,
  return: ret,
});
const get = (key: string, value: string | undefined, call: number, ret: number): KvOp => ({
  clientId: ++nextClient,
  input: { op: 'get', key },
  output: { value },
  call,
  return: ret,
});

const verdict = (h: KvOp[]) => checkOperations(kvModel, h).verdict;

describe('linearizability checker: known histories', () => {
  const good: [string, KvOp[]][] = [
    ['empty history', []],
    ['a read of a key never written sees nothing', [get('x', undefined, 0, 1)]],
    ['sequential write then read', [put('x', 'a', 0, 1), get('x', 'a', 2, 3)]],
    [
      'a read concurrent with a write may see either value',
      [put('x', 'a', 0, 1), put('x', 'b', 2, 6), get('x', 'a', 3, 4), get('x', 'b', 5, 7)],
    ],
    [
      'concurrent writes may take effect in either order',
      [put('x', 'a', 0, 10), put('x', 'b', 1, 9), get('x', 'a', 11, 12), get('x', 'a', 13, 14)],
    ],
    [
      'a write of unknown outcome may have taken effect, late',
      [put('x', 'a', 0, 1), put('x', 'b', 2, Infinity), get('x', 'a', 3, 4), get('x', 'b', 50, 51)],
    ],
    [
      'a write of unknown outcome may never take effect',
      [put('x', 'a', 0, Infinity), get('x', undefined, 5, 6)],
    ],
    [
      'keys are independent',
      [put('x', 'a', 0, 1), put('y', 'b', 0, 1), get('y', 'b', 2, 3), get('x', 'a', 2, 3)],
    ],
    [
      'operations touching at one instant count as concurrent',
      [put('x', 'a', 0, 5), get('x', undefined, 5, 6)],
    ],
  ];
  for (const [name, h] of good) it(`accepts: ${name}`, () => assert.equal(verdict(h), 'ok'));

  const bad: [string, KvOp[]][] = [
    ['a read of a value never written', [put('x', 'a', 0, 1), get('x', 'zzz', 2, 3)]],
    [
      'a stale read after a completed write',
      [put('x', 'a', 0, 1), put('x', 'b', 2, 3), get('x', 'a', 4, 5)],
    ],
    ['a read that misses an acknowledged write', [put('x', 'a', 0, 1), get('x', undefined, 2, 3)]],
    [
      'two reads that see writes in opposite orders',
      [
        put('x', 'a', 0, 10),
        put('x', 'b', 0, 10),
        get('x', 'a', 11, 12),
        get('x', 'b', 13, 14),
        get('x', 'a', 15, 16),
      ],
    ],
    [
      'a value that comes back after being overwritten',
      [
        put('x', 'a', 0, 1),
        get('x', 'a', 2, 3),
        put('x', 'b', 4, 5),
        get('x', 'b', 6, 7),
        get('x', 'a', 8, 9),
      ],
    ],
    ['a read of a write that had not been called yet', [get('x', 'a', 0, 1), put('x', 'a', 2, 3)]],
    [
      'a bad key among good ones',
      [put('y', 'b', 0, 1), get('y', 'b', 2, 3), put('x', 'a', 0, 1), get('x', undefined, 2, 3)],
    ],
  ];
  for (const [name, h] of bad) it(`rejects: ${name}`, () => assert.equal(verdict(h), 'illegal'));

  it('explains a failure with the longest legal order and the operation that cannot follow it', () => {
    const r = checkOperations(kvModel, [
      put('x', 'a', 0, 1),
      put('x', 'b', 2, 3),
      get('x', 'a', 4, 5),
    ]);
    assert.equal(r.verdict, 'illegal');
    assert.equal(r.longestPrefix!.length, 2);
    assert.match(r.explain, /cannot place: \[4, 5\] client \d+: get\(x\) -> a/);
  });

  it('rejects a history with an operation that returns before its call', () => {
    assert.throws(
      () => verdict([get('x', undefined, 5, 1)]),
      /returns \(1\) before its call \(5\)/,
    );
  });

  it('gives up with "unknown" rather than hang when the search exceeds its budget', () => {
    // Many overlapping writes of distinct values and reads that see none of
    // them: the search must try every subset before it can say "illegal".
    const h: KvOp[] = [];
    for (let i = 0; i < 40; i++) h.push(put('x', `v${i}`, 0, 100));
    h.push(get('x', 'never', 101, 102));
    const r = checkOperations(kvModel, h, { timeoutMs: 1 });
    assert.ok(r.verdict === 'unknown' || r.verdict === 'illegal');
  });
});

/** Brute force: is there an order of the operations respecting real time and the register? */
function bruteForce(h: KvOp[]): boolean {
  const n = h.length;
  const used = new Array<boolean>(n).fill(false);
  const search = (state: string | undefined, placed: number): boolean => {
    if (placed === n) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      // i may go next only if no unplaced operation returned strictly before i was called.
      if (h.some((o, j) => !used[j] && j !== i && o.return < h[i].call)) continue;
      const op = h[i];
      let next = state;
      if (op.input.op === 'put') next = op.input.value;
      else if (op.output.value !== state) continue;
      used[i] = true;
      if (search(next, placed + 1)) return true;
      used[i] = false;
    }
    // Operations of unknown outcome may never take effect.
    return h.every((o, j) => used[j] || o.return === Infinity);
  };
  return search(undefined, 0);
}

const arbHistory = fc.array(
  fc.record({
    isPut: fc.boolean(),
    value: fc.constantFrom('a', 'b', 'c', undefined),
    call: fc.integer({ min: 0, max: 20 }),
    len: fc.integer({ min: 0, max: 8 }),
    unknown: fc.integer({ min: 0, max: 5 }),
  }),
  { maxLength: 7 },
);

type RawOp = {
  isPut: boolean;
  value: string | undefined;
  call: number;
  len: number;
  unknown: number;
};

function toHistory(raw: RawOp[]): KvOp[] {
  return raw.map((r, i) =>
    r.isPut
      ? {
          clientId: i,
          input: { op: 'put', key: 'x', value: r.value ?? 'a' },
          output: r.unknown === 0 ? { unknown: true } : {},
          call: r.call,
          return: r.unknown === 0 ? Infinity : r.call + r.len,
        }
      : {
          clientId: i,
          input: { op: 'get', key: 'x' },
          output: { value: r.value },
          call: r.call,
          return: r.call + r.len,
        },
  );
}

describe('linearizability checker: properties', () => {
  it('agrees with a brute-force search on small random histories', () => {
    fc.assert(
      fc.property(arbHistory, (raw) => {
        const h = toHistory(raw);
        assert.equal(verdict(h) === 'ok', bruteForce(h), JSON.stringify(h));
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts every history produced by a real atomic register, of any size', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            isPut: fc.boolean(),
            key: fc.constantFrom('x', 'y'),
            at: fc.integer({ min: 0, max: 1000 }),
            before: fc.integer({ min: 0, max: 30 }),
            after: fc.integer({ min: 0, max: 30 }),
            lost: fc.integer({ min: 0, max: 9 }),
          }),
          { maxLength: 200 },
        ),
        (raw) => {
          // Each operation takes effect atomically at its own instant `at`
          // (ties broken by position) somewhere inside [call, return].
          const order = raw.map((r, i) => ({ ...r, i })).sort((a, b) => a.at - b.at || a.i - b.i);
          const kv = new Map<string, string>();
          const h: KvOp[] = [];
          for (const r of order) {
            const call = r.at - r.before;
            if (r.isPut) {
              const value = `v${r.i}`;
              // Some writes are lost (never applied), some applied without an answer.
              if (r.lost !== 0) kv.set(r.key, value);
              const unknown = r.lost <= 1;
              h.push({
                clientId: r.i,
                input: { op: 'put', key: r.key, value },
                output: unknown ? { unknown: true } : {},
                call,
                return: unknown ? Infinity : r.at + r.after,
              });
            } else {
              h.push({
                clientId: r.i,
                input: { op: 'get', key: r.key },
                output: { value: kv.get(r.key) },
                call,
                return: r.at + r.after,
              });
            }
          }
          const res = checkOperations(kvModel, h);
          assert.equal(res.verdict, 'ok', res.explain);
        },
      ),
      { numRuns: 300 },
    );
  });
});

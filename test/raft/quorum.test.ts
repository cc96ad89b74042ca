import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Inflights } from '../../src/raft/inflights';
import { JointConfig, MajorityConfig } from '../../src/raft/quorum';

/** The definition, by brute force: the largest index that a majority has acknowledged. */
function naiveCommitted(ids: number[], acked: Map<number, number>): number {
  if (ids.length === 0) return Number.MAX_SAFE_INTEGER;
  const candidates = [0, ...ids.map((id) => acked.get(id) ?? 0)];
  let best = 0;
  for (const c of candidates) {
    const holders = ids.filter((id) => (acked.get(id) ?? 0) >= c).length;
    if (holders > ids.length / 2) best = Math.max(best, c);
  }
  return best;
}

const voterSet = fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { maxLength: 7 });
const acks = fc.dictionary(
  fc.integer({ min: 1, max: 9 }).map(String),
  fc.integer({ min: 0, max: 50 }),
);

describe('raft: quorum arithmetic', () => {
  it('commits the largest index a majority holds (property)', () => {
    fc.assert(
      fc.property(voterSet, acks, (ids, a) => {
        const acked = new Map(Object.entries(a).map(([k, v]) => [Number(k), v]));
        assert.equal(
          new MajorityConfig(ids).committedIndex((id) => acked.get(id)),
          naiveCommitted(ids, acked),
        );
      }),
    );
  });

  it('in a joint config needs both majorities (property)', () => {
    fc.assert(
      fc.property(voterSet, voterSet, acks, (inc, out, a) => {
        const acked = new Map(Object.entries(a).map(([k, v]) => [Number(k), v]));
        const joint = new JointConfig(new MajorityConfig(inc), new MajorityConfig(out));
        const want = Math.min(naiveCommitted(inc, acked), naiveCommitted(out, acked));
        assert.equal(
          joint.committedIndex((id) => acked.get(id)),
          want,
        );
      }),
    );
  });

  it('counts votes: won, lost or still pending', () => {
    const c = new MajorityConfig([1, 2, 3]);
    assert.equal(c.voteResult(new Map([[1, true]])), 'pending');
    assert.equal(
      c.voteResult(
        new Map([
          [1, true],
          [2, true],
        ]),
      ),
      'won',
    );
    assert.equal(
      c.voteResult(
        new Map([
          [1, false],
          [2, false],
        ]),
      ),
      'lost',
    );
    assert.equal(
      c.voteResult(
        new Map([
          [1, true],
          [2, false],
        ]),
      ),
      'pending',
    );
    const j = new JointConfig(new MajorityConfig([1, 2, 3]), new MajorityConfig([3, 4, 5]));
    // A majority of the incoming set alone does not win a joint election.
    assert.equal(
      j.voteResult(
        new Map([
          [1, true],
          [2, true],
        ]),
      ),
      'pending',
    );
    assert.equal(
      j.voteResult(
        new Map([
          [1, true],
          [2, true],
          [4, false],
          [5, false],
        ]),
      ),
      'lost',
    );
    assert.equal(
      j.voteResult(
        new Map([
          [1, true],
          [3, true],
          [4, true],
        ]),
      ),
      'won',
    );
  });
});

describe('raft: inflight window', () => {
  it('matches a simple model under random adds and acks (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.oneof(fc.constant<'add'>('add'), fc.integer({ min: 0, max: 40 })), {
          maxLength: 60,
        }),
        (size, ops) => {
          const w = new Inflights(size);
          const model: number[] = [];
          let next = 1;
          for (const op of ops) {
            if (op === 'add') {
              if (model.length === size) {
                assert.equal(w.full(), true);
                continue;
              }
              w.add(next, 10);
              model.push(next++);
            } else {
              w.freeLE(op);
              while (model.length > 0 && model[0] <= op) model.shift();
            }
            assert.equal(w.length(), model.length);
            assert.equal(w.full(), model.length === size);
          }
        },
      ),
    );
  });

  it('is full by bytes as well as by count', () => {
    const w = new Inflights(10, 100);
    w.add(1, 60);
    assert.equal(w.full(), false);
    w.add(2, 50);
    assert.equal(w.full(), true);
    w.freeLE(1);
    assert.equal(w.full(), false);
  });
});

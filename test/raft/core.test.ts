import assert from 'node:assert/strict';
import { newMessage, MessageType, RaftError, StateType } from '../../src/raft/types';
import { SimCluster } from './sim/cluster';

const quiet = {
  dropRate: 0,
  dupRate: 0,
  maxDelay: 1,
  crashRate: 0,
  partitionRate: 0,
  midReadyCrash: 0,
  membership: false,
  snapshotEvery: 0,
};

function stableCluster(): SimCluster {
  const c = new SimCluster(1, quiet, [1, 2, 3], [1, 2, 3]);
  for (let i = 0; i < 600 && !c.leader(); i++) c.step({ faults: false, proposeRate: 0 });
  for (let i = 0; i < 50; i++) c.step({ faults: false, proposeRate: 0 });
  assert.ok(c.leader(), 'no leader elected');
  return c;
}

describe('raft core: hostile and stale input', () => {
  it('drops answers from a member it does not know, changing nothing', () => {
    const c = stableCluster();
    const lead = c.leader()!;
    const before = lead.raw!.raft.hardState();
    assert.throws(
      () =>
        lead.raw!.step(
          newMessage({
            type: MessageType.MSG_APP_RESP,
            from: 9,
            to: lead.id,
            term: before.term,
            index: 1000,
          }),
        ),
      (e: Error) => e instanceof RaftError && e.code === 'STEP_PEER_NOT_FOUND',
    );
    assert.deepEqual(lead.raw!.raft.hardState(), before);
    assert.equal(lead.raw!.raft.state, StateType.Leader);
  });

  it('ignores messages of an older term, and messages without a term', () => {
    const c = stableCluster();
    const lead = c.leader()!;
    const follower = [...c.nodes.values()].find((n) => n !== lead)!;
    const hs = follower.raw!.raft.hardState();
    const last = follower.raw!.raft.raftLog.lastIndex();
    // An append from a deposed leader of an older term must not touch the log.
    follower.raw!.step(
      newMessage({
        type: MessageType.MSG_APP,
        from: 3,
        to: follower.id,
        term: hs.term - 1,
        index: last,
        logTerm: 1,
        entries: [{ term: hs.term - 1, index: last + 1, type: 0, data: Buffer.from('stale') }],
        commit: last + 1,
      }),
    );
    // A vote request without a term (malformed) is ignored.
    follower.raw!.step(
      newMessage({
        type: MessageType.MSG_VOTE,
        from: 3,
        to: follower.id,
        term: 0,
        index: 1e6,
        logTerm: 1e6,
      }),
    );
    assert.equal(follower.raw!.raft.raftLog.lastIndex(), last);
    assert.deepEqual(follower.raw!.raft.hardState(), hs);
    assert.equal(follower.raw!.raft.lead, lead.id);
  });

  it('does not let a vote request with a higher term depose a leader heard from recently (leader lease)', () => {
    const c = stableCluster();
    const lead = c.leader()!;
    const follower = [...c.nodes.values()].find((n) => n !== lead)!;
    const term = follower.raw!.raft.term;
    follower.raw!.step(
      newMessage({
        type: MessageType.MSG_VOTE,
        from: 9,
        to: follower.id,
        term: term + 5,
        index: 1e6,
        logTerm: term + 5,
      }),
    );
    assert.equal(follower.raw!.raft.term, term);
    assert.equal(follower.raw!.raft.lead, lead.id);
  });
});

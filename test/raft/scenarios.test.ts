import assert from 'node:assert/strict';
import { MessageType, RaftError, snapIndex, StateType } from '../../src/raft/types';
import { msgs, Scenario, ScenarioOptions } from './scenarios/harness';

/**
 * Raft scenarios told as stories, after etcd-io/raft's testdata/*.txt.
 * Every node's election timeout is fixed: node i times out after 10 + (i-1)
 * ticks without hearing from a leader (node 1: 10, node 2: 11, node 3: 12).
 * Pre-vote and check-quorum are on unless a story says otherwise.
 */

/** Nodes 1, 2, 3; node 1 has won term 2 and committed its empty entry (index 2). */
function electedCluster(opts: ScenarioOptions = {}): Scenario {
  const h = new Scenario([1, 2, 3], opts);
  h.campaign(1);
  h.stabilize();
  assert.equal(h.status(1), 'Leader term=2 lead=1 commit=2');
  assert.equal(h.status(2), 'Follower term=2 lead=1 commit=2');
  assert.equal(h.status(3), 'Follower term=2 lead=1 commit=2');
  // Stories count their own messages, not the election's.
  h.forgetDelivered();
  return h;
}

function refused(pattern: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof RaftError && e.code === 'PROPOSAL_DROPPED' && pattern.test(e.message);
}

describe('raft scenarios: pre-vote', () => {
  it('an isolated follower that rejoins neither raises the term nor disrupts the leader', () => {
    const h = electedCluster();
    h.isolate(3);
    h.propose(1, 'a');
    h.propose(1, 'b');
    h.stabilize();
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=4');

    // Alone, 3 times out again and again. Each time it only asks whether it
    // *could* win term 3; nobody answers, so it never moves to term 3.
    h.tick(3, 12 * 3);
    h.stabilize();
    assert.equal(h.status(3), 'PreCandidate term=2 lead=0 commit=2');

    // Back in touch, its next pre-vote reaches 1 and 2. Both heard from the
    // leader within an election timeout, so they ignore it (and its log is
    // behind anyway).
    h.heal();
    h.tick(3, 12);
    h.stabilize();
    assert.equal(h.delivered(msgs.ofType(MessageType.MSG_PRE_VOTE)).length, 2);
    assert.equal(h.status(3), 'PreCandidate term=2 lead=0 commit=2');
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=4');

    // The leader's next heartbeat turns 3 back into a follower of term 2,
    // and the appends that follow catch it up.
    h.elapse(1);
    assert.equal(h.status(3), 'Follower term=2 lead=1 commit=4');
    assert.deepEqual(h.applied(3), ['a', 'b']);
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=4');
  });

  it('a pre-candidate that cannot get a quorum stays at its term', () => {
    // Without check-quorum nobody ignores the pre-vote for a lease: the
    // voters answer, and the answer is no, because 3's log is behind.
    const h = electedCluster({ checkQuorum: false });
    h.isolate(3);
    h.propose(1, 'a');
    h.stabilize();
    h.tick(3, 12);
    h.stabilize();
    // Unanswered: still pre-campaigning, still in term 2, vote kept.
    assert.equal(h.status(3), 'PreCandidate term=2 lead=0 commit=2');
    assert.equal(h.vote(3), 1);

    h.heal();
    h.tick(3, 12);
    h.stabilize();
    // Two rejections out of three voters: the pre-election is lost and 3
    // goes back to being a follower of term 2, knowing no leader yet.
    const answers = h.delivered(msgs.ofType(MessageType.MSG_PRE_VOTE_RESP));
    assert.deepEqual(
      answers.map((m) => `${m.from}->${m.to} reject=${m.reject} term=${m.term}`),
      ['1->3 reject=true term=2', '2->3 reject=true term=2'],
    );
    assert.equal(h.status(3), 'Follower term=2 lead=0 commit=2');
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=3');
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=3');
  });

  it('without pre-vote, the same rejoin deposes the leader and inflates the term', () => {
    // The contrast: no pre-vote and no check-quorum. Every lonely timeout
    // raises 3's term for real.
    const h = electedCluster({ preVote: false, checkQuorum: false });
    h.isolate(3);
    h.propose(1, 'a');
    h.stabilize();
    h.tick(3, 12 * 3);
    h.stabilize();
    assert.equal(h.status(3), 'Candidate term=5 lead=0 commit=2');

    // Its next vote request (term 6) forces 1 and 2 to term 6; they refuse
    // the vote (3's log is behind) but the leader is gone all the same.
    h.heal();
    h.tick(3, 12);
    h.stabilize();
    assert.equal(h.status(1), 'Follower term=6 lead=0 commit=3');
    assert.equal(h.status(2), 'Follower term=6 lead=0 commit=3');
    assert.equal(h.status(3), 'Follower term=6 lead=0 commit=2');

    // Node 1 times out first and wins term 7: one lonely node moved the
    // whole group from term 2 to term 7.
    h.elapse(10);
    assert.equal(h.status(1), 'Leader term=7 lead=1 commit=4');
    assert.equal(h.status(3), 'Follower term=7 lead=1 commit=4');
  });
});

describe('raft scenarios: check-quorum', () => {
  it('a leader cut off from a quorum steps down', () => {
    const h = electedCluster();
    h.isolate(1);

    // 2 and 3 stop hearing heartbeats; 2 times out first (tick 11), and 3,
    // whose lease on leader 1 expired at tick 10, votes for it.
    h.elapse(11);
    assert.equal(h.status(2), 'Leader term=3 lead=2 commit=3');
    assert.equal(h.status(3), 'Follower term=3 lead=2 commit=3');

    // Meanwhile 1 still believes it leads term 2. It takes writes it can
    // never commit. Its check at tick 10 still counted the answers from
    // before the cut; the next one, an election timeout later, finds no
    // quorum.
    h.propose(1, 'doomed');
    h.elapse(8);
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=2');
    h.elapse(1);
    assert.equal(h.status(1), 'Follower term=2 lead=0 commit=2');

    // Healed, 1 hears the term-3 leader and its uncommitted entry is
    // replaced by the new leader's log.
    h.heal();
    h.elapse(1);
    assert.equal(h.status(1), 'Follower term=3 lead=2 commit=3');
    assert.deepEqual(h.log(1), ['2/2', '3/3']);
    assert.deepEqual(h.applied(1), []);
  });

  it('followers that hear from a live leader ignore vote requests (leader lease)', () => {
    // Pre-vote off, so 3 sends real vote requests with a higher term.
    const h = electedCluster({ preVote: false });
    // 3 stops hearing the leader but can still talk to everyone.
    h.cut(1, 3);
    h.elapse(12);
    assert.equal(h.status(3), 'Candidate term=3 lead=0 commit=2');
    assert.equal(h.delivered(msgs.ofType(MessageType.MSG_VOTE)).length, 2);

    // Neither 2 (heard a heartbeat this very tick) nor the leader itself
    // takes the bait: no term change, no vote, no answer at all.
    assert.equal(h.delivered(msgs.ofType(MessageType.MSG_VOTE_RESP)).length, 0);
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=2');
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=2');
    assert.equal(h.vote(2), 1);

    // The cluster keeps committing without 3.
    h.propose(1, 'a');
    h.stabilize();
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=3');
  });
});

describe('raft scenarios: partial partitions', () => {
  it('a node that reaches only the leader causes no election', () => {
    const h = electedCluster();
    h.cut(2, 3);
    h.cut(3, 2);
    for (let i = 0; i < 5; i++) {
      h.propose(1, `v${i}`);
      h.elapse(10);
    }
    // Heartbeats from the leader keep 3 content: nobody ever campaigned.
    assert.equal(h.delivered(msgs.ofType(MessageType.MSG_PRE_VOTE)).length, 0);
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=7');
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=7');
    assert.equal(h.status(3), 'Follower term=2 lead=1 commit=7');
    assert.deepEqual(h.applied(3), ['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('with pre-vote, a node cut off from the leader only rejoins at the same term', () => {
    const h = electedCluster();
    h.cut(1, 3);
    h.cut(3, 1);
    h.propose(1, 'a');
    // 3 pre-campaigns at ticks 12, 24 and 36; 2 is in its lease every time.
    h.elapse(40);
    assert.equal(h.delivered(msgs.ofType(MessageType.MSG_PRE_VOTE)).length, 3);
    assert.equal(h.status(3), 'PreCandidate term=2 lead=0 commit=2');
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=3');

    h.heal();
    h.elapse(1);
    // Zero terms raised.
    for (const id of [1, 2, 3]) assert.equal(h.term(id), 2);
    assert.equal(h.status(3), 'Follower term=2 lead=1 commit=3');
  });

  it('without pre-vote, a node that campaigned once while cut off costs the group two terms', () => {
    // Check-quorum alone: the lease keeps 2 from voting, but 3's term still
    // climbs, and the leader learns of it once the link is back.
    const h = electedCluster({ preVote: false });
    h.cut(1, 3);
    h.cut(3, 1);
    h.elapse(12);
    assert.equal(h.status(3), 'Candidate term=3 lead=0 commit=2');
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=2');

    // Healed: 3 answers the leader's term-2 heartbeat with its term 3
    // (check-quorum's rule, so a stuck candidate is not stuck forever), and
    // the leader steps down to term 3.
    h.heal();
    h.elapse(1);
    assert.equal(h.status(1), 'Follower term=3 lead=0 commit=2');
    assert.equal(h.status(3), 'Candidate term=3 lead=0 commit=2');

    // Node 1 times out first and wins term 4.
    h.elapse(10);
    assert.equal(h.status(1), 'Leader term=4 lead=1 commit=3');
    assert.equal(h.status(2), 'Follower term=4 lead=1 commit=3');
    assert.equal(h.status(3), 'Follower term=4 lead=1 commit=3');
  });
});

describe('raft scenarios: snapshot catch-up', () => {
  it('a follower behind a compacted log catches up by snapshot, then by appends', () => {
    const h = electedCluster();
    h.isolate(3);
    const values = 'abcdefghij'.split('');
    for (const v of values) h.propose(1, v);
    h.stabilize();
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=12');

    // The leader snapshots everything it applied and drops its log.
    h.compact(1);
    assert.equal(h.snapshotIndex(1), 12);
    assert.deepEqual(h.log(1), []);

    // Healed: the heartbeat answer shows 3 behind; the probe at index 12 is
    // rejected, and the entries 3 needs are gone, so a snapshot goes out.
    h.heal();
    h.elapse(1);
    const snaps = h.delivered(msgs.ofType(MessageType.MSG_SNAP));
    assert.deepEqual(
      snaps.map((m) => `${m.from}->${m.to} index=${snapIndex(m.snapshot!)}`),
      ['1->3 index=12'],
    );
    assert.equal(h.status(3), 'Follower term=2 lead=1 commit=12');
    assert.equal(h.snapshotIndex(3), 12);
    assert.deepEqual(h.applied(3), values);

    // From there on, plain appends.
    h.forgetDelivered();
    h.propose(1, 'k');
    h.stabilize();
    assert.equal(h.delivered(msgs.ofType(MessageType.MSG_SNAP)).length, 0);
    assert.deepEqual(h.log(3), ['2/13 k']);
    assert.equal(h.status(3), 'Follower term=2 lead=1 commit=13');
    assert.deepEqual(h.applied(3), [...values, 'k']);
  });
});

describe('raft scenarios: membership', () => {
  it('adds a learner, which catches up without voting, then promotes it', () => {
    const h = electedCluster();
    h.addNode(4);
    h.proposeConfChange(1, 'l4');
    h.stabilize();
    // 4 started empty: it got the founding snapshot (index 1), then entries.
    assert.equal(h.config(1), 'voters=(1 2 3) learners=(4)');
    assert.equal(h.config(4), 'voters=(1 2 3) learners=(4)');
    assert.deepEqual(h.log(4), ['2/2', '2/3 conf: l4']);
    assert.equal(h.status(4), 'Follower term=2 lead=1 commit=3');

    // A learner does not count toward a quorum: with 2 and 3 cut off, the
    // leader and the learner together commit nothing.
    h.isolate(2);
    h.isolate(3);
    h.propose(1, 'x');
    h.stabilize();
    assert.deepEqual(h.log(4), ['2/2', '2/3 conf: l4', '2/4 x']);
    assert.equal(h.commit(1), 3);
    // Healed, the next heartbeat answers show 2 and 3 behind, and they get "x".
    h.heal();
    h.elapse(1);
    assert.equal(h.commit(1), 4);
    assert.deepEqual(h.applied(4), ['x']);

    // Nor does it ever campaign, however long it hears nothing.
    h.isolate(4);
    h.tick(4, 100);
    assert.equal(h.status(4), 'Follower term=2 lead=1 commit=4');
    h.heal();

    h.proposeConfChange(1, 'v4');
    h.stabilize();
    assert.equal(h.config(1), 'voters=(1 2 3 4)');
    assert.equal(h.config(4), 'voters=(1 2 3 4)');
    assert.equal(h.status(4), 'Follower term=2 lead=1 commit=5');
  });

  it('replaces a voter through a joint configuration that it leaves by itself', () => {
    const h = electedCluster();
    h.addNode(4);
    // Two changes at once: a joint configuration (1 2 4)&&(1 2 3).
    h.proposeConfChange(1, 'v4 r3');
    h.stabilize(() => h.config(1).includes('&&'));
    assert.equal(h.config(1), 'voters=(1 2 4)&&(1 2 3) autoleave');

    // Having applied the joint config, the leader proposes the leave entry
    // itself and replicates it at once, like any proposal: no tick (and so
    // no heartbeat) is needed for the group to leave.
    h.stabilize();
    assert.deepEqual(h.log(1), ['2/2', '2/3 conf: v4 r3', '2/4 conf: leave']);
    for (const id of [1, 2, 3, 4]) assert.equal(h.config(id), 'voters=(1 2 4)');
    assert.equal(h.status(4), 'Follower term=2 lead=1 commit=4');

    // 3 is out: it never campaigns, and the new group commits without it.
    h.isolate(3);
    h.tick(3, 100);
    assert.equal(h.status(3), 'Follower term=2 lead=1 commit=4');
    h.propose(1, 'after');
    h.stabilize();
    assert.equal(h.status(4), 'Follower term=2 lead=1 commit=5');
  });

  it('with an explicit transition the joint configuration stays until asked to leave', () => {
    const h = electedCluster();
    h.addNode(4);
    h.proposeConfChange(1, 'v4 r3', 'explicit');
    h.stabilize();
    assert.equal(h.config(1), 'voters=(1 2 4)&&(1 2 3)');
    assert.deepEqual(h.log(1), ['2/2', '2/3 conf/explicit: v4 r3']);

    // Nothing else may change before the joint configuration is left.
    assert.throws(
      () => h.proposeConfChange(1, 'v5'),
      refused(/must leave the joint configuration first/),
    );
    h.proposeConfChange(1, '');
    h.stabilize();
    assert.equal(h.config(1), 'voters=(1 2 4)');
    assert.deepEqual(h.log(1), ['2/2', '2/3 conf/explicit: v4 r3', '2/4 conf: leave']);
  });

  it('refuses to remove the leader; leadership is transferred first', () => {
    const h = electedCluster();
    // Removing, demoting, or replacing the leader in a joint change: all refused.
    for (const change of ['r1', 'l1']) {
      assert.throws(
        () => h.proposeConfChange(1, change),
        refused(/removes or demotes the leader 1; transfer leadership first/),
      );
    }
    h.addNode(4);
    assert.throws(() => h.proposeConfChange(1, 'v4 r1'), refused(/removes or demotes the leader/));
    assert.deepEqual(h.log(1), ['2/2']);

    // The way out: hand leadership to 2, and let 2 remove 1.
    h.transferLeadership(1, 2);
    h.stabilize();
    assert.equal(h.status(2), 'Leader term=3 lead=2 commit=3');
    h.proposeConfChange(2, 'r1');
    h.stabilize();
    assert.equal(h.config(2), 'voters=(2 3)');
    assert.equal(h.config(1), 'voters=(2 3)');

    // 1 no longer campaigns, and 2 and 3 go on committing alone.
    h.isolate(1);
    h.tick(1, 100);
    assert.equal(h.status(1), 'Follower term=3 lead=2 commit=4');
    h.propose(2, 'after');
    h.stabilize();
    assert.equal(h.status(3), 'Follower term=3 lead=2 commit=5');
  });
});

describe('raft scenarios: leadership transfer', () => {
  it('transfers to an up-to-date follower at once', () => {
    const h = electedCluster();
    h.transferLeadership(1, 2);
    h.stabilize();
    // TimeoutNow lets 2 skip the pre-vote and the lease: it wins term 3.
    assert.deepEqual(
      h.delivered(msgs.ofType(MessageType.MSG_TIMEOUT_NOW)).map((m) => `${m.from}->${m.to}`),
      ['1->2'],
    );
    assert.equal(h.status(2), 'Leader term=3 lead=2 commit=3');
    assert.equal(h.status(1), 'Follower term=3 lead=2 commit=3');
    assert.equal(h.status(3), 'Follower term=3 lead=2 commit=3');
  });

  it('catches a lagging transferee up before handing over', () => {
    const h = electedCluster();
    h.cut(1, 3);
    for (const v of ['a', 'b', 'c']) h.propose(1, v);
    h.stabilize();
    assert.deepEqual(h.log(3), ['2/2']);
    h.heal();

    h.transferLeadership(1, 3);
    // While the transfer is under way the leader takes no writes.
    assert.throws(() => h.propose(1, 'd'), refused(/leadership is being transferred to 3/));
    h.stabilize();
    // Appends first, TimeoutNow only once 3 matched the whole log.
    assert.equal(h.status(3), 'Leader term=3 lead=3 commit=6');
    assert.deepEqual(h.log(3), ['2/2', '2/3 a', '2/4 b', '2/5 c', '3/6']);
    assert.equal(h.status(1), 'Follower term=3 lead=3 commit=6');
  });

  it('gives up on a transfer that does not finish within an election timeout', () => {
    const h = electedCluster();
    h.isolate(3);
    h.transferLeadership(1, 3);
    assert.throws(() => h.propose(1, 'a'), refused(/being transferred/));
    h.elapse(9);
    assert.throws(() => h.propose(1, 'a'), refused(/being transferred/));
    h.elapse(1);
    h.propose(1, 'a');
    h.stabilize();
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=3');
  });

  it('ignores a transfer to a non-member or a learner', () => {
    const h = electedCluster();
    h.addNode(4);
    h.proposeConfChange(1, 'l4');
    h.stabilize();
    for (const to of [9, 4]) {
      h.transferLeadership(1, to);
      h.stabilize();
    }
    assert.equal(h.delivered(msgs.ofType(MessageType.MSG_TIMEOUT_NOW)).length, 0);
    // No transfer is pending: writes are still taken.
    h.propose(1, 'a');
    h.stabilize();
    assert.equal(h.status(1), 'Leader term=2 lead=1 commit=4');
  });
});

describe('raft scenarios: read index', () => {
  it('the leader answers with its commit index after a heartbeat round', () => {
    const h = electedCluster();
    h.propose(1, 'a');
    h.stabilize();
    h.forgetDelivered();

    h.readIndex(1, 'r1');
    h.processReady(1);
    assert.deepEqual(h.reads(1), []);
    // The heartbeats carry the request; a quorum of answers confirms that 1
    // still leads, so a read at index 3 is safe once 3 is applied.
    h.deliver();
    h.processReady(2);
    h.processReady(3);
    h.deliver(msgs.from(2));
    h.processReady(1);
    assert.deepEqual(h.reads(1), [{ index: 3, ctx: 'r1' }]);
    assert.deepEqual(
      h.delivered().map((m) => `${m.from}->${m.to} ${MessageType[m.type]}`),
      ['1->2 MSG_HEARTBEAT', '1->3 MSG_HEARTBEAT', '2->1 MSG_HEARTBEAT_RESP'],
    );
  });

  it('a leader without a quorum cannot answer until it hears from one', () => {
    const h = electedCluster();
    h.isolate(1);
    h.readIndex(1, 'r1');
    h.stabilize();
    assert.deepEqual(h.reads(1), []);
    // The next heartbeats carry the pending request again.
    h.heal();
    h.elapse(1);
    assert.deepEqual(h.reads(1), [{ index: 2, ctx: 'r1' }]);
  });

  it('a read through a follower is forwarded to the leader and answered back', () => {
    const h = electedCluster();
    h.propose(2, 'a');
    h.stabilize();
    h.readIndex(2, 'r2');
    h.stabilize();
    assert.deepEqual(h.reads(2), [{ index: 3, ctx: 'r2' }]);
    assert.deepEqual(h.reads(1), []);
    assert.deepEqual(
      h
        .delivered(
          (m) =>
            m.type === MessageType.MSG_READ_INDEX || m.type === MessageType.MSG_READ_INDEX_RESP,
        )
        .map((m) => `${m.from}->${m.to} ${MessageType[m.type]} index=${m.index}`),
      ['2->1 MSG_READ_INDEX index=0', '1->2 MSG_READ_INDEX_RESP index=3'],
    );
  });

  it('a new leader holds reads until it has committed an entry of its own term', () => {
    const h = electedCluster();
    // 1 commits "x" at index 3, but the news of that commit never leaves it.
    h.propose(1, 'x');
    h.processReady(1);
    h.deliver();
    h.processReady(2);
    h.processReady(3);
    h.deliver();
    assert.equal(h.commit(1), 3);
    h.isolate(1);
    assert.equal(h.commit(2), 2);

    // 2 wins term 3 once 3's lease on 1 has run out.
    h.tick(3, 10);
    h.tick(2, 11);
    h.stabilize(() => h.state(2) === StateType.Leader);
    assert.equal(h.status(2), 'Leader term=3 lead=2 commit=2');

    // Answering now would say index 2 and miss "x", which 1 may already
    // have acknowledged to a client. The read waits.
    h.readIndex(2, 'r');
    h.processReady(2);
    assert.deepEqual(h.reads(2), []);

    // Once 2's empty entry (index 4, term 3) commits, "x" is known to be
    // committed too, and the read is answered at 4.
    h.stabilize();
    assert.equal(h.status(2), 'Leader term=3 lead=2 commit=4');
    assert.deepEqual(h.reads(2), [{ index: 4, ctx: 'r' }]);
    assert.deepEqual(h.applied(2), ['x']);
  });
});

describe('raft scenarios: leader completeness', () => {
  /** 1 leads and commits "a" and "b" with 2 only; then 1 disappears. */
  function staleThree(opts: ScenarioOptions): Scenario {
    const h = electedCluster(opts);
    h.cut(1, 3);
    h.propose(1, 'a');
    h.propose(1, 'b');
    h.stabilize();
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=4');
    assert.deepEqual(h.log(3), ['2/2']);
    h.isolate(1);
    // 2's lease on 1 runs out (its own timeout is one tick further).
    h.tick(2, 10);
    return h;
  }

  it('a node with a shorter log cannot win an election', () => {
    const h = staleThree({ preVote: false });
    h.campaign(3);
    h.stabilize();
    // 2 moves to term 3 but refuses its vote: 3 lacks committed entries.
    assert.equal(h.status(3), 'Candidate term=3 lead=0 commit=2');
    assert.equal(h.status(2), 'Follower term=3 lead=0 commit=4');
    assert.equal(h.vote(2), 0);

    // 2 times out first, and 3 votes for it: its log is more up to date.
    h.elapse(11, [2, 3]);
    assert.equal(h.status(2), 'Leader term=4 lead=2 commit=5');
    assert.equal(h.status(3), 'Follower term=4 lead=2 commit=5');
    assert.deepEqual(h.log(3), ['2/2', '2/3 a', '2/4 b', '4/5']);
  });

  it('with pre-vote, the stale node does not even get to raise its term', () => {
    const h = staleThree({});
    h.campaign(3);
    h.stabilize();
    // 2 rejects the pre-vote; with 1 unreachable 3 can neither win nor lose
    // outright, and waits in term 2.
    assert.deepEqual(
      h
        .delivered(msgs.ofType(MessageType.MSG_PRE_VOTE_RESP))
        .map((m) => `${m.from} reject=${m.reject}`),
      ['2 reject=true'],
    );
    assert.equal(h.status(3), 'PreCandidate term=2 lead=0 commit=2');
    assert.equal(h.status(2), 'Follower term=2 lead=1 commit=4');
  });
});

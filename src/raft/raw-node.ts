import { Raft, RaftConfig, encodeConfChange } from './raft';
import {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  hardStateEqual,
  isEmptySnapshot,
  isResponseMsg,
  Message,
  MessageType,
  newEntry,
  payloadSize,
  RaftError,
  Ready,
  snapIndex,
  SoftState,
  StateType,
  NONE,
} from './types';

/**
 * The driver's handle on the core: feeds it inputs and collects Ready batches.
 * Not thread-safe by design — the driver calls it from one loop — and after
 * `ready()` the next `ready()` must wait for `advance()`.
 */
export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.campaignNow();
  }

  /** Proposes data; throws RaftError('PROPOSAL_DROPPED') when it cannot be taken now. */
  propose(data: Uint8Array): void {
    this.raft.propose([newEntry({ data: Buffer.from(data) })]);
  }

  proposeConfChange(cc: ConfChange): void {
    this.raft.propose([
      newEntry({ type: EntryType.ENTRY_CONF_CHANGE, data: encodeConfChange(cc) }),
    ]);
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Feeds a message from a peer. */
  step(m: Message): void {
    if (m.type === MessageType.MSG_UNKNOWN)
      throw new RaftError('STEP_LOCAL', 'cannot step a local message');
    // Answers from peers we no longer know (removed members) are dropped —
    // except votes: a candidate also counts voters of configurations still
    // pending in its log (see Raft.poll), which may not be in its tracker.
    const isVoteResp =
      m.type === MessageType.MSG_VOTE_RESP || m.type === MessageType.MSG_PRE_VOTE_RESP;
    if (isResponseMsg(m.type) && !isVoteResp && !this.raft.tracker.progress.has(m.from)) {
      throw new RaftError('STEP_PEER_NOT_FOUND', `no progress for ${m.from}`);
    }
    this.raft.step(m);
  }

  readIndex(ctx: Uint8Array): void {
    this.raft.readIndex(ctx);
  }

  transferLeadership(to: number): void {
    this.raft.transferLeadership(to);
  }

  /** A leader gives up leadership at once (its disk stalled, or it is shutting down). */
  stepDown(): void {
    const r = this.raft;
    if (r.state === StateType.Leader) r.becomeFollower(r.term, NONE);
  }

  reportUnreachable(id: number): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: number, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  hasReady(): boolean {
    const r = this.raft;
    if (r.appendPending) return true;
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.state !== this.prevSoft.state) return true;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard) && !(hs.term === 0 && hs.vote === 0 && hs.commit === 0))
      return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (
      r.msgs.length > 0 ||
      r.raftLog.unstableEntries().length > 0 ||
      r.raftLog.hasNextCommittedEnts()
    )
      return true;
    return r.readStates.length > 0;
  }

  ready(): Ready {
    const r = this.raft;
    r.flushPendingAppends();
    const entries = r.raftLog.unstableEntries();
    const committedEntries = r.raftLog.nextCommittedEnts();
    const rd: Ready = {
      entries,
      committedEntries,
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.state !== this.prevSoft.state) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard)) {
      rd.hardState = hs;
    }
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    // Term and vote must be on disk before any message that relies on them
    // leaves; a commit index alone may be lost (it is recomputed) — except
    // when it covers a conf change: a node that forgot it (an unsynced write
    // lost in a crash) would come back applying an older configuration than
    // one it already acted on, and can then need votes that no longer exist
    // (sim seed 6385).
    rd.mustSync =
      entries.length > 0 ||
      hs.term !== this.prevHard.term ||
      hs.vote !== this.prevHard.vote ||
      committedEntries.some((e) => e.type === EntryType.ENTRY_CONF_CHANGE);
    if (rd.hardState) this.prevHard = hs;
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  /** The driver persisted, sent and applied `rd`. */
  advance(rd: Ready): void {
    const r = this.raft;
    let applied = 0;
    let appliedBytes = 0;
    if (rd.snapshot && !isEmptySnapshot(rd.snapshot)) applied = snapIndex(rd.snapshot);
    if (rd.committedEntries.length > 0) {
      applied = Math.max(applied, rd.committedEntries[rd.committedEntries.length - 1].index);
      for (const e of rd.committedEntries) appliedBytes += payloadSize(e);
    }
    if (rd.entries.length > 0) {
      const last: Entry = rd.entries[rd.entries.length - 1];
      r.raftLog.stableTo(last.index, last.term);
      r.onPersisted(last.index, last.term);
    }
    if (rd.snapshot && !isEmptySnapshot(rd.snapshot))
      r.raftLog.stableSnapTo(snapIndex(rd.snapshot));
    if (applied > 0) r.appliedTo(applied, appliedBytes);
  }
}

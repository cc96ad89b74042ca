import { Changer, enterJoint, leaveJoint, restoreConfig } from './confchange';
import { ProgressState } from './progress';
import { RaftLog } from './raft-log';
import { ReadOnly } from './read-only';
import { Storage } from './storage';
import { configToConfState, ProgressMap, ProgressTracker, TrackerConfig } from './tracker';
import {
  ConfChange,
  ConfState,
  EMPTY_BYTES,
  Entry,
  EntryType,
  HardState,
  isEmptyHardState,
  isEmptySnapshot,
  Message,
  MessageType,
  newEntry,
  newMessage,
  NONE,
  payloadSize,
  RaftError,
  ReadState,
  snapIndex,
  snapTerm,
  Snapshot,
  SoftState,
  StateType,
  voteRespType,
} from './types';

/** Where a log line from the core goes; pino loggers fit. */
export interface RaftLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const noopLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

export type ReadOnlyOption = 'safe' | 'lease';

export interface RaftConfig {
  id: number;
  /** Ticks without hearing from a leader before a follower campaigns (randomized up to 2x). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be well below electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** Last index applied to the state machine before a restart. */
  applied?: number;
  /** Bytes of entries per MSG_APP. */
  maxSizePerMsg?: number;
  /** Bytes of committed entries per Ready. */
  maxCommittedSizePerReady?: number;
  /** Bytes of proposed but uncommitted entries the leader accepts (0: unbounded). */
  maxUncommittedEntriesSize?: number;
  /** MSG_APPs in flight per follower in the Replicate state. */
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
  /** The leader steps down when it has not heard from a quorum in an election timeout (§6.2). */
  checkQuorum?: boolean;
  /** Campaign only after a pre-vote round shows a majority would vote (thesis §9.6). */
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  disableProposalForwarding?: boolean;
  /** A leader removed from the configuration becomes a follower at once. */
  stepDownOnRemoval?: boolean;
  /** Randomness for election timeouts, in [0, 1): injected so the simulator can replay. */
  rng: () => number;
  logger?: RaftLogger;
}

type CampaignType = 'pre-election' | 'election' | 'transfer';

/** Marks a MSG_VOTE sent because of a leadership transfer: voters must not ignore it for a lease. */
const CAMPAIGN_TRANSFER = Buffer.from('CampaignTransfer');

/**
 * The Raft consensus algorithm as a pure state machine, after etcd-io/raft.
 * It does no I/O and keeps no clock: time arrives as tick(), the network as
 * step(m), and everything it wants done leaves through `msgs`, `readStates`
 * and the log, which RawNode packs into a Ready.
 */
export class Raft {
  readonly id: number;
  term = 0;
  vote = NONE;
  lead = NONE;
  state = StateType.Follower;
  readonly raftLog: RaftLog;
  readonly tracker: ProgressTracker;
  isLearner = false;
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  /** Leadership transfer target, while a transfer is under way. */
  leadTransferee = NONE;
  /**
   * Only one conf change may be pending (proposed but not yet applied);
   * this is the log index of the latest one.
   */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  /** Proposals were appended but not yet broadcast (see flushPendingAppends). */
  appendPending = false;
  private readOnly = new ReadOnly();
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  private readonly maxMsgSize: number;
  private readonly maxUncommittedSize: number;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly readOnlyOption: ReadOnlyOption;
  private readonly disableProposalForwarding: boolean;
  private readonly stepDownOnRemoval: boolean;
  private readonly rng: () => number;
  readonly logger: RaftLogger;

  constructor(c: RaftConfig) {
    validateConfig(c);
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? 0;
    this.checkQuorum = c.checkQuorum ?? true;
    this.preVote = c.preVote ?? true;
    this.readOnlyOption = c.readOnlyOption ?? 'safe';
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.stepDownOnRemoval = c.stepDownOnRemoval ?? true;
    this.rng = c.rng;
    this.logger = c.logger ?? noopLogger;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? this.maxMsgSize * 4);
    this.tracker = new ProgressTracker(c.maxInflightMsgs ?? 256, c.maxInflightBytes ?? 0);

    const { hardState, confState } = c.storage.initialState();
    restoreConfig(this.tracker, confState, this.raftLog.lastIndex());
    this.isLearner = this.tracker.progress.get(this.id)?.isLearner ?? false;
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    // Entries covered by the stored snapshot are committed, whatever the
    // (possibly older, unsynced) commit index says. Storage may keep some
    // entries below the snapshot, so its first index does not tell.
    this.raftLog.committed = Math.max(this.raftLog.committed, snapIndex(c.storage.snapshot()));
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  // ---- state queries ------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, state: this.state };
  }

  /** A node may campaign only if it is a voter of the current configuration. */
  promotable(): boolean {
    const pr = this.tracker.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  private loadState(hs: HardState): void {
    if (hs.commit > this.raftLog.lastIndex()) {
      // We acknowledged a commit index past the entries we hold: the log on
      // disk lost entries it had synced.
      throw new RaftError(
        'CORRUPT',
        `${this.id}: stored commit ${hs.commit} is past the last stored entry ${this.raftLog.lastIndex()}`,
      );
    }
    // The commit index alone is written without sync, so after a crash it
    // may trail the snapshot; the snapshot itself proves its entries were
    // committed.
    this.raftLog.committed = Math.max(hs.commit, this.raftLog.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---- sending ------------------------------------------------------------

  private send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === MessageType.MSG_VOTE ||
      m.type === MessageType.MSG_VOTE_RESP ||
      m.type === MessageType.MSG_PRE_VOTE ||
      m.type === MessageType.MSG_PRE_VOTE_RESP
    ) {
      // Vote messages carry the term they are about, which is not always ours
      // (a pre-vote asks about term+1 without moving to it).
      if (m.term === 0) throw new Error(`term should be set when sending ${MessageType[m.type]}`);
    } else {
      if (m.term !== 0)
        throw new Error(`term should not be set when sending ${MessageType[m.type]}`);
      // Proposals and read requests forwarded to the leader are not bound to
      // a term: the leader checks them against its own.
      if (m.type !== MessageType.MSG_PROP && m.type !== MessageType.MSG_READ_INDEX)
        m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends entries (or a snapshot) to a follower if its flow control allows. */
  private maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    } catch (err) {
      if (err instanceof RaftError && (err.code === 'COMPACTED' || err.code === 'UNAVAILABLE')) {
        return this.maybeSendSnapshot(to);
      }
      throw err;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += payloadSize(e);
    this.send(
      newMessage({
        type: MessageType.MSG_APP,
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
    pr.sentEntries(ents.length, bytes);
    return true;
  }

  private maybeSendSnapshot(to: number): boolean {
    const pr = this.tracker.progress.get(to)!;
    // A follower we have not heard from lately may be down: do not spend a
    // snapshot transfer on it until it answers again.
    if (!pr.recentActive) return false;
    const snap = this.raftLog.snapshot();
    if (isEmptySnapshot(snap))
      throw new Error(`${this.id}: need a snapshot for ${to} but none exists`);
    this.logger.debug(
      { to, index: snapIndex(snap), term: snapTerm(snap), progress: pr.toString() },
      'sending snapshot',
    );
    pr.becomeSnapshot(snapIndex(snap));
    this.send(newMessage({ type: MessageType.MSG_SNAP, to, snapshot: snap }));
    return true;
  }

  private sendHeartbeat(to: number, ctx: Uint8Array): void {
    // Never tell a follower to commit past what it is known to hold: it may
    // not have those entries, and commitTo past the last index is a bug.
    const commit = Math.min(this.tracker.progress.get(to)!.match, this.raftLog.committed);
    this.send(
      newMessage({ type: MessageType.MSG_HEARTBEAT, to, commit, context: Buffer.from(ctx) }),
    );
  }

  bcastAppend(): void {
    this.tracker.visit((id) => {
      if (id !== this.id) this.maybeSendAppend(id, true);
    });
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestCtx() ?? EMPTY_BYTES;
    this.tracker.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  // ---- commit and apply ---------------------------------------------------

  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.tracker.committed(), this.term);
  }

  /** Called by RawNode.advance once entries up to `applied` reached the state machine. */
  appliedTo(applied: number, appliedPayloadBytes: number): void {
    const old = this.raftLog.applied;
    this.raftLog.appliedTo(Math.max(old, applied));
    this.reduceUncommittedSize(appliedPayloadBytes);
    const cfg = this.tracker.config;
    if (cfg.autoLeave && applied >= this.pendingConfIndex && this.state === StateType.Leader) {
      if (!cfg.voters.incoming.ids.has(this.id)) {
        // We would not be a voter after leaving: let a member of the incoming
        // config lead (it proposes the leave once it has applied this far).
        if (this.leadTransferee === NONE) this.handOffLeadership();
        return;
      }
      // The joint config is in place everywhere that matters; propose leaving it.
      const ent = newEntry({ type: EntryType.ENTRY_CONF_CHANGE, data: encodeLeaveJoint() });
      // Bypass the uncommitted limit: this entry must not be dropped.
      if (!this.appendEntry([ent], true))
        throw new Error('refused to append the leave-joint entry');
      this.pendingConfIndex = this.raftLog.lastIndex();
      // Replicate it like a proposal, with the next Ready: waiting for a
      // heartbeat answer to carry it would leave the group joint for longer.
      this.appendPending = true;
      this.logger.info(
        { index: this.pendingConfIndex },
        'initiating automatic transition out of joint configuration',
      );
    }
  }

  private appendEntry(es: Entry[], bypassLimit = false): boolean {
    const li = this.raftLog.lastIndex();
    const stamped = es.map((e, i) => ({ ...e, term: this.term, index: li + 1 + i }));
    if (!bypassLimit && !this.increaseUncommittedSize(stamped)) {
      this.logger.debug(
        { size: this.uncommittedSize },
        'appending entries would exceed the uncommitted limit',
      );
      return false;
    }
    this.raftLog.append(stamped);
    // The leader's own copy counts toward the quorum only once it is durable
    // (onPersisted). The driver may send a leader's MSG_APPs before its own
    // write finishes (thesis §10.2.1), so a commit index computed from an
    // unpersisted self-ack could reach followers and then be lost with the
    // leader — with a single voter and learners, that is a lost commit.
    return true;
  }

  /** The driver made entries up to (index, term) durable. */
  onPersisted(index: number, term: number): void {
    if (this.state !== StateType.Leader || !this.raftLog.matchTerm(index, term)) return;
    const self = this.tracker.progress.get(this.id);
    if (self && self.maybeUpdate(index) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  private increaseUncommittedSize(ents: Entry[]): boolean {
    let s = 0;
    for (const e of ents) s += payloadSize(e);
    // Always accept when nothing is outstanding, so a single large entry can
    // never be refused forever.
    if (
      this.uncommittedSize > 0 &&
      s > 0 &&
      this.maxUncommittedSize > 0 &&
      this.uncommittedSize + s > this.maxUncommittedSize
    ) {
      return false;
    }
    this.uncommittedSize += s;
    return true;
  }

  private reduceUncommittedSize(s: number): void {
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  // ---- time ---------------------------------------------------------------

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.hup(this.electionType);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.checkQuorumActive();
      // A transfer that did not finish within an election timeout has failed.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE)
        this.abortLeaderTransfer();
      // A removed leader keeps trying to hand off until someone takes over.
      if (
        this.state === StateType.Leader &&
        this.stepDownOnRemoval &&
        !this.tracker.config.voters.incoming.ids.has(this.id)
      ) {
        this.handOffLeadership();
      }
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout =
      this.electionTimeout + Math.floor(this.rng() * this.electionTimeout);
  }

  // ---- role changes -------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.tracker.resetVotes();
    const last = this.raftLog.lastIndex();
    // Our own match is what is durable: the unstable tail is acked in onPersisted.
    const stable = Math.min(last, this.raftLog.unstable.offset - 1);
    this.tracker.visit((id, pr) => {
      pr.match = id === this.id ? stable : 0;
      pr.next = last + 1;
      pr.state = ProgressState.Probe;
      pr.pendingSnapshot = 0;
      pr.msgAppFlowPaused = false;
      pr.recentActive = false;
      pr.inflights = this.tracker.newInflights();
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.debug({ term, lead }, 'became follower');
  }

  private becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('invalid transition leader -> candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.debug({ term: this.term }, 'became candidate');
  }

  private becomePreCandidate(): void {
    if (this.state === StateType.Leader)
      throw new Error('invalid transition leader -> pre-candidate');
    // A pre-candidate changes neither its term nor its vote: a failed
    // pre-election leaves no trace that could disrupt the cluster.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.debug({ term: this.term }, 'became pre-candidate');
  }

  private becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error('invalid transition follower -> leader');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.tracker.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // Conf changes in the uncommitted tail may be pending; be conservative
    // and allow a new one only after everything up to here is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An empty entry of the new term lets the leader commit (and so learn the
    // commit index of) earlier terms' entries (§5.4.2, §8).
    if (!this.appendEntry([newEntry({})], true)) throw new Error('empty entry was dropped');
    // The empty entry does not count against the uncommitted limit.
    this.uncommittedSize = 0;
    this.logger.info({ term: this.term }, 'became leader');
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.warn({}, 'is not promotable and cannot campaign');
      return;
    }
    // A configuration change committed but not applied could change who may
    // vote; campaigning now could count the wrong voters.
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(
        { applied: this.raftLog.applied, committed: this.raftLog.committed },
        'cannot campaign: pending conf changes to apply',
      );
      return;
    }
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    const ents = this.raftLog.slice(lo, this.raftLog.committed + 1, Number.MAX_SAFE_INTEGER);
    return ents.some((e) => e.type === EntryType.ENTRY_CONF_CHANGE);
  }

  private campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MessageType.MSG_PRE_VOTE;
      // Ask about the term we would move to, without moving there yet.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MSG_VOTE;
      term = this.term;
    }
    const voterSet = this.tracker.config.voters.ids();
    for (const cfg of this.pendingConfigs()) for (const id of cfg.voters.ids()) voterSet.add(id);
    const voters = [...voterSet].sort((a, b) => a - b);
    if (this.poll(this.id, voteRespType(voteMsg), true) === 'won') {
      // A single-voter group wins at once.
      if (t === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of voters) {
      if (id === this.id) continue;
      this.send(
        newMessage({
          type: voteMsg,
          to: id,
          term,
          index: this.raftLog.lastIndex(),
          logTerm: this.raftLog.lastTerm(),
          context: t === 'transfer' ? CAMPAIGN_TRANSFER : EMPTY_BYTES,
        }),
      );
    }
  }

  private poll(id: number, t: MessageType, granted: boolean): 'pending' | 'lost' | 'won' {
    this.logger.debug(
      { from: id, type: MessageType[t], granted, term: this.term },
      'received vote',
    );
    this.tracker.recordVote(id, granted);
    let result = this.tracker.tallyVotes().result;
    // An election must also be won in every configuration that conf-change
    // entries in our log (not yet applied) would produce. Configurations
    // take effect here when applied, and our commit index may be stale (it
    // is not synced, and a removed member stops hearing it): without this, a
    // node that missed the commit of a change removing it could be elected
    // by voters of the old configuration while the new one commits without
    // them — two leaders for one index. This is the thesis's rule (§4.1:
    // use the latest configuration in the log) applied conservatively, on
    // top of the applied one.
    for (const cfg of this.pendingConfigs()) {
      const r = cfg.voters.voteResult(this.tracker.votes);
      if (r === 'lost' || result === 'lost') result = 'lost';
      else if (r === 'pending') result = 'pending';
    }
    return result;
  }

  private pendingCache?: { key: string; configs: TrackerConfig[] };

  /** Configurations the conf-change entries after `applied` would lead to, in log order. */
  private pendingConfigs(): TrackerConfig[] {
    const applied = this.raftLog.applied;
    const last = this.raftLog.lastIndex();
    const key = `${applied}/${last}/${this.raftLog.lastTerm()}/${this.raftLog.firstIndex()}`;
    if (this.pendingCache?.key === key) return this.pendingCache.configs;
    const configs: TrackerConfig[] = [];
    const from = Math.max(applied + 1, this.raftLog.firstIndex());
    if (from <= last) {
      const ents = this.raftLog.slice(from, last + 1, Number.MAX_SAFE_INTEGER);
      let tracker = this.tracker;
      for (const e of ents) {
        if (e.type !== EntryType.ENTRY_CONF_CHANGE) continue;
        const cc = decodeConfChange(e.data);
        const changer = new Changer(tracker, last);
        let next: { config: TrackerConfig; progress: ProgressMap };
        try {
          if (leaveJoint(cc)) next = changer.leaveJoint();
          else {
            const { autoLeave, ok } = enterJoint(cc);
            next = ok ? changer.enterJoint(autoLeave, cc.changes) : changer.simple(cc.changes);
          }
        } catch {
          continue; // an invalid change is skipped when applied too
        }
        const t = new ProgressTracker(tracker.maxInflight, tracker.maxInflightBytes);
        t.config = next.config;
        t.progress = next.progress;
        tracker = t;
        configs.push(next.config);
      }
    }
    this.pendingCache = { key, configs };
    return configs;
  }

  // ---- the message switch -------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // Only proposals and read requests travel without a term.
      if (
        m.type !== MessageType.MSG_PROP &&
        m.type !== MessageType.MSG_READ_INDEX &&
        m.type !== MessageType.MSG_TRANSFER_LEADER
      ) {
        this.logger.debug(
          { type: MessageType[m.type], from: m.from },
          'ignored message without a term',
        );
        return;
      }
    } else if (m.term > this.term) {
      if (m.type === MessageType.MSG_VOTE || m.type === MessageType.MSG_PRE_VOTE) {
        const force = Buffer.from(m.context).equals(CAMPAIGN_TRANSFER);
        const inLease =
          this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // We heard from a leader within the minimum election timeout: a
          // node that cannot hear it (a partial partition, a rejoining node)
          // must not depose it (thesis §4.2.3).
          this.logger.debug(
            {
              from: m.from,
              term: m.term,
              lead: this.lead,
              remaining: this.electionTimeout - this.electionElapsed,
            },
            'ignored vote request: lease is not expired',
          );
          return;
        }
      }
      if (m.type === MessageType.MSG_PRE_VOTE) {
        // A pre-vote never changes our term.
      } else if (m.type === MessageType.MSG_PRE_VOTE_RESP && !m.reject) {
        // We move to m.term when the pre-election wins, not before; a
        // rejection with a higher term does move us (below).
      } else {
        const fromLeader =
          m.type === MessageType.MSG_APP ||
          m.type === MessageType.MSG_HEARTBEAT ||
          m.type === MessageType.MSG_SNAP;
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) &&
        (m.type === MessageType.MSG_HEARTBEAT || m.type === MessageType.MSG_APP)
      ) {
        // A leader of an older term, perhaps cut off while we moved on. With
        // check-quorum or pre-vote our vote requests may never reach or
        // convince it, so tell it our term directly and let it step down.
        this.send(newMessage({ type: MessageType.MSG_APP_RESP, to: m.from }));
      } else if (m.type === MessageType.MSG_PRE_VOTE) {
        // Answer so the pre-candidate learns our term and stops asking.
        this.send(
          newMessage({
            type: MessageType.MSG_PRE_VOTE_RESP,
            to: m.from,
            term: this.term,
            reject: true,
          }),
        );
      } else {
        this.logger.debug(
          { type: MessageType[m.type], from: m.from, term: m.term },
          'ignored message with lower term',
        );
      }
      return;
    }

    switch (m.type) {
      case MessageType.MSG_VOTE:
      case MessageType.MSG_PRE_VOTE: {
        // We can vote for whom we already voted for (a duplicate request), or
        // if we have not voted and know of no leader in this term, or for a
        // pre-vote about a future term.
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.MSG_PRE_VOTE && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(newMessage({ type: voteRespType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.MSG_VOTE) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(
            newMessage({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }),
          );
        }
        return;
      }
      default:
        break;
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m);
        break;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        break;
      case StateType.Follower:
        this.stepFollower(m);
        break;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.MSG_PROP:
        this.leaderPropose(m);
        return;
      case MessageType.MSG_READ_INDEX:
        if (this.tracker.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // Until the leader commits an entry of its own term it does not know
        // the latest commit index (§6.4 step 1): hold the request until then.
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexResponse(m);
        return;
      case MessageType.MSG_TRANSFER_LEADER:
        this.leaderTransfer(m.from);
        return;
      default:
        break;
    }

    const pr = this.tracker.progress.get(m.from);
    if (!pr) {
      this.logger.debug(
        { from: m.from, type: MessageType[m.type] },
        'no progress for sender: ignored',
      );
      return;
    }
    switch (m.type) {
      case MessageType.MSG_APP_RESP: {
        pr.recentActive = true;
        if (m.reject) {
          let nextProbeIdx = m.rejectHint;
          if (m.logTerm > 0) {
            // The follower told us its term at the hint; skip every entry of
            // ours with a larger term, which cannot match.
            nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
          }
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.maybeSendAppend(m.from, true);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (!pr.maybeUpdate(m.index)) {
          // A duplicate or stale ack. In Probe, an ack at the current match
          // still proves the logs agree there: resume replicating.
          if (pr.state === ProgressState.Probe && pr.match === m.index && pr.match > 0) {
            pr.becomeReplicate();
            this.maybeSendAppend(m.from, false);
          }
          return;
        }
        switch (pr.state) {
          case ProgressState.Probe:
            pr.becomeReplicate();
            break;
          case ProgressState.Snapshot:
            // The follower caught up past the snapshot (or got it): probe from there.
            if (pr.match + 1 >= this.raftLog.firstIndex()) {
              pr.becomeProbe();
              pr.becomeReplicate();
            }
            break;
          case ProgressState.Replicate:
            pr.inflights.freeLE(m.index);
            break;
        }
        if (this.maybeCommit()) {
          this.releasePendingReadIndexMessages();
          this.bcastAppend();
        } else if (oldPaused) {
          this.maybeSendAppend(m.from, true);
        }
        // Keep the pipeline to this follower full.
        while (this.maybeSendAppend(m.from, false)) {
          /* send until paused or nothing left */
        }
        if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
          this.logger.info({ to: m.from }, 'transferee is up to date: sending TimeoutNow');
          this.send(newMessage({ type: MessageType.MSG_TIMEOUT_NOW, to: m.from }));
        }
        return;
      }
      case MessageType.MSG_HEARTBEAT_RESP: {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // If every message that filled the window was lost, no answer will
        // ever free it: let one more through, whose answer (a rejection at
        // the gap) resets the flow.
        if (pr.state === ProgressState.Replicate && pr.inflights.full())
          pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe)
          this.maybeSendAppend(m.from, true);
        if (this.readOnlyOption !== 'safe' || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks) return;
        acks.set(this.id, true);
        if (this.tracker.config.voters.voteResult(acks) !== 'won') return;
        for (const rs of this.readOnly.advance(m.context))
          this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case MessageType.MSG_SNAP:
      case MessageType.MSG_APP:
      case MessageType.MSG_HEARTBEAT:
        // Another leader in our term cannot exist (election safety).
        this.logger.warn(
          { from: m.from, type: MessageType[m.type], term: m.term },
          'message from another leader of this term',
        );
        return;
      default:
        return;
    }
  }

  private leaderPropose(m: Message): void {
    if (m.entries.length === 0) throw new RaftError('PROPOSAL_DROPPED', 'empty proposal');
    if (this.leadsAsNonMember()) {
      // Removed from the configuration while leader: stop taking writes.
      throw new RaftError('PROPOSAL_DROPPED', `${this.id} is no longer a voting member`);
    }
    if (this.leadTransferee !== NONE) {
      throw new RaftError(
        'PROPOSAL_DROPPED',
        `leadership is being transferred to ${this.leadTransferee}`,
      );
    }
    const ents = m.entries.map((e, i) => {
      if (e.type !== EntryType.ENTRY_CONF_CHANGE) return e;
      const cc = decodeConfChange(e.data);
      const refused = this.confChangeRefusal(cc);
      if (refused !== undefined) {
        this.logger.info({ reason: refused }, 'refused conf change');
        throw new RaftError('PROPOSAL_DROPPED', `conf change refused: ${refused}`);
      }
      this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      return e;
    });
    if (!this.appendEntry(ents)) {
      throw new RaftError('PROPOSAL_DROPPED', 'too many uncommitted entries');
    }
    // Entries proposed between two Ready batches go out together: one
    // MSG_APP per follower per batch instead of one per proposal.
    this.appendPending = true;
  }

  /** Sends entries proposed since the last Ready (RawNode calls this before building one). */
  flushPendingAppends(): void {
    if (!this.appendPending) return;
    this.appendPending = false;
    if (this.state === StateType.Leader) this.bcastAppend();
  }

  /**
   * Why a conf change cannot be proposed now, or undefined. One change at a
   * time: a new one waits until the previous is applied. A joint config must
   * be left before anything else. And the leader may not remove or demote
   * itself: a leader that leaves the group can wedge it (the voters that
   * remain may not learn the change committed if the old leader then
   * crashes), so leadership must be transferred first.
   */
  private confChangeRefusal(cc: ConfChange): string | undefined {
    if (this.pendingConfIndex > this.raftLog.applied) {
      return `a conf change at index ${this.pendingConfIndex} is not applied yet (applied ${this.raftLog.applied})`;
    }
    const joint = this.tracker.config.voters.isJoint();
    const wantsLeave = leaveJoint(cc);
    if (joint && !wantsLeave) return 'must leave the joint configuration first';
    if (!joint && wantsLeave) return 'not in a joint configuration';
    let next: TrackerConfig;
    try {
      const changer = new Changer(this.tracker, this.raftLog.lastIndex());
      if (wantsLeave) next = changer.leaveJoint().config;
      else {
        const { autoLeave, ok } = enterJoint(cc);
        next = ok
          ? changer.enterJoint(autoLeave, cc.changes).config
          : changer.simple(cc.changes).config;
      }
    } catch (err) {
      if (err instanceof RaftError) return err.message;
      throw err;
    }
    if (!next.voters.incoming.ids.has(this.id)) {
      return `it removes or demotes the leader ${this.id}; transfer leadership first`;
    }
    return undefined;
  }

  private stepCandidate(m: Message): void {
    const myVoteResp =
      this.state === StateType.PreCandidate
        ? MessageType.MSG_PRE_VOTE_RESP
        : MessageType.MSG_VOTE_RESP;
    switch (m.type) {
      case MessageType.MSG_PROP:
        throw new RaftError('PROPOSAL_DROPPED', 'no leader');
      case MessageType.MSG_APP:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.MSG_HEARTBEAT:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.MSG_SNAP:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const res = this.poll(m.from, m.type, !m.reject);
        if (res === 'won') {
          if (this.state === StateType.PreCandidate) {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          // A pre-candidate that lost returns to its own term; a rejecting
          // voter with a higher term already moved us (in step).
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MSG_PROP:
        if (this.lead === NONE) throw new RaftError('PROPOSAL_DROPPED', 'no leader');
        if (this.disableProposalForwarding)
          throw new RaftError('PROPOSAL_DROPPED', 'proposal forwarding is disabled');
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.MSG_APP:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.MSG_HEARTBEAT:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.MSG_SNAP:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.MSG_TRANSFER_LEADER:
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.MSG_TIMEOUT_NOW:
        this.logger.info(
          { from: m.from, term: this.term },
          'received TimeoutNow: campaigning to take over leadership',
        );
        // Skip the pre-vote: the leader asked for this, and voters must not
        // refuse for a lease (the request is marked as a transfer).
        this.hup('transfer');
        return;
      case MessageType.MSG_READ_INDEX:
        if (this.lead === NONE)
          throw new RaftError('PROPOSAL_DROPPED', 'no leader to serve a read index');
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.MSG_READ_INDEX_RESP:
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
      default:
        return;
    }
  }

  // ---- follower handlers --------------------------------------------------

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index matches the leader's log already.
      this.send(
        newMessage({ type: MessageType.MSG_APP_RESP, to: m.from, index: this.raftLog.committed }),
      );
      return;
    }
    const last = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send(newMessage({ type: MessageType.MSG_APP_RESP, to: m.from, index: last }));
      return;
    }
    // Tell the leader the largest index it could match us at, and our term
    // there, so it can skip past our divergent tail in one step.
    const hint = this.raftLog.findConflictByTerm(
      Math.min(m.index, this.raftLog.lastIndex()),
      m.logTerm,
    );
    this.send(
      newMessage({
        type: MessageType.MSG_APP_RESP,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(Math.min(m.commit, this.raftLog.lastIndex()));
    this.send(newMessage({ type: MessageType.MSG_HEARTBEAT_RESP, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s || isEmptySnapshot(s)) return;
    if (this.restore(s)) {
      this.logger.info({ index: snapIndex(s), term: snapTerm(s) }, 'restored snapshot');
      this.send(
        newMessage({ type: MessageType.MSG_APP_RESP, to: m.from, index: this.raftLog.lastIndex() }),
      );
    } else {
      this.send(
        newMessage({ type: MessageType.MSG_APP_RESP, to: m.from, index: this.raftLog.committed }),
      );
    }
  }

  private restore(s: Snapshot): boolean {
    const sIndex = snapIndex(s);
    if (sIndex <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a follower installs snapshots; anything else is a bug upstream.
      this.logger.warn({}, 'non-follower attempted to restore a snapshot');
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    // The snapshot may predate this node's addition (or re-addition) to the
    // group, so its configuration need not include us. Installing it is
    // still safe: it holds only committed state from the current leader, and
    // we stay non-promotable until we apply the entry that adds us.
    const cs = s.metadata?.confState;
    if (this.raftLog.matchTerm(sIndex, snapTerm(s))) {
      // We hold the snapshot's last entry already: just move the commit index.
      this.raftLog.commitTo(sIndex);
      return false;
    }
    this.raftLog.restore(s);
    restoreConfig(this.tracker, cs!, this.raftLog.lastIndex());
    this.isLearner = this.tracker.progress.get(this.id)?.isLearner ?? false;
    const self = this.tracker.progress.get(this.id);
    if (self) self.maybeUpdate(sIndex);
    return true;
  }

  // ---- reads --------------------------------------------------------------

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnOutOfBounds(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.readOnlyOption === 'lease' && this.checkQuorum) {
      // The lease (check-quorum) guarantees no other leader can exist yet.
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    this.readOnly.addRequest(this.raftLog.committed, m);
    // The leader's own ack, then a heartbeat round carrying the request.
    this.readOnly.recvAck(this.id, m.context);
    const ctx = m.context;
    this.tracker.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context });
      return;
    }
    this.send(
      newMessage({
        type: MessageType.MSG_READ_INDEX_RESP,
        to: req.from,
        index: readIndex,
        context: req.context,
      }),
    );
  }

  // ---- membership and leadership ------------------------------------------

  private checkQuorumActive(): void {
    if (!this.tracker.quorumActive()) {
      this.logger.warn({ term: this.term }, 'stepped down: quorum is not active');
      this.becomeFollower(this.term, NONE);
    }
    // Mark everyone inactive; answers in the next election timeout revive them.
    this.tracker.visit((id, pr) => {
      if (id !== this.id) pr.recentActive = false;
    });
  }

  private leaderTransfer(transferee: number): void {
    const pr = this.tracker.progress.get(transferee);
    if (!pr || pr.isLearner) {
      this.logger.debug({ transferee }, 'ignored leadership transfer to a non-voter');
      return;
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) {
      this.send(newMessage({ type: MessageType.MSG_TIMEOUT_NOW, to: transferee }));
    } else {
      this.maybeSendAppend(transferee, true);
    }
  }

  /** Whether this leader was removed from (or demoted in) the configuration it leads. */
  private leadsAsNonMember(): boolean {
    const pr = this.tracker.progress.get(this.id);
    return this.state === StateType.Leader && (!pr || pr.isLearner);
  }

  private handOffLeadership(): void {
    let best = NONE;
    let bestMatch = -1;
    this.tracker.visit((id, p) => {
      if (id === this.id || !this.tracker.config.voters.incoming.ids.has(id)) return;
      if (p.match > bestMatch) {
        best = id;
        bestMatch = p.match;
      }
    });
    if (best === NONE) return;
    this.logger.info({ to: best }, 'removed from the configuration: handing off leadership');
    this.leaderTransfer(best);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** Applies a committed conf change; returns the new ConfState to store with snapshots. */
  applyConfChange(cc: ConfChange): ConfState {
    const changer = new Changer(this.tracker, this.raftLog.lastIndex());
    let next: { config: TrackerConfig; progress: ProgressMap };
    if (leaveJoint(cc)) {
      next = changer.leaveJoint();
    } else {
      const { autoLeave, ok } = enterJoint(cc);
      next = ok ? changer.enterJoint(autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(next.config, next.progress);
  }

  private switchToConfig(config: TrackerConfig, progress: ProgressMap): ConfState {
    this.tracker.config = config;
    this.tracker.progress = progress;
    const cs = configToConfState(config);
    const pr = progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    this.logger.info({ confState: cs }, 'switched to configuration');
    if ((!pr || this.isLearner) && this.state === StateType.Leader) {
      // Removed (or demoted) while leading. Stepping down at once can wedge
      // the group: the remaining voters may not yet know the change is
      // committed, and the only log that could tell them is ours. So keep
      // leading without counting ourselves, and hand leadership to the most
      // up-to-date remaining voter; a transfer first brings it fully up to
      // date (thesis §3.10, §4.2.2).
      if (this.stepDownOnRemoval) this.handOffLeadership();
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      // Probe new members right away rather than at the next heartbeat.
      this.tracker.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.tracker.isVoter(this.leadTransferee))
      this.abortLeaderTransfer();
    return cs;
  }

  // ---- transport feedback -------------------------------------------------

  reportUnreachable(id: number): void {
    const pr = this.tracker.progress.get(id);
    if (this.state !== StateType.Leader || !pr) return;
    // Optimistic pipelining to a peer we cannot reach only fills buffers.
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  reportSnapshot(id: number, ok: boolean): void {
    const pr = this.tracker.progress.get(id);
    if (this.state !== StateType.Leader || !pr || pr.state !== ProgressState.Snapshot) return;
    // On success wait for the follower's append response before streaming;
    // on failure forget the snapshot and probe again.
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    pr.msgAppFlowPaused = true;
  }

  /** Entry point for proposals made on this node. */
  propose(entries: Entry[]): void {
    this.step(newMessage({ type: MessageType.MSG_PROP, from: this.id, entries }));
  }

  readIndex(ctx: Uint8Array): void {
    this.step(
      newMessage({ type: MessageType.MSG_READ_INDEX, from: this.id, context: Buffer.from(ctx) }),
    );
  }

  transferLeadership(to: number): void {
    this.step(newMessage({ type: MessageType.MSG_TRANSFER_LEADER, from: to }));
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaignNow(): void {
    this.hup(this.preVote ? 'pre-election' : 'election');
  }

  /** The kind of election a timeout starts. */
  private get electionType(): CampaignType {
    return this.preVote ? 'pre-election' : 'election';
  }
}

function validateConfig(c: RaftConfig): void {
  if (!Number.isInteger(c.id) || c.id <= 0)
    throw new RaftError('INVALID_CONFIG', `id must be a positive integer, got ${c.id}`);
  if (!(c.heartbeatTick > 0))
    throw new RaftError('INVALID_CONFIG', 'heartbeatTick must be greater than 0');
  if (!(c.electionTick > c.heartbeatTick)) {
    throw new RaftError('INVALID_CONFIG', 'electionTick must be greater than heartbeatTick');
  }
  if (c.readOnlyOption === 'lease' && c.checkQuorum === false) {
    throw new RaftError('INVALID_CONFIG', 'lease reads need checkQuorum');
  }
}

export function encodeConfChange(cc: ConfChange): Buffer {
  return Buffer.from(ConfChange.encode(cc).finish());
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  return ConfChange.decode(data);
}

function encodeLeaveJoint(): Buffer {
  return encodeConfChange({ transition: 0, changes: [], context: EMPTY_BYTES });
}

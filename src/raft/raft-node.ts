import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { silentLogger } from '../common/log';
import { Clock, systemClock } from './clock';
import { DurableStore } from './durable-store';
import { decodeConfChange, ReadOnlyOption } from './raft';
import { RawNode } from './raw-node';
import { MemoryStorage } from './storage';
import { Transport, TransportHandler } from './transport';
import {
  ApplyHaltError,
  ConfChange,
  ConfChangeType,
  ConfState,
  emptyConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  NONE,
  RaftError,
  Ready,
  snapIndex,
  Snapshot,
  StateType,
} from './types';

/**
 * The application replicated by Raft. `apply` sees committed entries in log
 * order, exactly once per incarnation of the node (after a restart, from the
 * last snapshot on). It must be deterministic: every replica applies the
 * same entries and must reach the same state.
 */
export interface StateMachine {
  /**
   * `term` is the entry's term: the term of the leader that appended it.
   * An entry whose apply throws is skipped (every replica fails alike),
   * unless it throws ApplyHaltError: then the node stops.
   */
  apply(data: Uint8Array, index: number, term: number): unknown;
  /**
   * The state as of the last applied entry. It must be captured during the
   * call; a promise may produce the bytes later (serializing a large state
   * off the Raft loop).
   */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  restore(data: Uint8Array): void | Promise<void>;
}

export interface RaftNodeOptions {
  id: number;
  /** Addresses of the other members, by id (this node's own entry is ignored). */
  peers: Record<number, string>;
  store: DurableStore;
  transport: Transport;
  stateMachine: StateMachine;
  /** Founding members of a new group; ignored when the store has state. */
  bootstrap?: number[];
  clock?: Clock;
  logger?: Logger;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  readOnly?: ReadOnlyOption;
  /** Snapshot and compact after this many applied entries. */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot so a slightly lagging follower needs none. */
  keepEntries?: number;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  maxUncommittedBytes?: number;
  /** How long a proposal or read may wait for an answer. */
  requestTimeoutMs?: number;
  /** A persist slower than this on the leader makes it step down. */
  diskStallMs?: number;
  rng?: () => number;
}

export interface RaftStatus {
  id: number;
  term: number;
  leader: number;
  state: StateType;
  commit: number;
  applied: number;
  lastIndex: number;
  confState: ConfState;
  peers: Record<number, string>;
  /** Ids removed from the configuration: they may never come back. */
  removed: number[];
  /** On the leader: each member's replication progress. */
  progress?: Record<number, { match: number; next: number; state: string; active: boolean }>;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
  cancelTimer(): void;
}

const HEADER_MAGIC = 0xb7;
/** magic(1) | proposer id (u32) | incarnation (u32) | sequence (u32) */
const HEADER_BYTES = 13;

/**
 * Binds the pure Raft core to the world: a clock that ticks it, a durable
 * store, a transport and the application. One loop handles Ready batches in
 * the order the core requires (persist, send, apply, advance); inputs
 * (messages, ticks, proposals) are stepped as they arrive, even while a
 * batch is being written.
 */
export class RaftNode implements TransportHandler {
  readonly id: number;
  private readonly raw: RawNode;
  private readonly storage: MemoryStorage;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly incarnation = randomBytes(4).readUInt32BE(0);
  private seq = 0;
  private readonly proposals = new Map<number, Waiter<{ index: number; result: unknown }>>();
  private readonly reads = new Map<string, Waiter<number>>();
  private readonly appliedWaiters: { index: number; resolve: () => void }[] = [];
  private readonly condWaiters: {
    check: () => boolean;
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
  private confState: ConfState;
  private peers: Record<number, string>;
  /**
   * Every id ever removed from the configuration, as the applied log says
   * (kept in snapshots). Their messages are refused, so a removed member
   * restarted with old data cannot disturb the group (etcd does the same).
   */
  private removed: Set<number>;
  /** Why this node knows it was removed, once it does. */
  private removedReason?: string;
  private removedListeners: ((reason: string) => void)[] = [];
  private applied: number;
  private snapshotIndex: number;
  private stopped = false;
  private wake?: () => void;
  private readonly loopDone: Promise<void>;
  private cancelTicker: () => void;
  private persistStartedAt = 0;
  /** A snapshot being written in the background. */
  private snapshotWrite?: Promise<void>;
  private leaderListeners: ((leader: number, term: number) => void)[] = [];
  private failureListeners: ((err: Error) => void)[] = [];
  private lastLeader = NONE;
  /** Why the node stopped by itself (see fail). */
  private failure?: Error;
  /** The commit index read back at start: replay is done once it is applied. */
  private startCommit = 0;

  private constructor(
    private readonly opts: RaftNodeOptions,
    storage: MemoryStorage,
    applied: number,
    confState: ConfState,
    peers: Record<number, string>,
    removed: Iterable<number>,
  ) {
    this.id = opts.id;
    this.removed = new Set(removed);
    this.storage = storage;
    this.applied = applied;
    this.snapshotIndex = applied;
    this.confState = confState;
    this.peers = peers;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'raft', node: opts.id });
    this.clock = opts.clock ?? systemClock;
    const coreLog = this.log.child({ component: 'raft-core' });
    this.raw = new RawNode({
      id: opts.id,
      electionTick: opts.electionTicks ?? 10,
      heartbeatTick: opts.heartbeatTicks ?? 1,
      storage,
      applied,
      preVote: opts.preVote ?? true,
      checkQuorum: opts.checkQuorum ?? true,
      readOnlyOption: opts.readOnly ?? 'safe',
      maxSizePerMsg: opts.maxSizePerMsg ?? 1024 * 1024,
      maxInflightMsgs: opts.maxInflightMsgs ?? 256,
      maxUncommittedEntriesSize: opts.maxUncommittedBytes ?? 64 * 1024 * 1024,
      rng: opts.rng ?? Math.random,
      logger: {
        debug: (o, m) => coreLog.debug(o, m),
        info: (o, m) => coreLog.info(o, m),
        warn: (o, m) => coreLog.warn(o, m),
      },
    });
    for (const [id, addr] of Object.entries(peers)) {
      if (Number(id) !== this.id) opts.transport.addPeer(Number(id), addr);
    }
    this.cancelTicker = this.clock.setInterval(() => this.onTick(), opts.tickMs ?? 50);
    this.loopDone = this.run();
  }

  /** Opens the node: reads its durable state back and joins the group. */
  static async start(opts: RaftNodeOptions): Promise<RaftNode> {
    const durable = await opts.store.load();
    const storage = new MemoryStorage();
    let applied = 0;
    let confState = emptyConfState();
    let peers: Record<number, string> = { ...opts.peers };
    let removed: number[] = [];
    const fresh = !durable.snapshot && durable.entries.length === 0 && durable.hardState.term === 0;
    if (fresh && opts.bootstrap && opts.bootstrap.length > 0) {
      const cs = { ...emptyConfState(), voters: [...opts.bootstrap].sort((a, b) => a - b) };
      // The founding configuration, with the address book, is snapshot 1.
      storage.bootstrap(cs, encodeSnapshotData(peers, new Uint8Array()));
      await opts.store.saveSnapshot(storage.snapshot());
      await opts.store.save(storage.hardStateValue(), [], true);
      applied = 1;
      confState = cs;
    } else if (durable.snapshot) {
      storage.applySnapshot(durable.snapshot);
      const snapData = decodeSnapshotData(durable.snapshot.data);
      const { peers: snapPeers, app } = snapData;
      removed = snapData.removed;
      peers = { ...snapPeers, ...opts.peers };
      if (app.length > 0) await opts.stateMachine.restore(app);
      applied = snapIndex(durable.snapshot);
      confState = durable.snapshot.metadata?.confState ?? emptyConfState();
    }
    if (!fresh) {
      storage.append(durable.entries);
      storage.setHardState(durable.hardState);
    }
    const node = new RaftNode(opts, storage, applied, confState, peers, removed);
    node.startCommit = fresh ? applied : Math.max(applied, durable.hardState.commit);
    if (removed.includes(opts.id))
      node.markRemoved(`its snapshot at index ${applied} records its removal`);
    return node;
  }

  // ---- the public API -----------------------------------------------------

  /**
   * Replicates `data` and resolves once it is applied here, with what the
   * state machine returned. Rejects with RaftError: NOT_LEADER / PROPOSAL_DROPPED
   * (not written), or TIMEOUT (the outcome is unknown: it may still commit).
   */
  propose(data: Uint8Array): Promise<{ index: number; result: unknown }> {
    if (this.stopped) return Promise.reject(new RaftError('STOPPED', 'raft node is stopped'));
    const seq = ++this.seq;
    const buf = Buffer.allocUnsafe(HEADER_BYTES + data.length);
    buf[0] = HEADER_MAGIC;
    buf.writeUInt32BE(this.id, 1);
    buf.writeUInt32BE(this.incarnation, 5);
    buf.writeUInt32BE(seq >>> 0, 9);
    buf.set(data, HEADER_BYTES);
    const p = this.wait(this.proposals, seq, 'proposal');
    try {
      this.raw.propose(buf);
    } catch (err) {
      this.proposals.get(seq)?.reject(this.asRaftError(err));
      this.proposals.delete(seq);
    }
    this.kick();
    return p;
  }

  /**
   * A linearizable read barrier (ReadIndex, thesis §6.4): resolves with an
   * index once the state machine has applied at least that far and this
   * node has confirmed that no newer leader existed when the read started.
   * Reading the state machine afterwards returns linearizable results.
   */
  async readIndex(): Promise<number> {
    if (this.stopped) throw new RaftError('STOPPED', 'raft node is stopped');
    const seq = ++this.seq;
    const ctx = Buffer.allocUnsafe(8);
    ctx.writeUInt32BE(this.incarnation, 0);
    ctx.writeUInt32BE(seq >>> 0, 4);
    const key = ctx.toString('hex');
    const p = this.wait(this.reads, key, 'read');
    try {
      this.raw.readIndex(ctx);
    } catch (err) {
      this.reads.get(key)?.reject(this.asRaftError(err));
      this.reads.delete(key);
    }
    this.kick();
    const index = await p;
    await this.waitApplied(index);
    return index;
  }

  /** Adds, promotes, demotes or removes members; resolves with the new configuration. */
  /**
   * Adds, promotes, demotes or removes members in one change (several
   * changes go through a joint configuration). Proposed here and forwarded
   * to the leader if this node is not it; resolves with the configuration
   * once this node has applied a configuration that reflects the change.
   */
  async changeMembership(
    changes: { type: ConfChangeType; nodeId: number; address?: string }[],
  ): Promise<ConfState> {
    const context = Buffer.from(
      JSON.stringify(
        Object.fromEntries(changes.filter((c) => c.address).map((c) => [c.nodeId, c.address])),
      ),
    );
    const cc: ConfChange = {
      transition: 0,
      changes: changes.map((c) => ({ type: c.type, nodeId: c.nodeId })),
      context,
    };
    try {
      this.raw.proposeConfChange(cc);
    } catch (err) {
      throw this.asRaftError(err);
    }
    this.kick();
    const reflected = (cs: ConfState) =>
      cs.votersOutgoing.length === 0 &&
      changes.every((c) => {
        if (c.type === ConfChangeType.CONF_ADD_NODE) return cs.voters.includes(c.nodeId);
        if (c.type === ConfChangeType.CONF_ADD_LEARNER) return cs.learners.includes(c.nodeId);
        return !cs.voters.includes(c.nodeId) && !cs.learners.includes(c.nodeId);
      });
    await this.waitFor(
      () => reflected(this.confState),
      'membership change',
      this.opts.requestTimeoutMs ?? 10_000,
    );
    return this.confState;
  }

  /**
   * Adds a member safely: first as a learner, which receives the log (or a
   * snapshot) without voting, then — once it has caught up with the commit
   * index — as a voter, so a slow newcomer never weakens the quorum.
   * Must run on the leader.
   */
  async addMember(id: number, address: string, timeoutMs = 30_000): Promise<ConfState> {
    if (!this.isLeader())
      throw new RaftError(
        'NOT_LEADER',
        `add members through the leader (${this.leader() || 'unknown'})`,
      );
    await this.changeMembership([{ type: ConfChangeType.CONF_ADD_LEARNER, nodeId: id, address }]);
    const target = this.raw.raft.raftLog.committed;
    await this.waitFor(
      () => {
        if (!this.isLeader())
          throw new RaftError('NOT_LEADER', 'lost leadership while a learner caught up');
        return (this.raw.raft.tracker.progress.get(id)?.match ?? 0) >= target;
      },
      `learner ${id} to catch up to ${target}`,
      timeoutMs,
    );
    return this.changeMembership([{ type: ConfChangeType.CONF_ADD_NODE, nodeId: id }]);
  }

  /**
   * Removes a member. The leader may not remove itself (Raft refuses), so a
   * leader asked to leave first hands leadership to the most up-to-date
   * voter and then proposes its own removal through the new leader.
   */
  async removeMember(id: number, timeoutMs = 30_000): Promise<ConfState> {
    if (id === this.id && this.isLeader()) await this.handOffLeadership(timeoutMs);
    return this.changeMembership([{ type: ConfChangeType.CONF_REMOVE_NODE, nodeId: id }]);
  }

  /**
   * A leader hands leadership to the most up-to-date other voter and
   * resolves with it once that voter leads. The core refuses a leader's
   * proposal to remove itself (the rest might not learn it committed if it
   * then crashed), so a leader leaves in two steps: this, then its removal
   * proposed through the new leader.
   */
  async handOffLeadership(timeoutMs = 30_000): Promise<number> {
    if (!this.isLeader())
      throw new RaftError(
        'NOT_LEADER',
        `${this.id} is not the leader (${this.leader() || 'none'})`,
      );
    const progress = this.raw.raft.tracker.progress;
    const target = this.confState.voters
      .filter((v) => v !== this.id)
      .sort((a, b) => (progress.get(b)?.match ?? 0) - (progress.get(a)?.match ?? 0))[0];
    if (target === undefined)
      throw new RaftError('INVALID_CONFIG', `${this.id} is the only voter; it cannot hand off`);
    this.transferLeadership(target);
    // A transfer can fail (the target had a conf change still to apply,
    // a message was lost): the core abandons it after an election
    // timeout, and we ask again.
    await this.waitFor(
      () => {
        if (this.isLeader() && this.raw.raft.leadTransferee === NONE)
          this.transferLeadership(target);
        return !this.isLeader() && this.leader() !== NONE;
      },
      `leadership to move to ${target}`,
      timeoutMs,
    );
    return this.leader();
  }

  /** Whether `id` was removed from the configuration (it may never come back). */
  isRemoved(id: number): boolean {
    return this.removed.has(id);
  }

  /**
   * Calls `fn` once this node learns it was removed: it applied its own
   * removal, its snapshot records it, or a member refused its messages.
   * A removed node stops campaigning; what to do next is the caller's.
   */
  onRemoved(fn: (reason: string) => void): void {
    if (this.removedReason !== undefined) fn(this.removedReason);
    else this.removedListeners.push(fn);
  }

  /** Why this node knows it was removed, or undefined. */
  removedBecause(): string | undefined {
    return this.removedReason;
  }

  transferLeadership(to: number): void {
    this.raw.transferLeadership(to);
    this.kick();
  }

  /** Starts an election now (tests and operators; normally timeouts do this). */
  campaign(): void {
    this.raw.campaign();
    this.kick();
  }

  isLeader(): boolean {
    return this.raw.raft.state === StateType.Leader;
  }

  leader(): number {
    return this.raw.raft.lead;
  }

  leaderAddress(): string | undefined {
    const l = this.raw.raft.lead;
    return l === NONE ? undefined : this.peers[l];
  }

  /** Called once if the node stops by itself (storage failed, or apply halted). */
  onFailure(fn: (err: Error) => void): void {
    if (this.failure) fn(this.failure);
    else this.failureListeners.push(fn);
  }

  /**
   * Resolves once every entry committed before this start is applied again
   * (a snapshot restored, the log replayed); rejects with the reason if the
   * node stops first, an ApplyHaltError say.
   */
  replayed(timeoutMs = 600_000): Promise<void> {
    return this.waitFor(
      () => {
        if (this.failure) throw this.failure;
        return this.applied >= this.startCommit;
      },
      'the log to be replayed',
      timeoutMs,
    );
  }

  onLeaderChange(fn: (leader: number, term: number) => void): void {
    this.leaderListeners.push(fn);
  }

  status(): RaftStatus {
    const r = this.raw.raft;
    const s: RaftStatus = {
      id: this.id,
      term: r.term,
      leader: r.lead,
      state: r.state,
      commit: r.raftLog.committed,
      applied: this.applied,
      lastIndex: r.raftLog.lastIndex(),
      confState: this.confState,
      peers: { ...this.peers },
      removed: [...this.removed].sort((a, b) => a - b),
    };
    if (r.state === StateType.Leader) {
      s.progress = {};
      r.tracker.visit((id, pr) => {
        s.progress![id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          active: pr.recentActive,
        };
      });
    }
    return s;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.cancelTicker();
    this.kick();
    await this.loopDone;
    await this.snapshotWrite;
    const err = new RaftError('STOPPED', 'raft node stopped');
    for (const w of this.proposals.values()) w.reject(err);
    for (const w of this.reads.values()) w.reject(err);
    this.proposals.clear();
    this.reads.clear();
    for (const w of this.condWaiters.splice(0)) w.reject(err);
  }

  // ---- TransportHandler -----------------------------------------------------

  receive(m: Message): void {
    if (this.stopped) return;
    if (this.removed.has(m.from)) {
      this.log.debug(
        { from: m.from, type: MessageType[m.type] },
        'refused a message from a removed member',
      );
      return;
    }
    try {
      this.raw.step(m);
    } catch (err) {
      // Answers from removed members, proposals a leader cannot take: the
      // sender learns by timeout; nothing to do here.
      if (!(err instanceof RaftError)) throw err;
      this.log.debug(
        { from: m.from, type: MessageType[m.type], err: err.message },
        'message not stepped',
      );
    }
    this.kick();
  }

  reportUnreachable(id: number): void {
    this.raw.reportUnreachable(id);
  }

  reportSnapshot(id: number, ok: boolean): void {
    this.raw.reportSnapshot(id, ok);
    this.kick();
  }

  reportRemoved(by: number): void {
    this.markRemoved(`member ${by} refused its messages: it was removed from the cluster`);
  }

  // ---- the loop -------------------------------------------------------------

  private onTick(): void {
    // A removed follower must not campaign (it would only be refused); a
    // removed leader keeps ticking until it has handed leadership over.
    if (this.removedReason !== undefined && !this.isLeader()) return;
    this.raw.tick();
    if (this.condWaiters.length > 0) this.checkConditions();
    this.checkDiskStall();
    this.kick();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.raw.hasReady()) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const rd = this.raw.ready();
      try {
        await this.handleReady(rd);
      } catch (err) {
        this.fail(err);
        break;
      }
      this.raw.advance(rd);
      this.maybeSnapshot();
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.noteLeader(rd.softState.lead);
    // A leader's appends may leave before its own write completes (thesis
    // §10.2.1): its own copy counts toward commit only once durable
    // (Raft.onPersisted). Everyone else must persist term, vote and entries
    // before answering.
    const leaderFirst = this.raw.raft.state === StateType.Leader && !rd.snapshot;
    if (leaderFirst) this.opts.transport.send(rd.messages);
    this.persistStartedAt = this.clock.now();
    if (rd.snapshot) {
      await this.opts.store.saveSnapshot(rd.snapshot);
      this.storage.applySnapshot(rd.snapshot);
    }
    if (rd.entries.length > 0 || rd.mustSync) {
      await this.opts.store.save(rd.hardState, rd.entries, rd.mustSync);
      if (rd.entries.length > 0) this.storage.append(rd.entries);
    } else if (rd.hardState) {
      // Only the commit index moved. It need not be durable before we act
      // on it (after a crash it is learned again from the leader), so the
      // write goes behind us; the store keeps writes in call order.
      this.opts.store.save(rd.hardState, [], false).catch((err) => this.fail(err));
    }
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    this.persistStartedAt = 0;
    if (!leaderFirst) this.opts.transport.send(rd.messages);
    if (rd.snapshot) await this.applySnapshot(rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) {
      const key = Buffer.from(rs.requestCtx).toString('hex');
      const w = this.reads.get(key);
      if (w) {
        this.reads.delete(key);
        w.cancelTimer();
        w.resolve(rs.index);
      }
    }
    this.releaseAppliedWaiters();
  }

  /**
   * A failed write leaves us unable to promise durability: stop rather than
   * acknowledge anything (the operator sees why in the log).
   */
  private fail(err: unknown): void {
    if (this.stopped) return;
    const halted = err instanceof ApplyHaltError;
    this.log.fatal(
      halted ? { err: (err as Error).message } : { err },
      halted
        ? 'cannot apply the log on this node; stopping it'
        : 'raft storage failed; stopping this node',
    );
    this.stopped = true;
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.cancelTicker();
    this.kick();
    for (const w of this.condWaiters.splice(0)) w.reject(this.failure);
    for (const fn of this.failureListeners.splice(0)) fn(this.failure);
  }

  private async applySnapshot(snap: Snapshot): Promise<void> {
    const { peers, app, removed } = decodeSnapshotData(snap.data);
    await this.opts.stateMachine.restore(app);
    this.applied = snapIndex(snap);
    this.snapshotIndex = this.applied;
    this.confState = snap.metadata?.confState ?? emptyConfState();
    this.setPeers(peers);
    for (const id of removed) this.removed.add(id);
    if (this.removed.has(this.id))
      this.markRemoved(`the snapshot at index ${this.applied} records its removal`);
  }

  private markRemoved(reason: string): void {
    if (this.removedReason !== undefined) return;
    this.removedReason = reason;
    this.log.error({ reason }, 'this member was removed from the cluster');
    for (const fn of this.removedListeners.splice(0)) fn(reason);
  }

  private applyEntry(e: Entry): void {
    this.applied = e.index;
    if (e.type === EntryType.ENTRY_CONF_CHANGE) {
      this.applyConfChange(e);
      return;
    }
    if (e.data.length < HEADER_BYTES || e.data[0] !== HEADER_MAGIC) return; // a leader's empty entry
    const data = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    const payload = data.subarray(HEADER_BYTES);
    let result: unknown;
    let failure: Error | undefined;
    try {
      result = this.opts.stateMachine.apply(payload, e.index, e.term);
    } catch (err) {
      // Not applied here alone: stop (run() fails the node) rather than skip.
      if (err instanceof ApplyHaltError) {
        this.applied = e.index - 1;
        throw err;
      }
      failure = err as Error;
    }
    if (data.readUInt32BE(1) !== this.id || data.readUInt32BE(5) !== this.incarnation) return;
    const seq = data.readUInt32BE(9);
    const w = this.proposals.get(seq);
    if (!w) return;
    this.proposals.delete(seq);
    w.cancelTimer();
    if (failure) w.reject(failure);
    else w.resolve({ index: e.index, result });
  }

  private applyConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    const before = membersOf(this.confState);
    try {
      this.confState = this.raw.applyConfChange(cc);
    } catch (err) {
      // Every replica applies the same change to the same configuration, so
      // an invalid one fails the same way everywhere and is skipped.
      if (!(err instanceof RaftError && err.code === 'INVALID_CONFIG')) throw err;
      this.log.warn({ index: e.index, err: err.message }, 'skipped invalid conf change');
      return;
    }
    let addrs: Record<string, string> = {};
    try {
      if (cc.context.length > 0)
        addrs = JSON.parse(Buffer.from(cc.context).toString()) as Record<string, string>;
    } catch {
      this.log.warn({ index: e.index }, 'conf change context is not an address map');
    }
    const members = membersOf(this.confState);
    for (const id of before) if (!members.has(id)) this.removed.add(id);
    const next: Record<number, string> = {};
    for (const id of members) {
      const addr = addrs[id] ?? this.peers[id];
      if (addr) next[id] = addr;
    }
    this.setPeers(next);
    this.log.info({ index: e.index, confState: this.confState }, 'membership changed');
    if (before.has(this.id) && !members.has(this.id))
      this.markRemoved(`it applied its own removal at index ${e.index}`);
  }

  private setPeers(next: Record<number, string>): void {
    for (const id of Object.keys(this.peers).map(Number)) {
      if (!(id in next) && id !== this.id) this.opts.transport.removePeer(id);
    }
    for (const [id, addr] of Object.entries(next)) {
      if (Number(id) !== this.id && this.peers[Number(id)] !== addr)
        this.opts.transport.addPeer(Number(id), addr);
    }
    this.peers = next;
  }

  /**
   * Takes a snapshot every `snapshotEntries` applied entries. The state is
   * captured here, in the loop, so it matches `applied` exactly; serializing
   * and writing it go on in the background so that Ready batches (and
   * heartbeats) keep flowing while a large snapshot is made and fsynced.
   */
  private maybeSnapshot(): void {
    const every = this.opts.snapshotEntries ?? 10_000;
    if (this.snapshotWrite || this.applied - this.snapshotIndex < every) return;
    const index = this.applied;
    const confState = this.confState; // replaced on change, never mutated
    const peers = { ...this.peers };
    const removed = [...this.removed];
    const state = this.opts.stateMachine.snapshot();
    this.snapshotIndex = index;
    const started = this.clock.now();
    const make = async (): Promise<Snapshot | undefined> => {
      const app = await state;
      if (this.stopped) return undefined;
      // A snapshot from the leader may have overtaken this one meanwhile.
      if (snapIndex(this.storage.snapshot()) >= index) return undefined;
      const snap = this.storage.createSnapshot(
        index,
        confState,
        encodeSnapshotData(peers, app, removed),
      );
      const compactTo = index - (this.opts.keepEntries ?? 5_000);
      if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
      return snap;
    };
    this.snapshotWrite = make()
      .then((snap) => snap && this.opts.store.saveSnapshot(snap).then(() => snap))
      .then(
        (snap) =>
          snap &&
          this.log.info(
            { index, bytes: snap.data.length, ms: Math.round(this.clock.now() - started) },
            'snapshot taken',
          ),
        (err) => {
          // A snapshot from the leader may have overtaken ours: nothing lost.
          if (err instanceof RaftError && err.code === 'SNAPSHOT_OUT_OF_DATE') return;
          this.fail(err);
        },
      )
      .finally(() => {
        this.snapshotWrite = undefined;
      });
  }

  private noteLeader(lead: number): void {
    if (lead === this.lastLeader) return;
    this.lastLeader = lead;
    const term = this.raw.raft.term;
    this.log.info({ leader: lead, term }, 'leader changed');
    if (lead !== this.id) {
      // Proposals handed to a leader that is gone may never come back: fail
      // them now, so clients retry at once instead of waiting out a timeout.
      // They may still have been committed, so the outcome is unknown.
      const err = new RaftError(
        'LEADER_CHANGED',
        `leader changed (now ${lead || 'unknown'}, term ${term}); the outcome is unknown`,
      );
      for (const w of this.proposals.values()) {
        w.cancelTimer();
        w.reject(err);
      }
      this.proposals.clear();
      for (const w of this.reads.values()) {
        w.cancelTimer();
        w.reject(new RaftError('LEADER_CHANGED', `leader changed during a read; retry`));
      }
      this.reads.clear();
    }
    for (const l of this.leaderListeners) l(lead, term);
  }

  private checkDiskStall(): void {
    const limit =
      this.opts.diskStallMs ?? (this.opts.tickMs ?? 50) * (this.opts.electionTicks ?? 10);
    if (this.persistStartedAt === 0 || this.raw.raft.state !== StateType.Leader) return;
    if (this.clock.now() - this.persistStartedAt < limit) return;
    // A leader whose disk hangs would keep the group without a working
    // leader; stepping down lets the others elect one.
    this.log.error(
      { stalledMs: this.clock.now() - this.persistStartedAt },
      'disk write stalled: stepping down',
    );
    this.raw.stepDown();
  }

  private wait<K, T>(map: Map<K, Waiter<T>>, key: K, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancelTimer = this.clock.setTimeout(() => {
        if (map.get(key) === undefined) return;
        map.delete(key);
        reject(
          new RaftError(
            'TIMEOUT',
            `${what} timed out after ${this.opts.requestTimeoutMs ?? 5000} ms (leader ${this.raw.raft.lead || 'unknown'}); its outcome is unknown`,
          ),
        );
      }, this.opts.requestTimeoutMs ?? 5000);
      map.set(key, { resolve, reject, cancelTimer });
    });
  }

  private waitApplied(index: number, timeoutMs?: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let cancel = () => {};
      const entry = {
        index,
        resolve: () => {
          cancel();
          resolve();
        },
      };
      this.appliedWaiters.push(entry);
      if (timeoutMs !== undefined) {
        cancel = this.clock.setTimeout(() => {
          const i = this.appliedWaiters.indexOf(entry);
          if (i >= 0) this.appliedWaiters.splice(i, 1);
          reject(new RaftError('TIMEOUT', `index ${index} was not applied within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /** Resolves when `check` holds, checked after every Ready and tick; `check` may throw to fail. */
  private waitFor(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let cancel = () => {};
      const w = {
        check,
        resolve: () => {
          cancel();
          resolve();
        },
        reject: (e: Error) => {
          cancel();
          reject(e);
        },
      };
      cancel = this.clock.setTimeout(() => {
        const i = this.condWaiters.indexOf(w);
        if (i >= 0) this.condWaiters.splice(i, 1);
        reject(new RaftError('TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.condWaiters.push(w);
      this.checkConditions();
    });
  }

  private checkConditions(): void {
    for (const w of [...this.condWaiters]) {
      let done = false;
      let failure: Error | undefined;
      try {
        done = w.check();
      } catch (err) {
        failure = err as Error;
      }
      if (!done && !failure) continue;
      this.condWaiters.splice(this.condWaiters.indexOf(w), 1);
      if (failure) w.reject(failure);
      else w.resolve();
    }
  }

  private releaseAppliedWaiters(): void {
    this.checkConditions();
    if (this.appliedWaiters.length === 0) return;
    const keep: typeof this.appliedWaiters = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.applied) w.resolve();
      else keep.push(w);
    }
    this.appliedWaiters.length = 0;
    this.appliedWaiters.push(...keep);
  }

  private asRaftError(err: unknown): RaftError {
    if (err instanceof RaftError) {
      if (err.code === 'PROPOSAL_DROPPED' && this.raw.raft.lead === NONE) {
        return new RaftError(
          'NOT_LEADER',
          `no leader is known right now (${err.message}); retry shortly`,
        );
      }
      return err;
    }
    return new RaftError('PROPOSAL_DROPPED', String(err));
  }
}

function membersOf(cs: ConfState): Set<number> {
  return new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
}

/**
 * Snapshot data = u32 length | JSON | application bytes. The JSON is the
 * address book `{"1":"host:port",...}`, or, once a member was removed,
 * `{"peers":{...},"removed":[ids]}` (older snapshots have the first form).
 */
export function encodeSnapshotData(
  peers: Record<number, string>,
  app: Uint8Array,
  removed: number[] = [],
): Buffer {
  const p = Buffer.from(
    JSON.stringify(
      removed.length > 0 ? { peers, removed: [...removed].sort((a, b) => a - b) } : peers,
    ),
  );
  const out = Buffer.allocUnsafe(4 + p.length + app.length);
  out.writeUInt32BE(p.length, 0);
  p.copy(out, 4);
  out.set(app, 4 + p.length);
  return out;
}

export function decodeSnapshotData(data: Uint8Array): {
  peers: Record<number, string>;
  removed: number[];
  app: Uint8Array;
} {
  if (data.length === 0) return { peers: {}, removed: [], app: new Uint8Array() };
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const n = b.readUInt32BE(0);
  if (4 + n > b.length)
    throw new RaftError(
      'CORRUPT',
      `snapshot data: address book of ${n} bytes overruns ${b.length}`,
    );
  const book = JSON.parse(b.subarray(4, 4 + n).toString()) as Record<string, unknown>;
  const app = b.subarray(4 + n);
  if (Array.isArray(book.removed) && typeof book.peers === 'object' && book.peers !== null)
    return {
      peers: book.peers as Record<number, string>,
      removed: book.removed as number[],
      app,
    };
  return { peers: book as Record<number, string>, removed: [], app };
}

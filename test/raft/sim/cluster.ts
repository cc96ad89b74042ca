import { RawNode } from '../../../src/raft/raw-node';
import { decodeConfChange } from '../../../src/raft/raft';
import { MemoryStorage } from '../../../src/raft/storage';
import {
  ConfState,
  emptyConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  RaftError,
  Ready,
  snapIndex,
  StateType,
} from '../../../src/raft/types';
import { Rng } from '../../support/rng';
import { Invariants } from './invariants';

/**
 * A deterministic Raft cluster: every node is a RawNode over a MemoryStorage
 * that stands for its disk, driven by one seeded RNG and a virtual clock,
 * over a network that drops, delays, duplicates, reorders and partitions.
 * Nothing here reads the real clock, so a seed replays exactly.
 */

export interface FaultProfile {
  dropRate: number;
  dupRate: number;
  maxDelay: number;
  /** Per time unit. */
  crashRate: number;
  partitionRate: number;
  /** Probability that a crash lands in the middle of handling a Ready. */
  midReadyCrash: number;
  membership: boolean;
  /** Take a snapshot and compact after this many applied entries (0: never). */
  snapshotEvery: number;
}

/** What the sim applies: each proposal is "client:seq". The state machine is the set of applied ops. */
interface StateMachine {
  applied: number;
  ops: string[];
  /** Client writes "put|key|value|id" land here. */
  kv: Record<string, string>;
}

/** One client operation as seen from outside, for the linearizability checker. */
export interface ClientOp {
  clientId: number;
  input: { op: 'get' | 'put'; key: string; value?: string };
  output: { value?: string; unknown?: boolean };
  call: number;
  return: number;
}

interface PendingRead {
  node: number;
  key: string;
  call: number;
  clientId: number;
  index?: number;
}

export class SimNode {
  raw?: RawNode;
  sm: StateMachine = { applied: 0, ops: [], kv: {} };
  confState: ConfState = emptyConfState();
  lastState = StateType.Follower;
  lastLead = 0;
  /** The commit index as of the last synced write (what survives a crash). */
  syncedCommit = 0;
  constructor(
    readonly id: number,
    readonly storage: MemoryStorage,
  ) {}
  get alive(): boolean {
    return this.raw !== undefined;
  }
}

interface InFlight {
  at: number;
  seq: number;
  m: Message;
}

export class SimCluster {
  readonly rng: Rng;
  readonly nodes = new Map<number, SimNode>();
  readonly inv = new Invariants();
  now = 0;
  private net: InFlight[] = [];
  private msgSeq = 0;
  /** Directed links that are cut: "from>to". */
  private cut = new Set<string>();
  /** Proposals acknowledged to a client (applied on the node that took them). */
  readonly acked = new Set<string>();
  private pending = new Map<string, number>(); // op -> proposer id
  private opSeq = 0;
  readonly log: string[] = [];
  /** Client history (only when kvClients > 0). */
  readonly history: ClientOp[] = [];
  private pendingWrites = new Map<string, number>(); // op -> index in history
  private pendingReads = new Map<string, PendingRead>();
  private readSeq = 0;
  private readonly tickEvery = 10;

  constructor(
    readonly seed: number,
    readonly faults: FaultProfile,
    readonly initialVoters: number[],
    readonly pool: number[],
  ) {
    this.rng = new Rng(seed);
    for (const id of pool) {
      const storage = new MemoryStorage();
      if (initialVoters.includes(id)) {
        storage.bootstrap({ ...emptyConfState(), voters: [...initialVoters] });
      }
      const n = new SimNode(id, storage);
      n.syncedCommit = storage.hardStateValue().commit;
      this.nodes.set(id, n);
      this.start(n);
    }
  }

  private trace(s: string): void {
    this.log.push(`t=${this.now} ${s}`);
    if (this.log.length > 400) this.log.splice(0, 200);
  }

  private start(n: SimNode): void {
    const snap = n.storage.snapshot();
    const applied = snapIndex(snap);
    n.raw = new RawNode({
      id: n.id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: n.storage,
      applied,
      maxSizePerMsg: 4096,
      maxInflightMsgs: 8,
      maxUncommittedEntriesSize: 1 << 16,
      checkQuorum: true,
      preVote: true,
      rng: () => this.rng.next(),
    });
    n.sm =
      snap.data.length > 0
        ? (JSON.parse(Buffer.from(snap.data).toString()) as StateMachine)
        : { applied: 0, ops: [], kv: {} };
    n.sm.applied = applied;
    n.confState = snap.metadata?.confState ?? emptyConfState();
    n.lastState = StateType.Follower;
    n.lastLead = 0;
    this.inv.onRestart(n.id, n.storage.hardStateValue().commit);
  }

  crash(id: number): void {
    const n = this.nodes.get(id)!;
    if (!n.alive) return;
    n.raw = undefined;
    // A hard state written without sync (only the commit index moved) is
    // lost; term and vote always travel with a synced write.
    const hs = n.storage.hardStateValue();
    n.storage.setHardState({ ...hs, commit: n.syncedCommit });
    this.trace(`crash ${id}`);
    for (const [op, proposer] of this.pending) if (proposer === id) this.pending.delete(op);
    for (const [op, h] of this.pendingWrites) {
      if (op.endsWith(`|n${id}`)) {
        this.pendingWrites.delete(op);
        this.history[h].output = { unknown: true };
        this.history[h].return = Infinity;
      }
    }
    for (const [ctx, r] of this.pendingReads) if (r.node === id) this.pendingReads.delete(ctx);
  }

  restart(id: number): void {
    const n = this.nodes.get(id)!;
    if (n.alive) return;
    this.start(n);
    this.trace(`restart ${id}`);
  }

  heal(): void {
    this.cut.clear();
  }

  isolate(id: number): void {
    for (const other of this.pool) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raw && n.raw.raft.state === StateType.Leader) {
        if (!best || n.raw.raft.term > best.raw!.raft.term) best = n;
      }
    }
    return best;
  }

  /** Proposes a client op on node `id`; returns the op name or undefined when refused. */
  propose(id: number): string | undefined {
    const n = this.nodes.get(id)!;
    if (!n.raw) return undefined;
    const op = `c${id}:${++this.opSeq}`;
    try {
      n.raw.propose(Buffer.from(op));
      this.pending.set(op, id);
      return op;
    } catch (err) {
      if (err instanceof RaftError && err.code === 'PROPOSAL_DROPPED') return undefined;
      throw err;
    }
  }

  /** One unit of virtual time: ticks, deliveries, Ready handling, random faults. */
  step(opts: { faults: boolean; proposeRate: number }): void {
    this.now++;
    const f = this.faults;
    if (opts.faults) this.randomFaults();
    if (this.now % this.tickEvery === 0) {
      for (const n of this.nodes.values()) {
        // Clock skew: a node occasionally misses or doubles a tick.
        if (!n.raw) continue;
        if (opts.faults && this.rng.chance(0.05)) continue;
        n.raw.tick();
        if (opts.faults && this.rng.chance(0.03)) n.raw.tick();
      }
    }
    if (opts.proposeRate > 0 && this.rng.chance(opts.proposeRate)) {
      const alive = [...this.nodes.values()].filter((n) => n.alive);
      if (alive.length > 0) this.propose(this.rng.pick(alive).id);
    }
    if (opts.faults && f.membership && this.rng.chance(0.002)) this.randomConfChange();
    this.deliverDue();
    for (const n of this.rng.shuffle([...this.nodes.values()])) this.handleReady(n, opts.faults);
  }

  private randomFaults(): void {
    const f = this.faults;
    if (this.rng.chance(f.crashRate)) {
      const n = this.rng.pick([...this.nodes.values()]);
      if (n.alive) this.crash(n.id);
    }
    // Crashed nodes come back after a while.
    for (const n of this.nodes.values()) if (!n.alive && this.rng.chance(0.01)) this.restart(n.id);
    if (this.rng.chance(f.partitionRate)) this.randomPartition();
  }

  private randomPartition(): void {
    const ids = this.pool;
    const kind = this.rng.int(0, 5);
    this.cut.clear();
    switch (kind) {
      case 0: // heal
        this.trace('partition: healed');
        break;
      case 1: {
        const id = this.rng.pick(ids);
        this.isolate(id);
        this.trace(`partition: isolate ${id}`);
        break;
      }
      case 2: {
        // Split in two groups.
        const shuffled = this.rng.shuffle([...ids]);
        const k = this.rng.int(1, ids.length - 1);
        const a = new Set(shuffled.slice(0, k));
        for (const x of ids)
          for (const y of ids) if (a.has(x) !== a.has(y)) this.cut.add(`${x}>${y}`);
        this.trace(`partition: split {${[...a].join(',')}}`);
        break;
      }
      case 3: {
        // Asymmetric: a node can send but not receive (or the reverse).
        const id = this.rng.pick(ids);
        const inbound = this.rng.chance(0.5);
        for (const o of ids) if (o !== id) this.cut.add(inbound ? `${o}>${id}` : `${id}>${o}`);
        this.trace(`partition: ${id} ${inbound ? 'deaf' : 'mute'}`);
        break;
      }
      case 4: {
        // Partial: a node reaches only the current leader.
        const lead = this.leader();
        const id = this.rng.pick(ids);
        for (const o of ids) {
          if (o === id || o === lead?.id) continue;
          this.cut.add(`${id}>${o}`);
          this.cut.add(`${o}>${id}`);
        }
        this.trace(`partition: ${id} reaches only leader ${lead?.id ?? '-'}`);
        break;
      }
      default: {
        // Random cut links.
        for (const x of ids)
          for (const y of ids) if (x !== y && this.rng.chance(0.25)) this.cut.add(`${x}>${y}`);
        this.trace(`partition: random links [${[...this.cut].join(' ')}]`);
      }
    }
  }

  private randomConfChange(): void {
    const lead = this.leader();
    if (!lead?.raw) return;
    const cs = lead.confState;
    const voters = new Set(cs.voters);
    const learners = new Set(cs.learners);
    const changes: { type: number; nodeId: number }[] = [];
    const nChanges = this.rng.chance(0.3) ? 2 : 1;
    for (let i = 0; i < nChanges; i++) {
      const id = this.rng.pick(this.pool);
      const r = this.rng.next();
      if (voters.has(id)) {
        if (voters.size > 1 && r < 0.5) {
          changes.push({ type: 1, nodeId: id }); // remove
          voters.delete(id);
        } else {
          changes.push({ type: 2, nodeId: id }); // demote to learner
          voters.delete(id);
          learners.add(id);
        }
      } else {
        changes.push({ type: r < 0.7 ? 0 : 2, nodeId: id });
        if (r < 0.7) voters.add(id);
        else learners.add(id);
      }
    }
    if (voters.size === 0) return;
    if (!voters.has(lead.id)) {
      // The core refuses to remove or demote the leader; like the driver,
      // move leadership away first.
      const others = cs.voters.filter((id) => id !== lead.id);
      if (others.length > 0) lead.raw.transferLeadership(this.rng.pick(others));
      return;
    }
    try {
      lead.raw.proposeConfChange({ transition: 0, changes, context: Buffer.alloc(0) });
      this.trace(`confchange proposed at ${lead.id}: ${JSON.stringify(changes)}`);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
  }

  private send(msgs: Message[]): void {
    for (const m of msgs) {
      if (this.cut.has(`${m.from}>${m.to}`) || this.rng.chance(this.faults.dropRate)) {
        if (m.type === MessageType.MSG_SNAP) this.snapshotReport(m, false);
        continue;
      }
      const copies = this.rng.chance(this.faults.dupRate) ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        this.net.push({
          at: this.now + this.rng.int(1, this.faults.maxDelay),
          seq: ++this.msgSeq,
          m,
        });
      }
    }
  }

  private snapshotReport(m: Message, ok: boolean): void {
    const from = this.nodes.get(m.from);
    from?.raw?.reportSnapshot(m.to, ok);
  }

  private deliverDue(): void {
    if (this.net.length === 0) return;
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const x of this.net) (x.at <= this.now ? due : rest).push(x);
    this.net = rest;
    // Messages due at the same time arrive in random order (reordering).
    for (const x of this.rng.shuffle(due)) {
      const to = this.nodes.get(x.m.to);
      if (!to?.raw || this.cut.has(`${x.m.from}>${x.m.to}`)) {
        if (x.m.type === MessageType.MSG_SNAP) this.snapshotReport(x.m, false);
        continue;
      }
      try {
        to.raw.step(x.m);
      } catch (err) {
        if (!(err instanceof RaftError)) throw err;
      }
      if (x.m.type === MessageType.MSG_SNAP) this.snapshotReport(x.m, true);
    }
  }

  /**
   * The driver loop for one node, in the documented order: persist, send,
   * apply, advance. A leader may send before it persists (its own ack
   * counts only once the next Ready is taken, after this one is durable).
   * A crash may cut the sequence anywhere.
   */
  handleReady(n: SimNode, faults: boolean): void {
    if (!n.raw || !n.raw.hasReady()) return;
    const rd = n.raw.ready();
    const raft = n.raw.raft;
    const crashAt = faults && this.rng.chance(this.faults.midReadyCrash) ? this.rng.int(0, 2) : -1;
    const isLeader = raft.state === StateType.Leader;
    if (isLeader) {
      if (crashAt === 0) return this.crash(n.id);
      this.send(rd.messages);
      if (crashAt === 1) return this.crash(n.id);
      this.persist(n, rd);
    } else {
      if (crashAt === 0) return this.crash(n.id);
      this.persist(n, rd);
      if (crashAt === 1) return this.crash(n.id);
      this.send(rd.messages);
    }
    if (crashAt === 2) return this.crash(n.id);
    this.apply(n, rd);
    for (const rs of rd.readStates) {
      const r = this.pendingReads.get(Buffer.from(rs.requestCtx).toString());
      if (r && r.node === n.id) r.index = rs.index;
    }
    this.completeReads(n);
    n.raw.advance(rd);
    if (rd.softState) {
      if (rd.softState.state === StateType.Leader && n.lastState !== StateType.Leader) {
        this.trace(`${n.id} became leader term ${raft.term}`);
        this.inv.onLeader(n.id, raft.term, raft.raftLog, this.now);
      }
      n.lastState = rd.softState.state;
      n.lastLead = rd.softState.lead;
    }
    this.maybeSnapshot(n);
  }

  private persist(n: SimNode, rd: Ready): void {
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      this.inv.onAppend(n.id, rd.entries, n.storage, this.now);
      n.storage.append(rd.entries);
    }
    if (rd.hardState) {
      n.storage.setHardState(rd.hardState);
      if (rd.mustSync) n.syncedCommit = rd.hardState.commit;
      this.inv.onCommit(n.id, rd.hardState.commit, n.storage, this.now);
    }
  }

  private apply(n: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      const data = Buffer.from(rd.snapshot.data);
      n.sm =
        data.length > 0
          ? (JSON.parse(data.toString()) as StateMachine)
          : { applied: 0, ops: [], kv: {} };
      n.sm.applied = snapIndex(rd.snapshot);
      n.confState = rd.snapshot.metadata?.confState ?? emptyConfState();
    }
    for (const e of rd.committedEntries) {
      if (e.index !== n.sm.applied + 1) {
        throw new Error(
          `t=${this.now}: node ${n.id} applies ${e.index} after ${n.sm.applied}: out of order`,
        );
      }
      this.inv.onApply(n.id, e, this.now);
      n.sm.applied = e.index;
      if (e.type === EntryType.ENTRY_CONF_CHANGE) {
        this.applyConfChange(n, e);
      } else if (e.data.length > 0) {
        const op = Buffer.from(e.data).toString();
        n.sm.ops.push(op);
        if (op.startsWith('put|')) {
          const [, key, value] = op.split('|');
          n.sm.kv[key] = value;
        }
        if (this.pending.get(op) === n.id) {
          this.pending.delete(op);
          this.acked.add(op);
          const h = this.pendingWrites.get(op);
          if (h !== undefined) {
            this.pendingWrites.delete(op);
            this.history[h].output = {};
            this.history[h].return = this.now;
          }
        }
      }
    }
  }

  private applyConfChange(n: SimNode, e: Entry): void {
    const cc = decodeConfChange(e.data);
    try {
      n.confState = n.raw!.applyConfChange(cc);
      this.trace(`${n.id} applied confchange @${e.index}: ${JSON.stringify(n.confState)}`);
    } catch (err) {
      // Every node applies the same entries to the same configuration, so an
      // invalid change fails identically everywhere and is skipped.
      if (!(err instanceof RaftError && err.code === 'INVALID_CONFIG')) throw err;
    }
  }

  private maybeSnapshot(n: SimNode): void {
    const every = this.faults.snapshotEvery;
    if (every <= 0) return;
    const snapAt = snapIndex(n.storage.snapshot());
    if (n.sm.applied - snapAt < every) return;
    const data = Buffer.from(JSON.stringify(n.sm));
    n.storage.createSnapshot(n.sm.applied, n.confState, data);
    // Keep a few entries so slightly lagging followers need no snapshot.
    n.storage.compact(Math.max(snapAt, n.sm.applied - 5));
  }

  /** A client write of key=value through node `id` (recorded in the history). */
  clientPut(clientId: number, id: number, key: string, value: string): void {
    const n = this.nodes.get(id)!;
    if (!n.raw) return;
    const op = `put|${key}|${value}|c${clientId}-${++this.opSeq}|n${id}`;
    try {
      n.raw.propose(Buffer.from(op));
    } catch (err) {
      if (err instanceof RaftError && err.code === 'PROPOSAL_DROPPED') return; // refused: no effect
      throw err;
    }
    this.pending.set(op, id);
    this.pendingWrites.set(op, this.history.length);
    this.history.push({
      clientId,
      input: { op: 'put', key, value },
      output: { unknown: true },
      call: this.now,
      return: Infinity,
    });
  }

  /** A linearizable client read through node `id` (ReadIndex, then wait until applied). */
  clientGet(clientId: number, id: number, key: string): void {
    const n = this.nodes.get(id)!;
    if (!n.raw) return;
    const ctx = `read-${++this.readSeq}`;
    try {
      n.raw.readIndex(Buffer.from(ctx));
    } catch (err) {
      if (err instanceof RaftError && err.code === 'PROPOSAL_DROPPED') return;
      throw err;
    }
    this.pendingReads.set(ctx, { node: id, key, call: this.now, clientId });
  }

  /**
   * A read of node `id`'s local state, without ReadIndex: not linearizable
   * (a partitioned or lagging member answers with old data). It exists so the
   * tests can show the checker catches exactly that.
   */
  clientLocalGet(clientId: number, id: number, key: string): void {
    const n = this.nodes.get(id)!;
    if (!n.raw) return;
    this.history.push({
      clientId,
      input: { op: 'get', key },
      output: { value: n.sm.kv[key] },
      call: this.now,
      return: this.now,
    });
  }

  private completeReads(n: SimNode): void {
    for (const [ctx, r] of this.pendingReads) {
      if (r.node !== n.id || r.index === undefined || n.sm.applied < r.index) continue;
      this.pendingReads.delete(ctx);
      this.history.push({
        clientId: r.clientId,
        input: { op: 'get', key: r.key },
        output: { value: n.sm.kv[r.key] },
        call: r.call,
        return: this.now,
      });
    }
  }

  /** Heals everything and runs until every member applied a fresh write, or gives up. */
  stabilize(maxUnits: number): { ok: boolean; reason: string } {
    this.heal();
    for (const n of this.nodes.values()) this.restart(n.id);
    let marker: string | undefined;
    let markerAt = 0;
    const deadline = this.now + maxUnits;
    while (this.now < deadline) {
      this.step({ faults: false, proposeRate: 0 });
      const lead = this.leader();
      if (!lead) continue;
      // A marker taken by a leader that was then deposed may never apply: retry.
      const stale = marker !== undefined && !this.acked.has(marker) && this.now - markerAt > 300;
      if (marker === undefined || stale || (!this.acked.has(marker) && !this.pending.has(marker))) {
        marker = this.propose(lead.id);
        markerAt = this.now;
        continue;
      }
      if (!this.acked.has(marker)) continue;
      // Every member of the leader's configuration has applied the marker.
      const members = [...lead.confState.voters, ...lead.confState.learners];
      const commit = lead.raw!.raft.raftLog.committed;
      // A leader elected after the marker was acked may not have caught up
      // with the commit index of its predecessor yet.
      const maxCommit = Math.max(
        ...[...this.nodes.values()].map((n) => n.raw!.raft.raftLog.committed),
      );
      if (commit < maxCommit) continue;
      if (members.every((id) => this.nodes.get(id)!.sm.applied >= commit))
        return { ok: true, reason: '' };
    }
    const states = [...this.nodes.values()].map(
      (n) =>
        `${n.id}:${n.raw?.raft.state}/t${n.raw?.raft.term}/c${n.raw?.raft.raftLog.committed}/a${n.sm.applied}`,
    );
    return { ok: false, reason: `no progress after healing: ${states.join(' ')}` };
  }

  /** Every acknowledged op is in the state machine of every member that caught up. */
  checkDurability(): void {
    const lead = this.leader()!;
    const members = [...lead.confState.voters, ...lead.confState.learners];
    for (const id of members) {
      const ops = new Set(this.nodes.get(id)!.sm.ops);
      for (const op of this.acked) {
        if (!ops.has(op)) throw new Error(`acknowledged op ${op} missing from node ${id}`);
      }
    }
  }
}

import { decodeConfChange, ReadOnlyOption } from '../../../src/raft/raft';
import { RawNode } from '../../../src/raft/raw-node';
import { MemoryStorage } from '../../../src/raft/storage';
import { configToConfState } from '../../../src/raft/tracker';
import {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
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

/**
 * A small deterministic cluster for scenario tests, in the spirit of
 * etcd-io/raft's interaction tests: every node is a RawNode over a
 * MemoryStorage, time moves only when a test ticks, and messages move only
 * when a test delivers them. There is no randomness: node i's randomized
 * election timeout is always ELECTION_TICK + (i - 1) ticks, so node 1 times
 * out first, then node 2, and so on, and elections never split by accident.
 */

export const ELECTION_TICK = 10;
export const HEARTBEAT_TICK = 1;

export interface ScenarioOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  readOnlyOption?: ReadOnlyOption;
}

export interface ReadResult {
  index: number;
  ctx: string;
}

export type Transition = 'auto' | 'implicit' | 'explicit';

class ScenarioNode {
  readonly raw: RawNode;
  /** The state machine: data of every applied normal entry, in order. */
  values: string[] = [];
  appliedIndex: number;
  confState: ConfState;
  reads: ReadResult[] = [];

  constructor(
    readonly id: number,
    readonly storage: MemoryStorage,
    opts: ScenarioOptions,
  ) {
    const snap = storage.snapshot();
    this.appliedIndex = snapIndex(snap);
    this.confState = snap.metadata?.confState ?? emptyConfState();
    // A fixed "random" draw per node: the timeout is ELECTION_TICK + (id - 1).
    const draw = (((id - 1) % ELECTION_TICK) + 0.5) / ELECTION_TICK;
    this.raw = new RawNode({
      id,
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      storage,
      applied: this.appliedIndex,
      preVote: opts.preVote ?? true,
      checkQuorum: opts.checkQuorum ?? true,
      readOnlyOption: opts.readOnlyOption ?? 'safe',
      rng: () => draw,
    });
  }
}

export class Scenario {
  private readonly nodes = new Map<number, ScenarioNode>();
  /** Messages sent and not yet delivered, in send order. */
  private inFlight: Message[] = [];
  /** Directed links that drop everything: "from>to". */
  private readonly cuts = new Set<string>();
  /** Every message that reached its recipient, in order. */
  private history: Message[] = [];

  /** A fresh group whose founding voters all bootstrap the same configuration. */
  constructor(
    voters: number[],
    private readonly opts: ScenarioOptions = {},
  ) {
    for (const id of voters) {
      const storage = new MemoryStorage();
      storage.bootstrap({ ...emptyConfState(), voters: [...voters] });
      this.nodes.set(id, new ScenarioNode(id, storage, opts));
    }
  }

  /**
   * A new, empty node that is not (yet) a member: it learns the group from
   * the snapshot the leader sends once a conf change adds it.
   */
  addNode(id: number): void {
    if (this.nodes.has(id)) throw new Error(`node ${id} already exists`);
    this.nodes.set(id, new ScenarioNode(id, new MemoryStorage(), this.opts));
  }

  raw(id: number): RawNode {
    return this.node(id).raw;
  }

  private node(id: number): ScenarioNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  // ---- inputs -------------------------------------------------------------

  /** Ticks one node `n` times without processing anything. */
  tick(id: number, n = 1): void {
    for (let i = 0; i < n; i++) this.raw(id).tick();
  }

  /** Lets `n` ticks pass on the given nodes (default: all), stabilizing after each. */
  elapse(n: number, ids: number[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.raw(id).tick();
      this.stabilize();
    }
  }

  campaign(id: number): void {
    this.raw(id).campaign();
  }

  /** Proposes on node `id` (a follower forwards to its leader); throws when refused. */
  propose(id: number, data: string): void {
    this.raw(id).propose(Buffer.from(data));
  }

  /**
   * Proposes a membership change in etcd's notation: "v4" adds voter 4,
   * "l4" adds (or demotes to) learner 4, "r4" removes 4; "" leaves a joint
   * configuration. More than one change, or a transition other than
   * 'auto', goes through joint consensus.
   */
  proposeConfChange(id: number, changes: string, transition: Transition = 'auto'): void {
    this.raw(id).proposeConfChange(confChange(changes, transition));
  }

  readIndex(id: number, ctx: string): void {
    this.raw(id).readIndex(Buffer.from(ctx));
  }

  transferLeadership(leader: number, to: number): void {
    this.raw(leader).transferLeadership(to);
  }

  // ---- the network --------------------------------------------------------

  /** Drops every message from `a` to `b` (one direction only). */
  cut(a: number, b: number): void {
    this.cuts.add(`${a}>${b}`);
  }

  /** Cuts `id` off from every other node, both ways. */
  isolate(id: number): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut(id, other);
      this.cut(other, id);
    }
  }

  heal(): void {
    this.cuts.clear();
  }

  /**
   * Delivers the messages in flight that match `filter` (default: all) and
   * keeps the rest in flight. Messages over a cut link are dropped. Answers
   * stay inside the receivers until their next Ready is processed.
   * Returns how many messages left the network.
   */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const now = this.inFlight.filter(filter);
    this.inFlight = this.inFlight.filter((m) => !filter(m));
    for (const m of now) {
      const to = this.nodes.get(m.to);
      if (!to || this.cuts.has(`${m.from}>${m.to}`)) {
        if (m.type === MessageType.MSG_SNAP) this.raw(m.from).reportSnapshot(m.to, false);
        continue;
      }
      this.history.push(m);
      try {
        to.raw.step(m);
      } catch (err) {
        // A forwarded proposal that finds no leader, an answer from a member
        // that was removed: refusals a real transport would swallow too.
        if (!(err instanceof RaftError)) throw err;
      }
      if (m.type === MessageType.MSG_SNAP) this.raw(m.from).reportSnapshot(m.to, true);
    }
    return now.length;
  }

  /** Messages that reached their recipient (since `forgetDelivered`) and match `filter`. */
  delivered(filter: (m: Message) => boolean = () => true): Message[] {
    return this.history.filter(filter);
  }

  forgetDelivered(): void {
    this.history = [];
  }

  // ---- the driver loop ----------------------------------------------------

  /**
   * Handles one Ready of node `id` in the order types.ts documents:
   * persist, send, apply, advance. Returns false when there was none.
   */
  processReady(id: number): boolean {
    const n = this.node(id);
    if (!n.raw.hasReady()) return false;
    const rd = n.raw.ready();
    persist(n.storage, rd);
    this.inFlight.push(...rd.messages);
    this.apply(n, rd);
    for (const rs of rd.readStates) {
      n.reads.push({ index: rs.index, ctx: Buffer.from(rs.requestCtx).toString() });
    }
    n.raw.advance(rd);
    return true;
  }

  /**
   * Processes Ready on every node and delivers every message, over and over,
   * until nothing moves (or `until` holds after a round of deliveries).
   */
  stabilize(until?: () => boolean): void {
    for (let round = 0; round < 1000; round++) {
      let moved = false;
      for (const id of [...this.nodes.keys()].sort((a, b) => a - b)) {
        if (this.processReady(id)) moved = true;
      }
      if (this.deliver() > 0) moved = true;
      if (!moved || until?.()) return;
    }
    throw new Error(`no stable state after 1000 rounds:\n${this.summary()}`);
  }

  private apply(n: ScenarioNode, rd: Ready): void {
    if (rd.snapshot) {
      const data = Buffer.from(rd.snapshot.data).toString();
      n.values = data.length > 0 ? (JSON.parse(data) as string[]) : [];
      n.appliedIndex = snapIndex(rd.snapshot);
      n.confState = rd.snapshot.metadata?.confState ?? emptyConfState();
    }
    for (const e of rd.committedEntries) {
      n.appliedIndex = e.index;
      if (e.type === EntryType.ENTRY_CONF_CHANGE) {
        try {
          n.confState = n.raw.applyConfChange(decodeConfChange(e.data));
        } catch (err) {
          // An invalid change fails the same way on every node: skip it.
          if (!(err instanceof RaftError && err.code === 'INVALID_CONFIG')) throw err;
        }
      } else if (e.data.length > 0) {
        n.values.push(Buffer.from(e.data).toString());
      }
    }
  }

  // ---- snapshots ----------------------------------------------------------

  /**
   * Takes a snapshot of node `id`'s state machine at its applied index and
   * drops every log entry it covers.
   */
  compact(id: number): void {
    const n = this.node(id);
    n.storage.createSnapshot(n.appliedIndex, n.confState, Buffer.from(JSON.stringify(n.values)));
    n.storage.compact(n.appliedIndex);
  }

  snapshotIndex(id: number): number {
    return snapIndex(this.node(id).storage.snapshot());
  }

  // ---- observations -------------------------------------------------------

  /** "Leader term=2 lead=1 commit=5": the state worth asserting on, in one line. */
  status(id: number): string {
    const r = this.raw(id).raft;
    return `${r.state} term=${r.term} lead=${r.lead} commit=${r.raftLog.committed}`;
  }

  state(id: number): StateType {
    return this.raw(id).raft.state;
  }

  term(id: number): number {
    return this.raw(id).raft.term;
  }

  commit(id: number): number {
    return this.raw(id).raft.raftLog.committed;
  }

  vote(id: number): number {
    return this.raw(id).raft.vote;
  }

  /** The log as "term/index data" lines, from the first retained entry. */
  log(id: number): string[] {
    const l = this.raw(id).raft.raftLog;
    const first = l.firstIndex();
    const last = l.lastIndex();
    if (last < first) return [];
    return l.slice(first, last + 1, Number.MAX_SAFE_INTEGER).map(formatEntry);
  }

  /** Data of every normal entry node `id` has applied, in order. */
  applied(id: number): string[] {
    return [...this.node(id).values];
  }

  /** Read states node `id` has received, oldest first. */
  reads(id: number): ReadResult[] {
    return [...this.node(id).reads];
  }

  /** The configuration node `id` works with, in etcd's notation. */
  config(id: number): string {
    return formatConfState(configToConfState(this.raw(id).raft.tracker.config));
  }

  summary(): string {
    return [...this.nodes.keys()]
      .sort((a, b) => a - b)
      .map((id) => `${id}: ${this.status(id)}`)
      .join('\n');
  }
}

function persist(storage: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  if (rd.entries.length > 0) storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
}

function confChange(spec: string, transition: Transition): ConfChange {
  const types: Record<string, ConfChangeType> = {
    v: ConfChangeType.CONF_ADD_NODE,
    l: ConfChangeType.CONF_ADD_LEARNER,
    r: ConfChangeType.CONF_REMOVE_NODE,
  };
  const changes: ConfChangeSingle[] = spec
    .split(/\s+/)
    .filter((s) => s.length > 0)
    .map((s) => {
      const type = types[s[0]];
      const nodeId = Number(s.slice(1));
      if (type === undefined || !Number.isInteger(nodeId)) throw new Error(`bad change "${s}"`);
      return { type, nodeId };
    });
  const transitions: Record<Transition, ConfChangeTransition> = {
    auto: ConfChangeTransition.TRANSITION_AUTO,
    implicit: ConfChangeTransition.TRANSITION_JOINT_IMPLICIT,
    explicit: ConfChangeTransition.TRANSITION_JOINT_EXPLICIT,
  };
  return { transition: transitions[transition], changes, context: Buffer.alloc(0) };
}

function formatEntry(e: Entry): string {
  const head = `${e.term}/${e.index}`;
  if (e.type !== EntryType.ENTRY_CONF_CHANGE) {
    return e.data.length > 0 ? `${head} ${Buffer.from(e.data).toString()}` : head;
  }
  const cc = decodeConfChange(e.data);
  const letter: Record<number, string> = {
    [ConfChangeType.CONF_ADD_NODE]: 'v',
    [ConfChangeType.CONF_ADD_LEARNER]: 'l',
    [ConfChangeType.CONF_REMOVE_NODE]: 'r',
  };
  const body =
    cc.changes.length === 0
      ? 'leave'
      : cc.changes.map((c) => `${letter[c.type]}${c.nodeId}`).join(' ');
  const kind =
    cc.transition === ConfChangeTransition.TRANSITION_JOINT_EXPLICIT
      ? 'conf/explicit'
      : cc.transition === ConfChangeTransition.TRANSITION_JOINT_IMPLICIT
        ? 'conf/implicit'
        : 'conf';
  return `${head} ${kind}: ${body}`;
}

/** etcd's notation: "voters=(1 2 3)&&(1 2 4) learners=(5) learners_next=(3) autoleave". */
function formatConfState(cs: ConfState): string {
  const ids = (xs: number[]) => `(${xs.join(' ')})`;
  let s = `voters=${ids(cs.voters)}`;
  if (cs.votersOutgoing.length > 0) s += `&&${ids(cs.votersOutgoing)}`;
  if (cs.learners.length > 0) s += ` learners=${ids(cs.learners)}`;
  if (cs.learnersNext.length > 0) s += ` learners_next=${ids(cs.learnersNext)}`;
  if (cs.autoLeave) s += ' autoleave';
  return s;
}

/** Message filters for `deliver` and `delivered`. */
export const msgs = {
  to:
    (id: number) =>
    (m: Message): boolean =>
      m.to === id,
  from:
    (id: number) =>
    (m: Message): boolean =>
      m.from === id,
  ofType:
    (t: MessageType) =>
    (m: Message): boolean =>
      m.type === t,
};

/**
 * The vocabulary of the Raft core. Wire messages, entries, hard state and
 * snapshots are the generated protobuf types (proto/raft.proto); this file
 * adds the in-process values the core hands to its driver.
 */
import {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
} from '../gen/raft';

export {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
};

/** Node ids are positive integers; 0 means "nobody" (no leader, no vote). */
export const NONE = 0;

export enum StateType {
  Follower = 'Follower',
  PreCandidate = 'PreCandidate',
  Candidate = 'Candidate',
  Leader = 'Leader',
}

/** Volatile state worth telling the application about (not persisted). */
export interface SoftState {
  lead: number;
  state: StateType;
}

/** Answer to a ReadIndex request: once `index` is applied, a read is linearizable. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/**
 * What the core asks of its driver, in this order:
 *  1. persist `hardState`, `entries` and `snapshot` (durably when `mustSync`);
 *  2. send `messages`;
 *  3. apply `snapshot` (if any) then `committedEntries` to the state machine;
 *  4. call `advance()`.
 * Messages may only leave after the state they depend on is durable: a vote
 * must not be granted by a node that could forget it after a crash (§5.2,
 * Figure 2 "persistent state ... updated on stable storage before responding").
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  mustSync: boolean;
}

export function emptyHardState(): HardState {
  return { term: 0, vote: 0, commit: 0 };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === 0 && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export function emptySnapshot(): Snapshot {
  return { data: Buffer.alloc(0), metadata: { confState: emptyConfState(), index: 0, term: 0 } };
}

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || (s.metadata?.index ?? 0) === 0;
}

export function snapIndex(s: Snapshot): number {
  return s.metadata?.index ?? 0;
}

export function snapTerm(s: Snapshot): number {
  return s.metadata?.term ?? 0;
}

export function newMessage(m: Partial<Message> & { type: MessageType }): Message {
  return {
    to: 0,
    from: 0,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: undefined,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    ...m,
  };
}

export function newEntry(e: Partial<Entry>): Entry {
  return { term: 0, index: 0, type: EntryType.ENTRY_NORMAL, data: EMPTY_BYTES, ...e };
}

export const EMPTY_BYTES: Buffer = Buffer.alloc(0);

/** Approximate bytes an entry costs, for size limits on batches and the uncommitted tail. */
export function entrySize(e: Entry): number {
  return e.data.length + 24;
}

export function payloadSize(e: Entry): number {
  return e.data.length;
}

/** Messages that answer another message (they carry no new request). */
export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MSG_APP_RESP ||
    t === MessageType.MSG_VOTE_RESP ||
    t === MessageType.MSG_PRE_VOTE_RESP ||
    t === MessageType.MSG_HEARTBEAT_RESP ||
    t === MessageType.MSG_READ_INDEX_RESP
  );
}

/** Messages that never leave the process: the application feeds them to its own node. */
export function isLocalMsg(t: MessageType): boolean {
  return t === MessageType.MSG_UNKNOWN;
}

export function voteRespType(t: MessageType): MessageType {
  return t === MessageType.MSG_VOTE ? MessageType.MSG_VOTE_RESP : MessageType.MSG_PRE_VOTE_RESP;
}

/** Typed errors of the Raft library; `code` is stable for callers to switch on. */
export class RaftError extends Error {
  constructor(
    readonly code:
      | 'COMPACTED'
      | 'UNAVAILABLE'
      | 'SNAPSHOT_OUT_OF_DATE'
      | 'PROPOSAL_DROPPED'
      | 'STEP_LOCAL'
      | 'STEP_PEER_NOT_FOUND'
      | 'CORRUPT'
      | 'STOPPED'
      | 'NOT_LEADER'
      | 'TIMEOUT'
      | 'LEADER_CHANGED'
      | 'INVALID_CONFIG',
    message: string,
  ) {
    super(message);
    this.name = 'RaftError';
  }
}

/**
 * Thrown by a state machine that cannot apply an entry or a snapshot on
 * this replica alone (it lacks the key to read it, say). Other failures of
 * apply are the same on every replica, so the entry is skipped everywhere;
 * skipping this one would leave this replica's state unlike the others',
 * so the node stops instead.
 */
export class ApplyHaltError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApplyHaltError';
  }
}

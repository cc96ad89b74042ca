import { Entry, HardState, Snapshot } from './types';

/** What a node finds on disk when it starts. */
export interface DurableState {
  hardState: HardState;
  /** The newest snapshot, if any; `entries` continue right after it. */
  snapshot?: Snapshot;
  entries: Entry[];
}

/**
 * The durable half of a node's Raft state (the in-memory half is
 * MemoryStorage). Implemented on LevelDB by `leveldb-store.ts`.
 */
export interface DurableStore {
  /** Reads everything back, verifying checksums; throws RaftError('CORRUPT') on damage. */
  load(): Promise<DurableState>;
  /**
   * One group commit: the hard state (if given) and all entries in a single
   * write batch, synced to disk when `sync`. An entry at index i replaces any
   * stored entry i and removes every stored entry after it (conflict truncation).
   */
  save(hardState: HardState | undefined, entries: Entry[], sync: boolean): Promise<void>;
  /** Persists a snapshot (file with checksum) and makes it the base of the log. */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Drops entries with index <= `index` (they are covered by a saved snapshot). */
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}

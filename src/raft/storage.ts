import {
  ConfState,
  emptyConfState,
  emptyHardState,
  emptySnapshot,
  Entry,
  entrySize,
  HardState,
  newEntry,
  RaftError,
  Snapshot,
  snapIndex,
} from './types';

/**
 * The read side of the Raft log as the core sees it: everything that has been
 * made durable. Reads are synchronous (the core is pure and never waits); the
 * driver keeps this view in memory and writes through to LevelDB
 * (`leveldb-store.ts`) before handing it new entries.
 *
 * Errors: `COMPACTED` when asking below the first retained index,
 * `UNAVAILABLE` when asking past the last index.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at least one if any, at most about `maxSize` bytes. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i, for i in [firstIndex()-1, lastIndex()]. */
  term(i: number): number;
  lastIndex(): number;
  firstIndex(): number;
  snapshot(): Snapshot;
}

/** Cuts a list of entries down to the byte budget, always keeping the first. */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/**
 * In-memory Storage, also used by the driver as the cache in front of the
 * durable store. `ents[0]` is a dummy holding the index and term of the last
 * entry covered by the snapshot, so `term(firstIndex()-1)` always answers.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  private ents: Entry[] = [newEntry({})];

  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: { ...this.hardState },
      confState: this.snap.metadata?.confState ?? emptyConfState(),
    };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  hardStateValue(): HardState {
    return { ...this.hardState };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new RaftError('COMPACTED', `entries ${lo}: compacted up to ${offset}`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError(
        'UNAVAILABLE',
        `entries [${lo}, ${hi}) past last index ${this.lastIndex()}`,
      );
    }
    // Only the dummy entry: nothing to return.
    if (this.ents.length === 1) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new RaftError('COMPACTED', `term ${i}: compacted up to ${offset}`);
    if (i - offset >= this.ents.length)
      throw new RaftError('UNAVAILABLE', `term ${i}: past last index`);
    return this.ents[i - offset].term;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Sets the membership of a brand-new group: every founding member calls
   * this with the same configuration, which becomes a snapshot at index 1,
   * term 1. A node that joins later starts empty and so is sent that (or a
   * later) snapshot, from which it learns the whole membership; entries alone
   * would never tell it about the founders.
   */
  bootstrap(cs: ConfState, data: Uint8Array = new Uint8Array()): void {
    if (this.lastIndex() !== 0 || snapIndex(this.snap) !== 0) {
      throw new RaftError('INVALID_CONFIG', 'can only bootstrap an empty log');
    }
    this.snap = { data: Buffer.from(data), metadata: { index: 1, term: 1, confState: cs } };
    this.ents = [newEntry({ index: 1, term: 1 })];
    this.hardState = { term: 1, vote: 0, commit: 1 };
  }

  /** Replaces the whole contents with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snapIndex(this.snap) >= snapIndex(snap)) {
      throw new RaftError(
        'SNAPSHOT_OUT_OF_DATE',
        `snapshot ${snapIndex(snap)} is older than ${snapIndex(this.snap)}`,
      );
    }
    this.snap = snap;
    this.ents = [newEntry({ index: snapIndex(snap), term: snap.metadata?.term ?? 0 })];
  }

  /**
   * Records a snapshot of the state machine as of index `i` (which must be
   * applied). Entries are kept; call `compact` to drop them. The storage
   * keeps `data` itself (no copy: a snapshot may be 100 MB): the caller
   * must not change it afterwards.
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= snapIndex(this.snap)) {
      throw new RaftError(
        'SNAPSHOT_OUT_OF_DATE',
        `snapshot at ${i} is not newer than ${snapIndex(this.snap)}`,
      );
    }
    if (i > this.lastIndex()) {
      throw new RaftError('UNAVAILABLE', `snapshot at ${i} is past last index ${this.lastIndex()}`);
    }
    const offset = this.ents[0].index;
    this.snap = {
      data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), // a view
      metadata: {
        index: i,
        term: this.ents[i - offset].term,
        confState: cs ?? this.snap.metadata?.confState,
      },
    };
    return this.snap;
  }

  /** Drops entries up to and including `compactIndex`. */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) return;
    if (compactIndex > this.lastIndex()) {
      throw new RaftError(
        'UNAVAILABLE',
        `compact ${compactIndex} is past last index ${this.lastIndex()}`,
      );
    }
    const i = compactIndex - offset;
    const rest = this.ents.slice(i + 1);
    this.ents = [newEntry({ index: this.ents[i].index, term: this.ents[i].term }), ...rest];
  }

  /**
   * Appends entries, truncating any conflicting suffix: an entry at index i
   * replaces the old entry i and everything after it (§5.3). Entries already
   * compacted are ignored.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    if (offset > this.ents.length) {
      throw new RaftError(
        'UNAVAILABLE',
        `missing log entries: last ${this.lastIndex()}, appending at ${entries[0].index}`,
      );
    }
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of entries) this.ents.push(e);
  }
}

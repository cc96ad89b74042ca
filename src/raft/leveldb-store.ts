/**
 * DurableStore on LevelDB (classic-level) plus snapshot files:
 *
 *     <dir>/log/               LevelDB
 *       'e' + u64 BE index  -> Entry        (big-endian so ranges iterate in log order)
 *       'h'                 -> HardState
 *       's'                 -> file name of the newest snapshot
 *     <dir>/snap/<term>-<index>.snap        (format in snapshot-file.ts)
 *
 * Every LevelDB value is `u32 BE CRC-32C | protobuf`, and `load` checks all of
 * them: a node that starts from a damaged log could vote or acknowledge
 * entries it does not really hold, so it must refuse to start instead (§5.2).
 *
 * `open` already refuses a damaged snapshot record (it needs the snapshot
 * index); everything else is checked by `load`.
 *
 * Calls run one at a time in call order. LevelDB's async workers do not keep
 * the order of concurrent calls, and conflict truncation relies on the
 * in-memory `lastIndex` matching what is on disk.
 */
import { crc32c } from '@node-rs/crc32';
import { ClassicLevel, type ChainedBatch } from 'classic-level';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { silentLogger } from '../common/log';
import { DurableState, DurableStore } from './durable-store';
import {
  fsyncDir,
  hex32,
  parseSnapshotFileName,
  pruneSnapshotFiles,
  readSnapshotFile,
  writeSnapshotFile,
} from './snapshot-file';
import {
  emptyHardState,
  Entry,
  HardState,
  RaftError,
  Snapshot,
  snapIndex,
  snapTerm,
} from './types';

const ENTRY_PREFIX = 0x65; // 'e'
const ENTRY_KEY_BYTES = 9;
const ENTRIES_START = Buffer.from([ENTRY_PREFIX]);
const ENTRIES_END = Buffer.from([ENTRY_PREFIX + 1]);
const HARD_STATE_KEY = Buffer.from('h');
const SNAPSHOT_KEY = Buffer.from('s');
const CRC_BYTES = 4;
/** Entries read per native call in `load`: one await per chunk, not per entry. */
const LOAD_CHUNK = 1024;

type Db = ClassicLevel<Buffer, Buffer>;
type Batch = ChainedBatch<Db, Buffer, Buffer>;

export interface LevelDbStoreOptions {
  logger?: Logger;
}

export class LevelDbStore implements DurableStore {
  private queue: Promise<unknown> = Promise.resolve();
  private snapQueue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly snapDir: string,
    private readonly db: Db,
    private readonly log: Logger,
    /** Index of the newest recorded snapshot; 0 if none. */
    private snapshotIndex: number,
    /**
     * Index of the last stored entry, or of the snapshot / compaction point if
     * no entry follows it; 0 when nothing is known (an empty store).
     */
    private lastIndex: number,
  ) {}

  static async open(dir: string, opts: LevelDbStoreOptions = {}): Promise<LevelDbStore> {
    const log = (opts.logger ?? silentLogger()).child({ component: 'leveldb-store' });
    const snapDir = path.join(dir, 'snap');
    await mkdir(snapDir, { recursive: true });
    await fsyncDir(dir);
    const db: Db = new ClassicLevel(path.join(dir, 'log'), {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
    await db.open();
    try {
      const rec = await db.get(SNAPSHOT_KEY);
      const snapshotIndex = rec ? snapshotRecordIndex(rec) : 0;
      const [lastKey] = await db
        .keys({ gte: ENTRIES_START, lt: ENTRIES_END, reverse: true, limit: 1 })
        .all();
      const lastEntry = lastKey && lastKey.length === ENTRY_KEY_BYTES ? entryIndex(lastKey) : 0;
      const lastIndex = Math.max(snapshotIndex, lastEntry);
      log.info({ dir, snapshotIndex, lastIndex }, 'opened durable store');
      return new LevelDbStore(snapDir, db, log, snapshotIndex, lastIndex);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  load(): Promise<DurableState> {
    return this.serial(async () => {
      const rawHs = await this.db.get(HARD_STATE_KEY);
      const hardState = rawHs
        ? decode(HardState, unseal(rawHs, 'hard state'), 'hard state')
        : emptyHardState();

      let snapshot: Snapshot | undefined;
      const rec = await this.db.get(SNAPSHOT_KEY);
      if (rec) {
        snapshot = await readSnapshotFile(path.join(this.snapDir, snapshotRecordName(rec)));
      }
      const base = snapshot ? snapIndex(snapshot) : 0;

      const entries: Entry[] = [];
      // Entries at or below the snapshot may survive a crash between recording
      // the snapshot and clearing them; they are covered, so skip them.
      const it = this.db.iterator({ gt: entryKey(base), lt: ENTRIES_END });
      try {
        let prev = snapshot ? base : undefined;
        for (;;) {
          const chunk = await it.nextv(LOAD_CHUNK);
          if (chunk.length === 0) break;
          for (const [key, value] of chunk) {
            if (key.length !== ENTRY_KEY_BYTES) {
              throw new RaftError('CORRUPT', `log key 0x${key.toString('hex')}: malformed`);
            }
            const i = entryIndex(key);
            const what = `log entry ${i}`;
            if (prev !== undefined && i !== prev + 1) {
              const after = snapshot && prev === base ? `snapshot at ${base}` : `${prev}`;
              throw new RaftError('CORRUPT', `log entry ${prev + 1} missing after ${after}`);
            }
            const e = decode(Entry, unseal(value, what), what);
            if (e.index !== i) throw new RaftError('CORRUPT', `${what}: holds index ${e.index}`);
            entries.push(e);
            prev = i;
          }
        }
      } finally {
        await it.close();
      }
      this.snapshotIndex = base;
      this.lastIndex = Math.max(base, entries.length ? entries[entries.length - 1].index : 0);
      return { hardState, snapshot, entries };
    });
  }

  save(hardState: HardState | undefined, entries: Entry[], sync: boolean): Promise<void> {
    return this.serial(async () => {
      // Entries the snapshot covers are already applied; writing them would
      // also truncate the live log after them.
      if (entries.length > 0 && entries[0].index <= this.snapshotIndex) {
        entries = entries.slice(this.snapshotIndex + 1 - entries[0].index);
      }
      if (!hardState && entries.length === 0) return;
      const first = entries.length > 0 ? entries[0].index : 0;
      const newLast = entries.length > 0 ? first + entries.length - 1 : this.lastIndex;
      if (entries.length > 0) {
        if (this.lastIndex > 0 && first > this.lastIndex + 1) {
          throw new Error(
            `save: entry ${first} would leave a gap after last index ${this.lastIndex}`,
          );
        }
        for (let k = 0; k < entries.length; k++) {
          if (entries[k].index !== first + k) {
            throw new Error(
              `save: entry ${entries[k].index} out of sequence (expected ${first + k})`,
            );
          }
        }
      }
      await this.writeBatch(sync, (batch) => {
        if (hardState) batch.put(HARD_STATE_KEY, seal(HardState.encode(hardState).finish()));
        for (const e of entries) batch.put(entryKey(e.index), seal(Entry.encode(e).finish()));
        // Conflict truncation (§5.3): whatever followed the new entries belongs
        // to a log the sender has overwritten.
        if (entries.length > 0) {
          for (let i = newLast + 1; i <= this.lastIndex; i++) batch.del(entryKey(i));
        }
      });
      this.lastIndex = newLast;
    });
  }

  /**
   * Writing a snapshot file (possibly large, fsynced) happens outside the
   * queue of log writes, so a node keeps persisting Ready batches — and
   * heartbeating — while it saves a snapshot; only recording it is ordered
   * with them. Snapshot saves are ordered among themselves.
   */
  saveSnapshot(snap: Snapshot): Promise<void> {
    const run = this.snapQueue.then(() => this.saveSnapshotNow(snap));
    this.snapQueue = run.catch(() => undefined);
    return run;
  }

  private async saveSnapshotNow(snap: Snapshot): Promise<void> {
    if (this.closed) throw new RaftError('STOPPED', 'durable store is closed');
    const index = snapIndex(snap);
    const term = snapTerm(snap);
    const outOfDate = () =>
      new RaftError(
        'SNAPSHOT_OUT_OF_DATE',
        `snapshot at ${index} is not newer than the stored one at ${this.snapshotIndex}`,
      );
    if (index <= this.snapshotIndex) throw outOfDate();
    const name = await writeSnapshotFile(this.snapDir, snap);
    const dropped = await this.serial(async () => {
      if (index <= this.snapshotIndex) throw outOfDate();
      // Entries after the snapshot survive only if the log agrees with it at
      // its index; otherwise, by Log Matching (§5.3), none of them is in the
      // leader's log and they must go with the rest.
      let keepAfter = false;
      if (index < this.lastIndex) {
        const raw = await this.db.get(entryKey(index));
        if (!raw) {
          throw new Error(
            `saveSnapshot: entry ${index} is not stored but later ones are ` +
              '(the log would have a gap)',
          );
        }
        const e = decode(Entry, unseal(raw, `log entry ${index}`), `log entry ${index}`);
        keepAfter = e.term === term;
      }
      await this.writeBatch(true, (batch) => {
        batch.put(SNAPSHOT_KEY, seal(Buffer.from(name, 'utf8')));
        if (!keepAfter) {
          for (let i = index + 1; i <= this.lastIndex; i++) batch.del(entryKey(i));
        }
      });
      const n = keepAfter ? 0 : Math.max(0, this.lastIndex - index);
      this.snapshotIndex = index;
      this.lastIndex = keepAfter ? this.lastIndex : index;
      return n;
    });
    // Not synced and not in the batch: `load` skips entries at or below the
    // recorded snapshot, so a crash here only leaves garbage the next clear
    // removes. Later log writes only touch keys above the snapshot.
    await this.db.clear({ gte: ENTRIES_START, lte: entryKey(index) });
    this.log.debug({ index, term, file: name, droppedAfter: dropped }, 'saved snapshot');
    // The snapshot is durable by now; failing to delete old files must not
    // make the caller believe otherwise (a retry would be refused as out of date).
    try {
      const pruned = await pruneSnapshotFiles(this.snapDir, name);
      if (pruned.length > 0) this.log.debug({ pruned }, 'pruned snapshot files');
    } catch (err) {
      this.log.warn({ err }, 'could not prune old snapshot files');
    }
  }

  compact(index: number): Promise<void> {
    return this.serial(async () => {
      if (this.snapshotIndex > 0 && index > this.snapshotIndex) {
        throw new RaftError(
          'UNAVAILABLE',
          `compact ${index} is past the snapshot at ${this.snapshotIndex} ` +
            '(later entries are not covered)',
        );
      }
      if (index <= 0) return;
      // A range delete, unsynced: losing it to a crash only brings back a
      // prefix of entries that are still valid.
      await this.db.clear({ gte: ENTRIES_START, lte: entryKey(index) });
      // Compacting the whole log leaves what a reopen would find: the
      // snapshot's index, or an empty log (0) that the next save may start
      // anywhere. Raising it to `index` instead held only until a restart.
      if (index >= this.lastIndex) this.lastIndex = this.snapshotIndex;
      this.log.debug({ index }, 'compacted log');
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      await this.db.close();
    });
  }

  /**
   * One LevelDB write batch: applied atomically, synced when `sync`. The
   * chained form costs several times less per operation than the array form.
   */
  private async writeBatch(sync: boolean, fill: (batch: Batch) => void): Promise<void> {
    const batch = this.db.batch();
    try {
      fill(batch);
      await batch.write({ sync });
    } finally {
      await batch.close();
    }
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new RaftError('STOPPED', 'durable store is closed');
      return op();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function entryKey(index: number): Buffer {
  const k = Buffer.allocUnsafe(ENTRY_KEY_BYTES);
  k[0] = ENTRY_PREFIX;
  k.writeUInt32BE(Math.floor(index / 0x1_0000_0000), 1);
  k.writeUInt32BE(index >>> 0, 5);
  return k;
}

function entryIndex(key: Buffer): number {
  return key.readUInt32BE(1) * 0x1_0000_0000 + key.readUInt32BE(5);
}

/** Prefixes a value with the CRC-32C of its bytes. */
function seal(body: Uint8Array): Buffer {
  const v = Buffer.allocUnsafe(CRC_BYTES + body.length);
  v.writeUInt32BE(crc32c(body), 0);
  v.set(body, CRC_BYTES);
  return v;
}

/** The body of a sealed value, or RaftError('CORRUPT') naming `what`. */
function unseal(value: Buffer, what: string): Buffer {
  if (value.length < CRC_BYTES) {
    throw new RaftError('CORRUPT', `${what}: value too short (${value.length} bytes)`);
  }
  const body = value.subarray(CRC_BYTES);
  const stored = value.readUInt32BE(0);
  const computed = crc32c(body);
  if (stored !== computed) {
    throw new RaftError(
      'CORRUPT',
      `${what}: checksum mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`,
    );
  }
  return body;
}

function decode<T>(type: { decode(input: Uint8Array): T }, body: Uint8Array, what: string): T {
  try {
    return type.decode(body);
  } catch (err) {
    throw new RaftError('CORRUPT', `${what}: undecodable (${(err as Error).message})`);
  }
}

function snapshotRecordName(rec: Buffer): string {
  const name = unseal(rec, 'snapshot record').toString('utf8');
  if (!parseSnapshotFileName(name)) {
    throw new RaftError(
      'CORRUPT',
      `snapshot record: ${JSON.stringify(name)} is not a snapshot file name`,
    );
  }
  return name;
}

function snapshotRecordIndex(rec: Buffer): number {
  return parseSnapshotFileName(snapshotRecordName(rec))?.index ?? 0;
}

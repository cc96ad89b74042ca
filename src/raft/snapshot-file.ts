/**
 * Snapshot files of the durable store (`leveldb-store.ts`), one per snapshot,
 * named `<16-hex term>-<16-hex index>.snap` and laid out as
 *
 *     "BTSNAP01" | u32 BE payload length | u32 BE CRC-32C of payload | Snapshot (protobuf)
 *
 * The length field is what catches a truncated file (a torn copy, a full
 * disk) with a message that says so, rather than a bare checksum mismatch.
 * A file is written under a temporary name, fsynced, renamed and the
 * directory fsynced, so a crash leaves either no file or a whole one under
 * the real name.
 */
import { crc32c } from '@node-rs/crc32';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Snapshot } from '../gen/raft';
import { RaftError } from './types';

const MAGIC = Buffer.from('BTSNAP01', 'latin1');
const HEADER_BYTES = MAGIC.length + 8;
const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TMP_SUFFIX = '.tmp';

export interface SnapshotFileId {
  term: number;
  index: number;
}

export function snapshotFileName(id: SnapshotFileId): string {
  return `${hex16(id.term)}-${hex16(id.index)}.snap`;
}

/** The term and index a snapshot file name encodes, or undefined for any other name. */
export function parseSnapshotFileName(name: string): SnapshotFileId | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  return { term: parseInt(m[1], 16), index: parseInt(m[2], 16) };
}

/**
 * Writes `snap` durably into `dir` and returns its file name. When this
 * resolves, the file and its directory entry survive a power loss.
 */
export async function writeSnapshotFile(dir: string, snap: Snapshot): Promise<string> {
  const meta = snap.metadata;
  const name = snapshotFileName({ term: meta?.term ?? 0, index: meta?.index ?? 0 });
  // The payload is the encoded Snapshot message, written as its parts (the
  // metadata, then field 1's tag and length, then the data itself) rather
  // than encoded into one more copy of a possibly 100 MB state.
  const data = snap.data;
  const head = Snapshot.encode({ data: Buffer.alloc(0), metadata: snap.metadata }).finish();
  const dataHead = Buffer.from([0x0a, ...varint(data.length)]); // field 1, length-delimited
  const parts: Uint8Array[] = data.length > 0 ? [head, dataHead, data] : [head];
  let crc = 0;
  let length = 0;
  for (const p of parts) {
    crc = crc32c(p, crc);
    length += p.length;
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(length, MAGIC.length);
  header.writeUInt32BE(crc, MAGIC.length + 4);

  const tmp = path.join(dir, name + TMP_SUFFIX);
  const fh = await open(tmp, 'w');
  try {
    await writeAll(fh, header);
    for (const p of parts) await writeAll(fh, p);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path.join(dir, name));
  await fsyncDir(dir);
  return name;
}

/**
 * Reads and verifies a snapshot file. Any damage — missing file, bad magic,
 * truncation, checksum mismatch, undecodable payload, metadata that disagrees
 * with the file name — is RaftError('CORRUPT') naming the file.
 */
export async function readSnapshotFile(file: string): Promise<Snapshot> {
  const corrupt = (what: string) => new RaftError('CORRUPT', `snapshot file ${file}: ${what}`);
  const id = parseSnapshotFileName(path.basename(file));
  if (!id) throw corrupt('not a snapshot file name');
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw corrupt('missing');
    throw err;
  }
  if (buf.length < HEADER_BYTES) {
    throw corrupt(`truncated (${buf.length} bytes, the header alone is ${HEADER_BYTES})`);
  }
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt(`bad magic 0x${buf.subarray(0, MAGIC.length).toString('hex')}`);
  }
  const length = buf.readUInt32BE(MAGIC.length);
  const payload = buf.subarray(HEADER_BYTES);
  if (payload.length < length) {
    throw corrupt(`truncated (header says ${length} payload bytes, file holds ${payload.length})`);
  }
  if (payload.length > length) {
    throw corrupt(`${payload.length - length} bytes after the ${length}-byte payload`);
  }
  const stored = buf.readUInt32BE(MAGIC.length + 4);
  const computed = crc32c(payload);
  if (stored !== computed) {
    throw corrupt(`checksum mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`);
  }
  let snap: Snapshot;
  try {
    snap = Snapshot.decode(payload);
  } catch (err) {
    throw corrupt(`undecodable payload (${(err as Error).message})`);
  }
  const index = snap.metadata?.index ?? 0;
  const term = snap.metadata?.term ?? 0;
  if (index !== id.index || term !== id.term) {
    throw corrupt(
      `holds snapshot at index ${index} term ${term}, name says ${id.index}/${id.term}`,
    );
  }
  return snap;
}

/**
 * Deletes every snapshot file but `current` and the newest one before it,
 * plus leftover temp files. Files newer than `current` were never recorded
 * (a crash between rename and record) and are garbage. Returns what it deleted.
 */
export async function pruneSnapshotFiles(dir: string, current: string): Promise<string[]> {
  const cur = parseSnapshotFileName(current);
  if (!cur) throw new Error(`pruneSnapshotFiles: ${current} is not a snapshot file name`);
  const names = await readdir(dir);
  let previous: { name: string; index: number } | undefined;
  for (const name of names) {
    const id = parseSnapshotFileName(name);
    if (id && id.index < cur.index && (!previous || id.index > previous.index)) {
      previous = { name, index: id.index };
    }
  }
  const doomed = names.filter(
    (n) =>
      n !== current &&
      n !== previous?.name &&
      (parseSnapshotFileName(n) !== undefined || n.endsWith('.snap' + TMP_SUFFIX)),
  );
  await Promise.all(doomed.map((n) => unlink(path.join(dir, n))));
  return doomed;
}

/** Makes a rename or create inside `dir` durable (POSIX: the entry lives in the directory). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A protobuf base-128 varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

async function writeAll(fh: Awaited<ReturnType<typeof open>>, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function hex32(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  Message,
  RaftTransportClient,
  SnapshotAck,
  SnapshotChunk,
  SnapshotResumeRequest,
} from '../gen/raft';
import { snapshotChecksum } from './snapshot-checksum';
import { SnapshotTransferError } from './snapshot-inbox';
import type { TransportStats } from './transport-stats';

export interface SnapshotTransferOptions {
  client: RaftTransportClient;
  /** A MSG_SNAP message; its snapshot data is what gets streamed. */
  message: Message;
  chunkBytes: number;
  /** Aborting cancels the RPC in flight; the promise then rejects. */
  signal: AbortSignal;
  stats: TransportStats;
  /** Bound on the SnapshotOffset question, so a hung peer fails the transfer. */
  offsetTimeoutMs: number;
}

export interface SnapshotTransferResult {
  totalSize: number;
  /** Bytes the receiver already held, skipped by this transfer. */
  resumedAt: number;
}

/**
 * Streams one snapshot to a peer over InstallSnapshot: asks SnapshotOffset
 * how much of this exact snapshot the peer already holds, then sends the rest
 * in chunks. The first chunk carries the message with its data emptied; the
 * last carries the CRC-32C of the whole data. Resolves once the peer has
 * verified and delivered it.
 */
export async function transferSnapshot(
  o: SnapshotTransferOptions,
): Promise<SnapshotTransferResult> {
  const { message: m, signal } = o;
  const metadata = m.snapshot?.metadata;
  if (metadata === undefined) {
    throw new SnapshotTransferError(
      grpc.status.INVALID_ARGUMENT,
      'MSG_SNAP without snapshot metadata',
    );
  }
  const data = m.snapshot?.data ?? EMPTY;
  const total = data.length;

  const held = await askOffset(o, { from: m.from, term: metadata.term, index: metadata.index });
  // A peer claiming more than there is holds some other snapshot's bytes: start over.
  const resumedAt = held.received <= total ? held.received : 0;
  let checksum = await checksumPrefix(data.subarray(0, resumedAt), o.chunkBytes, signal);

  let settled = false;
  const answer = deferred<SnapshotAck>();
  const stream = o.client.installSnapshot((err, ack) => {
    settled = true;
    if (err) answer.reject(err);
    else answer.resolve(ack);
  });
  const answered = answer.promise;
  // Awaited below; until then a rejection must not count as unhandled.
  answered.catch(() => undefined);
  const cancel = (): void => stream.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  if (signal.aborted) cancel();
  try {
    const header: Message = { ...m, snapshot: { metadata, data: EMPTY } };
    let offset = resumedAt;
    let first = true;
    // do/while: an empty snapshot, or a peer already holding every byte, still
    // needs one chunk with the header and the checksum.
    do {
      const end = Math.min(offset + o.chunkBytes, total);
      const piece = data.subarray(offset, end);
      checksum = snapshotChecksum(piece, checksum);
      const last = end === total;
      const chunk: SnapshotChunk = {
        header: first ? header : undefined,
        offset,
        totalSize: total,
        data: piece,
        last,
        checksum: last ? checksum : 0,
      };
      first = false;
      offset = end;
      o.stats.snapshotChunksSent++;
      o.stats.snapshotBytesSent += piece.length;
      if (!stream.write(chunk) && !last) {
        // Backpressure: without it a large snapshot would be buffered whole in memory.
        const drained = once(stream, 'drain', { signal }).then(() => true);
        if (!(await Promise.race([drained, answered.then(() => false)]))) {
          throw new SnapshotTransferError(
            grpc.status.ABORTED,
            `peer answered at offset ${offset} of ${total} before the transfer ended`,
          );
        }
      }
      if (settled) break;
    } while (offset < total);
    stream.end();
    const ack = await answered;
    if (!ack.done) {
      throw new SnapshotTransferError(
        grpc.status.ABORTED,
        `peer holds ${ack.received} of ${total} bytes but did not accept the snapshot`,
      );
    }
    return { totalSize: total, resumedAt };
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

function askOffset(o: SnapshotTransferOptions, req: SnapshotResumeRequest): Promise<SnapshotAck> {
  o.signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const cancel = (): void => call.cancel();
    const call = o.client.snapshotOffset(
      req,
      new grpc.Metadata(),
      { deadline: Date.now() + o.offsetTimeoutMs },
      (err, ack) => {
        o.signal.removeEventListener('abort', cancel);
        if (err) reject(err);
        else resolve(ack);
      },
    );
    o.signal.addEventListener('abort', cancel, { once: true });
  });
}

/** Checksums the bytes the peer already holds, a chunk per event-loop turn. */
async function checksumPrefix(prefix: Buffer, step: number, signal: AbortSignal): Promise<number> {
  let crc = 0;
  for (let off = 0; off < prefix.length; off += step) {
    crc = snapshotChecksum(prefix.subarray(off, off + step), crc);
    await yieldToEventLoop(undefined, { signal });
  }
  return crc;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const EMPTY = Buffer.alloc(0);

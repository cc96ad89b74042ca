import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  Message,
  MessageType,
  SnapshotAck,
  SnapshotChunk,
  SnapshotResumeRequest,
} from '../gen/raft';
import { snapshotChecksum } from './snapshot-checksum';

/** proto/raft.proto caps a chunk at 1 MiB; it keeps each gRPC message well under the 4 MiB default limit. */
export const MAX_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/** Why a snapshot transfer was refused; `status` is the gRPC code the sender sees. */
export class SnapshotTransferError extends Error {
  constructor(
    readonly status: GrpcStatus,
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotTransferError';
  }
}

/** The bytes of one snapshot received so far from one sender. */
interface PartialSnapshot {
  readonly from: number;
  readonly term: number;
  readonly index: number;
  readonly totalSize: number;
  /** The MSG_SNAP message without its data. */
  readonly header: Message;
  readonly chunks: Buffer[];
  received: number;
  /** CRC-32C of the bytes received so far, so the last chunk costs no full pass. */
  checksum: number;
  /** The call now filling it; a retry takes over from a call that is still open. */
  owner: InboundTransfer;
  readonly expiry: NodeJS.Timeout;
}

/** One InstallSnapshot call's state: the partial snapshot its chunks go into. */
export class InboundTransfer {
  partial: PartialSnapshot | undefined;
}

export interface SnapshotInboxOptions {
  selfId: number;
  /** How long an interrupted transfer is kept for resumption. */
  partialTtlMs: number;
  log: Logger;
}

/**
 * Reassembles snapshots streamed in chunks. Interrupted transfers are kept (one
 * per sender, for `partialTtlMs`) so that a retry of the same snapshot — the
 * same (from, term, index) — resumes where the last one stopped instead of
 * resending hundreds of MiB. A completed snapshot is forgotten once delivered:
 * if the leader sends it again, the driver may have dropped it, so it is
 * transferred and delivered again.
 */
export class SnapshotInbox {
  private readonly partials = new Map<number, PartialSnapshot>();

  constructor(private readonly opts: SnapshotInboxOptions) {}

  /** How many bytes of this exact snapshot are held, for a sender to resume from. */
  offset(req: SnapshotResumeRequest): SnapshotAck {
    const p = this.partials.get(req.from);
    if (p !== undefined && p.term === req.term && p.index === req.index) {
      return { received: p.received, done: false };
    }
    return { received: 0, done: false };
  }

  /**
   * Adds one chunk of a transfer. Returns the whole MSG_SNAP message, data
   * restored and checksum verified, after the last chunk; undefined before.
   * Throws SnapshotTransferError when the chunk cannot be accepted.
   */
  accept(transfer: InboundTransfer, chunk: SnapshotChunk): Message | undefined {
    let p = transfer.partial;
    if (p === undefined) {
      p = this.begin(transfer, chunk);
      transfer.partial = p;
    } else if (this.partials.get(p.from) !== p || p.owner !== transfer) {
      throw new SnapshotTransferError(
        GrpcStatus.ABORTED,
        `${describe(p)} was taken over by a newer transfer from the same node`,
      );
    }
    if (chunk.offset !== p.received) {
      throw new SnapshotTransferError(
        GrpcStatus.INVALID_ARGUMENT,
        `chunk at offset ${chunk.offset} of ${describe(p)}, but ${p.received} bytes are held; ` +
          'ask SnapshotOffset where to resume',
      );
    }
    if (chunk.data.length > MAX_SNAPSHOT_CHUNK_BYTES) {
      throw new SnapshotTransferError(
        GrpcStatus.INVALID_ARGUMENT,
        `chunk of ${chunk.data.length} bytes exceeds the ${MAX_SNAPSHOT_CHUNK_BYTES}-byte limit`,
      );
    }
    if (p.received + chunk.data.length > p.totalSize) {
      this.drop(p);
      throw new SnapshotTransferError(
        GrpcStatus.INVALID_ARGUMENT,
        `chunk at offset ${chunk.offset} with ${chunk.data.length} bytes overruns ${describe(p)}`,
      );
    }
    if (chunk.data.length > 0) {
      p.chunks.push(chunk.data);
      p.received += chunk.data.length;
      p.checksum = snapshotChecksum(chunk.data, p.checksum);
    }
    p.expiry.refresh();
    if (!chunk.last) return undefined;

    // Finished either way: a complete snapshot is delivered, a bad one must
    // not be resumed from.
    this.drop(p);
    if (p.received !== p.totalSize) {
      throw new SnapshotTransferError(
        GrpcStatus.INVALID_ARGUMENT,
        `last chunk of ${describe(p)} arrived after only ${p.received} bytes`,
      );
    }
    if (chunk.checksum !== p.checksum) {
      throw new SnapshotTransferError(
        GrpcStatus.DATA_LOSS,
        `checksum mismatch for ${describe(p)}: sender says ${hex(chunk.checksum)}, ` +
          `received data has ${hex(p.checksum)}; the transfer was discarded, resend from offset 0`,
      );
    }
    const data = Buffer.concat(p.chunks, p.totalSize);
    return { ...p.header, snapshot: { metadata: p.header.snapshot?.metadata, data } };
  }

  /** Drops every partial transfer and its timer. */
  close(): void {
    for (const p of this.partials.values()) clearTimeout(p.expiry);
    this.partials.clear();
  }

  private begin(transfer: InboundTransfer, chunk: SnapshotChunk): PartialSnapshot {
    const header = chunk.header;
    if (header === undefined) {
      throw new SnapshotTransferError(
        GrpcStatus.INVALID_ARGUMENT,
        'the first chunk of an InstallSnapshot call must carry the MSG_SNAP header',
      );
    }
    if (header.type !== MessageType.MSG_SNAP || header.snapshot?.metadata === undefined) {
      throw new SnapshotTransferError(
        GrpcStatus.INVALID_ARGUMENT,
        `header is a ${MessageType[header.type] ?? header.type} message` +
          (header.type === MessageType.MSG_SNAP ? ' without snapshot metadata' : ', not MSG_SNAP'),
      );
    }
    if (header.to !== this.opts.selfId) {
      throw new SnapshotTransferError(
        GrpcStatus.INVALID_ARGUMENT,
        `snapshot addressed to node ${header.to} reached node ${this.opts.selfId}`,
      );
    }
    const { term, index } = header.snapshot.metadata;
    const held = this.partials.get(header.from);
    if (held !== undefined) {
      if (held.term === term && held.index === index && held.totalSize === chunk.totalSize) {
        held.owner = transfer;
        return held;
      }
      this.opts.log.debug(
        { peer: held.from, term: held.term, index: held.index, received: held.received },
        'partial snapshot superseded by a newer transfer',
      );
      this.drop(held);
    }
    const p: PartialSnapshot = {
      from: header.from,
      term,
      index,
      totalSize: chunk.totalSize,
      header: { ...header, snapshot: { metadata: header.snapshot.metadata, data: EMPTY } },
      chunks: [],
      received: 0,
      checksum: 0,
      owner: transfer,
      expiry: setTimeout(() => this.expire(p), this.opts.partialTtlMs).unref(),
    };
    this.partials.set(p.from, p);
    return p;
  }

  private expire(p: PartialSnapshot): void {
    if (this.partials.get(p.from) !== p) return;
    this.partials.delete(p.from);
    this.opts.log.info(
      { peer: p.from, term: p.term, index: p.index, received: p.received, total: p.totalSize },
      'dropped an interrupted snapshot transfer that was not resumed in time',
    );
  }

  private drop(p: PartialSnapshot): void {
    clearTimeout(p.expiry);
    if (this.partials.get(p.from) === p) this.partials.delete(p.from);
  }
}

const EMPTY = Buffer.alloc(0);

function describe(p: PartialSnapshot): string {
  return `snapshot (term ${p.term}, index ${p.index}, ${p.totalSize} bytes) from node ${p.from}`;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

import * as grpc from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import {
  Message,
  MessageBatch,
  MessageType,
  RaftTransportServer,
  SendAck,
  SnapshotAck,
  SnapshotChunk,
  SnapshotResumeRequest,
} from '../gen/raft';
import { InboundTransfer, SnapshotInbox, SnapshotTransferError } from './snapshot-inbox';
import { REMOVED_DETAILS, TransportHandler } from './transport';
import type { TransportStats } from './transport-stats';

export interface TransportServiceOptions {
  selfId: number;
  handler: TransportHandler;
  inbox: SnapshotInbox;
  stats: TransportStats;
  log: Logger;
}

type Finish<T> = (err: Partial<grpc.StatusObject> | null, value?: T) => void;

/**
 * The receiving half of the transport: the RaftTransport gRPC service. It
 * hands every message addressed to this node to the handler, and snapshots
 * only once they are whole and verified.
 */
export class TransportService {
  /** Ends each open inbound call; close() runs them so a server can shut down gracefully. */
  private readonly open = new Set<() => void>();
  private closed = false;

  constructor(private readonly opts: TransportServiceOptions) {}

  implementation(): RaftTransportServer {
    return {
      send: (call, callback) => this.send(call, callback),
      installSnapshot: (call, callback) => this.installSnapshot(call, callback),
      snapshotOffset: (call, callback) => this.snapshotOffset(call, callback),
    };
  }

  /** Fails every open inbound call with UNAVAILABLE and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const end of [...this.open]) end();
  }

  private send(
    call: grpc.ServerReadableStream<MessageBatch, SendAck>,
    callback: grpc.sendUnaryData<SendAck>,
  ): void {
    const finish = this.track(call, callback);
    if (this.closed) return;
    const log = this.opts.log.child({ rpc: 'Send', remote: call.getPeer() });
    // Headers go out before any batch arrives: they tell the sender the
    // stream is up, which resets its reconnect backoff.
    call.sendMetadata(new grpc.Metadata());
    let refused = false;
    call.on('data', (batch: MessageBatch) => {
      if (this.closed || refused) return;
      this.opts.stats.batchesReceived++;
      const from = batch.messages[0]?.from;
      if (from !== undefined && this.opts.handler.isRemoved?.(from)) {
        // Tell a removed member so, rather than dropping its messages in
        // silence: it stops instead of campaigning forever.
        refused = true;
        log.warn({ peer: from }, 'refused the raft stream of a removed member');
        finish({ code: grpc.status.FAILED_PRECONDITION, details: REMOVED_DETAILS });
        return;
      }
      for (const m of batch.messages) this.deliver(m, log);
    });
    call.on('end', () => finish(null, {}));
    call.on('error', (err: Error) => {
      log.debug({ err: err.message }, 'inbound raft stream failed');
      finish({ code: grpc.status.INTERNAL, details: err.message });
    });
  }

  private installSnapshot(
    call: grpc.ServerReadableStream<SnapshotChunk, SnapshotAck>,
    callback: grpc.sendUnaryData<SnapshotAck>,
  ): void {
    const finish = this.track(call, callback);
    if (this.closed) return;
    const log = this.opts.log.child({ rpc: 'InstallSnapshot', remote: call.getPeer() });
    const transfer = new InboundTransfer();
    let done = false;
    const end: Finish<SnapshotAck> = (err, value) => {
      done = true;
      finish(err, value);
    };
    call.on('data', (chunk: SnapshotChunk) => {
      if (done) return;
      let m: Message | undefined;
      try {
        m = this.opts.inbox.accept(transfer, chunk);
      } catch (err) {
        if (err instanceof SnapshotTransferError) {
          log.warn({ code: grpc.status[err.status], err: err.message }, 'snapshot chunk rejected');
          end({ code: err.status, details: err.message });
        } else {
          log.error({ err }, 'snapshot chunk could not be processed');
          end({ code: grpc.status.INTERNAL, details: String(err) });
        }
        return;
      }
      this.opts.stats.snapshotChunksReceived++;
      this.opts.stats.snapshotBytesReceived += chunk.data.length;
      if (m === undefined) return;
      const size = m.snapshot?.data.length ?? 0;
      log.info(
        {
          peer: m.from,
          index: m.snapshot?.metadata?.index,
          term: m.snapshot?.metadata?.term,
          size,
        },
        'snapshot received',
      );
      this.deliver(m, log);
      end(null, { received: size, done: true });
    });
    // The sender stopped without a last chunk: tell it what is held so far.
    call.on('end', () => end(null, { received: transfer.partial?.received ?? 0, done: false }));
    call.on('error', (err: Error) => end({ code: grpc.status.INTERNAL, details: err.message }));
  }

  private snapshotOffset(
    call: grpc.ServerUnaryCall<SnapshotResumeRequest, SnapshotAck>,
    callback: grpc.sendUnaryData<SnapshotAck>,
  ): void {
    if (this.closed) {
      callback(closedStatus());
      return;
    }
    callback(null, this.opts.inbox.offset(call.request));
  }

  private deliver(m: Message, log: Logger): void {
    if (m.to !== this.opts.selfId) {
      log.debug(
        { peer: m.from, to: m.to, type: MessageType[m.type] },
        'dropped a message addressed to another node',
      );
      return;
    }
    this.opts.stats.messagesReceived++;
    try {
      this.opts.handler.receive(m);
    } catch (err) {
      // One message the driver chokes on must not tear down the stream that
      // carries everything else from this peer.
      log.error(
        { peer: m.from, type: MessageType[m.type], err },
        'transport handler threw on receive',
      );
    }
  }

  /**
   * Registers an inbound call so close() can end it, and returns the one way
   * to answer it (later answers, e.g. after a cancel, are ignored).
   */
  private track<T>(call: EventEmitter, callback: grpc.sendUnaryData<T>): Finish<T> {
    let answered = false;
    const release = (): void => {
      answered = true;
      this.open.delete(abort);
    };
    const finish: Finish<T> = (err, value) => {
      if (answered) return;
      release();
      callback(err, value);
    };
    const abort = (): void => finish(closedStatus());
    if (this.closed) {
      abort();
      return finish;
    }
    this.open.add(abort);
    call.on('cancelled', release);
    return finish;
  }
}

function closedStatus(): Partial<grpc.StatusObject> {
  return { code: grpc.status.UNAVAILABLE, details: 'the raft transport of this node is closed' };
}

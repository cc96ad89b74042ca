import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Message, MessageBatch, MessageType, RaftTransportClient } from '../gen/raft';
import { transferSnapshot } from './snapshot-sender';
import { REMOVED_DETAILS, TransportHandler } from './transport';
import type { TransportStats } from './transport-stats';
import { entrySize, RaftError } from './types';

export interface PeerSenderOptions {
  id: number;
  address: string;
  handler: TransportHandler;
  log: Logger;
  stats: TransportStats;
  credentials: grpc.ChannelCredentials;
  maxBatchBytes: number;
  maxQueuedMessages: number;
  snapshotChunkBytes: number;
}

/**
 * Reconnect backoff after a broken stream. Short on purpose: a restarted peer
 * should hear from the leader within a heartbeat or two, and the cap keeps a
 * dead peer from costing more than ten stream attempts a second.
 */
const STREAM_BACKOFF_MIN_MS = 10;
const STREAM_BACKOFF_MAX_MS = 100;
/**
 * The driver reacts to an unreachable peer by probing; once per interval is
 * plenty while an outage lasts (a full window would otherwise report once per
 * message). A new outage after a working connection is always reported.
 */
const UNREACHABLE_REPORT_INTERVAL_MS = 100;
/** How long close() lets a stream deliver what was already written. */
const CLOSE_GRACE_MS = 1000;
/** How long a peer gets to say where a snapshot transfer resumes. */
const SNAPSHOT_OFFSET_TIMEOUT_MS = 5000;
/** Rough protobuf cost of a message without its entries and context, for batch sizing. */
const MESSAGE_OVERHEAD_BYTES = 64;

interface OutboundStream {
  readonly generation: number;
  readonly call: grpc.ClientWritableStream<MessageBatch>;
  /** Settles when gRPC reports the call's status, whatever it is. */
  readonly ended: Promise<void>;
}

/**
 * Everything this node sends to one peer: a queue of messages flushed once
 * per event-loop turn as MessageBatch frames on a long-lived Send stream
 * (pipelined: nothing waits for an ack), and at most one snapshot transfer.
 * Delivery is best effort, as Raft allows: a full window, a broken stream
 * and a superseded snapshot all drop data and tell the handler.
 */
export class PeerSender {
  readonly id: number;
  readonly address: string;
  private readonly client: RaftTransportClient;
  private readonly log: Logger;
  private queue: Message[] = [];
  private stream: OutboundStream | undefined;
  private generation = 0;
  /** Waiting for 'drain' on the current stream. */
  private blocked = false;
  /** A flush is scheduled for the end of the current tick. */
  private flushScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = 0;
  /** Consecutive streams that broke before the peer answered with headers. */
  private failures = 0;
  private lastUnreachableReport = Number.NEGATIVE_INFINITY;
  private droppedSinceReport = 0;
  private snapshot: AbortController | undefined;
  private closed = false;

  constructor(private readonly opts: PeerSenderOptions) {
    this.id = opts.id;
    this.address = opts.address;
    this.log = opts.log.child({ peer: opts.id, address: opts.address });
    this.client = new RaftTransportClient(
      opts.address,
      opts.credentials,
      channelOptions(opts.maxBatchBytes),
    );
  }

  /** Queues a message for the next flush; drops it when the window is full. */
  enqueue(m: Message): void {
    if (this.closed) return;
    if (this.queue.length >= this.opts.maxQueuedMessages) {
      // The peer is not keeping up; queuing more would only grow memory and
      // deliver stale messages. Raft recovers from the loss.
      this.opts.stats.messagesDropped++;
      this.droppedSinceReport++;
      this.reportUnreachable('send window full');
      return;
    }
    this.queue.push(m);
    // Flush at the end of the current tick: everything one Ready produced is
    // sent synchronously, so it still travels as one batch, without waiting
    // for the event loop's next check phase (a measurable share of a
    // sub-millisecond round trip).
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => {
        this.flushScheduled = false;
        if (!this.closed) this.flush();
      });
    }
  }

  /** Starts streaming a snapshot, abandoning any transfer still running to this peer. */
  sendSnapshot(m: Message): void {
    if (this.closed) return;
    // A superseded transfer is not reported: a late "failed" would knock the
    // leader's progress for the newer snapshot back to probing.
    this.snapshot?.abort(new RaftError('SNAPSHOT_OUT_OF_DATE', 'superseded by a newer snapshot'));
    const ac = new AbortController();
    this.snapshot = ac;
    void this.runSnapshot(m, ac);
  }

  /** Lets written messages reach the peer (bounded by a grace period), then closes the channel. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.snapshot?.abort(new RaftError('STOPPED', 'transport closed'));
    const s = this.stream;
    this.stream = undefined;
    if (s !== undefined) {
      // What is queued still goes out, ignoring backpressure: a leadership
      // transfer right before shutdown ends with MSG_TIMEOUT_NOW, and losing
      // it would cost the cluster an election timeout.
      while (this.queue.length > 0) s.call.write({ messages: this.takeBatch() });
      s.call.end();
      const grace = setTimeout(() => s.call.cancel(), CLOSE_GRACE_MS);
      await s.ended;
      clearTimeout(grace);
    }
    this.queue = [];
    this.client.close();
  }

  private flush(): void {
    if (this.closed || this.blocked || this.queue.length === 0) return;
    let s = this.stream;
    if (s === undefined) {
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = undefined;
          this.flush();
        }, wait);
        return;
      }
      s = this.stream = this.openStream();
    }
    while (this.queue.length > 0) {
      const messages = this.takeBatch();
      this.opts.stats.batchesSent++;
      this.opts.stats.messagesSent += messages.length;
      if (!s.call.write({ messages })) {
        this.blocked = true;
        const current = s;
        current.call.once('drain', () => {
          if (this.stream !== current) return;
          this.blocked = false;
          this.flush();
        });
        return;
      }
    }
  }

  /** Removes from the queue the longest prefix that fits in one batch (at least one message). */
  private takeBatch(): Message[] {
    let size = 0;
    let n = 0;
    for (; n < this.queue.length; n++) {
      const m = this.queue[n];
      let bytes = MESSAGE_OVERHEAD_BYTES + m.context.length;
      for (const e of m.entries) bytes += entrySize(e);
      if (n > 0 && size + bytes > this.opts.maxBatchBytes) break;
      size += bytes;
    }
    return this.queue.splice(0, n);
  }

  private openStream(): OutboundStream {
    const generation = ++this.generation;
    let markEnded = (): void => undefined;
    const ended = new Promise<void>((resolve) => (markEnded = resolve));
    const call = this.client.send((err) => {
      markEnded();
      this.onStreamEnded(generation, err);
    });
    // Headers mean the peer's server took the stream: the connection works.
    call.on('metadata', () => {
      this.failures = 0;
      this.lastUnreachableReport = Number.NEGATIVE_INFINITY;
    });
    // Writable-level errors (a write racing the end of the call); the status
    // callback above is what reports the failure.
    call.on('error', (err: Error) => this.log.debug({ err: err.message }, 'raft stream error'));
    this.opts.stats.streamsOpened++;
    this.log.debug({ generation }, 'opened raft stream');
    return { generation, call, ended };
  }

  private onStreamEnded(generation: number, err: grpc.ServiceError | null): void {
    if (this.stream?.generation !== generation) return;
    this.stream = undefined;
    this.blocked = false;
    if (this.closed) return;
    if (err?.code === grpc.status.FAILED_PRECONDITION && err.details === REMOVED_DETAILS) {
      this.log.error({ peer: this.id }, 'the peer says this member was removed from the cluster');
      this.callHandler(() => this.opts.handler.reportRemoved?.(this.id));
    }
    this.failures++;
    const backoff = Math.min(
      STREAM_BACKOFF_MIN_MS * 2 ** (this.failures - 1),
      STREAM_BACKOFF_MAX_MS,
    );
    this.retryAt = Date.now() + backoff;
    // Queued messages were produced for a connection that no longer exists;
    // after reportUnreachable the leader probes again with fresh ones.
    const dropped = this.queue.length;
    this.queue = [];
    this.opts.stats.messagesDropped += dropped;
    this.droppedSinceReport += dropped;
    this.log.warn(
      {
        code: err ? grpc.status[err.code] : 'OK',
        err: err?.details ?? 'peer ended the stream',
        dropped,
        retryInMs: backoff,
      },
      'raft stream to peer broke',
    );
    this.reportUnreachable('stream broke');
  }

  private async runSnapshot(m: Message, ac: AbortController): Promise<void> {
    const meta = m.snapshot?.metadata;
    const log = this.log.child({ snapIndex: meta?.index, snapTerm: meta?.term });
    log.info({ size: m.snapshot?.data.length ?? 0 }, 'sending snapshot');
    try {
      const r = await transferSnapshot({
        client: this.client,
        message: m,
        chunkBytes: this.opts.snapshotChunkBytes,
        signal: ac.signal,
        stats: this.opts.stats,
        offsetTimeoutMs: SNAPSHOT_OFFSET_TIMEOUT_MS,
      });
      if (ac.signal.aborted) return;
      log.info(r, 'snapshot sent');
      this.callHandler(() => this.opts.handler.reportSnapshot(this.id, true));
    } catch (err) {
      if (ac.signal.aborted) {
        log.debug({ reason: String(ac.signal.reason) }, 'snapshot transfer abandoned');
        return;
      }
      log.warn({ err: describeError(err) }, 'snapshot transfer failed');
      this.callHandler(() => this.opts.handler.reportSnapshot(this.id, false));
    } finally {
      if (this.snapshot === ac) this.snapshot = undefined;
    }
  }

  private reportUnreachable(reason: string): void {
    const now = Date.now();
    if (now - this.lastUnreachableReport < UNREACHABLE_REPORT_INTERVAL_MS) return;
    this.lastUnreachableReport = now;
    this.log.debug({ reason, dropped: this.droppedSinceReport }, 'peer unreachable');
    this.droppedSinceReport = 0;
    this.callHandler(() => this.opts.handler.reportUnreachable(this.id));
  }

  /** Handler callbacks run inside gRPC callbacks, where a throw would take the process down. */
  private callHandler(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'transport handler threw');
    }
  }
}

/** Channel settings for a Raft peer: fail fast, reconnect fast, notice dead peers. */
function channelOptions(maxBatchBytes: number): grpc.ChannelOptions {
  return {
    // With TLS, peers check each other's identity rather than host names, so
    // the SNI name is a constant instead of an IP (which TLS forbids there).
    'grpc.ssl_target_name_override': 'baton',
    // A peer that vanished without closing its socket is noticed in seconds
    // instead of at the TCP timeout.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    // gRPC's default reconnect backoff grows to two minutes; a restarted
    // master must rejoin within an election timeout.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 250,
    // A master container restarted under a new IP is found again quickly
    // (the default re-resolves at most every 30 s).
    'grpc.dns_min_time_between_resolutions_ms': 1_000,
    // Raft retries by itself; gRPC retries would only replay stale messages.
    'grpc.enable_retries': 0,
    // Channelz bookkeeping costs a few percent per message on the hot path.
    'grpc.enable_channelz': 0,
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': maxBatchBytes + 64 * 1024,
    // Each peer owns its connection, so removing a peer really closes it.
    'grpc.use_local_subchannel_pool': 1,
  };
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as Partial<grpc.ServiceError>).code;
    return code === undefined ? err.message : `${grpc.status[code]}: ${err.message}`;
  }
  return String(err);
}

/** Whether a message travels on the snapshot stream rather than in a batch. */
export function isSnapshotMessage(m: Message): boolean {
  return m.type === MessageType.MSG_SNAP;
}

import * as grpc from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import { Message, MessageType, RaftTransportService } from '../gen/raft';
import { isSnapshotMessage, PeerSender } from './peer-sender';
import { MAX_SNAPSHOT_CHUNK_BYTES, SnapshotInbox } from './snapshot-inbox';
import type { Transport, TransportHandler } from './transport';
import { TransportService } from './transport-service';
import { newTransportStats, type TransportStats } from './transport-stats';
import { RaftError } from './types';

export type { TransportStats };

export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;
export const DEFAULT_MAX_QUEUED_MESSAGES = 4096;
export const DEFAULT_PARTIAL_SNAPSHOT_TTL_MS = 60_000;

/**
 * Options for the gRPC server a GrpcTransport is registered on. The server
 * belongs to the caller, who may merge these into its own. The default 4 MiB
 * receive limit already fits default batches; this leaves room for a
 * larger `maxBatchBytes` or a single large MSG_APP.
 */
export const RAFT_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.enable_channelz': 0,
  // grpc-js binds with SO_REUSEPORT by default: two servers given the same
  // address would both "listen" and split the traffic. Fail loudly instead.
  'grpc.so_reuseport': 0,
};

export interface GrpcTransportOptions {
  selfId: number;
  handler: TransportHandler;
  logger?: Logger;
  /** Upper bound on one MessageBatch (a single larger message still goes alone). Default 1 MiB. */
  maxBatchBytes?: number;
  /** Per-peer window of messages waiting to be written; beyond it new messages are dropped. Default 4096. */
  maxQueuedMessages?: number;
  /** Snapshot data bytes per chunk. Default and maximum 1 MiB. */
  snapshotChunkBytes?: number;
  /** How long a receiver keeps an interrupted snapshot transfer for resumption. Default 60 s. */
  partialSnapshotTtlMs?: number;
  /** Credentials for connections to peers. Default insecure. */
  credentials?: grpc.ChannelCredentials;
}

/**
 * The Raft transport over gRPC (proto/raft.proto, service RaftTransport).
 *
 * Sending: `send` never blocks. Messages are queued per peer and flushed once
 * per event-loop turn, so everything a Ready produced for a peer travels as
 * one MessageBatch on a long-lived Send stream. MSG_SNAP goes over
 * InstallSnapshot instead, chunked and resumable.
 *
 * Receiving: `register` adds the service to a gRPC server the caller owns
 * (a master shares one server between Raft and its API). Messages addressed
 * to this node reach `handler.receive`; snapshots arrive whole and verified.
 */
export class GrpcTransport implements Transport {
  private readonly selfId: number;
  private readonly handler: TransportHandler;
  private readonly log: Logger;
  private readonly maxBatchBytes: number;
  private readonly maxQueuedMessages: number;
  private readonly snapshotChunkBytes: number;
  private readonly credentials: grpc.ChannelCredentials;
  private readonly counters = newTransportStats();
  private readonly peers = new Map<number, PeerSender>();
  /** Removed peers still delivering their last messages; close() waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private readonly inbox: SnapshotInbox;
  private readonly service: TransportService;
  private closed = false;

  constructor(opts: GrpcTransportOptions) {
    this.selfId = opts.selfId;
    this.handler = opts.handler;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({
      component: 'raft-transport',
      node: opts.selfId,
    });
    this.maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.maxQueuedMessages = opts.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES;
    this.snapshotChunkBytes = opts.snapshotChunkBytes ?? MAX_SNAPSHOT_CHUNK_BYTES;
    this.credentials = opts.credentials ?? grpc.credentials.createInsecure();
    const ttl = opts.partialSnapshotTtlMs ?? DEFAULT_PARTIAL_SNAPSHOT_TTL_MS;
    checkPositiveInteger('selfId', this.selfId);
    checkPositiveInteger('maxBatchBytes', this.maxBatchBytes);
    checkPositiveInteger('maxQueuedMessages', this.maxQueuedMessages);
    checkPositiveInteger('snapshotChunkBytes', this.snapshotChunkBytes);
    checkPositiveInteger('partialSnapshotTtlMs', ttl);
    if (this.snapshotChunkBytes > MAX_SNAPSHOT_CHUNK_BYTES) {
      throw new RaftError(
        'INVALID_CONFIG',
        `snapshotChunkBytes ${this.snapshotChunkBytes} exceeds the ${MAX_SNAPSHOT_CHUNK_BYTES}-byte ` +
          'chunk limit receivers enforce',
      );
    }
    this.inbox = new SnapshotInbox({ selfId: this.selfId, partialTtlMs: ttl, log: this.log });
    this.service = new TransportService({
      selfId: this.selfId,
      handler: this.handler,
      inbox: this.inbox,
      stats: this.counters,
      log: this.log,
    });
  }

  /** Adds the RaftTransport service to a server the caller owns, binds and shuts down. */
  register(server: Pick<grpc.Server, 'addService'>): void {
    server.addService(RaftTransportService, this.service.implementation());
  }

  /** Connects to a peer. The same address again is a no-op; a new one replaces the connection. */
  addPeer(id: number, address: string): void {
    if (this.closed) throw new RaftError('STOPPED', 'raft transport is closed');
    checkPositiveInteger('peer id', id);
    if (id === this.selfId) {
      throw new RaftError(
        'INVALID_CONFIG',
        `node ${id} is this node; messages to self never leave the process`,
      );
    }
    const existing = this.peers.get(id);
    if (existing?.address === address) return;
    if (existing !== undefined) this.removePeer(id);
    this.peers.set(
      id,
      new PeerSender({
        id,
        address,
        handler: this.handler,
        log: this.log,
        stats: this.counters,
        credentials: this.credentials,
        maxBatchBytes: this.maxBatchBytes,
        maxQueuedMessages: this.maxQueuedMessages,
        snapshotChunkBytes: this.snapshotChunkBytes,
      }),
    );
    this.log.info({ peer: id, address, replaced: existing?.address }, 'added raft peer');
  }

  removePeer(id: number): void {
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    this.peers.delete(id);
    const done = peer.close().finally(() => this.closing.delete(done));
    this.closing.add(done);
    this.log.info({ peer: id, address: peer.address }, 'removed raft peer');
  }

  send(messages: Message[]): void {
    for (const m of messages) {
      const peer = this.closed ? undefined : this.peers.get(m.to);
      if (peer === undefined) {
        this.counters.messagesDropped++;
        this.log.debug(
          { peer: m.to, type: MessageType[m.type], closed: this.closed },
          'dropped a message to an unknown peer',
        );
        continue;
      }
      if (isSnapshotMessage(m)) peer.sendSnapshot(m);
      else peer.enqueue(m);
    }
  }

  /** A copy of the counters, for metrics and tests. */
  stats(): TransportStats {
    return { ...this.counters };
  }

  /**
   * Stops receiving (open inbound calls end with UNAVAILABLE), drops partial
   * snapshots, lets outbound streams deliver what was written, and closes
   * every connection. No timer or socket of the transport outlives it.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.service.close();
    this.inbox.close();
    const peers = [...this.peers.values()];
    this.peers.clear();
    await Promise.all([...peers.map((p) => p.close()), ...this.closing]);
    this.log.debug('raft transport closed');
  }
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RaftError('INVALID_CONFIG', `${name} must be a positive integer, got ${value}`);
  }
}

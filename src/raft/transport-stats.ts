/**
 * Counters of one GrpcTransport, cheap enough to keep always on. They feed
 * metrics and let tests observe batching and resumption without a wire tap.
 */
export interface TransportStats {
  /** MessageBatch frames written to peers' Send streams. */
  batchesSent: number;
  messagesSent: number;
  /** Messages dropped before reaching the wire: full window, broken stream, unknown peer. */
  messagesDropped: number;
  /** Send streams opened (the first per peer, then one per reconnection). */
  streamsOpened: number;
  snapshotChunksSent: number;
  /** Snapshot data bytes sent; a resumed transfer counts only the remainder. */
  snapshotBytesSent: number;
  batchesReceived: number;
  /** Messages handed to the handler (addressed to this node). */
  messagesReceived: number;
  snapshotChunksReceived: number;
  snapshotBytesReceived: number;
}

export function newTransportStats(): TransportStats {
  return {
    batchesSent: 0,
    messagesSent: 0,
    messagesDropped: 0,
    streamsOpened: 0,
    snapshotChunksSent: 0,
    snapshotBytesSent: 0,
    batchesReceived: 0,
    messagesReceived: 0,
    snapshotChunksReceived: 0,
    snapshotBytesReceived: 0,
  };
}

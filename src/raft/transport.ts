import { Message } from './types';

/**
 * How a Raft node talks to its peers. Delivery is best effort: Raft is safe
 * under loss, duplication and reordering, so a transport may drop messages
 * (for example when a peer's window is full) but must never corrupt them.
 */
export interface Transport {
  /** Queues messages for their `to` peers; never blocks. */
  send(messages: Message[]): void;
  addPeer(id: number, address: string): void;
  removePeer(id: number): void;
  close(): Promise<void>;
}

/** What a transport calls back into (the driver implements it). */
export interface TransportHandler {
  /**
   * A message addressed to this node arrived. MSG_SNAP messages arrive whole,
   * after every chunk was received and the checksum verified.
   */
  receive(m: Message): void;
  /** A peer could not be reached; the leader falls back from pipelining to probing. */
  reportUnreachable(id: number): void;
  /** A snapshot transfer to a peer finished (ok) or failed. */
  reportSnapshot(id: number, ok: boolean): void;
  /** Whether `id` was removed from the group: its streams are refused with REMOVED_DETAILS. */
  isRemoved?(id: number): boolean;
  /** Peer `by` refused this node's messages because this node was removed from the group. */
  reportRemoved?(by: number): void;
}

/**
 * The status details a member answers a removed member's stream with
 * (FAILED_PRECONDITION), so that the removed one learns it and stops.
 */
export const REMOVED_DETAILS = 'raft: the sender was removed from the cluster';

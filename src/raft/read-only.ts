import { Message } from './types';

/**
 * ReadIndex bookkeeping on the leader (thesis §6.4). A read request records
 * the commit index at the time it arrived; once a quorum answers a heartbeat
 * carrying the request's context, the leader knows it was still leader then,
 * and the read may be served as soon as that index is applied.
 */
export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<number, boolean>;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req: m, acks: new Map() });
    this.queue.push(key);
  }

  /** Records a heartbeat answer; returns who has acknowledged the request so far. */
  recvAck(id: number, context: Uint8Array): Map<number, boolean> | undefined {
    const rs = this.pending.get(ctxKey(context));
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * Releases the request with this context and every request queued before
   * it: a quorum that confirmed leadership for a later request confirmed it
   * for the earlier ones too.
   */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released = this.queue.splice(0, at + 1);
    return released.map((k) => {
      const rs = this.pending.get(k)!;
      this.pending.delete(k);
      return rs;
    });
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1])!.req.context;
  }

  size(): number {
    return this.queue.length;
  }
}

function ctxKey(c: Uint8Array): string {
  return Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1');
}

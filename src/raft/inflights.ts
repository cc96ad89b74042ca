/**
 * The sliding window of MSG_APPs in flight to one follower while it is in the
 * Replicate state: the leader may pipeline at most `size` messages (and at
 * most `maxBytes` of entries) before it hears back. Each slot holds the last
 * index a message carried; an ack for index i frees every slot <= i.
 */
export class Inflights {
  private start = 0;
  private count = 0;
  private bytes = 0;
  private readonly indexes: number[];
  private readonly sizes: number[];

  constructor(
    readonly size: number,
    readonly maxBytes: number = 0,
  ) {
    this.indexes = new Array<number>(size).fill(0);
    this.sizes = new Array<number>(size).fill(0);
  }

  clone(): Inflights {
    const c = new Inflights(this.size, this.maxBytes);
    c.start = this.start;
    c.count = this.count;
    c.bytes = this.bytes;
    for (let i = 0; i < this.size; i++) {
      c.indexes[i] = this.indexes[i];
      c.sizes[i] = this.sizes[i];
    }
    return c;
  }

  add(index: number, bytes: number): void {
    if (this.full()) throw new Error('inflights: add into a full window');
    const next = (this.start + this.count) % this.size;
    this.indexes[next] = index;
    this.sizes[next] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every slot whose index is <= `to`. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.indexes[this.start]) return;
    let i = 0;
    let idx = this.start;
    let freedBytes = 0;
    for (; i < this.count; i++) {
      if (to < this.indexes[idx]) break;
      freedBytes += this.sizes[idx];
      idx = (idx + 1) % this.size;
    }
    this.count -= i;
    this.bytes -= freedBytes;
    this.start = this.count === 0 ? 0 : idx;
  }

  /** Frees the oldest slot (used to probe past a window whose messages were all lost). */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.indexes[this.start]);
  }

  full(): boolean {
    return this.count === this.size || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  length(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
    this.bytes = 0;
  }
}

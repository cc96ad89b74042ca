import { StateMachine } from '../../../src/raft/raft-node';

/** Commands are `op(1) | keyLen(u16) | key | value`. */
export enum KvOp {
  Put = 1,
}

export function encodePut(key: string, value: Uint8Array): Buffer {
  const k = Buffer.from(key);
  const out = Buffer.allocUnsafe(3 + k.length + value.length);
  out[0] = KvOp.Put;
  out.writeUInt16BE(k.length, 1);
  k.copy(out, 3);
  out.set(value, 3 + k.length);
  return out;
}

/** A deterministic map from keys to values, replicated by Raft. */
export class KvStateMachine implements StateMachine {
  readonly data = new Map<string, Buffer>();
  lastIndex = 0;

  apply(cmd: Uint8Array, index: number): number {
    this.lastIndex = index;
    const b = Buffer.from(cmd.buffer, cmd.byteOffset, cmd.byteLength);
    if (b.length < 3 || b[0] !== KvOp.Put) throw new Error(`unknown kv command ${b[0]}`);
    const n = b.readUInt16BE(1);
    this.data.set(b.subarray(3, 3 + n).toString(), Buffer.from(b.subarray(3 + n)));
    return index;
  }

  /** Binary: lastIndex (u64 as double) then (keyLen u32 | key | valLen u32 | value)*. */
  snapshot(): Uint8Array {
    const parts: Buffer[] = [];
    const head = Buffer.allocUnsafe(8);
    head.writeDoubleBE(this.lastIndex, 0);
    parts.push(head);
    for (const [k, v] of this.data) {
      const kb = Buffer.from(k);
      const lens = Buffer.allocUnsafe(8);
      lens.writeUInt32BE(kb.length, 0);
      lens.writeUInt32BE(v.length, 4);
      parts.push(lens, kb, v);
    }
    return Buffer.concat(parts);
  }

  restore(bytes: Uint8Array): void {
    this.data.clear();
    if (bytes.length === 0) return;
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.lastIndex = b.readDoubleBE(0);
    let off = 8;
    while (off < b.length) {
      const kl = b.readUInt32BE(off);
      const vl = b.readUInt32BE(off + 4);
      off += 8;
      const key = b.subarray(off, off + kl).toString();
      off += kl;
      this.data.set(key, Buffer.from(b.subarray(off, off + vl)));
      off += vl;
    }
  }
}

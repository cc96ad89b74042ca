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

  snapshot(): Uint8Array {
    const obj: Record<string, string> = {};
    for (const [k, v] of this.data) obj[k] = v.toString('base64');
    return Buffer.from(JSON.stringify({ lastIndex: this.lastIndex, data: obj }));
  }

  restore(bytes: Uint8Array): void {
    this.data.clear();
    if (bytes.length === 0) return;
    const { lastIndex, data } = JSON.parse(Buffer.from(bytes).toString()) as {
      lastIndex: number;
      data: Record<string, string>;
    };
    this.lastIndex = lastIndex;
    for (const [k, v] of Object.entries(data)) this.data.set(k, Buffer.from(v, 'base64'));
  }
}

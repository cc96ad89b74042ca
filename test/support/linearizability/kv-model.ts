import { Model, Operation } from './checker';

/** A key-value register per key: put(key, value) and get(key) → value (undefined when absent). */
export interface KvInput {
  op: 'get' | 'put';
  key: string;
  value?: string;
}

export interface KvOutput {
  value?: string;
  /** The client never learnt the outcome (only meaningful for puts). */
  unknown?: boolean;
}

export type KvOp = Operation<KvInput, KvOutput>;

type KvState = string | undefined;

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => undefined,
  step(state, input, output) {
    if (input.op === 'put') return { ok: true, state: input.value };
    return { ok: output.unknown === true || output.value === state, state };
  },
  key: (state) => (state === undefined ? '\u0000' : `=${state}`),
  partition(ops) {
    const byKey = new Map<string, KvOp[]>();
    for (const op of ops) {
      // A read whose answer never came constrains nothing.
      if (op.input.op === 'get' && (op.output.unknown || op.return === Infinity)) continue;
      const list = byKey.get(op.input.key) ?? [];
      list.push(op);
      byKey.set(op.input.key, list);
    }
    return [...byKey.values()];
  },
  describe(op) {
    const end = op.return === Infinity ? '?' : String(op.return);
    const what =
      op.input.op === 'put'
        ? `put(${op.input.key}, ${op.input.value})${op.output.unknown ? ' outcome unknown' : ''}`
        : `get(${op.input.key}) -> ${op.output.value ?? 'absent'}`;
    return `[${op.call}, ${end}] client ${op.clientId}: ${what}`;
  },
};

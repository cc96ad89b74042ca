/**
 * Clients that write and read registers through the Baton API for the whole
 * of a chaos scenario and record every operation, for the linearizability
 * checker and the "nothing acknowledged is lost" check.
 *
 * A register is one ConfigMap (`data.v`); a write is an `apply` of it with
 * a value no other write uses, a read a (linearizable) Get. A write that
 * fails for any reason is recorded with an unknown outcome (return =
 * Infinity): the client cannot tell "not done" from "done, answer lost", and
 * treating it as unknown is always sound. A read that fails constrains
 * nothing and is dropped.
 */
import { performance } from 'node:perf_hooks';
import { BatonClient } from '../../src/client/cluster-client';
import { checkOperations } from '../support/linearizability/checker';
import { KvOp, kvModel } from '../support/linearizability/kv-model';
import { Rng } from '../support/rng';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Monotonic ms (the checker needs a clock that never goes back). */
export const now = () => performance.now();

export interface ClientSpec {
  /** Master addresses this client may use (one: pinned to that master). */
  servers: string[];
  /** Share of reads among its operations (0–1). */
  readShare: number;
  timeoutMs: number;
}

export class Workload {
  readonly ops: KvOp[] = [];
  readonly keys: string[];
  private readonly loops: Promise<void>[] = [];
  private stopped = false;
  private nextClient = 0;
  private seq = 0;
  /** Reads that failed (dropped from the history). */
  readErrors = 0;

  constructor(
    /** Prefix of the scenario's ConfigMaps, so scenarios do not share registers. */
    readonly prefix: string,
    keys: number,
    private readonly rng: Rng,
    /** Makes a client of these masters (with the cluster's credentials). */
    private readonly connect: (servers: string[], timeoutMs: number) => BatonClient,
  ) {
    this.keys = Array.from({ length: keys }, (_, i) => `${prefix}-k${i}`);
  }

  /** Starts a client loop; returns its client id. */
  add(spec: ClientSpec): number {
    const id = this.nextClient++;
    const client = this.connect(spec.servers, spec.timeoutMs);
    const rng = new Rng(this.rng.int(1, 2 ** 31));
    this.loops.push(
      (async () => {
        try {
          while (!this.stopped) {
            const key = rng.pick(this.keys);
            if (rng.chance(spec.readShare)) await this.read(client, id, key);
            else await this.write(client, id, key, `c${id}-${++this.seq}`);
            await sleep(rng.int(0, 20));
          }
        } finally {
          client.close();
        }
      })(),
    );
    return id;
  }

  async write(client: BatonClient, clientId: number, key: string, value: string): Promise<KvOp> {
    const op: KvOp = {
      clientId,
      input: { op: 'put', key, value },
      output: {},
      call: now(),
      return: Infinity,
    };
    this.ops.push(op);
    try {
      await client.apply(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: key, namespace: 'default' },
          data: { v: value },
        }),
      );
      op.return = now();
    } catch (err) {
      op.output = { unknown: true };
      (op as KvOp & { error?: string }).error = (err as Error).message;
    }
    return op;
  }

  async read(client: BatonClient, clientId: number, key: string): Promise<KvOp | undefined> {
    const call = now();
    try {
      const r = await client.get('ConfigMap', 'default', key);
      const o = JSON.parse(r.objectJson) as { data?: { v?: string } };
      const op: KvOp = {
        clientId,
        input: { op: 'get', key },
        output: { value: o.data?.v },
        call,
        return: now(),
      };
      this.ops.push(op);
      return op;
    } catch (err) {
      if ((err as { code?: number }).code === 5 /* NOT_FOUND */) {
        const op: KvOp = { clientId, input: { op: 'get', key }, output: {}, call, return: now() };
        this.ops.push(op);
        return op;
      }
      this.readErrors++;
      return undefined;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** After healing: reads every key once more (retrying), so the history ends in the final state. */
  async finalReads(servers: string[]): Promise<Map<string, string | undefined>> {
    const client = this.connect(servers, 20_000);
    const id = this.nextClient++;
    const out = new Map<string, string | undefined>();
    try {
      for (const key of this.keys) {
        let op: KvOp | undefined;
        for (let i = 0; i < 5 && !op; i++) op = await this.read(client, id, key);
        if (!op) throw new Error(`final read of ${key} failed 5 times`);
        out.set(key, op.output.value);
      }
    } finally {
      client.close();
    }
    return out;
  }

  writes(): KvOp[] {
    return this.ops.filter((o) => o.input.op === 'put');
  }

  acked(): KvOp[] {
    return this.writes().filter((o) => o.return !== Infinity);
  }

  /** Writes by `clientId` acknowledged with a return inside [from, to]. */
  ackedBy(clientId: number, from: number, to: number): KvOp[] {
    return this.acked().filter((o) => o.clientId === clientId && o.call >= from && o.return <= to);
  }

  /**
   * Problems with the history, empty when none: the checker's verdict on the
   * whole history, and for every key whether its final value is an
   * acknowledged write's or a later one's (no acknowledged write lost).
   */
  verify(final: Map<string, string | undefined>): string[] {
    const problems: string[] = [];
    const r = checkOperations(kvModel, this.ops, { timeoutMs: 60_000 });
    if (r.verdict !== 'ok') problems.push(`linearizability: ${r.verdict}: ${r.explain}`);
    for (const key of this.keys) {
      const writes = this.writes().filter((w) => w.input.key === key);
      const acked = writes.filter((w) => w.return !== Infinity);
      const v = final.get(key);
      const w = writes.find((x) => x.input.value === v);
      if (v === undefined) {
        if (acked.length > 0)
          problems.push(`${key}: absent at the end, ${acked.length} writes acknowledged`);
        continue;
      }
      if (!w) {
        problems.push(`${key}: final value ${v} was never written`);
        continue;
      }
      // The final value's write must not have finished before an acknowledged write began.
      const overwritten = acked.find((a) => w.return < a.call);
      if (overwritten)
        problems.push(
          `${key}: final value ${v} (written [${w.call.toFixed(0)}, ${w.return.toFixed(0)}]) but ${overwritten.input.value} was acknowledged later ([${overwritten.call.toFixed(0)}, ${overwritten.return.toFixed(0)}]): an acknowledged write is lost`,
        );
    }
    return problems;
  }

  summary(): { ops: number; writes: number; acked: number; unknown: number; reads: number } {
    const writes = this.writes();
    const acked = writes.filter((o) => o.return !== Infinity).length;
    return {
      ops: this.ops.length,
      writes: writes.length,
      acked,
      unknown: writes.length - acked,
      reads: this.ops.length - writes.length,
    };
  }
}

import * as grpc from '@grpc/grpc-js';
import { GetResponse, KVClient, StatusResponse } from '../../../src/gen/kv';

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 200,
  'grpc.enable_retries': 0,
  'grpc.enable_channelz': 0,
};

/** One connection per server; calls go to one server, or to a chosen one. */
export class KvClient {
  private readonly clients: KVClient[];
  private current = 0;

  constructor(readonly addresses: string[]) {
    this.clients = addresses.map(
      (a) => new KVClient(a, grpc.credentials.createInsecure(), CHANNEL_OPTIONS),
    );
  }

  /** Sticks to server i (mod n) until a failure moves it on. */
  use(i: number): this {
    this.current = i % this.clients.length;
    return this;
  }

  next(): void {
    this.current = (this.current + 1) % this.clients.length;
  }

  put(key: string, value: Uint8Array, timeoutMs = 5000, server = this.current): Promise<number> {
    return new Promise((resolve, reject) =>
      this.clients[server].put(
        { key, value: Buffer.from(value) },
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res.index)),
      ),
    );
  }

  get(
    key: string,
    opts: { stale?: boolean; timeoutMs?: number } = {},
    server = this.current,
  ): Promise<GetResponse> {
    return new Promise((resolve, reject) =>
      this.clients[server].get(
        { key, stale: opts.stale ?? false },
        new grpc.Metadata(),
        { deadline: Date.now() + (opts.timeoutMs ?? 5000) },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
  }

  status(server: number, timeoutMs = 1000): Promise<StatusResponse> {
    return new Promise((resolve, reject) =>
      this.clients[server].status(
        {},
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
  }

  transfer(server: number, to: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.clients[server].transferLeadership({ to }, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Writes, moving on to the next server whenever one cannot take the write, until `deadlineMs`. */
  async putRetrying(key: string, value: Uint8Array, deadlineMs: number): Promise<number> {
    let lastErr: unknown;
    while (Date.now() < deadlineMs) {
      try {
        return await this.put(key, value, Math.max(1, Math.min(1000, deadlineMs - Date.now())));
      } catch (err) {
        lastErr = err;
        this.next();
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    throw lastErr ?? new Error('deadline passed');
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

/** True for errors after which a write may or may not have been applied. */
export function outcomeUnknown(err: unknown): boolean {
  const code = (err as grpc.ServiceError).code;
  return (
    code === grpc.status.DEADLINE_EXCEEDED ||
    code === grpc.status.CANCELLED ||
    code === grpc.status.INTERNAL
  );
}

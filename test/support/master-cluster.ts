import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatonClient } from '../../src/client/cluster-client';
import { freePort, stopProcess } from './raft-kv/processes';

/** The `baton` executable of this checkout (bin/baton.js runs dist/). */
export const BATON_BIN = join(__dirname, '..', '..', '..', 'bin', 'baton.js');

/**
 * Real `baton master` processes on loopback, each with its own data
 * directory, that a test can kill -9, restart and add to.
 */
export class MasterCluster {
  readonly procs = new Map<number, ChildProcess>();
  readonly addresses: Record<number, string> = {};
  readonly logs = new Map<number, string>();
  /** Everything each master wrote to stdout and stderr, when `transcripts` is set. */
  readonly transcripts = new Map<number, string>();
  /** Keep whole transcripts (a test that reads every log line), not just the last 8000 characters. */
  keepTranscripts = false;
  readonly dir = mkdtempSync(join(tmpdir(), 'baton-masters-'));

  /** `host`: the address to listen on (loopback unless machines in a lab must reach them). */
  static async start(
    size = 3,
    extraArgs: string[] = [],
    host = '127.0.0.1',
    opts: { keepTranscripts?: boolean } = {},
  ): Promise<MasterCluster> {
    const c = new MasterCluster(extraArgs, host);
    c.keepTranscripts = opts.keepTranscripts ?? false;
    for (let id = 1; id <= size; id++) c.addresses[id] = `${host}:${await freePort()}`;
    await Promise.all(c.ids().map((id) => c.startMaster(id)));
    return c;
  }

  private constructor(
    private readonly extraArgs: string[],
    private readonly host: string,
  ) {}

  ids(): number[] {
    return Object.keys(this.addresses).map(Number);
  }

  servers(): string[] {
    return this.ids().map((id) => this.addresses[id]);
  }

  /** `args`: flags for this start only (after the cluster's, so they win). */
  async startMaster(id: number, joinVia?: string, args: string[] = []): Promise<void> {
    if (!this.addresses[id]) this.addresses[id] = `${this.host}:${await freePort()}`;
    const founders = Object.entries(this.addresses)
      .filter(([i]) => Number(i) <= 3 || Number(i) === id)
      .map(([i, a]) => `${i}=${a}`)
      .join(',');
    const argv = [
      // e.g. BATON_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the masters.
      ...(process.env.BATON_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      BATON_BIN,
      'master',
      '--id',
      String(id),
      '--listen',
      this.addresses[id],
      '--data-dir',
      join(this.dir, `m${id}`),
      '--log-level',
      process.env.BATON_TEST_LOG_LEVEL ?? 'warn',
      ...(joinVia ? ['--join', joinVia] : ['--peers', founders]),
      // Plaintext: these clusters test behaviour, not security (test/ca/ does that).
      '--insecure',
      ...this.extraArgs,
      ...args,
    ];
    const p = spawn(process.execPath, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BATON_LOG_PRETTY: '0' },
    });
    this.procs.set(id, p);
    const record = (d: Buffer) => {
      if (this.keepTranscripts)
        this.transcripts.set(id, (this.transcripts.get(id) ?? '') + d.toString());
    };
    p.stdout!.on('data', record);
    p.stderr!.on('data', (d: Buffer) => {
      record(d);
      this.logs.set(id, ((this.logs.get(id) ?? '') + d.toString()).slice(-8000));
      if (process.env.BATON_TEST_STDERR) process.stderr.write(`[master ${id}] ${d}`);
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () =>
          reject(new Error(`master ${id} did not listen within 30 s: ${this.logs.get(id) ?? ''}`)),
        30_000,
      );
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`master ${id} exited with ${code}: ${this.logs.get(id) ?? ''}`));
      });
    });
  }

  /** Resolves with the exit code once master `id` has exited by itself (a removed master does). */
  exited(id: number, timeoutMs = 20_000): Promise<number | null> {
    const p = this.procs.get(id);
    if (!p) return Promise.reject(new Error(`master ${id} is not running`));
    if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `master ${id} did not exit within ${timeoutMs} ms: ${this.logs.get(id) ?? ''}`,
            ),
          ),
        timeoutMs,
      );
      p.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  /** kill -9. */
  async kill(id: number): Promise<void> {
    const p = this.procs.get(id);
    this.procs.delete(id);
    await stopProcess(p);
  }

  /** SIGTERM, and wait for a clean exit. */
  terminate(id: number): Promise<number | null> {
    const p = this.procs.get(id);
    this.procs.delete(id);
    return stopProcess(p, 'SIGTERM');
  }

  client(ids = this.ids(), timeoutMs = 15_000): BatonClient {
    return new BatonClient(
      ids.map((id) => this.addresses[id]),
      { timeoutMs },
    );
  }

  /** The leader's id as the masters report it, waiting until one is elected. */
  async leader(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const id of this.ids()) {
        if (!this.procs.has(id)) continue;
        const c = this.client([id], 1000);
        try {
          const s = await c.status();
          if (s.leader !== 0 && this.procs.has(Number(s.leader))) return Number(s.leader);
        } catch {
          // not answering: ask the next one
        } finally {
          c.close();
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.ids().map((id) => this.kill(id)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

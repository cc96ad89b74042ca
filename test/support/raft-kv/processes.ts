import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvClient } from './client';

const SERVER = join(__dirname, 'server.js');

/** Ports this process handed out already: the kernel may offer one again once it is closed. */
const handedOut = new Set<number>();

/** A loopback port nothing listens on now, never the same twice in this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Sends `signal` to a child process and resolves with its exit code once it has exited. */
export function stopProcess(
  p: ChildProcess | undefined,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<number | null> {
  if (!p || p.exitCode !== null || p.signalCode !== null)
    return Promise.resolve(p?.exitCode ?? null);
  return new Promise((resolve) => {
    p.once('exit', (code) => resolve(code));
    p.kill(signal);
  });
}

export interface KvClusterOptions {
  size?: number;
  /** Extra flags for every server (e.g. ["--election-ticks", "6"]). */
  args?: string[];
  dir?: string;
  /** Flags for node itself, e.g. ["--cpu-prof"]; BATON_KV_NODE_ARGS adds more (space-separated). */
  nodeArgs?: string[];
}

/**
 * A cluster of real `raft-kv` server processes on loopback, each with its
 * own LevelDB directory, that tests and benchmarks can kill -9 and restart.
 */
export class KvCluster {
  readonly procs = new Map<number, ChildProcess>();
  readonly addresses: Record<number, string> = {};
  readonly dir: string;
  private readonly ownDir: boolean;

  private constructor(
    readonly size: number,
    private readonly args: string[],
    dir: string | undefined,
    private readonly nodeArgs: string[] = [],
  ) {
    this.ownDir = dir === undefined;
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'baton-kv-'));
  }

  static async start(opts: KvClusterOptions = {}): Promise<KvCluster> {
    const envArgs = (process.env.BATON_KV_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const c = new KvCluster(opts.size ?? 3, opts.args ?? [], opts.dir, [
      ...(opts.nodeArgs ?? []),
      ...envArgs,
    ]);
    for (let id = 1; id <= c.size; id++) c.addresses[id] = `127.0.0.1:${await freePort()}`;
    await Promise.all(Object.keys(c.addresses).map((id) => c.startNode(Number(id), true)));
    return c;
  }

  ids(): number[] {
    return Object.keys(this.addresses).map(Number);
  }

  peersFlag(): string {
    return this.ids()
      .map((id) => `${id}=${this.addresses[id]}`)
      .join(',');
  }

  async startNode(id: number, bootstrap = false): Promise<void> {
    const argv = [
      ...this.nodeArgs,
      SERVER,
      '--id',
      String(id),
      '--listen',
      this.addresses[id],
      '--peers',
      this.peersFlag(),
      '--dir',
      join(this.dir, `n${id}`),
      ...(bootstrap ? ['--bootstrap'] : []),
      ...this.args,
    ];
    const p = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.set(id, p);
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      if (process.env.BATON_KV_STDERR) process.stderr.write(`[kv ${id}] ${d}`);
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready ')) resolve();
      });
      p.once('exit', (code) =>
        reject(new Error(`kv server ${id} exited with ${code} before ready: ${stderr}`)),
      );
    });
  }

  /** kill -9: no chance to flush anything. */
  async kill(id: number): Promise<void> {
    const p = this.procs.get(id);
    this.procs.delete(id);
    await stopProcess(p);
  }

  async restart(id: number): Promise<void> {
    await this.kill(id);
    await this.startNode(id, false);
  }

  client(): KvClient {
    return new KvClient(this.ids().map((id) => this.addresses[id]));
  }

  /** The id of the leader that a majority of servers agree on, or 0. */
  async leader(client: KvClient): Promise<{ id: number; term: number }> {
    const seen = new Map<string, number>();
    for (const [i, id] of this.ids().entries()) {
      if (!this.procs.has(id)) continue;
      try {
        const s = await client.status(i, 300);
        if (s.leader !== 0 && s.state === 'Leader') return { id: s.id, term: s.term };
        if (s.leader !== 0)
          seen.set(`${s.leader}/${s.term}`, (seen.get(`${s.leader}/${s.term}`) ?? 0) + 1);
      } catch {
        // a server that does not answer has no opinion
      }
    }
    return { id: 0, term: 0 };
  }

  async waitForLeader(client: KvClient, timeoutMs = 10_000): Promise<{ id: number; term: number }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await this.leader(client);
      if (l.id !== 0) return l;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.ids().map((id) => this.kill(id)));
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

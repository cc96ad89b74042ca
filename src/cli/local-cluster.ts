/**
 * A whole cluster on this machine for a developer (`baton up`): masters and
 * node daemons as separate, detached processes on loopback, everything they
 * keep under one directory:
 *
 *   DIR/cluster.json        what was started: each process's arguments and pid
 *   DIR/masters/master-N/   a master's Raft log and snapshots
 *   DIR/nodes/node-N/       a node daemon's state
 *   DIR/logs/NAME.log       each process's output (JSON lines)
 *
 * The processes outlive the `baton up` that started them; `cluster.json`
 * lets `down` and `status` find them again, and a second `up` restart only
 * those that stopped. A pid is trusted only while /proc says it still runs
 * Baton with this directory on its command line (pids are reused).
 */
import { hasPki, loadPki, TlsIdentity } from '../ca/tls';
import { clientConfigText } from './client-config';
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { ApiObject } from '../api/types';
import { BatonClient } from '../client/cluster-client';

export interface ClusterProcess {
  /** master-1, node-2, ... */
  name: string;
  role: 'master' | 'node';
  /** Arguments after `baton`. */
  args: string[];
  /** The address it serves (masters: clients and peers; nodes: logs and exec). */
  address: string;
  pid?: number;
}

export interface ClusterState {
  version: 1;
  runtime: 'docker' | 'exec';
  createdAt: string;
  processes: ClusterProcess[];
}

export interface ClusterShape {
  masters: number;
  nodes: number;
  runtime: 'docker' | 'exec';
  /** Whether this user may program iptables (root): the first node does it for the host. */
  root: boolean;
}

export class LocalClusterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalClusterError';
  }
}

const STATE_FILE = 'cluster.json';

export class LocalCluster {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  logFile(name: string): string {
    return join(this.dir, 'logs', `${name}.log`);
  }

  /**
   * One key file for every master of the cluster (each master's own default
   * would differ, and a master cannot read what another key sealed).
   */
  secretsKeyFile(): string {
    return join(this.dir, 'masters', 'secrets.key');
  }

  /** The local admin's credentials (see local-pki.ts); none for a cluster made before TLS. */
  adminCredentials() {
    const d = join(this.dir, 'admin');
    return hasPki(d) ? loadPki(d).channelCredentials(['master']) : undefined;
  }

  read(): ClusterState | undefined {
    const file = join(this.dir, STATE_FILE);
    if (!existsSync(file)) return undefined;
    try {
      const s = JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
      if (s.version !== 1 || !Array.isArray(s.processes)) throw new Error('unknown format');
      // Planned before Secrets were sealed: the masters share one key from now on.
      for (const p of s.processes)
        if (p.role === 'master' && !p.args.includes('--secrets-key-file'))
          p.args.push('--secrets-key-file', this.secretsKeyFile());
      return s;
    } catch (e) {
      throw new LocalClusterError(
        `${file} cannot be read (${(e as Error).message}); remove the directory or run "baton down --purge --dir ${this.dir}"`,
      );
    }
  }

  write(state: ClusterState): void {
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, STATE_FILE);
    writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2) + '\n');
    renameSync(`${file}.tmp`, file);
  }

  /** Whether `p` is running now: its pid alive and still a Baton process of this directory. */
  running(p: ClusterProcess): boolean {
    if (!p.pid) return false;
    try {
      process.kill(p.pid, 0);
    } catch {
      // Gone, or (EPERM) a reused pid of another user.
      return false;
    }
    try {
      const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      return cmdline.includes(this.dir) && cmdline.includes(p.role);
    } catch {
      // No /proc (not Linux): the signal check is all we have.
      return process.platform !== 'linux';
    }
  }

  /** A new cluster's processes: ports picked now (the usual ones when free). */
  static async plan(dir: string, shape: ClusterShape): Promise<ClusterState> {
    const c = new LocalCluster(dir);
    const masterAddrs: string[] = [];
    for (let i = 1; i <= shape.masters; i++)
      masterAddrs.push(`127.0.0.1:${await portNear(7000 + i, masterAddrs)}`);
    const peers = masterAddrs.map((a, i) => `${i + 1}=${a}`).join(',');
    const processes: ClusterProcess[] = masterAddrs.map((address, i) => ({
      name: `master-${i + 1}`,
      role: 'master',
      address,
      args: [
        'master',
        '--id',
        String(i + 1),
        '--listen',
        address,
        '--peers',
        peers,
        '--data-dir',
        join(c.dir, 'masters', `master-${i + 1}`),
        '--secrets-key-file',
        c.secretsKeyFile(),
      ],
    }));
    const taken: string[] = [...masterAddrs];
    for (let i = 1; i <= shape.nodes; i++) {
      const address = `127.0.0.1:${await portNear(10249 + i, taken)}`;
      taken.push(address);
      const args = [
        'node',
        '--name',
        `node-${i}`,
        '--masters',
        masterAddrs.join(','),
        '--data-dir',
        join(c.dir, 'nodes', `node-${i}`),
        '--listen',
        address,
        '--address',
        '127.0.0.1',
        '--runtime',
        shape.runtime,
        '--remove-pods-on-exit',
      ];
      // One host, one set of service rules: the first node programs them for everyone.
      if (i > 1) args.push('--shared-host');
      processes.push({ name: `node-${i}`, role: 'node', address, args });
    }
    return { version: 1, runtime: shape.runtime, createdAt: new Date().toISOString(), processes };
  }

  /** Starts `p` detached, its output appended to its log file; records the pid in `p`. */
  start(p: ClusterProcess, bin: string): void {
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    const fd = openSync(this.logFile(p.name), 'a');
    try {
      const env: NodeJS.ProcessEnv = {};
      // The user's BATON_* settings are for the CLI (BATON_SERVER, BATON_CONFIG...), not these daemons.
      for (const [k, v] of Object.entries(process.env))
        if (!k.startsWith('BATON_') || k === 'BATON_LOG_LEVEL') env[k] = v;
      const child = spawn(process.execPath, [bin, ...p.args], {
        detached: true,
        stdio: ['ignore', fd, fd],
        env,
        cwd: this.dir,
      });
      child.unref();
      p.pid = child.pid;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Stops the processes (SIGTERM, then SIGKILL after `graceMs`): nodes
   * first, so they remove their pods while the masters still answer.
   * Resolves to the names of the processes that were running.
   */
  async stop(state: ClusterState, graceMs = 30_000): Promise<string[]> {
    const stopped: string[] = [];
    for (const role of ['node', 'master'] as const) {
      const group = state.processes.filter((p) => p.role === role && this.running(p));
      for (const p of group) process.kill(p.pid!, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (group.some((p) => this.running(p)) && Date.now() < deadline) await sleep(100);
      for (const p of group)
        if (this.running(p)) {
          process.kill(p.pid!, 'SIGKILL');
          while (this.running(p)) await sleep(50);
        }
      stopped.push(...group.map((p) => p.name));
    }
    return stopped;
  }

  /** The last `n` lines of a process's log, to show why it failed. */
  logTail(name: string, n = 8): string {
    try {
      const lines = readFileSync(this.logFile(name), 'utf8').trimEnd().split('\n');
      return lines.slice(-n).join('\n');
    } catch {
      return '';
    }
  }
}

/** What a wait is at, for the progress display. */
export type Progress = (what: string) => void;

/**
 * Waits until a leader is elected and every master is healthy, then until
 * every node is registered and Ready. Fails fast, naming the process and
 * its log, when one of them exits; otherwise after `timeoutMs`.
 */
export async function waitHealthy(
  cluster: LocalCluster,
  state: ClusterState,
  progress: Progress,
  timeoutMs = 90_000,
): Promise<void> {
  const masters = state.processes.filter((p) => p.role === 'master');
  const nodes = state.processes.filter((p) => p.role === 'node');
  const client = new BatonClient(
    masters.map((m) => m.address),
    { timeoutMs: 2000, credentials: cluster.adminCredentials() },
  );
  const deadline = Date.now() + timeoutMs;
  const check = () => {
    for (const p of state.processes)
      if (!cluster.running(p))
        throw new LocalClusterError(
          `${p.name} exited while starting; the end of ${cluster.logFile(p.name)}:\n${cluster.logTail(p.name)}`,
        );
    if (Date.now() > deadline)
      throw new LocalClusterError(
        `the cluster is not healthy after ${timeoutMs / 1000}s; see the logs in ${join(cluster.dir, 'logs')}`,
      );
  };
  try {
    for (;;) {
      check();
      const s = await client.status().catch(() => undefined);
      const healthy = s?.fromLeader ? s.members.filter((m) => m.healthy).length : 0;
      if (s?.leader && healthy === masters.length) break;
      progress(
        !s?.leader
          ? `waiting for the ${masters.length} masters to elect a leader`
          : `waiting for the masters to be healthy (${healthy}/${masters.length})`,
      );
      await sleep(200);
    }
    for (;;) {
      check();
      const r = await client.list({ kind: 'Node' }).catch(() => undefined);
      const ready = new Set(
        (r?.itemsJson ?? [])
          .map((j) => JSON.parse(j) as ApiObject)
          .filter((n) => nodeReady(n))
          .map((n) => n.metadata.name),
      );
      const have = nodes.filter((n) => ready.has(n.name)).length;
      if (have === nodes.length) break;
      progress(`waiting for the nodes to be Ready (${have}/${nodes.length})`);
      await sleep(200);
    }
  } finally {
    client.close();
  }
}

export function nodeReady(n: ApiObject): boolean {
  const conds = (n.status as { conditions?: { type: string; status: string }[] } | undefined)
    ?.conditions;
  return conds?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** `baton` itself, to start the daemons with: the script this process runs. */
export function batonBin(): string {
  const here = process.argv[1];
  if (here && existsSync(here)) return realpathSync(here);
  return join(__dirname, '..', '..', '..', 'bin', 'baton.js');
}

/** Writes the client config that points the CLI at `masters`; keeps a foreign one as .bak. */
export function writeClientConfig(
  file: string,
  masters: string[],
  dir: string,
  admin?: TlsIdentity,
): { replaced: boolean } {
  const marker = `# written by "baton up" for the local cluster in ${dir}`;
  let replaced = false;
  if (existsSync(file)) {
    const old = readFileSync(file, 'utf8');
    if (!old.startsWith('# written by "baton up"')) {
      renameSync(file, `${file}.bak`);
      replaced = true;
    }
  }
  mkdirSync(dirname(file), { recursive: true });
  const tls = admin && { ca: admin.caCertPem, cert: admin.certPem, key: admin.keyPem };
  // With the admin's key in it, only its owner may read it.
  writeFileSync(file, clientConfigText({ server: masters, ...tls }, marker.slice(2)), {
    mode: 0o600,
  });
  chmodSync(file, 0o600);
  return { replaced };
}

/** Whether `file` is a client config `baton up` wrote for `dir`. */
export function clientConfigFor(file: string, dir: string): boolean {
  try {
    return readFileSync(file, 'utf8').startsWith(
      `# written by "baton up" for the local cluster in ${dir}\n`,
    );
  } catch {
    return false;
  }
}

async function portNear(preferred: number, taken: string[]): Promise<number> {
  const used = (p: number) => taken.some((a) => a.endsWith(`:${p}`));
  if (!used(preferred) && (await listenable(preferred))) return preferred;
  for (;;) {
    const p = await freePort();
    if (!used(p)) return p;
  }
}

function listenable(port: number): Promise<boolean> {
  return new Promise((resolveOk) => {
    const s = createServer();
    s.once('error', () => resolveOk(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolveOk(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolveOk, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: '127.0.0.1' }, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolveOk(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

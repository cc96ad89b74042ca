import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Master, startMaster } from '../../src/master/master';
import { BATON_BIN } from './master-cluster';
import { freePort } from './raft-kv/processes';

/** One master, leader of itself, in this process: what CLI tests talk to. */
export async function soloMaster(dir: string): Promise<{ master: Master; address: string }> {
  const address = `127.0.0.1:${await freePort()}`;
  const master = await startMaster({
    id: 1,
    listen: address,
    peers: { 1: address },
    dataDir: join(dir, 'm1'),
    bootstrap: true,
  });
  while (!master.node.isLeader()) await new Promise((r) => setTimeout(r, 20));
  return { master, address };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `baton` CLI as a child process (asynchronously, so masters
 * in this process keep serving) against `server`, with no config file.
 */
export function runBaton(
  server: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [BATON_BIN, ...args],
      {
        env: {
          ...process.env,
          BATON_SERVER: server,
          BATON_CONFIG: '/nonexistent/baton-config',
          ...env,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    ),
  );
}

export interface RunningCli {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once the process exited. */
  done: Promise<CliResult>;
}

/** Starts the real `baton` CLI and leaves it running: for streams a test feeds stdin to, or interrupts. */
export function startBaton(
  server: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): RunningCli {
  const child = spawn(process.execPath, [BATON_BIN, ...args], {
    env: {
      ...process.env,
      BATON_SERVER: server,
      BATON_CONFIG: '/nonexistent/baton-config',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let errText = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
  const done = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: out, stderr: errText }),
    ),
  );
  return { child, stdout: () => out, stderr: () => errText, done };
}

/**
 * A cluster made by the real `baton up` in a directory of its own, and the
 * CLI pointed at it through the client config `up` writes there (no
 * BATON_SERVER): what a new user gets.
 */
export class UpCluster {
  readonly config: string;
  readonly clusterDir: string;

  constructor(readonly dir: string) {
    this.config = `${dir}/config`;
    this.clusterDir = `${dir}/cluster`;
  }

  /** The environment every CLI call of this cluster runs with. */
  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BATON_')) env[k] = v;
    return { ...env, BATON_CONFIG: this.config, BATON_CLUSTER_DIR: this.clusterDir };
  }

  baton(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [BATON_BIN, ...args],
        { env: this.env(), timeout: opts.timeoutMs ?? 180_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code ?? 1) || 1 : 0, stdout, stderr }),
      );
      if (opts.input !== undefined) child.stdin!.end(opts.input);
    });
  }

  /** Runs `args` and fails the test, with its output, unless it exits 0. */
  async ok(args: string[], opts: { input?: string } = {}): Promise<string> {
    const r = await this.baton(args, opts);
    if (r.code !== 0)
      throw new Error(
        `baton ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
      );
    return r.stdout;
  }

  /** A shell command line running the CLI with this cluster's environment (for tmux). */
  commandLine(args: string[]): string {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    return [
      `BATON_CONFIG=${q(this.config)}`,
      `BATON_CLUSTER_DIR=${q(this.clusterDir)}`,
      q(process.execPath),
      q(BATON_BIN),
      ...args.map(q),
    ].join(' ');
  }

  /** Stops everything `up` started and deletes the directory (best effort). */
  async destroy(): Promise<void> {
    await this.baton(['down', '--purge']);
  }
}

/**
 * Why a `baton up` suite must not run here now, or undefined: a node daemon
 * already running on this host (a developer's own `baton up`) programs the
 * same host's service rules and Docker networks as the suite's would.
 */
export function localClusterBusy(): string | undefined {
  const r = spawnSync('pgrep', ['-f', 'bin/baton(\\.js)? node '], { encoding: 'utf8' });
  const pids = r.stdout.trim();
  return pids
    ? `a Baton node daemon already runs on this host (pid ${pids.split('\n').join(', ')}); "baton down" first`
    : undefined;
}

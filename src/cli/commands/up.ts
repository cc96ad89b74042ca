/**
 * `baton up`, `baton down`, `baton status`: a whole cluster on this machine
 * for a developer (see ../local-cluster.ts for what runs where).
 */
import { Command, Option } from 'commander';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BatonClient } from '../../client/cluster-client';
import { ApiObject } from '../../api/types';
import { defaultConfigPath } from '../client-config';
import {
  batonBin,
  clientConfigFor,
  ClusterState,
  LocalCluster,
  LocalClusterError,
  nodeReady,
  Progress,
  waitHealthy,
  writeClientConfig,
} from '../local-cluster';
import { renderTable } from '../printers';
import { ensureLocalPki } from '../local-pki';
import { err, out, ReportedError } from '../output';

const defaultDir = () => process.env.BATON_CLUSTER_DIR ?? join(homedir(), '.baton', 'cluster');

function dirOption(): Option {
  return new Option('--dir <dir>', 'where the cluster keeps its data and logs').default(
    defaultDir(),
    '~/.baton/cluster, or $BATON_CLUSTER_DIR',
  );
}

function count(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max)
      throw new LocalClusterError(
        `--${name}: expected a whole number from ${min} to ${max}, got "${v}"`,
      );
    return n;
  };
}

interface UpOpts {
  dir: string;
  masters?: number;
  nodes?: number;
  runtime: 'auto' | 'docker' | 'exec';
  foreground?: boolean;
  timeout: string;
}

export function upCommand(): Command {
  return new Command('up')
    .description('start a local cluster: masters and node daemons as processes on loopback')
    .addOption(dirOption())
    .option('--masters <n>', 'how many masters (default 3)', count('masters', 1, 7))
    .option('--nodes <n>', 'how many node daemons (default 2)', count('nodes', 0, 20))
    .addOption(
      new Option('--runtime <name>', 'how nodes run pods (auto: Docker when a daemon answers)')
        .choices(['auto', 'docker', 'exec'])
        .default('auto'),
    )
    .option('--foreground', 'stay attached: stream every process log; Ctrl-C stops the cluster')
    .option('--timeout <seconds>', 'give up waiting for health after this long', '120')
    .action(async (opts: UpOpts, cmd: Command) => {
      const cluster = new LocalCluster(opts.dir);
      const configFile =
        (cmd.optsWithGlobals() as { config?: string }).config ?? defaultConfigPath();
      const progress = progressLine();
      const logStart = logOffsets(cluster);
      let state = cluster.read();
      if (state) {
        const masters = state.processes.filter((p) => p.role === 'master').length;
        const nodes = state.processes.filter((p) => p.role === 'node').length;
        if (
          (opts.masters !== undefined && opts.masters !== masters) ||
          (opts.nodes !== undefined && opts.nodes !== nodes)
        )
          throw new LocalClusterError(
            `the cluster in ${cluster.dir} has ${masters} masters and ${nodes} nodes; "baton down --purge" it first to change its shape, or use another --dir`,
          );
        const stopped = state.processes.filter((p) => !cluster.running(p));
        if (stopped.length === 0) {
          out(
            `A local cluster is already running in ${cluster.dir} (${masters} masters, ${nodes} nodes, ${state.runtime} runtime): nothing to do.`,
          );
        } else {
          const bin = batonBin();
          await ensureLocalPki(cluster.dir, state.processes);
          out(`Starting what stopped in ${cluster.dir}: ${stopped.map((p) => p.name).join(', ')}`);
          for (const p of stopped) cluster.start(p, bin);
          cluster.write(state);
        }
      } else {
        const runtime = opts.runtime === 'auto' ? await detectRuntime() : opts.runtime;
        out(
          runtime === 'docker'
            ? 'Runtime: docker (a Docker daemon answers; pods run as containers)'
            : `Runtime: exec (${opts.runtime === 'exec' ? 'as asked' : 'no Docker daemon answers'}: pods run as processes on this host, without images or isolation)`,
        );
        state = await LocalCluster.plan(cluster.dir, {
          masters: opts.masters ?? 3,
          nodes: opts.nodes ?? 2,
          runtime,
          root: process.getuid?.() === 0,
        });
        await ensureLocalPki(cluster.dir, state.processes);
        const bin = batonBin();
        for (const p of state.processes) cluster.start(p, bin);
        cluster.write(state);
        out(`Starting ${opts.masters ?? 3} masters and ${opts.nodes ?? 2} nodes in ${cluster.dir}`);
      }
      try {
        await waitHealthy(cluster, state, progress.update, Number(opts.timeout) * 1000);
      } finally {
        progress.done();
      }
      const masters = state.processes.filter((p) => p.role === 'master').map((p) => p.address);
      const admin = await ensureLocalPki(cluster.dir, state.processes);
      const { replaced } = writeClientConfig(configFile, masters, cluster.dir, admin);
      out(summary(cluster, state, configFile, replaced));
      if (opts.foreground) await followLogs(cluster, state, logStart);
    });
}

function summary(
  cluster: LocalCluster,
  state: ClusterState,
  configFile: string,
  replaced: boolean,
): string {
  const masters = state.processes.filter((p) => p.role === 'master');
  const nodes = state.processes.filter((p) => p.role === 'node');
  const rows = state.processes.map((p) => [p.name, String(p.pid ?? ''), p.address]);
  return [
    `Cluster ready: ${masters.length} masters, ${nodes.length} nodes (${state.runtime} runtime).`,
    '',
    renderTable(['PROCESS', 'PID', 'ADDRESS'], rows),
    '',
    `Data and logs: ${cluster.dir} (logs/NAME.log)`,
    `Client config: ${configFile}${replaced ? ` (the previous one is ${configFile}.bak)` : ''}`,
    '',
    'Next:',
    '  baton get nodes',
    '  baton create deployment hello --image baton/busybox --replicas 2 -- httpd -f -p 8080',
    '  baton get pods -o wide',
    '  baton cluster status',
    '  baton down            (stops everything; add --purge to delete the data too)',
  ].join('\n');
}

export function downCommand(): Command {
  return new Command('down')
    .description('stop the local cluster that "baton up" started (data kept unless --purge)')
    .addOption(dirOption())
    .option('--purge', 'also delete its data, logs and the client config written for it')
    .action(async (opts: { dir: string; purge?: boolean }, cmd: Command) => {
      const cluster = new LocalCluster(opts.dir);
      const configFile =
        (cmd.optsWithGlobals() as { config?: string }).config ?? defaultConfigPath();
      const state = existsSync(cluster.dir) ? cluster.read() : undefined;
      if (!state) {
        out(`No local cluster in ${cluster.dir}: nothing to stop.`);
        return;
      }
      const running = state.processes.filter((p) => cluster.running(p)).map((p) => p.name);
      if (running.length > 0) out(`Stopping ${running.join(', ')}`);
      await cluster.stop(state);
      if (opts.purge) {
        rmSync(cluster.dir, { recursive: true, force: true });
        if (clientConfigFor(configFile, cluster.dir)) rmSync(configFile, { force: true });
        out(`Stopped; removed ${cluster.dir}.`);
      } else {
        out(
          `Stopped. Data kept in ${cluster.dir}: "baton up" starts it again, "baton down --purge" deletes it.`,
        );
      }
    });
}

export function statusCommand(): Command {
  return new Command('status')
    .description('show the processes of the local cluster and its health')
    .addOption(dirOption())
    .option('-o, --output <format>', 'json for machine output')
    .action(async (opts: { dir: string; output?: string }) => {
      const cluster = new LocalCluster(opts.dir);
      const state = existsSync(cluster.dir) ? cluster.read() : undefined;
      if (!state) {
        err(`No local cluster in ${cluster.dir} (start one with "baton up").`);
        throw new ReportedError('no cluster', 1);
      }
      const procs = state.processes.map((p) => ({
        name: p.name,
        role: p.role,
        pid: cluster.running(p) ? p.pid : undefined,
        state: cluster.running(p) ? 'running' : 'stopped',
        address: p.address,
        log: cluster.logFile(p.name),
      }));
      const health = await clusterHealth(cluster, state);
      if (opts.output === 'json') {
        out(
          JSON.stringify(
            { dir: cluster.dir, runtime: state.runtime, processes: procs, ...health },
            null,
            2,
          ),
        );
      } else {
        out(`Local cluster in ${cluster.dir} (${state.runtime} runtime)`);
        out(
          renderTable(
            ['PROCESS', 'STATE', 'PID', 'ADDRESS', 'LOG'],
            procs.map((p) => [p.name, p.state, String(p.pid ?? '-'), p.address, p.log]),
          ),
        );
        out(
          health.leader
            ? `leader: ${health.leader}   nodes ready: ${health.nodesReady}/${health.nodes}`
            : 'leader: none (no master answers, or no quorum)',
        );
      }
      if (procs.some((p) => p.state !== 'running') || !health.leader)
        throw new ReportedError('not all running', 1);
    });
}

async function clusterHealth(
  cluster: LocalCluster,
  state: ClusterState,
): Promise<{ leader?: string; nodes: number; nodesReady: number }> {
  const masters = state.processes.filter((p) => p.role === 'master');
  const client = new BatonClient(
    masters.map((m) => m.address),
    { timeoutMs: 3000, credentials: cluster.adminCredentials() },
  );
  try {
    const s = await client.status();
    const leader = s.leader ? `master-${s.leader} (${s.leaderAddress})` : undefined;
    const list = await client.list({ kind: 'Node' });
    const nodes = list.itemsJson.map((j) => JSON.parse(j) as ApiObject);
    return { leader, nodes: nodes.length, nodesReady: nodes.filter(nodeReady).length };
  } catch {
    return { nodes: 0, nodesReady: 0 };
  } finally {
    client.close();
  }
}

async function detectRuntime(): Promise<'docker' | 'exec'> {
  /* eslint-disable-next-line @typescript-eslint/no-require-imports */
  const Docker = require('dockerode') as typeof import('dockerode');
  const ping = new Docker().ping();
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('timeout')), 2000).unref(),
  );
  try {
    await Promise.race([ping, timeout]);
    return 'docker';
  } catch {
    return 'exec';
  }
}

/** One status line, redrawn in place on a terminal; each new message once otherwise. */
function progressLine(): { update: Progress; done(): void } {
  const tty = process.stderr.isTTY;
  const frames = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏';
  const started = Date.now();
  let last = '';
  let i = 0;
  return {
    update(what) {
      if (tty) {
        const secs = ((Date.now() - started) / 1000).toFixed(0);
        process.stderr.write(`\r\x1b[K${frames[i++ % frames.length]} ${what} (${secs}s)`);
      } else if (what !== last) process.stderr.write(`${what}...\n`);
      last = what;
    },
    done() {
      if (tty && last) process.stderr.write('\r\x1b[K');
    },
  };
}

function logOffsets(cluster: LocalCluster): Map<string, number> {
  const m = new Map<string, number>();
  const state = existsSync(cluster.dir) ? cluster.read() : undefined;
  for (const p of state?.processes ?? []) {
    try {
      m.set(p.name, statSync(cluster.logFile(p.name)).size);
    } catch {
      m.set(p.name, 0);
    }
  }
  return m;
}

/**
 * `up --foreground`: prints every process's log lines as they are written
 * (from where this `up` began), prefixed with the process; Ctrl-C stops
 * the cluster.
 */
async function followLogs(
  cluster: LocalCluster,
  state: ClusterState,
  from: Map<string, number>,
): Promise<void> {
  const offsets = new Map(state.processes.map((p) => [p.name, from.get(p.name) ?? 0]));
  const partial = new Map<string, string>();
  const width = Math.max(...state.processes.map((p) => p.name.length));
  const stopping = new Promise<string>((r) => {
    process.once('SIGINT', () => r('SIGINT'));
    process.once('SIGTERM', () => r('SIGTERM'));
  });
  out('Streaming the logs; Ctrl-C stops the cluster.');
  const poll = () => {
    for (const p of state.processes) {
      let text: Buffer;
      try {
        text = readFileSync(cluster.logFile(p.name));
      } catch {
        continue;
      }
      const at = offsets.get(p.name) ?? 0;
      if (text.length <= at) continue;
      offsets.set(p.name, text.length);
      const chunk = (partial.get(p.name) ?? '') + text.subarray(at).toString('utf8');
      const lines = chunk.split('\n');
      partial.set(p.name, lines.pop() ?? '');
      for (const line of lines)
        if (line) process.stdout.write(`${p.name.padEnd(width)} | ${formatLogLine(line)}\n`);
    }
  };
  const timer = setInterval(poll, 200);
  const signal = await stopping;
  clearInterval(timer);
  poll();
  out(`\n${signal}: stopping the cluster (data kept in ${cluster.dir})`);
  await cluster.stop(state);
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** A pino JSON line as `12:00:01 INFO message key=value ...`; other lines as they are. */
export function formatLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof o !== 'object' || o === null || typeof o.msg !== 'string') return line;
  const { level, time, msg, pid: _pid, hostname: _host, ...rest } = o;
  const t = typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${LEVELS[level as number] ?? String(level)} ${msg}${fields ? ` ${fields}` : ''}`;
}

/**
 * The iptables service proxy of one node: keeps the kernel's NAT rules in
 * step with the node's ServiceTable. The first sync (and one every
 * `fullSyncPeriodMs`, and after any failure) writes everything in one atomic
 * iptables-restore, which also drops chains a previous run left and puts
 * back jumps someone removed; every other sync writes only the rules of the
 * service ports that changed (see deltaScript). Nothing is flushed before
 * the first sync, so a restarted proxy replaces its rules in one step and
 * connections keep flowing; `cleanup()` removes every rule and chain.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { Coalescer } from '../common/coalescer';
import { silentLogger } from '../common/log';
import {
  cleanupScript,
  deltaScript,
  EntryRules,
  entryRules,
  fullScript,
  parseSave,
  RestoreScript,
} from './iptables-rules';
import { ServiceTable } from './service-table';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with optional stdin (injected: tests and benchmarks run it in a namespace). */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<CommandResult>;

/** Runs `cmd` on this host, optionally through a prefix (e.g. ["ip", "netns", "exec", "x"]). */
export function hostRunner(prefix: string[] = []): Runner {
  return (cmd, args, input) =>
    new Promise((resolve, reject) => {
      const argv = [...prefix, cmd, ...args];
      const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({
          code: code ?? 1,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        }),
      );
      child.stdin.on('error', () => {});
      child.stdin.end(input ?? '');
    });
}

export interface SyncStats {
  full: boolean;
  /** Services whose rules were recomputed. */
  services: number;
  /** Rule lines handed to iptables-restore. */
  lines: number;
  ms: number;
}

export interface IptablesProxyOptions {
  table: ServiceTable;
  /** The pod network (for masquerade decisions); may be unknown at first. */
  clusterCIDR(): string | undefined;
  run?: Runner;
  log?: Logger;
  /** A full sync this often, which puts right whatever someone else changed (default 60 s). */
  fullSyncPeriodMs?: number;
  /** After every successful sync. */
  onSync?(stats: SyncStats): void;
}

/** Whether this host can program iptables: the reason when not. */
export async function iptablesUnavailableReason(
  run: Runner = hostRunner(),
): Promise<string | null> {
  try {
    const r = await run('iptables-save', ['-t', 'nat']);
    if (r.code !== 0) return `iptables-save failed: ${r.stderr.trim() || `exit ${r.code}`}`;
    return null;
  } catch (err) {
    return `iptables-save cannot run: ${(err as Error).message}`;
  }
}

export class IptablesProxy {
  private readonly run: Runner;
  private readonly log: Logger;
  /** What the kernel holds, per service key (after the last successful sync). */
  private applied = new Map<string, EntryRules[]>();
  private appliedCIDR: string | undefined;
  private consumer?: { take(): Set<string>; close(): void };
  private needFull = true;
  private lastFull = 0;
  private readonly syncs = new Coalescer(
    () => this.sync(),
    async (err) => {
      this.needFull = true;
      this.log.warn({ err: (err as Error).message }, 'iptables sync failed; retrying in full');
      await new Promise((r) => setTimeout(r, 500));
      if (!this.closed) this.syncs.kick();
    },
  );
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: IptablesProxyOptions) {
    this.run = opts.run ?? hostRunner();
    this.log = (opts.log ?? silentLogger()).child({ component: 'proxy', mode: 'iptables' });
  }

  /** Starts following the table; resolves after the first (full) sync. */
  async start(): Promise<void> {
    this.lastFull = Date.now();
    this.consumer = this.opts.table.consumer('iptables', () => this.kick());
    const period = this.opts.fullSyncPeriodMs ?? 60_000;
    this.timer = setInterval(
      () => {
        if (Date.now() - this.lastFull >= period) {
          this.needFull = true;
          this.kick();
        }
      },
      Math.min(period, 5_000),
    );
    this.timer.unref();
    this.kick();
    await this.settled();
  }

  /** Resolves when no sync is running or pending. */
  async settled(): Promise<void> {
    await this.syncs.settled();
  }

  /** Asks for a sync: one runs at a time, and one more follows if asked meanwhile. */
  kick(): void {
    if (!this.closed) this.syncs.kick();
  }

  private async sync(): Promise<void> {
    const started = performance.now();
    const table = this.opts.table;
    const keys = this.consumer!.take();
    const cidr = this.opts.clusterCIDR() || undefined;
    // The cluster CIDR is in every service chain: a change of it rewrites everything.
    if (cidr !== this.appliedCIDR) this.needFull = true;
    let script: RestoreScript;
    let services: number;
    // What the kernel will hold once the script is in: every service (full), or the changed ones.
    const next = new Map<string, EntryRules[]>();
    const rulesOf = (key: string) => table.entriesOf(key).map((e) => entryRules(e, cidr));
    if (this.needFull) {
      for (const key of table.services.keys()) next.set(key, rulesOf(key));
      const existing = parseSave(await this.save());
      script = fullScript([...next.values()].flat(), cidr, existing);
      services = next.size;
    } else {
      const before: EntryRules[] = [];
      for (const key of keys) {
        before.push(...(this.applied.get(key) ?? []));
        next.set(key, rulesOf(key));
      }
      script = deltaScript(before, [...next.values()].flat());
      services = keys.size;
    }
    if (!script.empty) await this.restore(script.text());
    if (this.needFull) this.applied = next;
    else
      for (const [key, rules] of next)
        if (rules.length) this.applied.set(key, rules);
        else this.applied.delete(key);
    this.appliedCIDR = cidr;
    if (this.needFull) this.lastFull = Date.now();
    const stats = {
      full: this.needFull,
      services,
      lines: script.size,
      ms: performance.now() - started,
    };
    this.needFull = false;
    if (stats.full || stats.lines > 0)
      this.log.debug(stats, stats.full ? 'iptables full sync' : 'iptables sync');
    this.opts.onSync?.(stats);
  }

  private async save(): Promise<string> {
    const r = await this.run('iptables-save', []);
    if (r.code !== 0) throw new Error(`iptables-save: ${r.stderr.trim()}`);
    return r.stdout;
  }

  private async restore(text: string): Promise<void> {
    const r = await this.run('iptables-restore', ['--noflush'], text);
    if (r.code !== 0) {
      const line = /line:? (\d+)/.exec(r.stderr)?.[1];
      const bad = line ? ` (line ${line}: ${text.split('\n')[Number(line) - 1]})` : '';
      throw new Error(`iptables-restore: ${r.stderr.trim() || `exit ${r.code}`}${bad}`);
    }
  }

  /** Stops following the table; the rules stay (see cleanup). */
  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.consumer?.close();
    await this.settled();
  }

  /** Removes every rule and chain Baton added (on shutdown, or `baton node --cleanup`). */
  async cleanup(): Promise<void> {
    await this.stop();
    const script = cleanupScript(parseSave(await this.save()));
    if (!script.empty) await this.restore(script.text());
    this.applied.clear();
  }
}

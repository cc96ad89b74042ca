/**
 * CPU time and memory as /proc tells them: the host's totals (for `baton
 * top nodes`) and a process group's (the exec runtime's containers, which
 * have no cgroup to ask). The parsers are pure functions of the file text;
 * the readers around them are thin. Linux only.
 */
import * as fs from 'node:fs';
import { cpus } from 'node:os';

/**
 * Clock ticks per second in /proc (USER_HZ). The kernel fixes it at 100
 * for user space on every architecture Node runs on, whatever its own HZ.
 */
export const USER_HZ = 100;
const NANOS_PER_TICK = 1e9 / USER_HZ;

/**
 * The host's CPU time in use since boot, in nanoseconds, from the "cpu"
 * line of /proc/stat: user, nice, system, irq and softirq. Idle and iowait
 * are not use; steal is time the hypervisor gave to someone else; guest
 * time is already inside user and nice.
 */
export function parseHostCpu(procStat: string): number {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no "cpu" line');
  const [user, nice, system, , , irq, softirq] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map((v) => Number(v));
  return (user + nice + system + (irq || 0) + (softirq || 0)) * NANOS_PER_TICK;
}

export interface HostMemory {
  totalBytes: number;
  /**
   * In use: MemTotal less MemAvailable (what `free` calls used), the
   * nearest /proc gets to the kubelet's node working set (the root
   * cgroup's usage less its inactive page cache).
   */
  workingSetBytes: number;
}

export function parseMeminfo(text: string): HostMemory {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) kb.set(m[1], Number(m[2]));
  }
  const total = kb.get('MemTotal');
  if (total === undefined) throw new Error('/proc/meminfo has no MemTotal');
  // Kernels before 3.14 have no MemAvailable: free memory and reclaimable cache instead.
  const available =
    kb.get('MemAvailable') ??
    (kb.get('MemFree') ?? 0) + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0);
  return { totalBytes: total * 1024, workingSetBytes: Math.max(0, total - available) * 1024 };
}

/** What /proc/<pid>/stat says about one process. */
export interface ProcStat {
  pid: number;
  /** R, S, D, Z, ... */
  state: string;
  pgrp: number;
  /**
   * CPU time in clock ticks: its own (utime + stime) and that of the
   * children it has waited for (cutime + cstime), so a shell loop running
   * short commands is charged for them once they end.
   */
  cpuTicks: number;
  /** Clock ticks after boot. */
  startTime: number;
}

export function parseProcStat(pid: number, text: string): ProcStat {
  // The command name (field 2) may hold spaces and parentheses; it ends at the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); utime..cstime are fields 14..17, starttime 22.
  const ticks = f.slice(11, 15).reduce((sum, v) => sum + Number(v), 0);
  return {
    pid,
    state: f[0],
    pgrp: Number(f[2]),
    cpuTicks: ticks,
    startTime: Number(f[19]),
  };
}

/** A process's proportional set size (Pss in smaps_rollup) in bytes: shared pages split among their users. */
export function parsePss(smapsRollup: string): number | undefined {
  const m = /^Pss:\s+(\d+) kB/m.exec(smapsRollup);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** VmRSS of /proc/<pid>/status in bytes (absent for kernel threads and zombies). */
export function parseVmRss(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * CPU time (ns) and memory (bytes) of the processes in group `pgid`.
 * Memory is summed Pss, so the pages a forked shell shares with its
 * parent count once; zombies hold none.
 */
export function groupUsage(
  procs: ProcStat[],
  pgid: number,
  memoryOf: (pid: number) => number,
): { cpuNanos: number; memoryBytes: number } {
  let ticks = 0;
  let memoryBytes = 0;
  for (const p of procs) {
    if (p.pgrp !== pgid) continue;
    ticks += p.cpuTicks;
    if (p.state !== 'Z' && p.state !== 'X') memoryBytes += memoryOf(p.pid);
  }
  return { cpuNanos: ticks * NANOS_PER_TICK, memoryBytes };
}

/** Every process on the host (those that end while being read are skipped). */
export function readProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      out.push(parseProcStat(Number(e), fs.readFileSync(`/proc/${e}/stat`, 'utf8')));
    } catch {
      // gone
    }
  }
  return out;
}

/** A process's memory in bytes: Pss, else VmRSS (smaps_rollup is Linux 4.14+), else 0 when it is gone. */
export function processMemory(pid: number): number {
  const read = (f: string) => {
    try {
      return fs.readFileSync(`/proc/${pid}/${f}`, 'utf8');
    } catch {
      return '';
    }
  };
  return parsePss(read('smaps_rollup')) ?? parseVmRss(read('status')) ?? 0;
}

/** The host's usage now and what it has. */
export interface HostSample {
  /** CPU time in use since boot, ns. */
  cpuNanos: number;
  memoryBytes: number;
  /** ms since the epoch. */
  at: number;
  cpuCapacityMillicores: number;
  memoryCapacityBytes: number;
}

export function readHostSample(): HostSample {
  const mem = parseMeminfo(fs.readFileSync('/proc/meminfo', 'utf8'));
  return {
    cpuNanos: parseHostCpu(fs.readFileSync('/proc/stat', 'utf8')),
    memoryBytes: mem.workingSetBytes,
    at: Date.now(),
    // As the node publishes its capacity (agent.ts): every logical CPU.
    cpuCapacityMillicores: cpus().length * 1000,
    memoryCapacityBytes: mem.totalBytes,
  };
}

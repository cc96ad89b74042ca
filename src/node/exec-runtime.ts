/**
 * Pods as plain host processes, like Nomad's raw_exec, for machines
 * without Docker. There is no isolation: every container is a process
 * group of the daemon's user on the host's network, filesystem and PIDs.
 *
 * State lives on disk so a restarted daemon adopts what is running:
 *
 *   <stateDir>/<podUid>/<container>-<restarts>/meta.json   labels, pod, argv, env, pid, times
 *                                              output.log  stdout and stderr, appended
 *                                              exit-code   written when the process ended
 *                                              work/       working dir unless one is given
 *
 * The id of a container is `<podUid>/<container>-<restarts>` (sanitised),
 * its path below the state dir. The sandbox is a record named INFRA and
 * has no process: it is running while the record exists, and its IP is
 * the host's (`hostIP`, else 127.0.0.1). Host ports need no mapping.
 *
 * A container's process is `/bin/sh -c WRAPPER` in a session (and process
 * group) of its own, so it outlives the daemon, and the wrapper runs the
 * command and writes its exit status to `exit-code`, daemon or no daemon.
 * A process is ours while /proc/<pid>/stat shows the start time we
 * recorded: a reused pid is not mistaken for it. If the process is gone
 * and left no exit code (the wrapper was SIGKILLed), the exit code is 137,
 * as if killed; stop() records that itself when it had to SIGKILL.
 *
 * What this runtime does NOT do:
 * - Images are ignored; `command`/`args` must name a host executable.
 * - Volumes cannot be bind-mounted without root and mount namespaces.
 *   Each mount is passed as env `BATON_VOLUME_<PATH>` = its host path,
 *   PATH being the containerPath without leading/trailing slashes,
 *   upper-cased, non-alphanumerics as `_` (/data/cache → BATON_VOLUME_DATA_CACHE).
 *   `readOnly` is not enforced.
 * - Memory and cpu limits and shares are not enforced (no cgroups), so
 *   oomKilled is always false.
 * - Processes the command leaves in its group after it exits by itself
 *   are not killed (the group id may be reused by then).
 * - Exec'd commands run beside the container (a process group of their
 *   own), with its env and working dir; stop() kills those this daemon
 *   started, not those a previous daemon did.
 * - Host ports are the container ports: a hostPort other than its
 *   containerPort cannot be mapped, and is not.
 * Linux only: liveness is read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { groupUsage, processMemory, readProcesses } from './proc-stats';
import {
  INFRA,
  LABEL,
  RuntimeError,
  type ContainerUsageSample,
  type ContainerDetail,
  type ContainerLaunch,
  type ExecSession,
  type LogOptions,
  type PodRef,
  containerLabels,
  type Runtime,
  type RuntimeContainer,
  type SandboxSpec,
} from './runtime';

/**
 * Runs the command (from $4 on) and records its status in $1.
 * - The TERM trap keeps the wrapper alive when its process group is
 *   signalled (a trapped signal waits for the foreground command); the
 *   command, for which a caught signal is reset to default, gets TERM and
 *   its status 143 is recorded. An ignored signal ('') would be inherited,
 *   hence `:`.
 * - The command runs as a subshell that execs it, so the wrapper's own
 *   stderr can be /dev/null: dash reports "Terminated" for a foreground
 *   command killed by a signal, which is not the container's output.
 * - No shell variables: the env is the container's, and assigning a name
 *   it holds would change what the command sees.
 * - dash exports PWD of its own accord; it is unset unless the spec set
 *   it ($2 = set, $3 = its value).
 */
const WRAPPER = [
  'exec 3>&2 2>/dev/null',
  'if [ "$2" = set ]; then PWD=$3; export PWD; else unset PWD; fi',
  'trap : TERM',
  '(shift 3; exec "$@" 2>&3 3>&-)',
  'echo "$?" > "$1"',
].join('\n');

const META = 'meta.json';
const LOG = 'output.log';
const EXIT = 'exit-code';
/** How often stop() and logs(follow) look again. */
const POLL_MS = 50;
const FOLLOW_POLL_MS = 200;
/** How long a SIGKILLed group may take to disappear before stop() gives up waiting. */
const KILL_WAIT_MS = 2000;
/** Exit code of a process that was killed without leaving a record (128 + SIGKILL). */
const KILLED = 137;

/** What meta.json holds. */
interface Meta {
  /** LABEL keys, as Docker labels would hold them. */
  labels: Record<string, string>;
  pod: PodRef;
  image: string;
  /** The argv run (the executable resolved); empty for the sandbox. */
  command: string[];
  env: [string, string][];
  workingDir: string;
  /** The wrapper's pid, which is also the process group id. */
  pid?: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot. */
  startTime?: number;
  startedAt: string;
  finishedAt?: string;
}

interface Rec {
  id: string;
  dir: string;
  meta: Meta;
}

/** The id names no container or sandbox in the state dir. */
export class ContainerNotFoundError extends Error {
  readonly code = 'NotFound';
  constructor(id: string) {
    super(`no such container: ${id}`);
  }
}

/** A path segment: no separators, never "", "." or "..". */
const clean = (s: string) => {
  const c = s.replace(/[^A-Za-z0-9_.-]/g, '_');
  return /^\.*$/.test(c) ? `${c.replace(/\./g, '_')}_` : c;
};

/** ISO 8601 to the second, as Docker's inspect is reported. */
const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');

export const volumeEnvName = (containerPath: string) =>
  `BATON_VOLUME_${containerPath
    .replace(/^\/+|\/+$/g, '')
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '_')}`;

/** State (field 3), group (field 5) and start time (field 22) of a process, if there is one. */
function procStat(pid: number): { state: string; pgrp: number; startTime: number } | undefined {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses; it ends at the last ')'.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], pgrp: Number(f[2]), startTime: Number(f[19]) };
}

/** Whether the recorded process still runs: same pid, same start time, not a zombie. */
function alive(m: Meta): boolean {
  if (m.pid === undefined) return false;
  const s = procStat(m.pid);
  return s !== undefined && s.startTime === m.startTime && s.state !== 'Z' && s.state !== 'X';
}

/**
 * Whether any process of the recorded group still runs. Zombies do not
 * count: orphans wait for PID 1 to reap them, which in a container may
 * never happen, and a group id can be signalled while zombies are left.
 */
function groupRuns(m: Meta): boolean {
  if (alive(m)) return true;
  if (m.pid === undefined || !signalGroup(m.pid, 0)) return false;
  return fs.readdirSync('/proc').some((e) => {
    const s = /^\d+$/.test(e) ? procStat(Number(e)) : undefined;
    return s !== undefined && s.pgrp === m.pid && s.state !== 'Z' && s.state !== 'X';
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Where `name` is found, as execvp would look for it with `pathVar`. */
function findExecutable(name: string, pathVar: string, cwd: string): string | undefined {
  const candidates = name.includes('/')
    ? [path.resolve(cwd, name)]
    : pathVar.split(':').map((d) => path.resolve(cwd, d, name));
  return candidates.find((c) => {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return fs.statSync(c).isFile();
    } catch {
      return false;
    }
  });
}

/** The offset where the last `lines` lines of the file begin. */
async function tailOffset(fh: fs.promises.FileHandle, lines: number): Promise<number> {
  const size = (await fh.stat()).size;
  if (lines <= 0) return size;
  const buf = Buffer.alloc(64 * 1024);
  let pos = size;
  let seen = 0;
  while (pos > 0) {
    const n = Math.min(buf.length, pos);
    pos -= n;
    await fh.read(buf, 0, n, pos);
    for (let i = n - 1; i >= 0; i--) {
      // The newline that ends the file ends the last line; it does not start another.
      if (buf[i] !== 0x0a || pos + i === size - 1) continue;
      if (++seen === lines) return pos + i + 1;
    }
  }
  return 0;
}

/** The file from `opts.tail` lines before its end; with `follow`, until `ended()` or the signal. */
async function* readLog(
  file: string,
  opts: LogOptions,
  ended: () => Promise<boolean>,
): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    let pos = opts.tail === undefined ? 0 : await tailOffset(fh, opts.tail);
    const buf = Buffer.alloc(64 * 1024);
    // Set once the process was seen gone: what is read after that is all there is.
    let final = !opts.follow;
    while (true) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        yield Buffer.from(buf.subarray(0, bytesRead));
        continue;
      }
      if (final || opts.signal?.aborted) return;
      if (await ended()) {
        final = true;
        continue;
      }
      try {
        await sleep(FOLLOW_POLL_MS, undefined, { signal: opts.signal });
      } catch {
        return; // aborted
      }
    }
  } finally {
    await fh.close();
  }
}

export class ExecRuntime implements Runtime {
  readonly name = 'exec';
  private readonly ip: string;
  /** How to end the exec sessions this daemon started, by container id, for stop(). */
  private readonly sessions = new Map<string, Set<() => void>>();

  constructor(
    private readonly nodeName: string,
    private readonly stateDir: string,
    opts: { hostIP?: string } = {},
  ) {
    this.ip = opts.hostIP ?? '127.0.0.1';
  }

  async list(podUid?: string): Promise<RuntimeContainer[]> {
    const out: RuntimeContainer[] = [];
    const pods = await subdirs(this.stateDir);
    for (const pod of podUid === undefined ? pods : pods.filter((p) => p === clean(podUid)))
      for (const name of await subdirs(path.join(this.stateDir, pod))) {
        const id = `${pod}/${name}`;
        const meta = await this.readMeta(id).catch(() => undefined);
        if (meta?.labels[LABEL.node] !== this.nodeName) continue;
        const l = meta.labels;
        out.push({
          id,
          podUid: l[LABEL.uid],
          namespace: l[LABEL.namespace],
          podName: l[LABEL.pod],
          name: l[LABEL.container],
          init: l[LABEL.kind] === 'init',
          restarts: Number(l[LABEL.restarts]),
          running: l[LABEL.container] === INFRA || alive(meta),
          image: meta.image,
        });
      }
    return out;
  }

  async inspect(id: string): Promise<ContainerDetail> {
    const rec = await this.load(id);
    const { meta } = rec;
    const base = { startedAt: meta.startedAt, oomKilled: false, ip: this.ip };
    if (meta.labels[LABEL.container] === INFRA || alive(meta))
      return { ...base, running: true, exitCode: 0 };
    const { exitCode, finishedAt } = await this.settle(rec);
    return { ...base, running: false, exitCode, finishedAt };
  }

  async startSandbox(spec: SandboxSpec): Promise<string> {
    const id = `${clean(spec.pod.uid)}/${clean(INFRA)}-0`;
    const dir = this.dirOf(id);
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    await this.writeMeta(dir, {
      labels: containerLabels(this.nodeName, spec.pod, INFRA, 0),
      pod: spec.pod,
      image: '',
      command: [],
      env: [],
      workingDir: dir,
      startedAt: isoSeconds(new Date()),
    });
    return id;
  }

  async startContainer(spec: ContainerLaunch, sandboxId: string): Promise<string> {
    const argv = spec.command?.length ? [...spec.command, ...(spec.args ?? [])] : (spec.args ?? []);
    if (argv.length === 0)
      throw new RuntimeError(
        'CreateContainerError',
        'the exec runtime needs a command: set command or args',
      );
    const sandbox = await this.load(sandboxId).catch(() => undefined);
    if (sandbox?.meta.pod.uid !== spec.pod.uid)
      throw new RuntimeError('CreateContainerError', `no sandbox ${sandboxId} for this pod`);
    const id = `${clean(spec.pod.uid)}/${clean(spec.name)}-${spec.restarts}`;
    const dir = this.dirOf(id);
    const previous = await this.readMeta(id).catch(() => undefined);
    if (previous && alive(previous))
      throw new RuntimeError('CreateContainerError', `container ${id} already exists and runs`);
    // A leftover of a start that failed half-way, or of a crash: start afresh.
    await fs.promises.rm(dir, { recursive: true, force: true });

    const env = new Map<string, string>();
    for (const m of spec.mounts) env.set(volumeEnvName(m.containerPath), m.hostPath);
    for (const [k, v] of spec.env) env.set(k, v);
    if (!env.has('PATH')) env.set('PATH', process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin');
    if (!env.has('HOME')) env.set('HOME', '/');
    const workingDir = spec.workingDir ?? path.join(dir, 'work');
    if (spec.workingDir !== undefined && !fs.statSync(workingDir, { throwIfNoEntry: false }))
      throw new RuntimeError(
        'CreateContainerError',
        `working directory "${workingDir}" does not exist on this host`,
      );
    const exe = findExecutable(argv[0], env.get('PATH')!, workingDir);
    if (exe === undefined)
      throw new RuntimeError(
        'RunContainerError',
        `exec: "${argv[0]}": executable file not found in $PATH (${env.get('PATH')})`,
      );

    await fs.promises.mkdir(path.join(dir, 'work'), { recursive: true, mode: 0o700 });
    const command = [exe, ...argv.slice(1)];
    const pwd = env.has('PWD') ? ['set', env.get('PWD')!] : ['unset', ''];
    let started: { pid: number; startTime: number };
    try {
      started = await launch(dir, workingDir, env, [...pwd, ...command]);
    } catch (err) {
      await fs.promises.rm(dir, { recursive: true, force: true });
      throw new RuntimeError(
        'RunContainerError',
        `starting "${argv[0]}": ${(err as Error).message}`,
      );
    }
    await this.writeMeta(dir, {
      labels: containerLabels(this.nodeName, spec.pod, spec.name, spec.restarts, spec.init),
      pod: spec.pod,
      image: spec.image,
      command,
      env: [...env],
      workingDir,
      ...started,
      startedAt: isoSeconds(new Date()),
    });
    return id;
  }

  async stop(id: string, graceSeconds: number): Promise<void> {
    const rec = await this.load(id);
    const pgid = rec.meta.pid;
    if (pgid !== undefined && alive(rec.meta)) {
      signalGroup(pgid, 'SIGTERM');
      const deadline = Date.now() + graceSeconds * 1000;
      // The whole group, not just the wrapper: a child may still be shutting down.
      while (groupRuns(rec.meta) && Date.now() < deadline) await sleep(POLL_MS);
      if (groupRuns(rec.meta)) {
        signalGroup(pgid, 'SIGKILL');
        const killDeadline = Date.now() + KILL_WAIT_MS;
        while (groupRuns(rec.meta) && Date.now() < killDeadline) await sleep(POLL_MS);
      }
    }
    for (const kill of this.sessions.get(id) ?? []) kill();
    if (rec.meta.labels[LABEL.container] !== INFRA && !alive(rec.meta)) await this.settle(rec);
  }

  async remove(id: string, graceSeconds: number): Promise<void> {
    const dir = this.dirOf(id);
    try {
      await this.stop(id, graceSeconds);
    } catch (err) {
      if (!(err instanceof ContainerNotFoundError)) throw err;
    }
    await fs.promises.rm(dir, { recursive: true, force: true });
    await fs.promises.rmdir(path.dirname(dir)).catch(() => {}); // the pod's dir, once empty
  }

  async logs(id: string, opts: LogOptions): Promise<Readable> {
    const rec = await this.load(id);
    const file = path.join(rec.dir, LOG);
    if (!fs.existsSync(file)) return Readable.from([]); // the sandbox has no output
    return Readable.from(
      readLog(file, opts, async () => !alive(rec.meta)),
      { objectMode: false },
    );
  }

  async exec(id: string, command: string[], opts: { stdin: boolean }): Promise<ExecSession> {
    const { meta } = await this.load(id);
    if (meta.labels[LABEL.container] === INFRA || !alive(meta))
      throw new Error(`container ${id} is not running`);
    if (command.length === 0) throw new Error('exec needs a command');
    // A group of its own so kill() also ends what the command started.
    const child = spawn(command[0], command.slice(1), {
      cwd: meta.workingDir,
      env: Object.fromEntries(meta.env),
      detached: true,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const exitCode = new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) =>
        resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)),
      );
    });
    exitCode.catch(() => {}); // a failed spawn is reported below, not as an unhandled rejection
    try {
      await once(child, 'spawn');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new Error(
        `exec: "${command[0]}": ${e.code === 'ENOENT' ? 'executable file not found in $PATH' : e.message}`,
      );
    }
    // The group, until the streams close: what the command started may still hold them.
    const kill = () => signalGroup(child.pid!, 'SIGKILL');
    const mine = this.sessions.get(id) ?? new Set();
    this.sessions.set(id, mine.add(kill));
    child.once('close', () => {
      mine.delete(kill);
      if (mine.size === 0 && this.sessions.get(id) === mine) this.sessions.delete(id);
    });
    return {
      stdout: child.stdout!,
      stderr: child.stderr!,
      ...(opts.stdin ? { stdin: child.stdin! } : {}),
      exitCode,
      kill: () => {
        if (mine.has(kill)) kill();
      },
    };
  }

  /**
   * Each running container's process group, from /proc: CPU time of its
   * processes (and of the children they reaped), memory as their summed
   * proportional set size. Without cgroups there is no page cache to
   * charge, so this is a little under what a container would show.
   */
  async stats(podUids?: string[]): Promise<ContainerUsageSample[]> {
    const wanted = podUids && new Set(podUids);
    const running = (await this.list()).filter(
      (c) => c.running && c.name !== INFRA && (!wanted || wanted.has(c.podUid)),
    );
    if (running.length === 0) return [];
    const procs = readProcesses();
    const at = Date.now();
    const out: ContainerUsageSample[] = [];
    for (const c of running) {
      const pgid = (await this.readMeta(c.id).catch(() => undefined))?.pid;
      if (pgid === undefined) continue;
      const { id, podUid, namespace, podName, name } = c;
      out.push({
        id,
        podUid,
        namespace,
        podName,
        name,
        at,
        ...groupUsage(procs, pgid, processMemory),
      });
    }
    return out;
  }

  /** The record's directory; ids are exactly two sanitised path segments. */
  private dirOf(id: string): string {
    const parts = id.split('/');
    if (parts.length !== 2 || parts.some((p) => p !== clean(p)))
      throw new ContainerNotFoundError(id);
    return path.join(this.stateDir, ...parts);
  }

  private async readMeta(id: string): Promise<Meta> {
    try {
      return JSON.parse(
        await fs.promises.readFile(path.join(this.dirOf(id), META), 'utf8'),
      ) as Meta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ContainerNotFoundError(id);
      throw err;
    }
  }

  private async load(id: string): Promise<Rec> {
    return { id, dir: this.dirOf(id), meta: await this.readMeta(id) };
  }

  /** Written whole or not at all: a crash mid-write leaves the previous meta. */
  private async writeMeta(dir: string, meta: Meta): Promise<void> {
    const tmp = path.join(dir, `${META}.tmp`);
    await fs.promises.writeFile(tmp, JSON.stringify(meta, null, 2), { mode: 0o600 });
    await fs.promises.rename(tmp, path.join(dir, META));
  }

  /**
   * The exit code and end of a process known to be gone, recorded once:
   * the wrapper's exit code file (137 written when it left none), and the
   * time that file was written.
   */
  private async settle(rec: Rec): Promise<{ exitCode: number; finishedAt: string }> {
    const file = path.join(rec.dir, EXIT);
    let exitCode = NaN;
    let at = new Date();
    try {
      exitCode = parseInt(await fs.promises.readFile(file, 'utf8'), 10);
      at = (await fs.promises.stat(file)).mtime;
    } catch {
      // none: killed before it could write
    }
    if (Number.isNaN(exitCode)) {
      exitCode = KILLED;
      // ENOENT: removed meanwhile (two removals of one container race); nothing to record.
      await fs.promises.writeFile(file, `${KILLED}\n`).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    // The wrapper is gone: like a container whose first process died, whatever
    // it left in its group dies too (else a restart would find its port taken).
    if (rec.meta.pid !== undefined && groupRuns(rec.meta)) {
      signalGroup(rec.meta.pid, 'SIGKILL');
      const deadline = Date.now() + KILL_WAIT_MS;
      while (groupRuns(rec.meta) && Date.now() < deadline) await sleep(POLL_MS);
    }
    if (rec.meta.finishedAt === undefined) {
      rec.meta.finishedAt = isoSeconds(at);
      // ENOENT: removed meanwhile by another removal of it (seen in CI: a test's cleanup
      // racing the node's own), so there is nothing left to record the end in.
      await this.writeMeta(rec.dir, rec.meta).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    return { exitCode, finishedAt: rec.meta.finishedAt };
  }
}

/** Spawns the wrapper in a session of its own, output appended to the log. */
async function launch(
  dir: string,
  cwd: string,
  env: Map<string, string>,
  args: string[],
): Promise<{ pid: number; startTime: number }> {
  const out = fs.openSync(path.join(dir, LOG), 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', WRAPPER, 'baton-exec', path.join(dir, EXIT), ...args], {
      cwd,
      env: Object.fromEntries(env),
      detached: true,
      stdio: ['ignore', out, out],
    });
  } finally {
    fs.closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const [err] = (await once(child, 'error')) as [Error];
    throw err;
  }
  child.on('error', () => {}); // nothing more to learn: the exit code is on disk
  child.unref();
  // Read at once: until the event loop reaps it, the process is at worst a zombie.
  const stat = procStat(pid);
  if (stat === undefined) throw new Error(`process ${pid} vanished`);
  return { pid, startTime: stat.startTime };
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    const entries = await fs.promises.readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

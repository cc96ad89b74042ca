/**
 * A lab of simulated machines on one host, for end-to-end tests of
 * multi-node networking: every machine is a network namespace with its own
 * eth0 on a shared Linux bridge and its own dockerd (own data, exec root and
 * socket), so containers and `baton node` processes started "on" a machine
 * see only that machine's interfaces, routes and iptables.
 *
 *   host ── ${name}br (subnet .1) ──┬── ${name}v0 ⇄ eth0 in netns ${name}h0 (.10)
 *                                   └── ${name}v1 ⇄ eth0 in netns ${name}h1 (.11)
 *
 * Only the network namespace is separate: mounts, PIDs and cgroups are the
 * host's, which is why dockerd runs under `nsenter --net` (`ip netns exec`
 * remounts /sys and dockerd then finds no devices cgroup).
 *
 * Everything a lab makes is named after it (bridge, veths, netns, the
 * directory /tmp/baton-lab-NAME, the containers' cgroup parent, iptables
 * rules on the bridge), and its directory records the process that made it.
 * So `create()` can first remove, by name alone, what an earlier run left:
 * its own name's leftovers, and any lab whose maker has died (a test run
 * killed mid-way); a lab whose maker still runs is never touched.
 */
import { ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { readFile, readdir, readlink, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import { intToIpv4, parseCidr } from '../../src/common/cidr';
import { dockerUnavailableReason, PAUSE_IMAGE, TEST_IMAGE } from './images';

/** Images every lab dockerd gets (there is no registry to pull from). */
export const LAB_IMAGES = [TEST_IMAGE, PAUSE_IMAGE];

export interface LabOptions {
  /**
   * Short prefix for every name the lab makes, e.g. "bl7" (lowercase letters
   * and digits, ≤ 10). Labs that run at once need distinct names and subnets.
   */
  name: string;
  hosts: number;
  /** The machines' LAN: the bridge gets .1, machine i gets .(10+i). */
  subnet?: string;
  /** Which machines get a dockerd (default: all); a master VM needs none. */
  dockerd?: (index: number) => boolean;
  /**
   * Keep the lab when its maker exits (`deploy/lab up`): sweeps of abandoned
   * labs leave it alone until `destroy()` (`deploy/lab down`).
   */
  keep?: boolean;
}

export interface ExecOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Kills the command (SIGKILL) after this long. */
  timeoutMs?: number;
}

export interface ExecResult {
  /** Exit code, or null when a signal ended the command. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** How long a lab dockerd gets to answer; it usually takes 1–3 s. */
const DOCKERD_START_MS = 30_000;
/** How long a lab dockerd gets after SIGTERM before SIGKILL. */
const DOCKERD_STOP_MS = 10_000;

const DEFAULT_SUBNET = '10.77.0.0/24';
const LAB_ROOT = '/tmp';
const LAB_DIR_PREFIX = 'baton-lab-';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command on the host; never throws for a non-zero exit. */
function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', (err) => resolve({ code: 127, stdout, stderr: stderr + err.message }));
    p.once('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}

/** Runs a command on the host and throws, with its stderr, unless it exits 0. */
async function must(cmd: string, ...args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

const netnsPath = (ns: string) => `/var/run/netns/${ns}`;

/** One simulated machine: a network namespace with its own eth0 and dockerd. */
export class LabHost {
  readonly dockerSocket: string;
  readonly docker: Docker;
  /** The dockerd this lab started, while it runs. */
  dockerd?: ChildProcess;

  constructor(
    readonly index: number,
    /** "h0", "h1", …: short, for node names in tests. */
    readonly name: string,
    /** The network namespace, as `ip netns` lists it. */
    readonly ns: string,
    /** Its eth0 address on the lab LAN. */
    readonly address: string,
    /** The docker0 bridge address its dockerd uses, e.g. 172.30.1.1/24. */
    readonly bip: string,
    /** Its directory: dockerd's data, exec root, socket, pidfile and log. */
    readonly dir: string,
    /** Its containers' cgroup parent, so the lab can find and remove them even orphaned. */
    readonly cgroupParent: string,
  ) {
    this.dockerSocket = join(dir, 'docker.sock');
    this.docker = new Docker({ socketPath: this.dockerSocket });
  }

  get dockerdLog(): string {
    return join(this.dir, 'dockerd.log');
  }

  /** Runs `cmd` inside this machine's network namespace. */
  exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run('nsenter', [`--net=${netnsPath(this.ns)}`, '--', ...cmd], opts);
  }

  /**
   * Starts a long-lived process inside this machine's network namespace.
   * nsenter execs it in place, so the child's pid (and signals) are the
   * command's own.
   */
  spawn(cmd: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): ChildProcess {
    return spawn('nsenter', [`--net=${netnsPath(this.ns)}`, '--', cmd, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /**
   * Starts this machine's dockerd and waits until it answers; `detached`
   * leaves it running when this process exits (a lab kept on purpose).
   */
  async startDockerd(detached = false): Promise<void> {
    for (const d of ['data', 'exec']) mkdirSync(join(this.dir, d), { recursive: true });
    // Its own (empty) config file: /etc/docker/daemon.json is the host daemon's.
    writeFileSync(join(this.dir, 'daemon.json'), '{}\n');
    const log = openSync(this.dockerdLog, 'a');
    try {
      this.dockerd = spawn(
        'nsenter',
        [
          `--net=${netnsPath(this.ns)}`,
          '--',
          'dockerd',
          '--config-file',
          join(this.dir, 'daemon.json'),
          '--data-root',
          join(this.dir, 'data'),
          '--exec-root',
          join(this.dir, 'exec'),
          '--pidfile',
          join(this.dir, 'docker.pid'),
          '--host',
          `unix://${this.dockerSocket}`,
          '--bip',
          this.bip,
          '--cgroup-parent',
          this.cgroupParent,
        ],
        { stdio: ['ignore', log, log], detached },
      );
      if (detached) this.dockerd.unref();
    } finally {
      closeSync(log);
    }
    const proc = this.dockerd;
    let exited = false;
    proc.once('exit', () => (exited = true));
    const deadline = Date.now() + DOCKERD_START_MS;
    for (;;) {
      try {
        await this.docker.ping();
        return;
      } catch {
        // not up yet
      }
      if (exited || Date.now() > deadline) {
        const tail = (await readFile(this.dockerdLog, 'utf8').catch(() => ''))
          .split('\n')
          .slice(-15)
          .join('\n');
        const why = exited
          ? `exited (${proc.exitCode ?? proc.signalCode})`
          : `did not answer on ${this.dockerSocket} within ${DOCKERD_START_MS / 1000} s`;
        throw new Error(`lab dockerd for ${this.ns} ${why}; end of ${this.dockerdLog}:\n${tail}`);
      }
      await sleep(200);
    }
  }

  /** Loads saved image tarballs into this machine's dockerd and checks they are there. */
  async loadImages(tarballs: string[]): Promise<void> {
    for (const tar of tarballs) {
      const out = await this.docker.loadImage(tar);
      let text = '';
      for await (const chunk of out) text += chunk.toString();
      if (text.includes('"errorDetail"'))
        throw new Error(`loading ${tar} into ${this.ns}'s dockerd failed: ${text.trim()}`);
    }
    for (const image of LAB_IMAGES) await this.docker.getImage(image).inspect();
  }
}

/** A set of simulated machines on one bridge; see the module comment. */
export class Lab {
  readonly hosts: LabHost[] = [];
  readonly bridge: string;
  readonly dir: string;
  /** The bridge's address on the lab LAN (the machines' default gateway). */
  readonly gateway: string;

  private constructor(
    readonly name: string,
    readonly subnet: string,
    hosts: number,
  ) {
    if (!/^[a-z][a-z0-9]{0,9}$/.test(name))
      throw new Error(`lab name "${name}": 1–10 lowercase letters and digits, starting a letter`);
    const c = parseCidr(subnet);
    if (10 + hosts >= c.size - 1)
      throw new Error(`lab subnet ${subnet} has no room for ${hosts} hosts at .10 and up`);
    if (hosts > 255) throw new Error(`a lab has at most 255 hosts (docker bips are 172.30.i.0/24)`);
    this.bridge = `${name}br`;
    this.dir = join(LAB_ROOT, `${LAB_DIR_PREFIX}${name}`);
    this.gateway = intToIpv4(c.base + 1);
    for (let i = 0; i < hosts; i++)
      this.hosts.push(
        new LabHost(
          i,
          `h${i}`,
          `${name}h${i}`,
          intToIpv4(c.base + 10 + i),
          `172.30.${i}.1/24`,
          join(this.dir, `h${i}`),
          `/${LAB_DIR_PREFIX}${name}-h${i}`,
        ),
      );
  }

  private get prefix(): number {
    return parseCidr(this.subnet).bits;
  }

  /**
   * Builds the lab: bridge, namespaces, veths, forwarding, one dockerd per
   * machine with the test images loaded. First it removes abandoned labs and
   * whatever is left under this name (refusing when another live process
   * owns it). On failure it tears down what it made and throws.
   */
  static async create(opts: LabOptions): Promise<Lab> {
    if (opts.hosts < 1) throw new Error(`a lab needs at least one host, not ${opts.hosts}`);
    const lab = new Lab(opts.name, opts.subnet ?? DEFAULT_SUBNET, opts.hosts);
    await Lab.sweepAbandoned();
    const owner = await readFile(lab.ownerFile, 'utf8').catch(() => undefined);
    if (owner !== undefined && owner !== (await selfIdentity()) && (await identityAlive(owner)))
      throw new Error(
        `lab ${lab.name} is in use by pid ${owner.split(' ')[0]} (${lab.ownerFile}): give this lab another name`,
      );
    await lab.destroy(); // whatever an earlier run with this name left
    try {
      mkdirSync(lab.dir, { recursive: true });
      writeFileSync(lab.ownerFile, await selfIdentity());
      if (opts.keep) writeFileSync(lab.keepFile, 'kept until destroy()\n');
      await lab.checkSubnetFree();
      await lab.buildNetwork();
      const docked = lab.hosts.filter((h) => opts.dockerd?.(h.index) ?? true);
      if (docked.length > 0) {
        const [tarballs] = await Promise.all([
          lab.saveImages(),
          Promise.all(docked.map((h) => h.startDockerd(opts.keep))),
        ]);
        await Promise.all(docked.map((h) => h.loadImages(tarballs)));
      }
      return lab;
    } catch (err) {
      await lab.destroy().catch(() => undefined);
      throw err;
    }
  }

  /** A lab made earlier (by `deploy/lab up`), to destroy it: nothing is checked or built. */
  static open(name: string, subnet: string, hosts: number): Lab {
    return new Lab(name, subnet, hosts);
  }

  /**
   * Tears down every lab whose creating process is gone (a test run killed
   * mid-way), whatever its name; labs of live processes are left alone.
   * Returns the names of the labs it removed.
   */
  static async sweepAbandoned(): Promise<string[]> {
    const swept: string[] = [];
    for (const e of await readdir(LAB_ROOT)) {
      const name = e.startsWith(LAB_DIR_PREFIX) ? e.slice(LAB_DIR_PREFIX.length) : '';
      if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) continue;
      const lab = new Lab(name, DEFAULT_SUBNET, 0);
      // No owner file: being created this very moment, or not a lab.
      const owner = await readFile(lab.ownerFile, 'utf8').catch(() => undefined);
      if (owner === undefined || existsSync(lab.keepFile) || (await identityAlive(owner))) continue;
      await lab.destroy();
      swept.push(name);
    }
    return swept;
  }

  /** Who made the lab: "pid starttime" of the process, as a pid alone may be reused. */
  get ownerFile(): string {
    return join(this.dir, 'owner');
  }

  /** Present when the lab outlives its maker on purpose (LabOptions.keep). */
  get keepFile(): string {
    return join(this.dir, 'keep');
  }

  /** Another interface in the subnet (another lab?) would make routing to the machines ambiguous. */
  private async checkSubnetFree(): Promise<void> {
    const c = parseCidr(this.subnet);
    for (const line of (await must('ip', '-o', '-4', 'addr', 'show')).split('\n')) {
      const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line);
      if (!m) continue;
      const n = parseCidr(`${m[2]}/32`).base;
      if (n >= c.base && n < c.base + c.size)
        throw new Error(
          `lab subnet ${this.subnet} is in use on the host (${m[2]} on ${m[1]}): give this lab another subnet`,
        );
    }
  }

  private async buildNetwork(): Promise<void> {
    await must('ip', 'link', 'add', this.bridge, 'type', 'bridge');
    await must('ip', 'addr', 'add', `${this.gateway}/${this.prefix}`, 'dev', this.bridge);
    await must('ip', 'link', 'set', this.bridge, 'up');
    await this.allowForwarding();
    for (const h of this.hosts) {
      const outer = `${this.name}v${h.index}`;
      const inner = `${this.name}p${h.index}`;
      await must('ip', 'netns', 'add', h.ns);
      await must('ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', h.ns);
      await must('ip', 'link', 'set', outer, 'master', this.bridge, 'up');
      await must('ip', '-n', h.ns, 'link', 'set', inner, 'name', 'eth0');
      await must('ip', '-n', h.ns, 'addr', 'add', `${h.address}/${this.prefix}`, 'dev', 'eth0');
      await must('ip', '-n', h.ns, 'link', 'set', 'eth0', 'up');
      await must('ip', '-n', h.ns, 'link', 'set', 'lo', 'up');
      await must('ip', '-n', h.ns, 'route', 'add', 'default', 'via', this.gateway);
      // Machines route pod traffic for each other.
      const r = await h.exec(['sysctl', '-w', 'net.ipv4.ip_forward=1']);
      if (r.code !== 0) throw new Error(`ip_forward in ${h.ns}: ${r.stderr.trim()}`);
    }
  }

  /** Host Docker sets FORWARD's policy to DROP; bridged traffic between machines goes through it. */
  private async allowForwarding(): Promise<void> {
    const chain =
      (await run('iptables', ['-S', 'DOCKER-USER'])).code === 0 ? 'DOCKER-USER' : 'FORWARD';
    for (const dir of ['-i', '-o'])
      await must('iptables', '-I', chain, '1', dir, this.bridge, '-j', 'ACCEPT');
  }

  private async removeForwarding(): Promise<void> {
    for (const chain of ['DOCKER-USER', 'FORWARD'])
      for (const dir of ['-i', '-o'])
        while ((await run('iptables', ['-D', chain, dir, this.bridge, '-j', 'ACCEPT'])).code === 0);
  }

  /** `docker save` of the test images from the host daemon, once for all machines. */
  private async saveImages(): Promise<string[]> {
    const host = new Docker();
    const dir = join(this.dir, 'images');
    mkdirSync(dir, { recursive: true });
    return Promise.all(
      LAB_IMAGES.map(async (image, i) => {
        const file = join(dir, `${i}.tar`);
        await pipeline(await host.getImage(image).get(), createWriteStream(file));
        return file;
      }),
    );
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name || x.ns === name);
    if (!h) throw new Error(`lab ${this.name} has no host ${name}`);
    return h;
  }

  /**
   * Tears everything down: containers, dockerds (SIGTERM, SIGKILL after
   * 10 s), any other process in the machines' namespaces or working under
   * the lab directory, mounts and files there, namespaces, links and
   * iptables rules. Idempotent; also clears what a crashed run left.
   */
  async destroy(): Promise<void> {
    await Promise.all(this.hosts.map((h) => this.stopHost(h)));
    await this.killLeftovers();
    await this.unmountAll();
    await this.removeCgroups();
    for (const ns of await this.namespaces()) await run('ip', ['netns', 'del', ns]);
    for (const line of (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n')) {
      const n = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '';
      if (n === this.bridge || new RegExp(`^${this.name}[vp]\\d+$`).test(n))
        await run('ip', ['link', 'del', n]);
    }
    await this.removeForwarding();
    // Last, with the owner file in it: until then a sweep can still find the lab.
    await rm(this.dir, { recursive: true, force: true });
  }

  /** This lab's namespaces that exist now, a crashed run's included. */
  private async namespaces(): Promise<string[]> {
    const re = new RegExp(`^${this.name}h\\d+$`);
    return (await run('ip', ['netns', 'list'])).stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => re.test(n));
  }

  private async stopHost(h: LabHost): Promise<void> {
    // A crashed run's dockerd is known by its pidfile, if the pid was not reused since.
    const pid = h.dockerd?.pid ?? (await pidFromFile(join(h.dir, 'docker.pid')));
    if (pid === undefined || !alive(pid) || !(await cmdlineOf(pid)).includes(`${h.dir}/`)) return;
    // Containers first, so their shims and mounts go with the daemon's blessing.
    try {
      const all = await h.docker.listContainers({ all: true });
      await Promise.all(
        all.map((c) =>
          h.docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => undefined),
        ),
      );
    } catch {
      // a daemon that does not answer is killed below all the same
    }
    signal(pid, 'SIGTERM');
    if (!(await gone([pid], DOCKERD_STOP_MS))) {
      signal(pid, 'SIGKILL');
      await gone([pid], 5_000);
    }
    h.dockerd = undefined;
  }

  /**
   * SIGKILLs every process that belongs to the lab: in one of its
   * namespaces, or with the lab directory on its command line (dockerd,
   * containerd, shims), and all their descendants (container processes).
   */
  private async killLeftovers(): Promise<void> {
    const nsInodes = new Set<number>();
    for (const ns of await this.namespaces()) {
      const s = await stat(netnsPath(ns)).catch(() => undefined);
      if (s) nsInodes.add(s.ino);
    }
    const procs = await processTable();
    const mine = new Set<number>();
    for (const p of procs)
      if (
        p.pid !== process.pid &&
        (p.cmdline.includes(`${this.dir}/`) ||
          p.cgroups.includes(`/${LAB_DIR_PREFIX}${this.name}-h`) ||
          (p.netns !== undefined && nsInodes.has(p.netns)))
      )
        mine.add(p.pid);
    for (let grew = true; grew;) {
      grew = false;
      for (const p of procs)
        if (!mine.has(p.pid) && mine.has(p.ppid)) {
          mine.add(p.pid);
          grew = true;
        }
    }
    for (const pid of mine) signal(pid, 'SIGKILL');
    await gone([...mine], 5_000);
  }

  /**
   * The machines' container cgroups, in every hierarchy (cgroup v1 has one
   * per controller). Docker removes a container's own cgroup, never the
   * parent, and nothing at all for containers of a dockerd that was killed.
   */
  private async removeCgroups(): Promise<void> {
    const roots = ['/sys/fs/cgroup'];
    for (const e of await readdir('/sys/fs/cgroup', { withFileTypes: true }).catch(() => []))
      if (e.isDirectory()) roots.push(join('/sys/fs/cgroup', e.name));
    const mine = new RegExp(`^${LAB_DIR_PREFIX}${this.name}-h\\d+$`);
    for (const root of roots)
      for (const e of await readdir(root, { withFileTypes: true }).catch(() => []))
        if (e.isDirectory() && mine.test(e.name)) await removeCgroupTree(join(root, e.name));
  }

  /** dockerd leaves overlay mounts and netns bind mounts under its roots. */
  private async unmountAll(): Promise<void> {
    for (let pass = 0; pass < 3; pass++) {
      const mounts = (await readFile('/proc/mounts', 'utf8'))
        .split('\n')
        .map((l) => unescapeMount(l.split(' ')[1] ?? ''))
        .filter((m) => m === this.dir || m.startsWith(`${this.dir}/`))
        .sort((a, b) => b.length - a.length);
      if (mounts.length === 0) return;
      for (const m of mounts) await run('umount', ['-l', m]);
    }
  }
}

/** rmdir, children first: a cgroup directory goes only when empty of cgroups and processes. */
async function removeCgroupTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => []))
    if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

/** /proc/mounts writes space, tab, newline and backslash as octal escapes. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

async function pidFromFile(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function cmdlineOf(pid: number): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.split('\0').join(' ');
}

/** "pid starttime" (clock ticks since boot) of a live process, or undefined. */
async function identityOf(pid: number): Promise<string | undefined> {
  const line = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (line === undefined) return undefined;
  // Fields after the command name in parentheses start at field 3; starttime is field 22.
  return `${pid} ${line.slice(line.lastIndexOf(')') + 2).split(' ')[19]}`;
}

const selfIdentity = async () => (await identityOf(process.pid))!;

async function identityAlive(identity: string): Promise<boolean> {
  const pid = Number(identity.split(' ')[0]);
  return Number.isInteger(pid) && pid > 0 && (await identityOf(pid)) === identity.trim();
}

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
  /** /proc/PID/cgroup, as is. */
  cgroups: string;
  /** Inode of its network namespace. */
  netns?: number;
}

async function processTable(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const statLine = await readFile(`/proc/${e}/stat`, 'utf8');
      // The command name in parentheses may hold spaces: fields start after the last ')'.
      const fields = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
      const cmdline = await cmdlineOf(Number(e));
      const cgroups = await readFile(`/proc/${e}/cgroup`, 'utf8').catch(() => '');
      const ns = await readlink(`/proc/${e}/ns/net`).catch(() => '');
      const ino = /^net:\[(\d+)\]$/.exec(ns)?.[1];
      out.push({
        pid: Number(e),
        ppid: Number(fields[1]),
        cmdline,
        cgroups,
        netns: ino === undefined ? undefined : Number(ino),
      });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Whether `pid` is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is alive; false when some still are after `ms`. */
async function gone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some(alive)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Why the lab cannot run here, or null when it can: it needs root, network
 * namespaces, dockerd, nsenter, iptables, and host Docker with the test images.
 */
export async function labUnavailableReason(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, bridges, dockerd)';
  for (const bin of ['ip', 'nsenter', 'dockerd', 'iptables', 'sysctl', 'umount']) {
    const r = await run('sh', ['-c', `command -v ${bin}`]);
    if (r.code !== 0) return `the lab needs ${bin}, which is not installed`;
  }
  const probe = `batonprobe${process.pid}`;
  const add = await run('ip', ['netns', 'add', probe]);
  await run('ip', ['netns', 'del', probe]);
  if (add.code !== 0) return `network namespaces do not work here (${add.stderr.trim()})`;
  if (existsSync('/run/containerd/containerd.sock'))
    // dockerd would share it, and host-network containers would land in the host's namespace.
    return 'a system containerd runs (/run/containerd/containerd.sock); lab dockerds need their own';
  return dockerUnavailableReason();
}

/**
 * A Baton cluster of "VMs" on one host: every master and every worker is a
 * lab machine (deploy/vmlab/lab.ts: its own network namespace and address on
 * one bridge), a master runs a real `baton master`, a worker its own dockerd
 * and a real `baton node --runtime docker`. Clients on the host reach the
 * masters at MACHINE_IP:7000 through the bridge.
 *
 * Faults are injected from outside the processes, as a failing data centre
 * would: signals (kill -9, SIGSTOP/SIGCONT, SIGTERM), iptables DROP rules
 * inside one machine's namespace (partitions; healing deletes exactly the
 * rules added), and a full disk (every master's data directory is its own
 * small tmpfs). Each injection is appended to `injections`, so a failed
 * scenario can print what happened to whom and when.
 *
 * The cluster is secure as an operator would build it on VMs: the first
 * master runs `--init` (it makes the cluster CA and an admin config), the
 * others `--join` it with a master join token, the nodes enroll with a node
 * token, and every connection is mutual TLS. The lab writes an admin client
 * config with every master's address (`admin.conf` in its directory); its
 * own clients use those credentials. How a process is started lives in
 * `masterArgs` / `nodeArgs` alone.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { BatonClient } from '../../src/client/cluster-client';
import {
  clientConfigSchema,
  clientConfigText,
  clientCredentials,
} from '../../src/cli/client-config';
import { createJoinToken } from '../../src/cli/commands/token';
import { ExecResult, Lab, LabHost } from './lab';

/** The `baton` executable of this checkout (dist/deploy/vmlab → bin/baton.js). */
export const BATON_BIN = join(__dirname, '..', '..', '..', 'bin', 'baton.js');
/** Every master listens here, on its own machine's address. */
export const MASTER_PORT = 7000;
/** Every node's API (logs, exec), on its own machine's address. */
export const NODE_PORT = 10250;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a master needs to start; the argv is `masterArgs` of it. */
export interface MasterBoot {
  id: number;
  /** host:port it listens on and peers reach it at. */
  listen: string;
  dataDir: string;
  /** Founding the cluster (the first master), or joining it through another master with a token. */
  entry: MasterEntry;
  logLevel: string;
  /** More flags, e.g. --node-grace-period-ms. */
  flags: string[];
}

/** How a master enters the cluster. Restarts reuse the certificate in its data directory. */
export type MasterEntry = { init: true } | { join: string; token: string };

/** The `baton` argv of a master. */
export function masterArgs(m: MasterBoot): string[] {
  return [
    'master',
    '--id',
    String(m.id),
    '--listen',
    m.listen,
    '--data-dir',
    m.dataDir,
    ...('init' in m.entry ? ['--init'] : ['--join', m.entry.join, '--token', m.entry.token]),
    '--log-level',
    m.logLevel,
    ...m.flags,
  ];
}

/** What a node daemon needs to start; the argv is `nodeArgs` of it. */
export interface NodeBoot {
  name: string;
  masters: string[];
  /** Its machine's address (what masters and other nodes reach it at). */
  address: string;
  dataDir: string;
  /** A node join token (used on the first start; restarts reuse the certificate). */
  token: string;
  logLevel: string;
  proxyMode: 'iptables' | 'userspace' | 'none';
}

/** The `baton` argv of a node daemon. */
export function nodeArgs(n: NodeBoot): string[] {
  return [
    'node',
    '--name',
    n.name,
    '--masters',
    n.masters.join(','),
    '--runtime',
    'docker',
    '--address',
    n.address,
    '--listen',
    `${n.address}:${NODE_PORT}`,
    '--data-dir',
    n.dataDir,
    '--token',
    n.token,
    '--log-level',
    n.logLevel,
    '--proxy-mode',
    n.proxyMode,
  ];
}

/** One line of the injection log. */
export interface Injection {
  /** ms since the cluster was made. */
  atMs: number;
  what: string;
  whom: string;
  detail?: string;
}

/** A `baton` process on a VM, logging to a file in the VM's directory. */
export class VmProcess {
  proc?: ChildProcess;
  /** Its pid while it runs (also for a process started by an earlier `deploy/lab up`). */
  pid?: number;
  private exited?: Promise<void>;

  constructor(
    readonly vm: LabHost,
    readonly logFile: string,
    private readonly argv: () => string[],
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  /** Starts it; `detached` leaves it running after this process exits (`deploy/lab up`). */
  start(detached = false): void {
    if (this.running()) throw new Error(`${this.vm.ns}: already running (pid ${this.pid})`);
    const log = openSync(this.logFile, 'a');
    try {
      const p = spawn(
        'nsenter',
        [`--net=/var/run/netns/${this.vm.ns}`, '--', process.execPath, BATON_BIN, ...this.argv()],
        {
          env: { ...process.env, BATON_LOG_PRETTY: '0', ...this.env },
          stdio: ['ignore', log, log],
          detached,
        },
      );
      if (detached) p.unref();
      this.proc = p;
      this.pid = p.pid;
      this.exited = new Promise((resolve) => p.once('exit', () => resolve()));
    } finally {
      closeSync(log);
    }
  }

  running(): boolean {
    if (this.proc) return this.proc.exitCode === null && this.proc.signalCode === null;
    return this.pid !== undefined && pidAlive(this.pid);
  }

  /** Exit code (or signal) of the last run, once it ended. */
  exitStatus(): string | undefined {
    if (!this.proc || this.running()) return undefined;
    return this.proc.exitCode !== null ? `exit ${this.proc.exitCode}` : `${this.proc.signalCode}`;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.pid === undefined) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** Sends `sig` and waits for the exit; SIGKILL after `ms`. Resolves whether it had to. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', ms = 30_000): Promise<boolean> {
    if (!this.running()) return false;
    this.signal('SIGCONT'); // a stopped process cannot handle SIGTERM
    this.signal(sig);
    const done = await Promise.race([
      this.waitExit().then(() => true),
      sleep(ms).then(() => false),
    ]);
    if (done) return false;
    this.signal('SIGKILL');
    await this.waitExit();
    return true;
  }

  async waitExit(): Promise<void> {
    if (this.exited) return this.exited;
    while (this.running()) await sleep(50);
  }

  /** The end of its log file. */
  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  logSize(): number {
    try {
      return readFileSync(this.logFile).length;
    } catch {
      return 0;
    }
  }

  /** Waits until its log, past byte `from`, contains `text`; throws if it exits first. */
  async waitLog(text: string, from: number, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const log = readFileSync(this.logFile).subarray(from).toString();
      if (log.includes(text)) return;
      if (!this.running())
        throw new Error(`${this.vm.ns} exited (${this.exitStatus()}):\n${this.tail()}`);
      if (Date.now() > deadline)
        throw new Error(`${this.vm.ns}: no "${text}" within ${ms} ms:\n${this.tail()}`);
      await sleep(50);
    }
  }
}

export class MasterVm {
  readonly process: VmProcess;
  readonly address: string;
  readonly dataDir: string;

  constructor(
    readonly id: number,
    readonly vm: LabHost,
    boot: (m: MasterVm) => string[],
  ) {
    this.address = `${vm.address}:${MASTER_PORT}`;
    this.dataDir = join(vm.dir, 'data');
    this.process = new VmProcess(vm, join(vm.dir, 'master.log'), () => boot(this));
  }

  get name(): string {
    return `m${this.id}`;
  }
}

export class NodeVm {
  readonly process: VmProcess;
  readonly dataDir: string;

  constructor(
    readonly name: string,
    readonly vm: LabHost,
    boot: (n: NodeVm) => string[],
  ) {
    this.dataDir = join(vm.dir, 'node');
    this.process = new VmProcess(vm, join(vm.dir, 'node.log'), () => boot(this), {
      DOCKER_HOST: `unix://${vm.dockerSocket}`,
    });
  }
}

export interface VmClusterOptions {
  /** Lab name (≤ 10 lowercase letters and digits): prefix of every bridge, netns, directory. */
  name: string;
  subnet: string;
  masters: number;
  nodes: number;
  /** Extra `baton master` flags (timeouts for the node-loss scenario, say). */
  masterFlags?: string[];
  /** Size of every master's data tmpfs (default 64 MiB): small, so a scenario can fill it. */
  dataDiskMb?: number;
  logLevel?: string;
  proxyMode?: NodeBoot['proxyMode'];
  /** Processes outlive this one (`deploy/lab up`). */
  detached?: boolean;
}

/** A rule added inside one machine's namespace, to delete exactly it on heal. */
interface Rule {
  vm: LabHost;
  spec: string[];
}

/** What `deploy/lab` records to find a running cluster again. */
export interface ClusterState {
  name: string;
  subnet: string;
  hosts: number;
  masters: { name: string; id: number; ns: string; address: string; pid?: number; log: string }[];
  nodes: { name: string; ns: string; address: string; pid?: number; log: string }[];
  /** The admin client config (every master's address, the CA, an admin certificate). */
  adminConfig: string;
}

export class VmCluster {
  readonly masters: MasterVm[] = [];
  readonly nodes: NodeVm[] = [];
  readonly injections: Injection[] = [];
  private readonly rules: Rule[] = [];
  private readonly t0 = Date.now();
  /** The admin's mutual TLS credentials, once the first master made the CA. */
  private credentials?: grpc.ChannelCredentials;
  /** Join tokens made by the admin after --init (each lasts the lab's life). */
  private readonly tokens: { master?: string; node?: string } = {};

  private constructor(
    readonly lab: Lab,
    readonly opts: VmClusterOptions,
  ) {
    for (let i = 0; i < opts.masters; i++)
      this.masters.push(
        new MasterVm(i + 1, lab.hosts[i], (me) =>
          masterArgs({
            id: me.id,
            listen: me.address,
            dataDir: me.dataDir,
            entry:
              me.id === 1
                ? { init: true }
                : { join: this.masters[0].address, token: this.token('master') },
            logLevel: opts.logLevel ?? 'info',
            flags: opts.masterFlags ?? [],
          }),
        ),
      );
    for (let i = 0; i < opts.nodes; i++)
      this.nodes.push(
        new NodeVm(`w${i + 1}`, lab.hosts[opts.masters + i], (me) =>
          nodeArgs({
            name: me.name,
            masters: this.servers(),
            address: me.vm.address,
            dataDir: me.dataDir,
            token: this.token('node'),
            logLevel: opts.logLevel ?? 'info',
            proxyMode: opts.proxyMode ?? 'iptables',
          }),
        ),
      );
  }

  /**
   * Builds the machines, mounts every master's data tmpfs, starts the first
   * master with --init, makes join tokens with its admin config, joins the
   * other masters one at a time (each a voter before the next), then starts
   * the nodes (not waiting for them to be Ready). On failure tears it all
   * down.
   */
  static async create(opts: VmClusterOptions): Promise<VmCluster> {
    const lab = await Lab.create({
      name: opts.name,
      subnet: opts.subnet,
      hosts: opts.masters + opts.nodes,
      dockerd: (i) => i >= opts.masters,
      keep: opts.detached,
    });
    const c = new VmCluster(lab, opts);
    try {
      for (const m of c.masters) {
        mkdirSync(m.dataDir, { recursive: true });
        await must(
          await lab.hosts[0].exec([
            'mount',
            '-t',
            'tmpfs',
            '-o',
            `size=${opts.dataDiskMb ?? 64}m`,
            `${lab.name}-${m.name}`,
            m.dataDir,
          ]),
          `mount the data tmpfs of ${m.name}`,
        );
      }
      await c.initialize();
      for (const m of c.masters.slice(1)) {
        await c.startMaster(m.id);
        await c.voters(m.id);
      }
      await c.leader(30_000);
      for (const n of c.nodes) c.startNode(n.name);
      c.saveState();
      return c;
    } catch (err) {
      await c.destroy().catch(() => undefined);
      throw err;
    }
  }

  /** The admin client config the lab writes (every master's address). */
  get adminConfig(): string {
    return join(this.lab.dir, 'admin.conf');
  }

  private token(role: 'master' | 'node'): string {
    const t = this.tokens[role];
    if (!t) throw new Error(`no ${role} join token yet: the first master makes the CA first`);
    return t;
  }

  /**
   * Starts the first master with --init, takes the admin config it wrote,
   * and makes one master token and one node token for the others (as many
   * uses as VMs; restarts need none).
   */
  private async initialize(): Promise<void> {
    const first = this.masters[0];
    const from = first.process.logSize();
    await this.startMaster(first.id);
    await first.process.waitLog('initialized', from, 30_000);
    const written = join(first.dataDir, 'admin.conf');
    const conf = clientConfigSchema.parse(parseYaml(readFileSync(written, 'utf8')));
    writeFileSync(
      this.adminConfig,
      clientConfigText(
        { server: this.servers(), ca: conf.ca, cert: conf.cert, key: conf.key },
        `the admin of lab ${this.lab.name} (from ${written})`,
      ),
      { mode: 0o600 },
    );
    this.credentials = clientCredentials(conf, written);
    const admin = this.client([first.id], 15_000);
    try {
      for (const [role, uses] of [
        ['master', this.masters.length - 1],
        ['node', this.nodes.length],
      ] as const)
        if (uses > 0)
          this.tokens[role] = await createJoinToken(admin, conf.ca!, {
            role,
            uses,
            ttlMs: 0,
            description: `lab ${this.lab.name}`,
          });
    } finally {
      admin.close();
    }
  }

  /** Waits until master `id` is a healthy voter (it joined as a learner and caught up). */
  private async voters(id: number, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const c = this.client([1], 2000);
      const s = await c.status().catch(() => undefined);
      c.close();
      if (s?.members.some((m) => m.id === id && m.voter && m.healthy)) return;
      if (Date.now() > deadline)
        throw new Error(`${this.master(id).name} is not a voter ${ms} ms after it started`);
      await sleep(200);
    }
  }

  /** The cluster `deploy/lab up` left running, from its state file. */
  static stateOf(dir: string): ClusterState {
    return JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
  }

  saveState(): void {
    const s: ClusterState = {
      name: this.lab.name,
      subnet: this.lab.subnet,
      hosts: this.lab.hosts.length,
      masters: this.masters.map((m) => ({
        name: m.name,
        id: m.id,
        ns: m.vm.ns,
        address: m.address,
        pid: m.process.pid,
        log: m.process.logFile,
      })),
      nodes: this.nodes.map((n) => ({
        name: n.name,
        ns: n.vm.ns,
        address: n.vm.address,
        pid: n.process.pid,
        log: n.process.logFile,
      })),
      adminConfig: this.adminConfig,
    };
    writeFileSync(join(this.lab.dir, 'cluster.json'), JSON.stringify(s, null, 2) + '\n');
  }

  servers(): string[] {
    return this.masters.map((m) => m.address);
  }

  master(id: number): MasterVm {
    const m = this.masters.find((x) => x.id === id);
    if (!m) throw new Error(`no master ${id}`);
    return m;
  }

  node(name: string): NodeVm {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** A client of the given masters (default all). */
  client(ids = this.masters.map((m) => m.id), timeoutMs = 15_000): BatonClient {
    return this.connect(
      ids.map((id) => this.master(id).address),
      timeoutMs,
    );
  }

  /** A client of these master addresses, with the admin's credentials. */
  connect(servers: string[], timeoutMs = 15_000): BatonClient {
    return new BatonClient(servers, { timeoutMs, credentials: this.credentials });
  }

  note(what: string, whom: string, detail?: string): void {
    this.injections.push({ atMs: Date.now() - this.t0, what, whom, detail });
  }

  injectionLog(): string {
    return this.injections
      .map((i) => `  +${i.atMs}ms ${i.what} ${i.whom}${i.detail ? ` (${i.detail})` : ''}`)
      .join('\n');
  }

  // ---- processes ------------------------------------------------------------

  /** Starts a master and waits until it listens. */
  async startMaster(id: number): Promise<void> {
    const m = this.master(id);
    const from = m.process.logSize();
    m.process.start(this.opts.detached);
    this.note('start', m.name);
    await m.process.waitLog('listening on', from, 30_000);
  }

  startNode(name: string): void {
    const n = this.node(name);
    mkdirSync(n.dataDir, { recursive: true });
    n.process.start(this.opts.detached);
    this.note('start', n.name);
  }

  /** SIGTERM and wait for the exit (SIGKILL after 30 s, which throws). */
  async stopMaster(id: number): Promise<void> {
    const m = this.master(id);
    this.note('SIGTERM', m.name);
    if (await m.process.stop('SIGTERM'))
      throw new Error(`${m.name} did not exit within 30 s of SIGTERM:\n${m.process.tail()}`);
  }

  async killMaster(id: number): Promise<void> {
    const m = this.master(id);
    this.note('SIGKILL', m.name);
    await m.process.stop('SIGKILL');
  }

  pauseMaster(id: number): void {
    this.note('SIGSTOP', this.master(id).name);
    this.master(id).process.signal('SIGSTOP');
  }

  resumeMaster(id: number): void {
    this.note('SIGCONT', this.master(id).name);
    this.master(id).process.signal('SIGCONT');
  }

  async killNode(name: string): Promise<void> {
    this.note('SIGKILL', name);
    await this.node(name).process.stop('SIGKILL');
  }

  async stopNode(name: string): Promise<void> {
    this.note('SIGTERM', name);
    await this.node(name).process.stop('SIGTERM');
  }

  // ---- observation ----------------------------------------------------------

  /** The leader's id, as a running master reports it, waiting until there is one. */
  async leader(ms = 15_000, among = this.masters.map((m) => m.id)): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const id of among) {
        if (!this.master(id).process.running()) continue;
        const s = await this.status(id).catch(() => undefined);
        if (s && s.leader !== 0 && among.includes(s.leader) && this.answers(s.leader))
          return s.leader;
      }
      if (Date.now() > deadline) throw new Error(`no leader within ${ms} ms`);
      await sleep(100);
    }
  }

  private answers(id: number): boolean {
    return this.masters.some((m) => m.id === id && m.process.running());
  }

  /** Cluster status as master `id` sees it (one attempt, 1 s). */
  async status(id: number): Promise<{ leader: number; term: number; appliedIndex: number }> {
    const c = this.client([id], 1000);
    try {
      const s = await c.status();
      return { leader: s.leader, term: s.term, appliedIndex: Number(s.appliedIndex) };
    } finally {
      c.close();
    }
  }

  /** Waits until master `id` answers and has applied as far as the leader had when called. */
  async caughtUp(id: number, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    let target: number | undefined;
    // The leader another master names may be one that has just stopped: ask again until one answers.
    while (target === undefined) {
      const leader = await this.leader(Math.max(1, deadline - Date.now()));
      target = await this.status(leader).then(
        (s) => s.appliedIndex,
        () => undefined,
      );
      if (target === undefined) await sleep(100);
    }
    for (;;) {
      const s = await this.status(id).catch(() => undefined);
      if (s && s.leader !== 0 && s.appliedIndex >= target) return;
      if (Date.now() > deadline)
        throw new Error(
          `${this.master(id).name} did not catch up to index ${target} within ${ms} ms (at ${s?.appliedIndex ?? 'no answer'})`,
        );
      await sleep(100);
    }
  }

  // ---- network faults ---------------------------------------------------------

  private async addRule(vm: LabHost, spec: string[]): Promise<void> {
    await must(await vm.exec(['iptables', '-w', '-I', ...spec]), `iptables -I ${spec.join(' ')}`);
    this.rules.push({ vm, spec });
  }

  /** Drops all traffic between VM `a` and each of `others`, inside a's namespace. */
  async cut(a: LabHost, others: LabHost[]): Promise<void> {
    for (const o of others) {
      await this.addRule(a, ['INPUT', '-s', o.address, '-j', 'DROP']);
      await this.addRule(a, ['OUTPUT', '-d', o.address, '-j', 'DROP']);
    }
  }

  /** Cuts master `id` off from every other master (clients on the host still reach it). */
  async isolateMaster(id: number): Promise<void> {
    const m = this.master(id);
    this.note('isolate', m.name, 'from every other master');
    await this.cut(
      m.vm,
      this.masters.filter((x) => x.id !== id).map((x) => x.vm),
    );
  }

  /** Master `id` keeps only its link to master `reach` (a partial partition). */
  async partialPartition(id: number, reach: number): Promise<void> {
    const m = this.master(id);
    const cut = this.masters.filter((x) => x.id !== id && x.id !== reach);
    this.note(
      'partial-partition',
      m.name,
      `reaches only m${reach}; cut from ${cut.map((x) => x.name).join(',')}`,
    );
    await this.cut(
      m.vm,
      cut.map((x) => x.vm),
    );
  }

  /** A machine off the network entirely (its eth0 drops everything). */
  async unplug(vm: LabHost, whom: string): Promise<void> {
    this.note('unplug', whom);
    await this.addRule(vm, ['INPUT', '-i', 'eth0', '-j', 'DROP']);
    await this.addRule(vm, ['OUTPUT', '-o', 'eth0', '-j', 'DROP']);
  }

  /** Removes exactly the rules the faults added, newest first. */
  async heal(): Promise<void> {
    if (this.rules.length === 0) return;
    this.note('heal', 'network', `${this.rules.length} rules`);
    while (this.rules.length > 0) {
      const r = this.rules.pop()!;
      await must(
        await r.vm.exec(['iptables', '-w', '-D', ...r.spec]),
        `iptables -D ${r.spec.join(' ')}`,
      );
    }
  }

  // ---- disk faults ------------------------------------------------------------

  /** Fills master `id`'s data tmpfs to the last byte. */
  async fillDisk(id: number): Promise<void> {
    const m = this.master(id);
    this.note('fill-disk', m.name, m.dataDir);
    // dd stops with ENOSPC (exit 1) once the tmpfs is full: that is the point.
    await this.lab.hosts[0].exec(
      ['dd', 'if=/dev/zero', `of=${join(m.dataDir, 'filler')}`, 'bs=1M'],
      {
        timeoutMs: 60_000,
      },
    );
  }

  async freeDisk(id: number): Promise<void> {
    const m = this.master(id);
    this.note('free-disk', m.name);
    await must(await this.lab.hosts[0].exec(['rm', '-f', join(m.dataDir, 'filler')]), 'rm filler');
  }

  // ---- teardown ---------------------------------------------------------------

  /** Stops every process (nodes first, SIGTERM then SIGKILL) and removes the lab. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.process.stop('SIGTERM', 10_000).catch(() => false)));
    await Promise.all(this.masters.map((m) => m.process.stop('SIGKILL').catch(() => false)));
    await this.lab.destroy();
  }
}

function must(r: ExecResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { LABEL } from '../../src/node/runtime';
import type { LabHost } from './lab';
import { BATON_BIN } from './master-cluster';
import { freePort, stopProcess } from './raft-kv/processes';

export interface NodeDaemonOptions {
  runtime?: 'docker' | 'exec';
  logLevel?: string;
  /**
   * The service proxy. Default 'none': several test daemons share one host,
   * and one host has one set of service rules. A lab host has its own.
   */
  proxyMode?: 'iptables' | 'userspace' | 'none';
  /** Run inside this lab machine (its network namespace and Docker daemon). */
  host?: LabHost;
}

/**
 * A real `baton node` process for tests and benchmarks: its own data
 * directory and API port on loopback; `stop()` ends it and removes every
 * container and network it made on Docker.
 */
/** How long a node daemon may take to stop after SIGTERM (it removes its rules and routes). */
const STOP_MS = 30_000;

export class NodeDaemon {
  log = '';
  proc: ChildProcess;
  private readonly args: string[];
  readonly dataDir = mkdtempSync(join(tmpdir(), 'baton-node-'));
  private readonly docker: Docker;
  private readonly host?: LabHost;

  private constructor(
    readonly name: string,
    masters: string[],
    apiPort: number,
    opts: NodeDaemonOptions,
  ) {
    this.host = opts.host;
    this.docker = opts.host?.docker ?? new Docker();
    const address = opts.host?.address ?? '127.0.0.1';
    this.args = [
      BATON_BIN,
      'node',
      '--name',
      name,
      '--masters',
      masters.join(','),
      '--runtime',
      opts.runtime ?? 'docker',
      '--data-dir',
      this.dataDir,
      '--listen',
      `${address}:${apiPort}`,
      '--address',
      address,
      '--log-level',
      opts.logLevel ?? process.env.BATON_TEST_LOG_LEVEL ?? 'info',
      '--proxy-mode',
      opts.proxyMode ?? 'none',
      // The masters of MasterCluster are plaintext (test/ca/ covers TLS).
      '--insecure',
    ];
    this.proc = this.spawn();
  }

  private spawn(): ChildProcess {
    const p = this.host
      ? this.host.spawn(process.execPath, this.args, {
          DOCKER_HOST: `unix://${this.host.dockerSocket}`,
        })
      : spawn(process.execPath, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => (this.log = (this.log + d.toString()).slice(-6000));
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    return p;
  }

  /** SIGTERM (containers keep running), then the same daemon again: same name, data and port. */
  async restart(): Promise<void> {
    await stopProcess(this.proc, 'SIGTERM');
    this.log = '';
    this.proc = this.spawn();
  }

  static async start(
    name: string,
    masters: string[],
    opts: NodeDaemonOptions = {},
  ): Promise<NodeDaemon> {
    return new NodeDaemon(name, masters, opts.host ? 10250 : await freePort(), opts);
  }

  /** Every Docker container this node made. */
  containers(): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.node}=${this.name}`] },
    });
  }

  async stop(): Promise<void> {
    // A daemon that does not exit on SIGTERM is a bug to see, not a test timeout to wait out.
    let timer: NodeJS.Timeout | undefined;
    const hung = await Promise.race([
      stopProcess(this.proc, 'SIGTERM').then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_MS))),
    ]);
    clearTimeout(timer);
    if (hung) await stopProcess(this.proc, 'SIGKILL');
    for (const x of await this.containers().catch(() => []))
      await this.docker
        .getContainer(x.Id)
        .remove({ force: true })
        .catch(() => undefined);
    await this.docker
      .getNetwork(`baton-${this.name}`)
      .remove()
      .catch(() => undefined);
    rmSync(this.dataDir, { recursive: true, force: true });
    if (hung)
      throw new Error(
        `node daemon ${this.name} did not exit within ${STOP_MS / 1000}s of SIGTERM; its last output:\n${this.log}`,
      );
  }
}

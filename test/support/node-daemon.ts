import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { LABEL } from '../../src/node/runtime';
import { BATON_BIN } from './master-cluster';
import { freePort, stopProcess } from './raft-kv/processes';

/**
 * A real `baton node` process for tests and benchmarks: its own data
 * directory and API port on loopback; `stop()` ends it and removes every
 * container and network it made on Docker.
 */
export class NodeDaemon {
  log = '';
  proc: ChildProcess;
  private readonly args: string[];
  readonly dataDir = mkdtempSync(join(tmpdir(), 'baton-node-'));
  private readonly docker = new Docker();

  private constructor(
    readonly name: string,
    masters: string[],
    apiPort: number,
    runtime: 'docker' | 'exec',
    logLevel: string,
  ) {
    this.args = [
      BATON_BIN,
      'node',
      '--name',
      name,
      '--masters',
      masters.join(','),
      '--runtime',
      runtime,
      '--data-dir',
      this.dataDir,
      '--listen',
      `127.0.0.1:${apiPort}`,
      '--address',
      '127.0.0.1',
      '--log-level',
      logLevel,
    ];
    this.proc = this.spawn();
  }

  private spawn(): ChildProcess {
    const p = spawn(process.execPath, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
    opts: { runtime?: 'docker' | 'exec'; logLevel?: string } = {},
  ): Promise<NodeDaemon> {
    return new NodeDaemon(
      name,
      masters,
      await freePort(),
      opts.runtime ?? 'docker',
      opts.logLevel ?? process.env.BATON_TEST_LOG_LEVEL ?? 'info',
    );
  }

  /** Every Docker container this node made. */
  containers(): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.node}=${this.name}`] },
    });
  }

  async stop(): Promise<void> {
    await stopProcess(this.proc, 'SIGTERM');
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
  }
}

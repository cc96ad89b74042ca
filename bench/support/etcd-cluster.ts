import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { freePort, stopProcess } from '../../test/support/raft-kv/processes';

/** Whether an `etcd` binary is installed (Debian: etcd-server). */
export function etcdAvailable(): string | undefined {
  try {
    const out = execFileSync('etcd', ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\n')[0].trim();
  } catch {
    return undefined;
  }
}

/** Three etcd members on loopback, for measuring Baton beside etcd in one run. */
export class EtcdCluster {
  readonly procs = new Map<number, ChildProcess>();
  readonly clientUrls: Record<number, string> = {};
  private readonly peerUrls: Record<number, string> = {};
  private readonly dir = mkdtempSync(join(tmpdir(), 'baton-etcd-'));

  static async start(): Promise<EtcdCluster> {
    const c = new EtcdCluster();
    for (const id of [1, 2, 3]) {
      c.clientUrls[id] = `http://127.0.0.1:${await freePort()}`;
      c.peerUrls[id] = `http://127.0.0.1:${await freePort()}`;
    }
    for (const id of [1, 2, 3]) c.startMember(id, 'new');
    const client = c.client();
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await client.put('__ready').value('1');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    client.close();
    return c;
  }

  startMember(id: number, state: 'new' | 'existing'): void {
    const cluster = [1, 2, 3].map((i) => `e${i}=${this.peerUrls[i]}`).join(',');
    const p = spawn(
      'etcd',
      [
        '--name',
        `e${id}`,
        '--data-dir',
        join(this.dir, `e${id}`),
        '--listen-client-urls',
        this.clientUrls[id],
        '--advertise-client-urls',
        this.clientUrls[id],
        '--listen-peer-urls',
        this.peerUrls[id],
        '--initial-advertise-peer-urls',
        this.peerUrls[id],
        '--initial-cluster',
        cluster,
        '--initial-cluster-state',
        state,
        '--log-level',
        'error',
      ],
      { stdio: 'ignore' },
    );
    this.procs.set(id, p);
  }

  /**
   * A client of the given members. `plain` turns off the etcd3 package's
   * retries and circuit breaker (which holds a host off for 5 s after three
   * failures), so a failover measures etcd, not the client's back-off.
   */
  client(endpoints = [1, 2, 3], plain = false): Etcd3 {
    return new Etcd3({
      hosts: endpoints.map((id) => this.clientUrls[id]),
      ...(plain ? { faultHandling: { host: () => noop, global: noop } } : {}),
    });
  }

  async leader(): Promise<{ id: number; term: number }> {
    for (const id of [1, 2, 3]) {
      if (!this.procs.has(id)) continue;
      const c = this.client([id]);
      try {
        const s = await c.maintenance.status();
        if (s.leader === s.header.member_id) return { id, term: Number(s.raftTerm) };
      } catch {
        // down or not answering
      } finally {
        c.close();
      }
    }
    return { id: 0, term: 0 };
  }

  async kill(id: number): Promise<void> {
    const p = this.procs.get(id);
    this.procs.delete(id);
    await stopProcess(p);
  }

  async stop(): Promise<void> {
    await Promise.all([1, 2, 3].map((id) => this.kill(id)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

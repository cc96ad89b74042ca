/**
 * Write throughput and latency of a 3-process Raft cluster on loopback:
 * Baton's raft-kv servers (real gRPC, LevelDB with sync), and — beside it in
 * the same run, when `etcd` is installed — a 3-member etcd cluster under the
 * same load generator.
 *
 *   npm run bench:raft -- --clients 64 --seconds 10 --value-bytes 256 [--no-etcd]
 *
 * Prints one JSON line: {"writesPerSec", "p50ms", "p99ms", ..., "etcd": {...}}.
 */
import { randomBytes } from 'node:crypto';
import { KvCluster } from '../test/support/raft-kv/processes';
import { EtcdCluster, etcdAvailable } from './support/etcd-cluster';
import { boolFlag, numFlag, percentile, round } from './support/flags';

const clients = numFlag('clients', 64);
const seconds = numFlag('seconds', 10);
const valueBytes = numFlag('value-bytes', 256);
const warmupMs = numFlag('warmup-ms', 1000);

interface LoadResult {
  writesPerSec: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  leaderChanges: number;
}

/** Runs `clients` closed loops of `put` for `seconds` after a warm-up; one put in flight per client. */
async function drive(
  put: (client: number, key: string, value: Buffer) => Promise<void>,
): Promise<Omit<LoadResult, 'leaderChanges'>> {
  const value = randomBytes(valueBytes);
  const lat: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const loops = Array.from({ length: clients }, async (_, c) => {
    let seq = 0;
    while (!stop) {
      const t0 = performance.now();
      try {
        await put(c, `k${c}-${seq++ % 1000}`, value);
        if (measuring) lat.push(performance.now() - t0);
      } catch {
        if (measuring) errors++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  stop = true;
  await Promise.all(loops);
  lat.sort((a, b) => a - b);
  return {
    writesPerSec: round(lat.length / elapsed, 0),
    p50ms: round(percentile(lat, 50), 3),
    p99ms: round(percentile(lat, 99), 3),
    errors,
  };
}

async function benchBaton(): Promise<LoadResult> {
  const cluster = await KvCluster.start({
    args: process.argv.includes('--election-ticks') ? [] : ['--election-ticks', '6'],
  });
  try {
    const probe = cluster.client();
    await cluster.waitForLeader(probe);
    const before = await cluster.leader(probe);
    // Clients spread over the three servers, as etcd's clients spread over endpoints.
    const kv = Array.from({ length: clients }, (_, c) => cluster.client().use(c));
    const r = await drive(async (c, key, value) => {
      try {
        await kv[c].put(key, value, 5000);
      } catch (err) {
        kv[c].next();
        throw err;
      }
    });
    const after = await cluster.leader(probe);
    for (const k of kv) k.close();
    probe.close();
    return { ...r, leaderChanges: after.term - before.term };
  } finally {
    await cluster.stop();
  }
}

async function benchEtcd(): Promise<LoadResult> {
  const cluster = await EtcdCluster.start();
  try {
    const before = await cluster.leader();
    const conns = [1, 2, 3].map((id) => cluster.client([id]));
    const r = await drive(async (c, key, value) => {
      await conns[c % 3].put(key).value(value);
    });
    const after = await cluster.leader();
    for (const k of conns) k.close();
    return { ...r, leaderChanges: after.term - before.term };
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const baton = await benchBaton();
  const out: Record<string, unknown> = { ...baton, clients, seconds, valueBytes };
  const etcdVersion = etcdAvailable();
  if (etcdVersion && !boolFlag('no-etcd')) {
    out.etcd = { ...(await benchEtcd()), version: etcdVersion };
  } else {
    out.etcd = etcdVersion ? 'skipped (--no-etcd)' : 'not installed (apt-get install etcd-server)';
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench:raft: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

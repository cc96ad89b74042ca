/**
 * Time to recover from a killed leader: kill -9 the leader of a 3-process
 * cluster while a client keeps writing, and time from the kill until a write
 * commits again. Repeats `--runs` times (restarting the killed member and
 * letting it catch up in between), for Baton and — when installed — etcd.
 *
 *   npm run bench:failover -- --runs 20 [--no-etcd]
 *
 * Prints one JSON line: {"p50ms", "p99ms", "runs", ..., "etcd": {...}}.
 */
import { KvCluster } from '../test/support/raft-kv/processes';
import { EtcdCluster, etcdAvailable } from './support/etcd-cluster';
import { boolFlag, numFlag, percentile, round } from './support/flags';

const runs = numFlag('runs', 20);

function summarize(times: number[]): { p50ms: number; p99ms: number; maxMs: number; runs: number } {
  const s = [...times].sort((a, b) => a - b);
  return {
    p50ms: round(percentile(s, 50), 1),
    p99ms: round(percentile(s, 99), 1),
    maxMs: round(s[s.length - 1], 1),
    runs: s.length,
  };
}

async function batonFailover(): Promise<number[]> {
  const cluster = await KvCluster.start({ args: ['--election-ticks', '6'] });
  const client = cluster.client();
  const times: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const leader = await cluster.waitForLeader(client);
      await client.putRetrying(`warm-${run}`, Buffer.from('x'), Date.now() + 10_000);
      // Point the writer at a survivor, as a client with several endpoints would after one fails.
      client.use(leader.id % 3);
      const t0 = performance.now();
      await cluster.kill(leader.id);
      await client.putRetrying(`after-${run}`, Buffer.from('y'), Date.now() + 30_000);
      times.push(performance.now() - t0);
      await cluster.startNode(leader.id);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    client.close();
    await cluster.stop();
  }
  return times;
}

async function etcdFailover(): Promise<number[]> {
  const cluster = await EtcdCluster.start();
  const times: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      let leader = await cluster.leader();
      while (leader.id === 0) {
        await new Promise((r) => setTimeout(r, 50));
        leader = await cluster.leader();
      }
      const survivors = [1, 2, 3].filter((id) => id !== leader.id);
      const clients = survivors.map((id) => cluster.client([id], true));
      const t0 = performance.now();
      await cluster.kill(leader.id);
      // Like the Baton client: short attempts, rotating over the survivors.
      for (let attempt = 0; ; attempt++) {
        try {
          await clients[attempt % clients.length]
            .put(`after-${run}`)
            .value('y')
            .options({ deadline: Date.now() + 1000 });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      times.push(performance.now() - t0);
      for (const c of clients) c.close();
      cluster.startMember(leader.id, 'existing');
      await new Promise((r) => setTimeout(r, 1500));
    }
  } finally {
    await cluster.stop();
  }
  return times;
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = summarize(await batonFailover());
  const v = etcdAvailable();
  if (v && !boolFlag('no-etcd')) out.etcd = { ...summarize(await etcdFailover()), version: v };
  else out.etcd = v ? 'skipped (--no-etcd)' : 'not installed (apt-get install etcd-server)';
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench:failover: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

import assert from 'node:assert/strict';
import { KvCluster } from '../support/raft-kv/processes';
import { Rng } from '../support/rng';

/**
 * Crash durability on real processes: a 3-member cluster of raft-kv servers
 * (real gRPC, LevelDB with sync) is killed with SIGKILL at random moments —
 * followers, the leader, two members at once, all of them — while clients
 * write. Every write a client saw acknowledged must be readable afterwards.
 */
describe('raft: crash durability (kill -9 a real 3-process cluster)', function () {
  this.timeout(120_000);
  let cluster: KvCluster;

  before(async () => {
    cluster = await KvCluster.start({
      args: ['--election-ticks', '6', '--snapshot-entries', '300', '--keep-entries', '50'],
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('keeps every acknowledged write through random kill -9 and restarts', async () => {
    const rng = new Rng(Number(process.env.BATON_CRASH_SEED ?? Date.now() % 100000));
    const acked = new Map<string, string>();
    const client = cluster.client();
    await cluster.waitForLeader(client);
    let stop = false;
    let attempts = 0;

    const writer = async (w: number) => {
      const c = cluster.client().use(w);
      let seq = 0;
      while (!stop) {
        const key = `w${w}-${seq++}`;
        const value = `v${w}-${seq}-${'x'.repeat(rng.int(1, 64))}`;
        attempts++;
        try {
          await c.put(key, Buffer.from(value), 1500);
          acked.set(key, value);
        } catch {
          c.next(); // unknown outcome or unavailable: not acknowledged, try elsewhere
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      c.close();
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));

    const events: string[] = [];
    const deadline = Date.now() + Number(process.env.BATON_CRASH_MS ?? 12_000);
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, rng.int(200, 700)));
      const leader = (await cluster.leader(client)).id;
      const roll = rng.next();
      let victims: number[];
      if (roll < 0.4 && leader !== 0) victims = [leader];
      else if (roll < 0.75) victims = [rng.int(1, 3)];
      else if (roll < 0.9) victims = rng.shuffle([1, 2, 3]).slice(0, 2);
      else victims = [1, 2, 3];
      events.push(`kill ${victims.join(',')}${victims.includes(leader) ? ' (leader)' : ''}`);
      await Promise.all(victims.map((id) => cluster.kill(id)));
      await new Promise((r) => setTimeout(r, rng.int(0, 400)));
      for (const id of victims) await cluster.startNode(id);
    }
    stop = true;
    await Promise.all(writers);

    // One last blackout of the whole cluster, then everything must be there.
    await Promise.all([1, 2, 3].map((id) => cluster.kill(id)));
    for (const id of [1, 2, 3]) await cluster.startNode(id);
    await cluster.waitForLeader(client, 20_000);

    assert.ok(
      acked.size > 50,
      `too few writes were acknowledged (${acked.size} of ${attempts}) to prove anything`,
    );
    const missing: string[] = [];
    for (const [key, value] of acked) {
      let got: string | undefined;
      for (let attempt = 0; attempt < 50 && got === undefined; attempt++) {
        try {
          const r = await client.get(key, { timeoutMs: 2000 });
          got = r.found ? Buffer.from(r.value).toString() : '<absent>';
        } catch {
          client.next();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      if (got !== value)
        missing.push(`${key}: want ${value.slice(0, 20)}…, got ${got?.slice(0, 20)}`);
    }
    client.close();
    assert.deepEqual(missing, [], `lost acknowledged writes after: ${events.join('; ')}`);
  });
});

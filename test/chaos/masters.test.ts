/**
 * Fault injection on the masters: three `baton master` VMs (network
 * namespaces on one host, data on a small tmpfs each) under clients that
 * write and read registers the whole time. Every scenario ends healed, reads
 * every register again and proves the history linearizable with nothing
 * acknowledged lost; see chaos-cluster.ts.
 *
 *   BATON_CHAOS_SEED=n   replay a run
 *   BATON_CHAOS_KILLS=n  kill -9 the leader n times (default 20)
 */
import assert from 'node:assert/strict';
import { VmCluster } from '../../deploy/vmlab/cluster';
import { chaosCluster, percentile, scenario, sleep, waitFor } from './chaos-cluster';
import { now } from './workload';

describe('chaos: masters under kill -9, SIGSTOP, partitions, restarts and a full disk', function () {
  this.timeout(600_000);
  let c: VmCluster | undefined;

  before(async function () {
    c = await chaosCluster(
      this,
      { tag: 'm', third: 1 + (process.pid % 100) },
      { masters: 3, nodes: 0 },
    );
  });

  after(async () => {
    await c?.destroy();
  });

  const others = (leader: number) => c!.masters.map((m) => m.id).filter((id) => id !== leader);

  it('kill -9 of the leader, again and again: a new leader takes writes and nothing acknowledged is lost', async () => {
    // Found a real bug in CI (seed 637197320): a write whose leader died
    // after proposing it was retried by BatonClient on another master and
    // committed twice, so a read saw an older value again. Writes are keyed
    // now (idempotency keys, src/master/idempotency.ts) and applied once.
    const kills = Number(process.env.BATON_CHAOS_KILLS ?? 20);
    await scenario(c!, 'kill-leader', async ({ w, rng }) => {
      const failovers: number[] = [];
      for (let k = 0; k < kills; k++) {
        const leader = await c!.leader();
        await sleep(rng.int(200, 700));
        await c!.killMaster(leader);
        const dead = now();
        await waitFor(
          'a write committed after the kill',
          () => w.acked().some((o) => o.return > dead),
          20_000,
        );
        failovers.push(
          Math.min(
            ...w
              .acked()
              .filter((o) => o.return > dead)
              .map((o) => o.return),
          ) - dead,
        );
        await c!.startMaster(leader);
        await c!.caughtUp(leader);
      }
      return {
        kills,
        failoverP50Ms: percentile(failovers, 50),
        failoverP99Ms: percentile(failovers, 99),
        failoverMaxMs: percentile(failovers, 100),
      };
    });
  });

  it('SIGSTOP of the leader past the election timeout, then SIGCONT: it steps down and serves nothing stale', async () => {
    await scenario(c!, 'pause-leader', async ({ w }) => {
      const old = await c!.leader();
      // A client pinned to the old leader: what it reads after waking must be current.
      w.add({ servers: [c!.master(old).address], readShare: 0.5, timeoutMs: 3000 });
      await sleep(1000);
      c!.pauseMaster(old);
      const paused = now();
      const next = await c!.leader(15_000, others(old));
      const electedMs = Math.round(now() - paused);
      await sleep(Math.max(0, 4000 - (now() - paused)));
      c!.resumeMaster(old);
      const resumed = now();
      await waitFor(
        `m${old} to follow m${next}`,
        async () => (await c!.status(old)).leader !== old,
        10_000,
      );
      const steppedDownMs = Math.round(now() - resumed);
      await sleep(2000);
      return {
        pausedMs: Math.round(resumed - paused),
        newLeaderElectedMs: electedMs,
        oldLeaderSteppedDownMs: steppedDownMs,
      };
    });
  });

  it('a partition isolating the leader: the isolated master acknowledges no write and serves no stale read', async () => {
    await scenario(c!, 'isolate-leader', async ({ w }) => {
      const old = await c!.leader();
      const pinned = w.add({ servers: [c!.master(old).address], readShare: 0.5, timeoutMs: 2000 });
      await sleep(1000);
      await c!.isolateMaster(old);
      const cut = now();
      const next = await c!.leader(15_000, others(old));
      const electedMs = Math.round(now() - cut);
      await sleep(4000);
      const healed = now();
      await c!.heal();
      const minorityAcks = w.ackedBy(pinned, cut, healed);
      const majorityAcks = w
        .acked()
        .filter((o) => o.clientId !== pinned && o.call > cut && o.return < healed);
      assert.deepEqual(
        minorityAcks.map((o) => o.input.value),
        [],
        `m${old}, cut off, acknowledged writes`,
      );
      assert.ok(majorityAcks.length > 0, 'the majority side took no writes');
      await sleep(1500);
      return {
        newLeader: next,
        newLeaderElectedMs: electedMs,
        minorityAcks: 0,
        majorityAcks: majorityAcks.length,
      };
    });
  });

  it('a partial partition (one master reaches only the leader): the cluster keeps taking writes, linearizably', async () => {
    await scenario(c!, 'partial-partition', async ({ w, rng }) => {
      const leader = await c!.leader();
      const lonely = rng.pick(others(leader));
      w.add({ servers: [c!.master(lonely).address], readShare: 0.7, timeoutMs: 2000 });
      await sleep(1000);
      await c!.partialPartition(lonely, leader);
      const cut = now();
      await sleep(5000);
      const healed = now();
      await c!.heal();
      const acks = w.acked().filter((o) => o.call > cut && o.return < healed).length;
      assert.ok(acks > 0, 'no write was acknowledged during the partial partition');
      await sleep(1500);
      return {
        lonely,
        leaderBefore: leader,
        leaderAfter: await c!.leader(),
        acksDuringPartition: acks,
      };
    });
  });

  it('a flapping link between the leader and a follower: linearizable throughout', async () => {
    await scenario(c!, 'flapping-link', async ({ w, rng }) => {
      const leader = await c!.leader();
      const peer = rng.pick(others(leader));
      w.add({ servers: [c!.master(peer).address], readShare: 0.7, timeoutMs: 2000 });
      const a = c!.master(leader).vm;
      const b = c!.master(peer).vm;
      let flaps = 0;
      const end = Date.now() + 8000;
      while (Date.now() < end) {
        c!.note('link-down', `m${leader}<->m${peer}`);
        await c!.cut(a, [b]);
        await sleep(rng.int(100, 1500));
        await c!.heal();
        flaps++;
        await sleep(rng.int(100, 800));
      }
      await sleep(1500);
      return { link: `m${leader}-m${peer}`, flaps };
    });
  });

  it('a rolling restart of every master under load: no client request fails beyond its retries', async () => {
    await scenario(
      c!,
      'rolling-restart',
      async ({ w }) => {
        const restarts: number[] = [];
        for (const m of c!.masters) {
          const t = now();
          await c!.stopMaster(m.id);
          await c!.startMaster(m.id);
          await c!.caughtUp(m.id);
          restarts.push(Math.round(now() - t));
          await sleep(1000);
        }
        // Operations still in flight now are not failures; ones that ended in an error are.
        const failed = w.writes().filter((o) => o.output.unknown);
        assert.deepEqual(failed, [], 'writes failed');
        assert.equal(w.readErrors, 0, 'reads failed');
        return { restartMs: restarts };
      },
      { timeoutMs: 15_000 },
    );
  });

  it('a full disk on one master: it stops cleanly, the others keep serving, and it catches up once space is back', async () => {
    await scenario(c!, 'full-disk', async ({ w, rng }) => {
      const leader = await c!.leader();
      const victim = rng.pick(others(leader));
      const m = c!.master(victim);
      await sleep(500);
      await c!.fillDisk(victim);
      const full = now();
      await waitFor(`m${victim} to stop on a full disk`, () => !m.process.running(), 60_000);
      const stoppedMs = Math.round(now() - full);
      const exit = m.process.exitStatus();
      const log = m.process.tail(60);
      assert.match(exit ?? '', /^exit [1-9]/, `m${victim} ended with ${exit}:\n${log}`);
      assert.match(
        log,
        /ENOSPC|no space left/i,
        `m${victim}'s log does not name the full disk:\n${log}`,
      );
      const before = w.acked().length;
      await sleep(2000);
      assert.ok(w.acked().length > before, 'the other masters stopped taking writes');
      await c!.freeDisk(victim);
      const t = now();
      await c!.startMaster(victim);
      await c!.caughtUp(victim);
      return { victim, stoppedAfterMs: stoppedMs, exit, catchUpMs: Math.round(now() - t) };
    });
  });
});

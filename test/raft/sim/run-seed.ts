import { FaultProfile, SimCluster } from './cluster';
import { Rng } from '../../support/rng';

export interface SeedResult {
  seed: number;
  ok: boolean;
  error?: string;
  acked: number;
  checks: number;
  trace?: string[];
}

/** Faults drawn from the seed, so that every seed explores a different mix. */
export function profileFor(seed: number): { faults: FaultProfile; nodes: number; pool: number } {
  const r = new Rng(seed ^ 0x5bd1e995);
  const nodes = r.chance(0.7) ? 3 : 5;
  return {
    nodes,
    pool: nodes + (r.chance(0.5) ? 1 : 0),
    faults: {
      dropRate: r.pick([0, 0.01, 0.05, 0.15]),
      dupRate: r.pick([0, 0.02, 0.1]),
      maxDelay: r.pick([2, 10, 30]),
      crashRate: r.pick([0, 0.0005, 0.002]),
      partitionRate: r.pick([0, 0.001, 0.004]),
      midReadyCrash: r.pick([0, 0.002]),
      membership: r.chance(0.3),
      snapshotEvery: r.pick([0, 20, 100]),
    },
  };
}

export function runSeed(seed: number, units = 3000): SeedResult {
  const p = profileFor(seed);
  const voters = Array.from({ length: p.nodes }, (_, i) => i + 1);
  const pool = Array.from({ length: p.pool }, (_, i) => i + 1);
  const c = new SimCluster(seed, p.faults, voters, pool);
  try {
    while (c.now < units) c.step({ faults: true, proposeRate: 0.1 });
    const s = c.stabilize(5000);
    if (!s.ok) throw new Error(`liveness: ${s.reason}`);
    c.checkDurability();
    return { seed, ok: true, acked: c.acked.size, checks: c.inv.checks };
  } catch (err) {
    return {
      seed,
      ok: false,
      error: `${(err as Error).stack ?? err}\nprofile: ${JSON.stringify(p)}`,
      acked: c.acked.size,
      checks: c.inv.checks,
      trace: c.log.slice(-60),
    };
  }
}

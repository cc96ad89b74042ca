import { ClientOp, SimCluster } from './cluster';
import { profileFor } from './run-seed';

/**
 * Runs clients against a simulated cluster under the seed's faults and
 * returns their history: writes of unique values to a few keys and
 * linearizable (ReadIndex) reads — or, with `localReads`, reads of a member's
 * local state, which are not linearizable — through random members. Writes whose
 * proposer crashed, or that never completed, have an unknown outcome.
 */
export function kvHistory(
  seed: number,
  opts: { units?: number; localReads?: boolean } = {},
): { history: ClientOp[]; error?: string } {
  const units = opts.units ?? 2000;
  const p = profileFor(seed);
  const voters = Array.from({ length: p.nodes }, (_, i) => i + 1);
  const pool = Array.from({ length: p.pool }, (_, i) => i + 1);
  const c = new SimCluster(seed, p.faults, voters, pool);
  const keys = ['x', 'y', 'z'];
  let client = 0;
  let value = 0;
  try {
    while (c.now < units) {
      c.step({ faults: true, proposeRate: 0 });
      if (c.rng.chance(0.15)) {
        const node = c.rng.pick(pool);
        const key = c.rng.pick(keys);
        if (c.rng.chance(0.5)) c.clientPut(++client, node, key, `v${++value}`);
        else if (opts.localReads) c.clientLocalGet(++client, node, key);
        else c.clientGet(++client, node, key);
      }
    }
    const s = c.stabilize(5000);
    if (!s.ok) return { history: c.history, error: `liveness: ${s.reason}` };
  } catch (err) {
    return { history: c.history, error: (err as Error).message };
  }
  return { history: c.history };
}

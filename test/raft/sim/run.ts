/**
 * `npm run test:sim -- --seeds N --start-seed S [--units U] [--trace]`:
 * runs the deterministic Raft simulation over a range of seeds and prints
 * the failing seeds (each replays exactly) and a JSON summary.
 */
import { runSeed } from './run-seed';

function flag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const seeds = flag('seeds', 2000);
const start = flag('start-seed', 1);
const units = flag('units', 3000);
const trace = process.argv.includes('--trace');
const t0 = Date.now();
let failed = 0;
let acked = 0;
for (let s = start; s < start + seeds; s++) {
  const r = runSeed(s, units);
  acked += r.acked;
  if (!r.ok) {
    failed++;
    console.error(
      `seed ${s} FAILED (replay: npm run test:sim -- --seeds 1 --start-seed ${s} --trace)\n${r.error}`,
    );
    if (trace && r.trace) console.error(r.trace.join('\n'));
  }
}
console.log(
  JSON.stringify({
    seeds,
    startSeed: start,
    failed,
    ackedWrites: acked,
    seconds: (Date.now() - t0) / 1000,
  }),
);
process.exitCode = failed > 0 ? 1 : 0;

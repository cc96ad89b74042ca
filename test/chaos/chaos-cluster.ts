/**
 * What every chaos suite shares: the seed, a VM cluster for the suite, and
 * `scenario()`, which runs a workload through one fault, heals everything,
 * reads every register once more, checks the history and prints one JSON
 * line of figures. A failure prints the seed and the injection log, so the
 * run replays with BATON_CHAOS_SEED.
 */
import { VmCluster, VmClusterOptions } from '../../deploy/vmlab/cluster';
import { requireLab } from '../support/lab';
import { Rng } from '../support/rng';
import { now, Workload } from './workload';

/** The suite's seed: BATON_CHAOS_SEED replays a run. */
export const SEED = Number(process.env.BATON_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A per-scenario seed derived from the suite's, so one scenario replays alone too. */
export function scenarioSeed(name: string): number {
  let h = SEED >>> 0;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** A lab name and subnet of this process's own (tests of other people run on this host too). */
export function labOptions(tag: string, third: number): Pick<VmClusterOptions, 'name' | 'subnet'> {
  return { name: `cx${tag}${process.pid % 10000}`, subnet: `10.77.${third}.0/24` };
}

/**
 * A chaos suite's cluster (logging at info, named and addressed for this
 * process), or the suite pending with the reason when no lab can be built.
 */
export async function chaosCluster(
  ctx: Mocha.Context,
  lab: { tag: string; third: number },
  opts: Omit<VmClusterOptions, 'name' | 'subnet'>,
): Promise<VmCluster> {
  await requireLab(ctx);
  console.log(`      seed ${SEED} (BATON_CHAOS_SEED=${SEED} replays it)`);
  return VmCluster.create({ ...labOptions(lab.tag, lab.third), logLevel: 'info', ...opts });
}

/** Waits for `check`, polling every 50 ms; throws `what` after `ms`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Every master running, not stopped, on a healed network, with a leader. */
export async function restoreAll(c: VmCluster): Promise<void> {
  await c.heal();
  for (const m of c.masters) {
    if (m.process.running()) m.process.signal('SIGCONT');
    else await c.startMaster(m.id);
  }
  await c.leader(30_000);
}

export interface ScenarioContext {
  w: Workload;
  rng: Rng;
  seed: number;
  /** Figures measured so far: printed even when the scenario fails later. */
  figures: Record<string, unknown>;
}

export const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]);
};

/**
 * Runs `body` under a workload of `clients` clients on all masters, then
 * heals, final-reads, checks, prints the JSON line and fails on any problem
 * (or on `body` throwing), with the seed and the injection log.
 */
export async function scenario(
  c: VmCluster,
  name: string,
  body: (s: ScenarioContext) => Promise<Record<string, unknown>>,
  opts: { clients?: number; keys?: number; timeoutMs?: number } = {},
): Promise<void> {
  const seed = scenarioSeed(name);
  const rng = new Rng(seed);
  const w = new Workload(name, opts.keys ?? 6, rng, (servers, ms) => c.connect(servers, ms));
  const from = c.injections.length;
  const started = now();
  for (let i = 0; i < (opts.clients ?? 3); i++)
    w.add({ servers: c.servers(), readShare: 0.5, timeoutMs: opts.timeoutMs ?? 5000 });
  const figures: Record<string, unknown> = {};
  let failure: Error | undefined;
  try {
    Object.assign(figures, await body({ w, rng, seed, figures }));
  } catch (err) {
    failure = err as Error;
  }
  try {
    await restoreAll(c);
  } catch (err) {
    failure ??= err as Error;
  }
  await w.stop();
  const final = await w.finalReads(c.servers());
  const problems = w.verify(final);
  console.log(
    JSON.stringify({
      scenario: name,
      seed: SEED,
      ...w.summary(),
      readErrors: w.readErrors,
      anomalies: problems.length,
      ms: Math.round(now() - started),
      ...figures,
    }),
  );
  if (failure || problems.length > 0) {
    const log = c.injections
      .slice(from)
      .map((i) => `  +${i.atMs}ms ${i.what} ${i.whom}${i.detail ? ` (${i.detail})` : ''}`)
      .join('\n');
    throw new Error(
      `scenario ${name} failed (replay: BATON_CHAOS_SEED=${SEED}):\n` +
        (failure ? `${failure.message}\n` : '') +
        problems.join('\n') +
        `\ninjections:\n${log}`,
    );
  }
}

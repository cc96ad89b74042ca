/**
 * `baton top` on a node: CPU rates from cumulative counters, which takes
 * two samples. The sampler keeps the last sample of the host and of every
 * container it was asked about, so a call that comes a little after
 * another compares with that one and answers at once (metrics-server
 * likewise rates between its scrapes). Otherwise — the first call, a
 * container not seen before, a sample too fresh or too stale to compare
 * with — it samples, waits `windowMs`, and samples again.
 *
 * Memory is not a rate: it is the working set of the latest sample.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerStats, PodStats, StatsRequest, StatsResponse, Usage } from '../gen/node';
import type { HostSample } from './proc-stats';
import type { ContainerUsageSample } from './runtime';

/** A cumulative CPU counter and the memory in use at one moment. */
export interface CounterSample {
  /** CPU time used so far, ns. */
  cpuNanos: number;
  memoryBytes: number;
  /** ms since the epoch. */
  at: number;
}

export interface UsageSource {
  host(): HostSample;
  /** Absent when the runtime cannot measure its containers. */
  containers?(podUids?: string[]): Promise<ContainerUsageSample[]>;
}

export interface UsageSamplerOptions {
  /** The shortest window a rate averages over, and how long a fresh pair of samples takes (default 1 s). */
  windowMs?: number;
  /** A kept sample older than this is not compared with (default 60 s): the rate would be too old to be "now". */
  maxAgeMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** The host's key among the kept samples (containers are kept by runtime id). */
const HOST = '';

/**
 * Average CPU use between two samples of one counter, in billionths of a
 * core (CPU ns per wall second), or undefined when they cannot be compared:
 * no time between them, or a counter that went back (a different process).
 */
export function cpuRate(
  from: CounterSample,
  to: CounterSample,
): { nanoCores: number; windowMs: number } | undefined {
  const windowMs = to.at - from.at;
  if (windowMs <= 0 || to.cpuNanos < from.cpuNanos) return undefined;
  return { nanoCores: Math.round((to.cpuNanos - from.cpuNanos) / (windowMs / 1000)), windowMs };
}

/** Whether `kept` is a baseline for `now`: at least one window before it, not stale, same counter. */
export function comparable(
  kept: CounterSample | undefined,
  now: CounterSample,
  windowMs: number,
  maxAgeMs: number,
): kept is CounterSample {
  if (!kept) return false;
  const age = now.at - kept.at;
  return age >= windowMs && age <= maxAgeMs && now.cpuNanos >= kept.cpuNanos;
}

/** The protobuf Usage of `now` against `base`; undefined when there is no rate. */
export function usageOf(base: CounterSample | undefined, now: CounterSample): Usage | undefined {
  const rate = base && cpuRate(base, now);
  if (!rate) return undefined;
  return {
    cpuUsageNanoCores: rate.nanoCores,
    cpuUsageCoreNanoseconds: Math.round(now.cpuNanos),
    memoryWorkingSetBytes: Math.round(now.memoryBytes),
    windowMs: Math.round(rate.windowMs),
  };
}

interface Snapshot {
  host: HostSample;
  containers: ContainerUsageSample[];
}

export class UsageSampler {
  private readonly kept = new Map<string, CounterSample>();
  private readonly windowMs: number;
  private readonly maxAgeMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly source: UsageSource,
    opts: UsageSamplerOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 1000;
    this.maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.sleep = opts.sleep ?? ((ms) => sleep(ms));
  }

  /** Whether the runtime can measure containers (otherwise only node totals are answered). */
  get measuresContainers(): boolean {
    return this.source.containers !== undefined;
  }

  async stats(req: StatsRequest): Promise<StatsResponse> {
    const uids = req.podUids.length > 0 ? req.podUids : undefined;
    const take = async (): Promise<Snapshot> => ({
      host: this.source.host(),
      containers: req.nodeOnly || !this.source.containers ? [] : await this.source.containers(uids),
    });
    const first = await take();
    let now = first;
    let baseline = (key: string, s: CounterSample) => {
      const k = this.kept.get(key);
      return this.comparable(k, s) ? k : undefined;
    };
    const entries = (s: Snapshot): [string, CounterSample][] => [
      [HOST, s.host],
      ...s.containers.map((c): [string, CounterSample] => [c.id, c]),
    ];
    if (!entries(first).every(([key, s]) => baseline(key, s))) {
      await this.sleep(this.windowMs);
      now = await take();
      const earlier = new Map(entries(first));
      // The kept sample still, where it was a baseline for the first sample
      // too (a counter that went back in between is another process).
      baseline = (key, s) => {
        const e = earlier.get(key);
        const k = this.kept.get(key);
        return e && k && k.cpuNanos <= e.cpuNanos && this.comparable(k, s) ? k : e;
      };
    }
    const response = respond(now, baseline);
    this.keep(entries(now));
    return response;
  }

  private comparable(kept: CounterSample | undefined, now: CounterSample): kept is CounterSample {
    return comparable(kept, now, this.windowMs, this.maxAgeMs);
  }

  /**
   * Keeps the new samples as the next call's baselines, except where the
   * kept one is less than a window older: calls closer together than that
   * still find a baseline to compare with.
   */
  private keep(samples: [string, CounterSample][]): void {
    const at = samples[0][1].at;
    for (const [key, s] of samples) {
      const k = this.kept.get(key);
      const younger = k && s.at - k.at < this.windowMs && s.at >= k.at && s.cpuNanos >= k.cpuNanos;
      if (!younger)
        this.kept.set(key, { cpuNanos: s.cpuNanos, memoryBytes: s.memoryBytes, at: s.at });
    }
    // Containers gone (or no longer asked about) long enough are forgotten.
    for (const [key, k] of this.kept) if (at - k.at > this.maxAgeMs) this.kept.delete(key);
  }
}

function respond(
  now: Snapshot,
  baseline: (key: string, s: CounterSample) => CounterSample | undefined,
): StatsResponse {
  const pods = new Map<string, PodStats>();
  for (const c of now.containers) {
    const usage = usageOf(baseline(c.id, c), c);
    // Started between the two samples: no rate yet.
    if (!usage) continue;
    let pod = pods.get(c.podUid);
    if (!pod)
      pods.set(
        c.podUid,
        (pod = { uid: c.podUid, namespace: c.namespace, name: c.podName, containers: [] }),
      );
    const entry: ContainerStats = { name: c.name, usage };
    pod.containers.push(entry);
  }
  const h = now.host;
  return {
    timestampMs: h.at,
    node: {
      usage: usageOf(baseline(HOST, h), h),
      cpuCapacityMillicores: h.cpuCapacityMillicores,
      memoryCapacityBytes: h.memoryCapacityBytes,
    },
    pods: [...pods.values()],
  };
}

/**
 * What `baton top` measures on a node: CPU rates from two samples of
 * cumulative counters (kept between calls, or taken a window apart),
 * working sets as Docker and /proc report them, and the exec runtime's
 * process groups measured for real.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StatsRequest } from '../../src/gen/node';
import { dockerUsage, workingSetBytes } from '../../src/node/docker-runtime';
import { ExecRuntime } from '../../src/node/exec-runtime';
import {
  groupUsage,
  parseHostCpu,
  parseMeminfo,
  parseProcStat,
  parsePss,
  parseVmRss,
  ProcStat,
} from '../../src/node/proc-stats';
import { ContainerUsageSample, PodRef } from '../../src/node/runtime';
import { comparable, cpuRate, UsageSampler } from '../../src/node/usage-sampler';

describe('usage: CPU rates and working sets', () => {
  it('cpuRate: CPU ns per wall second, or nothing when two samples cannot be compared', () => {
    const cases: [string, [number, number], [number, number], number | undefined][] = [
      // [what, [cpuNanos, at] from, [cpuNanos, at] to, nanocores]
      ['one full core for 1 s', [0, 1000], [1e9, 2000], 1e9],
      ['a quarter core over 4 s', [5e9, 0], [6e9, 4000], 2.5e8],
      ['idle', [7e9, 0], [7e9, 1500], 0],
      ['two cores for half a second', [0, 0], [1e9, 500], 2e9],
      ['no time between them', [0, 1000], [1e9, 1000], undefined],
      ['counter went back (another process)', [9e9, 0], [1e9, 1000], undefined],
    ];
    for (const [what, [c0, t0], [c1, t1], want] of cases) {
      const r = cpuRate(
        { cpuNanos: c0, memoryBytes: 0, at: t0 },
        { cpuNanos: c1, memoryBytes: 0, at: t1 },
      );
      assert.equal(r?.nanoCores, want, what);
      if (r) assert.equal(r.windowMs, t1 - t0, what);
    }
  });

  it('comparable: a kept sample serves as baseline between one window and the max age', () => {
    const s = (at: number, cpuNanos = 0) => ({ cpuNanos, memoryBytes: 0, at });
    assert.equal(comparable(undefined, s(5000), 1000, 60_000), false, 'none kept');
    assert.equal(comparable(s(4500), s(5000), 1000, 60_000), false, 'younger than a window');
    assert.equal(comparable(s(4000), s(5000), 1000, 60_000), true, 'exactly a window');
    assert.equal(comparable(s(0), s(70_000), 1000, 60_000), false, 'stale');
    assert.equal(comparable(s(0, 10), s(5000, 5), 1000, 60_000), false, 'counter went back');
  });

  it('workingSetBytes: usage less inactive page cache (cgroup v1 total_, v2 plain), never below 0', () => {
    const cases: [string, Parameters<typeof workingSetBytes>[0], number][] = [
      [
        'cgroup v1',
        { usage: 2_596_864, stats: { total_inactive_file: 1_982_464, inactive_file: 1 } },
        614_400,
      ],
      ['cgroup v2', { usage: 10_000, stats: { inactive_file: 4_000 } }, 6_000],
      ['inactive above usage: usage', { usage: 100, stats: { inactive_file: 500 } }, 100],
      ['no stats', { usage: 4096 }, 4096],
      ['nothing', {}, 0],
    ];
    for (const [what, mem, want] of cases) assert.equal(workingSetBytes(mem), want, what);
  });

  it('dockerUsage: total_usage, the working set, and the time Docker read them', () => {
    const s = {
      read: '2026-11-23T15:45:58.514216494Z',
      cpu_stats: { cpu_usage: { total_usage: 1_124_203_803 } },
      memory_stats: { usage: 3000, stats: { total_inactive_file: 1000 } },
    } as unknown as Parameters<typeof dockerUsage>[0];
    assert.deepEqual(dockerUsage(s, 42), {
      cpuNanos: 1_124_203_803,
      memoryBytes: 2000,
      at: Date.parse('2026-11-23T15:45:58.514Z'),
    });
    assert.equal(dockerUsage({ ...s, read: '0001-01-01T00:00:00Z' }, 42).at, 42, 'never read');
  });

  it('/proc parsers: host CPU and memory, a process, its Pss and RSS', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice (ticks of 10 ms)
    const stat = 'cpu  100 20 30 5000 400 5 6 700 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n';
    assert.equal(parseHostCpu(stat), (100 + 20 + 30 + 5 + 6) * 1e7);
    assert.throws(() => parseHostCpu('intr 1 2\n'), /no "cpu" line/);

    assert.deepEqual(
      parseMeminfo('MemTotal:  1000 kB\nMemFree:  100 kB\nMemAvailable:  600 kB\n'),
      { totalBytes: 1000 * 1024, workingSetBytes: 400 * 1024 },
    );
    assert.deepEqual(
      parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n'),
      { totalBytes: 1000 * 1024, workingSetBytes: 600 * 1024 },
      'no MemAvailable (before 3.14)',
    );

    // A command name with spaces and parentheses; utime..cstime 7 11 13 17, starttime 999.
    const line =
      '4242 (my (odd) name) R 1 4200 4200 0 -1 4194304 100 0 0 0 7 11 13 17 20 0 1 0 999 1000 100';
    assert.deepEqual(parseProcStat(4242, line), {
      pid: 4242,
      state: 'R',
      pgrp: 4200,
      cpuTicks: 7 + 11 + 13 + 17,
      startTime: 999,
    });
    assert.equal(parsePss('Rss:   1760 kB\nPss:    383 kB\nPss_Dirty: 112 kB\n'), 383 * 1024);
    assert.equal(parsePss(''), undefined);
    assert.equal(parseVmRss('Name:\tsh\nVmRSS:\t   900 kB\n'), 900 * 1024);
    assert.equal(parseVmRss('Name:\tkthreadd\n'), undefined);
  });

  it('groupUsage: the CPU of every member of the group, the memory of the live ones', () => {
    const p = (pid: number, pgrp: number, cpuTicks: number, state = 'S'): ProcStat => ({
      pid,
      pgrp,
      cpuTicks,
      state,
      startTime: 0,
    });
    const procs = [p(10, 10, 5), p(11, 10, 100, 'R'), p(12, 10, 3, 'Z'), p(20, 20, 1000)];
    const memory = (pid: number) => pid * 1000;
    assert.deepEqual(groupUsage(procs, 10, memory), {
      cpuNanos: (5 + 100 + 3) * 1e7,
      memoryBytes: 10_000 + 11_000,
    });
    assert.deepEqual(groupUsage(procs, 99, memory), { cpuNanos: 0, memoryBytes: 0 });
  });
});

/**
 * A scripted node: the host and containers' counters are set by the test,
 * the clock moves only when the sampler sleeps or the test says so.
 */
class ScriptedNode {
  now = 1_000_000;
  hostCpu = 0;
  readonly containers = new Map<string, ContainerUsageSample>();
  sleeps: number[] = [];
  /** Runs while the sampler sleeps, after the clock moved: the load of that window. */
  during: (ms: number) => void = () => {};
  containerCalls = 0;

  sampler(): UsageSampler {
    return new UsageSampler(
      {
        host: () => ({
          cpuNanos: this.hostCpu,
          memoryBytes: 512 * 2 ** 20,
          at: this.now,
          cpuCapacityMillicores: 4000,
          memoryCapacityBytes: 8 * 2 ** 30,
        }),
        containers: async (uids) => {
          this.containerCalls++;
          return [...this.containers.values()]
            .filter((c) => !uids || uids.includes(c.podUid))
            .map((c) => ({ ...c, at: this.now }));
        },
      },
      {
        windowMs: 1000,
        maxAgeMs: 60_000,
        sleep: async (ms) => {
          this.sleeps.push(ms);
          this.advance(ms);
          this.during(ms);
        },
      },
    );
  }

  /** Time passes with `cores` of load on every container named in `load` (and on the host). */
  run(ms: number, load: Record<string, number>): void {
    this.advance(ms);
    this.burn(ms, load);
  }

  burn(ms: number, load: Record<string, number>): void {
    for (const [id, cores] of Object.entries(load)) {
      const c = this.containers.get(id)!;
      c.cpuNanos += cores * ms * 1e6;
      this.hostCpu += cores * ms * 1e6;
    }
  }

  advance(ms: number): void {
    this.now += ms;
  }

  add(id: string, podUid: string, name: string, memoryBytes = 4 * 2 ** 20): void {
    this.containers.set(id, {
      id,
      podUid,
      namespace: 'default',
      podName: `pod-${podUid}`,
      name,
      cpuNanos: 0,
      memoryBytes,
      at: this.now,
    });
  }
}

const all: StatsRequest = { podUids: [], nodeOnly: false };
const cores = (nano: number | undefined) => (nano ?? NaN) / 1e9;

describe('usage sampler: rates between kept samples, or a fresh pair a window apart', () => {
  it('the first call samples twice a window apart; one soon after compares with what it kept, at once', async () => {
    const n = new ScriptedNode();
    n.add('busy-1', 'u1', 'busy');
    n.add('idle-1', 'u2', 'idle', 1024);
    n.during = (ms) => n.burn(ms, { 'busy-1': 1 });
    const s = n.sampler();

    const first = await s.stats(all);
    assert.deepEqual(n.sleeps, [1000], 'a fresh pair, one window apart');
    const byPod = (r: typeof first) =>
      Object.fromEntries(r.pods.map((p) => [p.name, p.containers[0].usage!]));
    assert.equal(cores(byPod(first)['pod-u1'].cpuUsageNanoCores), 1);
    assert.equal(cores(byPod(first)['pod-u2'].cpuUsageNanoCores), 0);
    assert.equal(byPod(first)['pod-u2'].memoryWorkingSetBytes, 1024);
    assert.equal(byPod(first)['pod-u1'].windowMs, 1000);
    assert.equal(cores(first.node!.usage!.cpuUsageNanoCores), 1);
    assert.equal(first.node!.cpuCapacityMillicores, 4000);
    assert.equal(first.timestampMs, n.now);

    // 5 s later, half a core on average: answered from the kept samples, no wait.
    n.run(5000, { 'busy-1': 0.5, 'idle-1': 0.01 });
    const second = await s.stats(all);
    assert.deepEqual(n.sleeps, [1000], 'no second wait');
    assert.equal(cores(byPod(second)['pod-u1'].cpuUsageNanoCores), 0.5);
    assert.equal(cores(byPod(second)['pod-u2'].cpuUsageNanoCores), 0.01);
    assert.equal(byPod(second)['pod-u1'].windowMs, 5000);
    assert.equal(byPod(second)['pod-u1'].cpuUsageCoreNanoseconds, 1e9 + 2.5e9);

    // 300 ms later: what was kept is too fresh to compare with; it waits a window, keeps the old baseline.
    n.during = (ms) => n.burn(ms, { 'busy-1': 2 });
    n.run(300, { 'busy-1': 2 });
    const third = await s.stats(all);
    assert.deepEqual(n.sleeps, [1000, 1000]);
    assert.equal(byPod(third)['pod-u1'].windowMs, 1300);
    assert.equal(cores(byPod(third)['pod-u1'].cpuUsageNanoCores), 2);
  });

  it('a container new since the kept samples gets a fresh pair; one that starts inside the window is left out', async () => {
    const n = new ScriptedNode();
    n.add('a-1', 'ua', 'a');
    const s = n.sampler();
    await s.stats(all);
    n.run(2000, { 'a-1': 1 });
    n.add('b-1', 'ub', 'b');
    n.during = () => {
      if (!n.containers.has('c-1')) n.add('c-1', 'uc', 'c');
    };
    const r = await s.stats(all);
    assert.deepEqual(n.sleeps, [1000, 1000], 'b was never sampled: a fresh pair');
    assert.deepEqual(
      r.pods.map((p) => p.name).sort(),
      ['pod-ua', 'pod-ub'],
      'c started inside the window: no rate yet',
    );
    const a = r.pods.find((p) => p.name === 'pod-ua')!.containers[0].usage!;
    assert.equal(a.windowMs, 3000, 'a still compared with its kept sample');
    assert.equal(a.cpuUsageNanoCores, Math.round(2e9 / 3));
  });

  it('a counter that went back (a container replaced under the same id) is sampled afresh', async () => {
    const n = new ScriptedNode();
    n.add('a-1', 'ua', 'a');
    n.during = (ms) => n.burn(ms, { 'a-1': 1 });
    const s = n.sampler();
    await s.stats(all);
    n.run(3000, {});
    n.containers.get('a-1')!.cpuNanos = 0;
    const r = await s.stats(all);
    assert.equal(n.sleeps.length, 2);
    assert.equal(cores(r.pods[0].containers[0].usage!.cpuUsageNanoCores), 1);
    assert.equal(r.pods[0].containers[0].usage!.windowMs, 1000);
  });

  it('pod filters and node-only calls ask the runtime for no more than needed', async () => {
    const n = new ScriptedNode();
    n.add('a-1', 'ua', 'a');
    n.add('b-1', 'ub', 'b');
    const s = n.sampler();
    const only = await s.stats({ podUids: ['ub'], nodeOnly: false });
    assert.deepEqual(
      only.pods.map((p) => p.uid),
      ['ub'],
    );
    const calls = n.containerCalls;
    const node = await s.stats({ podUids: [], nodeOnly: true });
    assert.equal(n.containerCalls, calls, 'no container sampled for node totals');
    assert.deepEqual(node.pods, []);
    assert.ok(node.node?.usage);
  });
});

describe('exec runtime stats: process groups measured from /proc', function () {
  this.timeout(30_000);
  const pod: PodRef = { uid: 'uid-top', namespace: 'default', name: 'top' };
  let stateDir: string;
  let rt: ExecRuntime;

  before(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'baton-usage-'));
    rt = new ExecRuntime('usage-node', stateDir);
  });
  after(async () => {
    for (const c of await rt.list()) await rt.remove(c.id, 0);
    await rm(stateDir, { recursive: true, force: true });
  });

  it('a busy loop uses far more CPU than a sleeper; both hold memory; the sandbox is left out', async () => {
    const sandbox = await rt.startSandbox({ pod, hostname: 'top', hostPorts: [] });
    const start = (name: string, command: string[]) =>
      rt.startContainer(
        { pod, name, init: false, restarts: 0, image: '', command, env: [], mounts: [] },
        sandbox,
      );
    await start('busy', ['/bin/sh', '-c', 'while :; do :; done']);
    await start('idle', ['sleep', '600']);
    const sample = async () => new Map((await rt.stats()).map((s) => [s.name, s]));
    let before = await sample();
    let after = before;
    const rate = (name: string) => cpuRate(before.get(name)!, after.get(name)!)!.nanoCores;
    // The busy loop gets what share of the CPU a loaded machine leaves it, and
    // one window may find it starved: measure windows until one shows it busy.
    for (const deadline = Date.now() + 15_000; ; before = after) {
      await sleep(600);
      after = await sample();
      assert.deepEqual([...after.keys()].sort(), ['busy', 'idle']);
      if (rate('busy') > 3e8 || Date.now() > deadline) break;
    }
    assert.ok(rate('busy') > 3e8, `busy: ${rate('busy')} nanocores`);
    assert.ok(rate('idle') < rate('busy') / 10, `idle ${rate('idle')} vs busy ${rate('busy')}`);
    for (const s of after.values()) assert.ok(s.memoryBytes > 0, `${s.name} holds memory`);
    assert.deepEqual(await rt.stats(['another-pod']), []);
  });
});

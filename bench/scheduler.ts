/**
 * The scheduler at scale: three real `baton master` processes, `--nodes`
 * hollow nodes speaking the real node protocol (and reporting every pod
 * Running at once), and `--pods` pods created through the API by
 * concurrent clients. Measures pods per second from creation to a
 * committed binding (as a watcher sees it), then the same with a topology
 * spread constraint over zones.
 *
 *   npm run bench:scheduler -- --nodes 1000 --pods 30000 [--spread-pods 10000] [--clients 64] [--zones 10]
 *
 * Prints one JSON line: {"podsPerSec", "p99BindLatencyMs", "spreadPodsPerSec", ...}.
 */
import { readFileSync } from 'node:fs';
import { EventType } from '../src/gen/api';
import { HollowNodes } from '../test/support/hollow-nodes';
import { MasterCluster } from '../test/support/master-cluster';
import { numFlag, percentile, round } from './support/flags';

const nodeCount = numFlag('nodes', 1000);
const podCount = numFlag('pods', 30_000);
const spreadCount = numFlag('spread-pods', 10_000);
const clients = numFlag('clients', 64);
const zones = numFlag('zones', 10);

function pod(name: string, app: string, spread: boolean): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app } },
    spec: {
      containers: [
        {
          name: 'main',
          image: 'baton/busybox:latest',
          resources: { requests: { cpu: '10m', memory: '16Mi' } },
        },
      ],
      ...(spread
        ? {
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'topology.kubernetes.io/zone',
                whenUnsatisfiable: 'DoNotSchedule',
                labelSelector: { matchLabels: { app } },
              },
            ],
          }
        : {}),
    },
  });
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Phase {
  podsPerSec: number;
  p50: number;
  p99: number;
  bound: number;
  errors: number;
}

async function main(): Promise<void> {
  const c = await MasterCluster.start(3, ['--log-level', 'warn']);
  const nodes = new HollowNodes({
    masters: c.servers(),
    count: nodeCount,
    labels: (i) => ({ 'topology.kubernetes.io/zone': `zone-${i % zones}` }),
  });
  try {
    await c.leader();
    const t0 = performance.now();
    nodes.start();
    const admin = c.client();
    for (;;) {
      const ns = (await admin.list({ kind: 'Node' })).itemsJson.length;
      if (ns >= nodeCount && nodes.connected() === nodeCount) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const registerSec = (performance.now() - t0) / 1000;
    const writers = c.ids().map((id) => c.client([id, ...c.ids().filter((x) => x !== id)]));

    const run = async (count: number, prefix: string, spread: boolean): Promise<Phase> => {
      const created = new Map<string, number>();
      const lat: number[] = [];
      const ac = new AbortController();
      const from = Number((await admin.list({ kind: 'Pod', labelSelector: 'app=none' })).revision);
      let first = Infinity;
      let last = 0;
      const done = new Promise<void>((resolve) => {
        void (async () => {
          try {
            for await (const ev of admin.watch({ kind: 'Pod', fromRevision: from }, ac.signal)) {
              if (ev.type !== EventType.MODIFIED) continue;
              const name = /"name":"([^"]+)"/.exec(ev.objectJson)?.[1] ?? '';
              const t = created.get(name);
              if (t === undefined || !ev.objectJson.includes('"nodeName"')) continue;
              created.delete(name);
              const at = performance.now();
              lat.push(at - t);
              last = at;
              if (lat.length === count) resolve();
            }
          } catch {
            // aborted
          }
        })();
      });
      let next = 0;
      let errors = 0;
      await Promise.all(
        Array.from({ length: clients }, async (_, k) => {
          const w = writers[k % writers.length];
          for (let i = next++; i < count; i = next++) {
            const name = `${prefix}-${i}`;
            const s = performance.now();
            first = Math.min(first, s);
            created.set(name, s);
            try {
              await w.create(pod(name, `${prefix}-${i % 50}`, spread));
            } catch (err) {
              created.delete(name);
              if (errors++ < 3) process.stderr.write(`create ${name}: ${(err as Error).message}\n`);
            }
          }
        }),
      );
      await Promise.race([done, new Promise((r) => setTimeout(r, 120_000))]);
      ac.abort();
      lat.sort((a, b) => a - b);
      return {
        podsPerSec: round((lat.length / (last - first)) * 1000, 0),
        p50: round(percentile(lat, 50)),
        p99: round(percentile(lat, 99)),
        bound: lat.length,
        errors,
      };
    };

    const basic = await run(podCount, 'pod', false);
    const spread = spreadCount > 0 ? await run(spreadCount, 'spread', true) : undefined;
    const rss = c.ids().map((id) => rssMB(c.procs.get(id)!.pid!));
    for (const w of writers) w.close();
    admin.close();
    process.stdout.write(
      JSON.stringify({
        podsPerSec: basic.podsPerSec,
        p99BindLatencyMs: basic.p99,
        spreadPodsPerSec: spread?.podsPerSec,
        p50BindLatencyMs: basic.p50,
        spreadP99BindLatencyMs: spread?.p99,
        nodes: nodeCount,
        pods: podCount,
        bound: basic.bound,
        spreadPods: spreadCount,
        spreadBound: spread?.bound,
        createErrors: basic.errors + (spread?.errors ?? 0),
        registerNodesSec: round(registerSec),
        rssMBMaxMaster: round(Math.max(...rss), 0),
        clients,
        zones,
      }) + '\n',
    );
  } finally {
    await nodes.stop();
    // SIGTERM first, so masters run with --cpu-prof write their profiles.
    await Promise.all(c.ids().map((id) => c.terminate(id)));
    await c.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:scheduler failed: ${(err as Error).stack}\n`);
  process.exit(1);
});

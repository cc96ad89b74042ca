/**
 * The scheduler at scale: three real `baton master` processes, `--nodes`
 * hollow nodes speaking the real node protocol (and reporting every pod
 * Running at once). Measures pods per second from creation to a committed
 * binding, as a watcher sees both.
 *
 *   npm run bench:scheduler -- --nodes 1000 --pods 30000 [--spread-pods 10000] [--api-pods 10000]
 *                              [--per-set 1000] [--clients 64] [--zones 10]
 *
 * Phases: `--pods` pods made by ReplicaSets of `--per-set` replicas (as in
 * Kubernetes' density tests), `--spread-pods` the same with a topology
 * spread constraint over zones, then `--api-pods` created one by one through
 * the API by `--clients` concurrent clients.
 *
 * Prints one JSON line: {"podsPerSec", "p99BindLatencyMs", "spreadPodsPerSec", "apiPodsPerSec", ...}.
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
/** Replicas per ReplicaSet in the ReplicaSet phases. */
const perSet = numFlag('per-set', 1000);
/** Pods created one by one through the API (a third phase). */
const apiCount = numFlag('api-pods', 10_000);
const zones = numFlag('zones', 10);

function podSpec(app: string, spread: boolean) {
  return {
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
  };
}

function pod(name: string, app: string, spread: boolean): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app } },
    spec: podSpec(app, spread),
  });
}

function replicaSet(name: string, replicas: number, spread: boolean): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: podSpec(name, spread) },
    },
  });
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Phase {
  createsPerSec: number;
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

    /**
     * One phase: `count` pods made either by ReplicaSets of `perSet` replicas
     * (the controller creates them, as in Kubernetes' density tests) or one by
     * one through the API by `clients` concurrent clients. A pod's latency runs
     * from its creation (its ADDED event at the watcher) to its binding.
     */
    const run = async (
      count: number,
      prefix: string,
      spread: boolean,
      via: 'replicasets' | 'api',
    ): Promise<Phase> => {
      const created = new Map<string, number>();
      const lat: number[] = [];
      const ac = new AbortController();
      const from = Number((await admin.list({ kind: 'Pod', labelSelector: 'app=none' })).revision);
      const first = performance.now();
      let last = 0;
      let lastCreated = 0;
      const mine = (name: string) => name.startsWith(`${prefix}-`);
      const done = new Promise<void>((resolve) => {
        void (async () => {
          try {
            for await (const ev of admin.watch({ kind: 'Pod', fromRevision: from }, ac.signal)) {
              // Parsed, not matched: a pod made by a ReplicaSet names its
              // owner in ownerReferences before its own name.
              const o = JSON.parse(ev.objectJson) as {
                metadata: { name: string };
                spec: { nodeName?: string };
              };
              const name = o.metadata.name;
              if (!mine(name)) continue;
              const at = performance.now();
              if (ev.type === EventType.ADDED) {
                created.set(name, at);
                lastCreated = at;
              }
              if (ev.type === EventType.DELETED || !o.spec.nodeName) continue;
              const t = created.get(name);
              if (t === undefined) continue;
              created.delete(name);
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
      const report = (what: string, err: unknown) => {
        if (errors++ < 3) process.stderr.write(`create ${what}: ${(err as Error).message}\n`);
      };
      if (via === 'replicasets') {
        const sets = Math.ceil(count / perSet);
        for (let i = 0; i < sets; i++) {
          const n = Math.min(perSet, count - i * perSet);
          await admin
            .create(replicaSet(`${prefix}-rs${i}`, n, spread))
            .catch((e) => report(`rs${i}`, e));
        }
      } else {
        await Promise.all(
          Array.from({ length: clients }, async (_, k) => {
            const w = writers[k % writers.length];
            for (let i = next++; i < count; i = next++)
              await w
                .create(pod(`${prefix}-${i}`, `${prefix}-${i % 50}`, spread))
                .catch((e) => report(`${prefix}-${i}`, e));
          }),
        );
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 180_000))]);
      ac.abort();
      lat.sort((a, b) => a - b);
      return {
        createsPerSec: round((count / (lastCreated - first)) * 1000, 0),
        podsPerSec: round((lat.length / (last - first)) * 1000, 0),
        p50: round(percentile(lat, 50)),
        p99: round(percentile(lat, 99)),
        bound: lat.length,
        errors,
      };
    };

    const termAtStart = (await admin.status()).term;
    const basic = await run(podCount, 'pod', false, 'replicasets');
    const termAfterReplicaSets = (await admin.status()).term;
    const spread =
      spreadCount > 0 ? await run(spreadCount, 'spread', true, 'replicasets') : undefined;
    const api = apiCount > 0 ? await run(apiCount, 'api', false, 'api') : undefined;
    const termAtEnd = (await admin.status()).term;
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
        createsPerSec: basic.createsPerSec,
        apiPodsPerSec: api?.podsPerSec,
        apiP99BindLatencyMs: api?.p99,
        apiCreatesPerSec: api?.createsPerSec,
        apiPods: apiCount,
        nodes: nodeCount,
        pods: podCount,
        bound: basic.bound,
        spreadPods: spreadCount,
        spreadBound: spread?.bound,
        createErrors: basic.errors + (spread?.errors ?? 0) + (api?.errors ?? 0),
        registerNodesSec: round(registerSec),
        // Raft terms gained: a leader election under the load (0 when the leader held).
        electionsDuringReplicaSets: termAfterReplicaSets - termAtStart,
        electionsDuringRun: termAtEnd - termAtStart,
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

/**
 * The Cluster API of three real `baton master` processes on loopback: pod
 * creates from concurrent clients, gets, a list of every pod, how late
 * watchers see the changes, and what each master holds in memory.
 *
 *   npm run bench:api -- --objects 30000 [--clients 64] [--get-seconds 5] [--admission leader|local]
 *
 * Prints one JSON line: {"createP50ms", "createP99ms", "getP99ms",
 * "listAllPodsMs", "watchLagP99ms", "rssMBPerMaster", ...}.
 */
import { readFileSync } from 'node:fs';
import { EventType } from '../src/gen/api';
import { MasterCluster } from '../test/support/master-cluster';
import { numFlag, percentile, round, strFlag } from './support/flags';

const objects = numFlag('objects', 30_000);
const clients = numFlag('clients', 64);
const getSeconds = numFlag('get-seconds', 5);
/** leader (followers forward writes to the leader's API) or local (admit where received). */
const admission = strFlag('admission', 'leader');
const snapshotEntries = numFlag('snapshot-entries', 10_000);

function pod(i: number): string {
  const app = `app-${i % 100}`;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `pod-${i}`,
      namespace: 'default',
      labels: { app, tier: i % 2 ? 'web' : 'worker', 'pod-template-hash': '5d8f7c9b6' },
      annotations: { 'baton.dev/bench': 'true' },
    },
    spec: {
      containers: [
        {
          name: 'main',
          image: 'baton/busybox:latest',
          command: ['sh', '-c', 'while true; do sleep 3600; done'],
          env: [{ name: 'APP', value: app }],
          ports: [{ containerPort: 8080, name: 'http' }],
          resources: {
            requests: { cpu: '10m', memory: '16Mi' },
            limits: { cpu: '100m', memory: '64Mi' },
          },
          readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 5 },
        },
      ],
      nodeSelector: { pool: 'default' },
    },
  });
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const c = await MasterCluster.start(3, [
    '--log-level',
    'warn',
    '--admission',
    admission,
    '--snapshot-entries',
    String(snapshotEntries),
  ]);
  try {
    const leader = await c.leader();
    const followers = c.ids().filter((id) => id !== leader);
    // A watcher on a follower: events travel leader → follower → watcher.
    const watcher = c.client([followers[0]]);
    const acked = new Map<string, number>();
    const lags: number[] = [];
    const seen = { n: 0 };
    const ac = new AbortController();
    const start0 = Number((await watcher.list({ kind: 'Pod' })).revision);
    const watching = (async () => {
      for await (const ev of watcher.watch({ kind: 'Pod', fromRevision: start0 }, ac.signal)) {
        if (ev.type !== EventType.ADDED) continue;
        const at = performance.now();
        const name = /"name":"(pod-\d+)"/.exec(ev.objectJson)?.[1] ?? '';
        const t = acked.get(name);
        // Lag behind the acknowledgement to the writer; the event can even come first.
        lags.push(t === undefined ? 0 : Math.max(0, at - t));
        if (++seen.n === objects) ac.abort();
      }
    })();

    // Creates: `clients` closed loops spread over all masters.
    const writers = c.ids().map((id) => c.client([id, ...c.ids().filter((x) => x !== id)]));
    const createLat: number[] = [];
    let next = 0;
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, k) => {
        const w = writers[k % writers.length];
        for (let i = next++; i < objects; i = next++) {
          const s = performance.now();
          try {
            await w.create(pod(i));
            const e = performance.now();
            acked.set(`pod-${i}`, e);
            createLat.push(e - s);
          } catch {
            errors++;
          }
        }
      }),
    );
    const createSec = (performance.now() - t0) / 1000;
    await Promise.race([watching, new Promise((r) => setTimeout(r, 30_000))]);
    ac.abort();

    // Gets (linearizable) of random pods, through every master.
    const getLat: number[] = [];
    const stopAt = performance.now() + getSeconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async (_, k) => {
        const w = writers[k % writers.length];
        while (performance.now() < stopAt) {
          const s = performance.now();
          await w.get('Pod', 'default', `pod-${Math.floor(Math.random() * objects)}`);
          getLat.push(performance.now() - s);
        }
      }),
    );

    const lists: number[] = [];
    let listed = 0;
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      listed = (await writers[0].list({ kind: 'Pod' })).itemsJson.length;
      lists.push(performance.now() - s);
    }
    const rss = c.ids().map((id) => rssMB(c.procs.get(id)!.pid!));
    for (const w of [...writers, watcher]) w.close();
    createLat.sort((a, b) => a - b);
    getLat.sort((a, b) => a - b);
    lags.sort((a, b) => a - b);
    lists.sort((a, b) => a - b);
    process.stdout.write(
      JSON.stringify({
        createP50ms: round(percentile(createLat, 50)),
        createP99ms: round(percentile(createLat, 99)),
        getP99ms: round(percentile(getLat, 99)),
        listAllPodsMs: round(lists[1]),
        watchLagP99ms: round(percentile(lags, 99)),
        rssMBPerMaster: round(Math.max(...rss), 0),
        objects,
        listed,
        watched: seen.n,
        createsPerSec: round(objects / createSec, 0),
        createErrors: errors,
        getP50ms: round(percentile(getLat, 50)),
        watchLagP50ms: round(percentile(lags, 50)),
        clients,
        admission,
        snapshotEntries,
      }) + '\n',
    );
  } finally {
    await c.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:api failed: ${(err as Error).stack}\n`);
  process.exit(1);
});

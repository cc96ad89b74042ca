/**
 * Pod startup on one real node: three `baton master` processes, one
 * `baton node` process on Docker, and a deployment of `--replicas` busybox
 * pods. Measures, per round, the time from `apply` to every pod Running
 * (as a watcher sees the status the node reports), each pod's startup
 * latency (its ADDED event → Running), and the node daemon's RSS. For
 * comparison, in the same run, straight through the Docker API: the same
 * number of `docker run -d` of the same image in parallel, and the same
 * number of pods made as the node makes them (pause container, then the
 * app container joined to its namespaces) — Docker's own floor for pods.
 *
 *   npm run bench:startup -- --replicas 20 [--rounds 3]
 *
 * Prints one JSON line: {"applyToAllRunningSeconds", "podStartupP99Seconds", "nodeRssMB", ...}
 * (medians over the rounds; every round's figure is in the *Rounds arrays).
 */
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { ApiObject } from '../src/api/types';
import { EventType } from '../src/gen/api';
import { dockerUnavailableReason, PAUSE_IMAGE, TEST_IMAGE } from '../test/support/docker';
import { MasterCluster } from '../test/support/master-cluster';
import { NodeDaemon } from '../test/support/node-daemon';
import { until } from '../test/support/until';
import { numFlag, percentile, round } from './support/flags';

const replicas = numFlag('replicas', 20);
const rounds = numFlag('rounds', 3);

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The same containers straight through Docker: create + start in parallel, then remove. */
async function dockerRunParallel(docker: Docker): Promise<number> {
  const t0 = performance.now();
  const ids = await Promise.all(
    Array.from({ length: replicas }, async () => {
      const c = await docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['sleep', '3600'],
        Labels: { 'baton.bench': 'startup' },
        HostConfig: { NetworkMode: 'bridge' },
      });
      await c.start();
      return c.id;
    }),
  );
  const s = (performance.now() - t0) / 1000;
  await Promise.all(ids.map((id) => docker.getContainer(id).remove({ force: true })));
  return s;
}

/**
 * The pod model straight through Docker, as the node does it but with no
 * orchestration: per pod a pause container on a bridge network of its own
 * subnet, then the app container joined to it, all pods in parallel.
 */
async function dockerPodsParallel(docker: Docker): Promise<number> {
  const net = `baton-bench-${process.pid}`;
  await docker.createNetwork({
    Name: net,
    Driver: 'bridge',
    IPAM: { Config: [{ Subnet: '10.250.0.0/24' }] },
  });
  const t0 = performance.now();
  const ids = await Promise.all(
    Array.from({ length: replicas }, async () => {
      const sandbox = await docker.createContainer({
        Image: PAUSE_IMAGE,
        Labels: { 'baton.bench': 'startup' },
        HostConfig: { NetworkMode: net, IpcMode: 'shareable' },
      });
      await sandbox.start();
      const app = await docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['sleep', '3600'],
        Labels: { 'baton.bench': 'startup' },
        HostConfig: {
          NetworkMode: `container:${sandbox.id}`,
          IpcMode: `container:${sandbox.id}`,
        },
      });
      await app.start();
      return [app.id, sandbox.id];
    }),
  );
  const s = (performance.now() - t0) / 1000;
  for (const id of ids.flat()) await docker.getContainer(id).remove({ force: true });
  await docker.getNetwork(net).remove();
  return s;
}

async function main(): Promise<void> {
  const docker = new Docker();
  const why = await dockerUnavailableReason(docker);
  if (why) throw new Error(`bench:startup needs Docker: ${why}`);
  const masters = await MasterCluster.start(3);
  const client = masters.client();
  await masters.leader();
  const nodeName = `bench-node-${process.pid}`;
  const daemon = await NodeDaemon.start(nodeName, masters.servers(), { logLevel: 'warn' });
  const node = daemon.proc;
  const containers = () => daemon.containers();
  try {
    await until(
      'the node to be Ready with a pod CIDR',
      async () => {
        try {
          const n = JSON.parse((await client.get('Node', '', nodeName)).objectJson) as ApiObject;
          return (n.spec as { podCIDR?: string }).podCIDR !== undefined;
        } catch {
          return false;
        }
      },
      30_000,
    );
    const applyS: number[] = [];
    const p99S: number[] = [];
    const rss: number[] = [];
    const dockerS: number[] = [];
    const dockerPodsS: number[] = [];
    /** When the last pod was created and bound, from the apply: the masters' share of the total. */
    const createdS: number[] = [];
    const boundS: number[] = [];
    for (let r = 0; r < rounds; r++) {
      dockerS.push(await dockerRunParallel(docker));
      dockerPodsS.push(await dockerPodsParallel(docker));
      const app = `startup-${r}`;
      const added = new Map<string, number>();
      const running = new Map<string, number>();
      const bound = new Map<string, number>();
      const abort = new AbortController();
      let rssMax = 0;
      const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMB(node.pid!))), 100);
      const watching = (async () => {
        for await (const ev of client.watch(
          { kind: 'Pod', labelSelector: `app=${app}` },
          abort.signal,
        )) {
          if (ev.type === EventType.BOOKMARK) continue;
          const p = JSON.parse(ev.objectJson) as ApiObject;
          const t = performance.now();
          if (!added.has(p.metadata.name)) added.set(p.metadata.name, t);
          if ((p.spec as { nodeName?: string }).nodeName && !bound.has(p.metadata.name))
            bound.set(p.metadata.name, t);
          if (
            (p.status as { phase?: string })?.phase === 'Running' &&
            !running.has(p.metadata.name)
          )
            running.set(p.metadata.name, t);
        }
      })().catch(() => undefined);
      const t0 = performance.now();
      await client.apply(
        JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: app },
          spec: {
            replicas,
            selector: { matchLabels: { app } },
            template: {
              metadata: { labels: { app } },
              spec: {
                terminationGracePeriodSeconds: 0,
                containers: [{ name: 'main', image: TEST_IMAGE, command: ['sleep', '3600'] }],
              },
            },
          },
        }),
      );
      await until(`${replicas} pods Running`, async () => running.size >= replicas, 120_000);
      const all = (Math.max(...running.values()) - t0) / 1000;
      clearInterval(sampler);
      rssMax = Math.max(rssMax, rssMB(node.pid!));
      abort.abort();
      await watching;
      const lat = [...running].map(([n, t]) => (t - added.get(n)!) / 1000).sort((a, b) => a - b);
      applyS.push(all);
      createdS.push((Math.max(...added.values()) - t0) / 1000);
      boundS.push((Math.max(...bound.values()) - t0) / 1000);
      p99S.push(percentile(lat, 99));
      rss.push(rssMax);
      await client.delete({ kind: 'Deployment', namespace: 'default', name: app });
      await until(
        'every container removed',
        async () => (await containers()).length === 0,
        120_000,
      );
    }
    process.stdout.write(
      `${JSON.stringify({
        applyToAllRunningSeconds: round(median(applyS), 3),
        podStartupP99Seconds: round(median(p99S), 3),
        nodeRssMB: round(median(rss), 1),
        dockerRunParallelSeconds: round(median(dockerS), 3),
        dockerPodsParallelSeconds: round(median(dockerPodsS), 3),
        lastPodCreatedSeconds: round(median(createdS), 3),
        lastPodBoundSeconds: round(median(boundS), 3),
        replicas,
        rounds,
        applyToAllRunningRounds: applyS.map((x) => round(x, 3)),
        podStartupP99Rounds: p99S.map((x) => round(x, 3)),
        nodeRssMBRounds: rss.map((x) => round(x, 1)),
        dockerRunParallelRounds: dockerS.map((x) => round(x, 3)),
        dockerPodsParallelRounds: dockerPodsS.map((x) => round(x, 3)),
      })}\n`,
    );
  } finally {
    await daemon.stop();
    client.close();
    await masters.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench:startup: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);

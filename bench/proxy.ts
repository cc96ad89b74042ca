/**
 * The iptables service proxy at scale, in a network namespace of its own
 * (the host's rules are never touched): `--services` services with
 * `--endpoints` endpoints in all.
 *
 *   fullSyncMs                 one iptables-restore of everything (median of --rounds)
 *   incrementalSyncP99Ms       one endpoint of one service changed → its rules rewritten (p99)
 *   incrementalSyncP99MsAt100  the same with 100 services only: the two should match
 *   endpointChangeToRuleP99Ms  end to end on real masters: an Endpoints write moving an
 *                              address to notReadyAddresses (what the endpoints controller
 *                              writes when a pod turns unready) → the session delivers it →
 *                              the rule is out of the kernel (p99)
 *   vipOverheadPct             HTTP requests/s on kept-alive connections to a pod straight,
 *                              versus through its VIP with every rule loaded: the cost of
 *                              going through the VIP, side by side in one run
 *   vipOverheadNewConnectionPct  the same with a new connection per request (every request
 *                              walks the NAT rules: the linear BATON-SERVICES chain)
 *
 *   npm run bench:proxy -- --services 1000 --endpoints 10000 [--rounds 3] [--changes 200]
 *
 * Needs root (a network namespace, iptables); prints one JSON line.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import type { Endpoints, Service } from '../src/api/schema';
import { ApiObject } from '../src/api/types';
import { silentLogger } from '../src/common/log';
import { NodeSession } from '../src/node/session';
import { IptablesProxy, SyncStats } from '../src/proxy/iptables';
import { NodeProxy } from '../src/proxy/node-proxy';
import { ServiceTable } from '../src/proxy/service-table';
import { MasterCluster } from '../test/support/master-cluster';
import { until } from '../test/support/until';
import { numFlag, percentile, round } from './support/flags';

const services = numFlag('services', 1000);
const endpoints = numFlag('endpoints', 10000);
const rounds = numFlag('rounds', 3);
const changes = numFlag('changes', 200);
const perService = Math.max(1, Math.round(endpoints / services));
const CLUSTER_CIDR = '10.240.0.0/12';
const POD = '10.250.0.2';
const INSIDE = 'BATON_BENCH_PROXY_NETNS';

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => percentile(sorted(xs), 50);
const p99 = (xs: number[]) => percentile(sorted(xs), 99);

/** The i-th service's endpoints (addresses that need not exist: only rules are measured). */
function endpointsOf(i: number, n = perService): Endpoints {
  const ip = (g: number) =>
    `10.${241 + (Math.floor(g / 65536) % 8)}.${Math.floor(g / 256) % 256}.${g % 256}`;
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: `s${i}`, namespace: 'default' },
    subsets: [
      {
        addresses: Array.from({ length: n }, (_, j) => ({ ip: ip(i * perService + j) })),
        ports: [{ port: 8080, protocol: 'TCP' }],
      },
    ],
  } as unknown as Endpoints;
}

function serviceOf(i: number, ip: string): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `s${i}`, namespace: 'default' },
    spec: {
      type: 'ClusterIP',
      clusterIP: ip,
      sessionAffinity: 'None',
      ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }],
    },
  } as unknown as Service;
}

const vipOf = (i: number) => `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`;

function fill(table: ServiceTable, n: number): void {
  table.replaceAll(
    Array.from({ length: n }, (_, i) => serviceOf(i, vipOf(i))),
    Array.from({ length: n }, (_, i) => endpointsOf(i)),
  );
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** Full syncs from nothing, then one-endpoint changes, with `n` services. */
async function syncs(n: number, full: boolean): Promise<{ fullMs: number[]; incMs: number[] }> {
  const fullMs: number[] = [];
  const incMs: number[] = [];
  for (let r = 0; r < (full ? rounds : 1); r++) {
    const table = new ServiceTable();
    fill(table, n);
    let last: SyncStats | undefined;
    const proxy = new IptablesProxy({
      table,
      clusterCIDR: () => CLUSTER_CIDR,
      onSync: (s) => (last = s),
    });
    await proxy.start();
    fullMs.push(last!.ms);
    if (r === 0)
      for (let k = 0; k < changes; k++) {
        const i = Math.floor(Math.random() * n);
        // Drop one endpoint (as a pod turning unready), or put them all back.
        const cur = table.endpoints.get(`default/s${i}`)!;
        const count = cur.subsets![0].addresses!.length;
        table.setEndpoints(endpointsOf(i, count === perService ? perService - 1 : perService));
        await proxy.settled();
        if (!last!.full) incMs.push(last!.ms);
      }
    await proxy.cleanup();
  }
  return { fullMs, incMs };
}

/**
 * Requests per second over `ms`, `concurrency` at a time: on kept-alive
 * connections (as most clients), or each on a new connection (where NAT
 * rules are walked for every request).
 */
async function rate(
  host: string,
  port: number,
  ms: number,
  keepAlive: boolean,
  concurrency = 8,
): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: concurrency }) : false;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.get({ host, port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await one();
        done++;
      }
    }),
  );
  if (agent) agent.destroy();
  return done / (ms / 1000);
}

async function vipOverhead(keepAlive: boolean): Promise<{ direct: number[]; vip: number[] }> {
  const server: ChildProcess = spawn(process.execPath, [
    '-e',
    `require('http').createServer((q, s) => s.end('ok')).listen(8080, '${POD}', () => console.log('up'))`,
  ]);
  await new Promise((r) => server.stdout!.once('data', r));
  const table = new ServiceTable();
  fill(table, services);
  // The measured service: the last one, behind the real server.
  const vip = vipOf(services);
  table.setService(serviceOf(services, vip));
  table.setEndpoints({
    ...endpointsOf(services, 1),
    subsets: [{ addresses: [{ ip: POD }], ports: [{ port: 8080, protocol: 'TCP' }] }],
  } as unknown as Endpoints);
  const proxy = new IptablesProxy({ table, clusterCIDR: () => CLUSTER_CIDR });
  await proxy.start();
  const direct: number[] = [];
  const through: number[] = [];
  await rate(POD, 8080, 500, keepAlive); // warm up
  for (let r = 0; r < rounds; r++) {
    // Alternating which goes first, so drift during the run does not favour one.
    if (r % 2 === 0) direct.push(await rate(POD, 8080, 3000, keepAlive));
    through.push(await rate(vip, 80, 3000, keepAlive));
    if (r % 2 === 1) direct.push(await rate(POD, 8080, 3000, keepAlive));
  }
  await proxy.cleanup();
  server.kill();
  return { direct, vip: through };
}

/** Real masters, a real session: an Endpoints write until its rule is out of the kernel. */
async function endToEnd(): Promise<number[]> {
  const c = await MasterCluster.start(3);
  const client = c.client();
  await c.leader();
  const n = services;
  for (let i = 0; i < n; i += 50)
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
        const svc = serviceOf(i + k, '') as unknown as ApiObject;
        delete (svc.spec as { clusterIP?: string }).clusterIP;
        await client.apply(JSON.stringify(svc));
        await client.apply(JSON.stringify(endpointsOf(i + k)));
      }),
    );
  let network = { serviceCIDR: '', clusterCIDR: '' };
  const proxy = new NodeProxy({
    nodeName: 'bench',
    mode: 'iptables',
    network: () => network,
    routes: false,
  });
  let lastMoved = '';
  let waiter: { name: string; resolve: () => void } | undefined;
  const session: NodeSession = new NodeSession({
    nodeName: 'bench',
    masters: c.servers(),
    log: silentLogger(),
    describe: () =>
      ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'bench' },
        spec: {},
        status: { capacity: { cpu: '1', memory: '1Gi', pods: '10' } },
      }) as ApiObject,
    onAssignments: () => {},
    onObjects: (changed, removed, full) => {
      network = session.network;
      proxy.onObjects(changed, removed, full);
      if (
        waiter &&
        changed.some((o) => o.kind === 'Endpoints' && o.metadata.name === waiter!.name)
      ) {
        waiter.resolve();
        waiter = undefined;
      }
    },
  });
  await proxy.start();
  const abort = new AbortController();
  const running = session.run(abort.signal);
  await until('every service programmed', () => proxy.table.services.size >= n, 120_000);
  await proxy.settled();
  const latencies: number[] = [];
  for (let k = 0; k < Math.min(changes, 100); k++) {
    const i = Math.floor(Math.random() * n);
    const cur = JSON.parse(
      (await client.get('Endpoints', 'default', `s${i}`)).objectJson,
    ) as Endpoints;
    const sub = cur.subsets![0];
    if ((sub.addresses?.length ?? 0) < 2) {
      k--; // keep one ready address per service; pick another
      continue;
    }
    const moving = sub.addresses![0];
    lastMoved = moving.ip;
    const next = {
      ...cur,
      subsets: [
        {
          ...sub,
          addresses: sub.addresses!.slice(1),
          notReadyAddresses: [...(sub.notReadyAddresses ?? []), moving],
        },
      ],
    };
    const delivered = new Promise<void>((resolve) => (waiter = { name: `s${i}`, resolve }));
    const t0 = performance.now();
    await client.update(JSON.stringify(next));
    // The session hands the change to the proxy, which starts its sync at once.
    await delivered;
    await proxy.settled();
    latencies.push(performance.now() - t0);
  }
  // The last address moved is out of the kernel's rules.
  if (sh('iptables-save', ['-t', 'nat']).includes(`--to-destination ${lastMoved}:8080`))
    throw new Error(`${lastMoved} is still in the rules`);
  abort.abort();
  await running;
  await proxy.stop();
  client.close();
  await c.stop();
  return latencies;
}

async function inside(): Promise<void> {
  sh('ip', ['link', 'set', 'lo', 'up']);
  // Thousands of short connections a second: reuse TIME_WAIT ports, as a busy client host would.
  sh('sysctl', ['-qw', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=10000 65000']);
  // The "pod" address on one end of a veth pair (no dummy module needed).
  sh('ip', ['link', 'add', 'pod0', 'type', 'veth', 'peer', 'name', 'pod1']);
  sh('ip', ['addr', 'add', `${POD}/24`, 'dev', 'pod0']);
  sh('ip', ['link', 'set', 'pod0', 'up']);
  sh('ip', ['link', 'set', 'pod1', 'up']);
  // VIPs must be routable for the OUTPUT chain to see them.
  sh('ip', ['route', 'add', 'default', 'dev', 'pod0']);
  const big = await syncs(services, true);
  const small = await syncs(100, false);
  const vip = await vipOverhead(true);
  const fresh = await vipOverhead(false);
  const e2e = await endToEnd();
  const d = median(vip.direct);
  const v = median(vip.vip);
  const fd = median(fresh.direct);
  const fv = median(fresh.vip);
  console.log(
    JSON.stringify({
      fullSyncMs: round(median(big.fullMs), 1),
      incrementalSyncP99Ms: round(p99(big.incMs), 1),
      endpointChangeToRuleP99Ms: round(p99(e2e), 1),
      vipOverheadPct: round(((d - v) / d) * 100, 1),
      incrementalSyncP50Ms: round(median(big.incMs), 1),
      incrementalSyncP99MsAt100: round(p99(small.incMs), 1),
      endpointChangeToRuleP50Ms: round(median(e2e), 1),
      vipOverheadNewConnectionPct: round(((fd - fv) / fd) * 100, 1),
      directRps: Math.round(d),
      vipRps: Math.round(v),
      directNewConnectionRps: Math.round(fd),
      vipNewConnectionRps: Math.round(fv),
      services,
      endpoints: services * perService,
      fullSyncRoundsMs: big.fullMs.map((x) => round(x, 1)),
      directRpsRounds: vip.direct.map(Math.round),
      vipRpsRounds: vip.vip.map(Math.round),
      directNewConnectionRpsRounds: fresh.direct.map(Math.round),
      vipNewConnectionRpsRounds: fresh.vip.map(Math.round),
    }),
  );
}

async function main(): Promise<void> {
  if (process.env[INSIDE]) return inside();
  if (process.getuid?.() !== 0)
    throw new Error('bench:proxy needs root (a network namespace and iptables)');
  const ns = `bproxy${process.pid}`;
  sh('ip', ['netns', 'add', ns]);
  try {
    const child = spawn(
      'nsenter',
      [`--net=/var/run/netns/${ns}`, '--', process.execPath, __filename, ...process.argv.slice(2)],
      {
        env: { ...process.env, [INSIDE]: '1' },
        stdio: 'inherit',
      },
    );
    const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
    if (code !== 0) process.exitCode = code;
  } finally {
    sh('ip', ['netns', 'del', ns]);
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});

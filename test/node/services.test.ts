/**
 * Services end to end on two machines: a lab of two network namespaces,
 * each with its own Docker daemon and a real `baton node` in iptables mode,
 * three real masters on the host. Pods of each node live on the node's own
 * pod CIDR; a client pod reaches a 3-replica service through its VIP and its
 * DNS name, an unready pod leaves the rotation, a NodePort answers on every
 * node, and deleting the service takes its rules away.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { ApiObject } from '../../src/api/types';
import { BatonClient } from '../../src/client/cluster-client';
import { runBaton } from '../support/cli';
import { TEST_IMAGE } from '../support/docker';
import { Lab, requireLab } from '../support/lab';
import { MasterCluster } from '../support/master-cluster';
import { NodeDaemon } from '../support/node-daemon';
import { until } from '../support/until';

const parse = (j: string) => JSON.parse(j) as ApiObject;
type PodView = ApiObject & {
  spec: { nodeName?: string };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
};
const ready = (p: PodView) =>
  p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

/** GET http://host:port/ from this process (the host, outside the lab machines). */
function get(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', timeout: 3000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, timeout: 3000 }, () => resolve(s));
    s.once('error', reject);
    s.once('timeout', () => s.destroy(new Error('connect timeout')));
  });
}

/** Sends a line and waits for it to come back. */
function roundTrip(s: net.Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) {
        clearTimeout(t);
        s.off('data', onData);
        resolve(got.trim());
      }
    };
    const t = setTimeout(() => {
      s.off('data', onData);
      reject(new Error(`no echo of "${line}"`));
    }, 3000);
    s.on('data', onData);
    s.write(`${line}\n`);
  });
}

describe('services: VIPs, DNS and NodePorts across two nodes (lab of network namespaces)', function () {
  this.timeout(300_000);
  let lab: Lab | undefined;
  let c: MasterCluster | undefined;
  let client: BatonClient;
  const nodes: NodeDaemon[] = [];

  const baton = (...args: string[]) => runBaton(c!.servers().join(','), args);
  const pods = async (selector: string) =>
    (await client.list({ kind: 'Pod', labelSelector: selector })).itemsJson.map(
      (j) => parse(j) as PodView,
    );
  const waitFor = (what: string, fn: () => Promise<boolean>, ms = 90_000) =>
    until(what, fn, ms).catch(async (e: Error) => {
      const seen = (await client.list({ kind: 'Pod' })).itemsJson.map(parse).map((p) => ({
        name: p.metadata.name,
        node: (p.spec as { nodeName?: string }).nodeName,
        status: p.status,
      }));
      throw new Error(
        `${e.message}\npods: ${JSON.stringify(seen)}\n${nodes.map((n) => `node ${n.name} log:\n${n.log}`).join('\n')}`,
      );
    });
  /** Runs a shell command in the client pod (through the masters and the node's API). */
  const inClient = async (script: string) => {
    const r = await baton('exec', 'client', '--', 'sh', '-c', script);
    assert.equal(r.code, 0, `exec failed: ${r.stderr}`);
    return r.stdout;
  };
  /** Which replicas answer `url` over `n` requests from the client pod. */
  const answers = async (url: string, n: number) =>
    new Set(
      (await inClient(`for i in $(seq ${n}); do timeout 3 wget -q -O- ${url}; done`))
        .split('\n')
        .filter(Boolean),
    );
  const iptablesSave = async (i: number) =>
    (await lab!.hosts[i].exec(['iptables-save', '-t', 'nat'])).stdout +
    (await lab!.hosts[i].exec(['iptables-save', '-t', 'filter'])).stdout;

  before(async function () {
    await requireLab(this);
    lab = await Lab.create({
      name: `sv${process.pid % 10000}`,
      hosts: 2,
      subnet: `10.79.${process.pid % 250}.0/24`,
    });
    c = await MasterCluster.start(3, [], lab.gateway);
    client = c.client();
    await c.leader();
    for (const h of lab.hosts)
      nodes.push(await NodeDaemon.start(h.name, c.servers(), { host: h, proxyMode: 'iptables' }));
    await waitFor('both nodes Ready with a pod CIDR', async () => {
      const ns = (await client.list({ kind: 'Node' })).itemsJson.map(parse);
      return (
        ns.length === 2 &&
        ns.every(
          (n) =>
            (n.spec as { podCIDR?: string }).podCIDR !== undefined &&
            ((n.status as PodView['status'])?.conditions ?? []).some(
              (x) => x.type === 'Ready' && x.status === 'True',
            ),
        )
      );
    });
  });

  after(async () => {
    for (const n of nodes) await n.stop();
    client?.close();
    await c?.stop();
    await lab?.destroy();
  });

  it('reaches a 3-replica service on both nodes by VIP and DNS name, drops an unready pod, answers the NodePort on every node, and removes every rule with the service', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web' },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              topologySpreadConstraints: [
                {
                  maxSkew: 1,
                  topologyKey: 'kubernetes.io/hostname',
                  whenUnsatisfiable: 'DoNotSchedule',
                  labelSelector: { matchLabels: { app: 'web' } },
                },
              ],
              containers: [
                {
                  name: 'httpd',
                  image: TEST_IMAGE,
                  command: [
                    'sh',
                    '-c',
                    'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www',
                  ],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  readinessProbe: {
                    exec: { command: ['sh', '-c', 'test ! -f /tmp/unready'] },
                    periodSeconds: 1,
                    failureThreshold: 1,
                  },
                },
              ],
            },
          },
        },
      }),
    );
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web' },
        spec: {
          type: 'NodePort',
          selector: { app: 'web' },
          ports: [{ name: 'http', port: 80, targetPort: 'http' }],
        },
      }),
    );
    const svc = parse((await client.get('Service', 'default', 'web')).objectJson) as ApiObject & {
      spec: { clusterIP: string; ports: { nodePort: number }[] };
    };
    const vip = svc.spec.clusterIP;
    const nodePort = svc.spec.ports[0].nodePort;
    assert.match(vip, /^10\.(9[6-9]|10\d|11[01])\./, 'the VIP comes from the default service CIDR');
    assert.ok(nodePort >= 30000 && nodePort <= 32767);

    await waitFor('3 web pods Running and Ready', async () => {
      const ps = await pods('app=web');
      return ps.length === 3 && ps.every((p) => p.status?.phase === 'Running' && ready(p));
    });
    const web = await pods('app=web');
    const names = new Set(web.map((p) => p.metadata.name));
    assert.equal(new Set(web.map((p) => p.spec.nodeName)).size, 2, 'replicas on both nodes');
    // Pod IPs come from each node's own pod CIDR.
    const cidrs = new Map(
      (await client.list({ kind: 'Node' })).itemsJson
        .map(parse)
        .map((n) => [
          n.metadata.name,
          (n.spec as { podCIDR: string }).podCIDR.replace(/\.0\/24$/, '.'),
        ]),
    );
    for (const p of web)
      assert.ok(
        p.status!.podIP!.startsWith(cidrs.get(p.spec.nodeName!)!),
        JSON.stringify(p.status),
      );

    // The client lives on the first node; the service existed before it started.
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client' },
        spec: {
          nodeName: lab!.hosts[0].name,
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'sh', image: TEST_IMAGE, command: ['sleep', '3600'] }],
        },
      }),
    );
    await waitFor('the client pod Running', async () =>
      (await pods('')).some((p) => p.metadata.name === 'client' && p.status?.phase === 'Running'),
    );

    // Kubernetes-style service variables, and the cluster DNS in resolv.conf.
    const env = await inClient('echo "$WEB_SERVICE_HOST $WEB_SERVICE_PORT $WEB_PORT_80_TCP_ADDR"');
    assert.equal(env.trim(), `${vip} 80 ${vip}`);
    const resolv = await inClient('cat /etc/resolv.conf');
    assert.match(resolv, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);

    // Every replica, on either node, answers through the VIP and through the name.
    await waitFor('every replica answering through the VIP', async () => {
      const got = await answers(`http://${vip}/`, 30);
      return [...names].every((n) => got.has(n));
    });
    const byName = await answers('http://web.default.svc.cluster.local/', 30);
    assert.deepEqual(
      [...byName].filter((n) => !names.has(n)),
      [],
      'only replicas answer',
    );
    await waitFor('every replica answering through the DNS name', async () => {
      const got = await answers('http://web/', 30);
      return [...names].every((n) => got.has(n));
    });
    const lookup = await inClient('nslookup web.default.svc.cluster.local');
    assert.ok(lookup.includes(vip), lookup);

    // A NodePort answers on every node's address, from outside the cluster.
    for (const h of lab!.hosts)
      await waitFor(`the NodePort answering on ${h.address}`, async () =>
        names.has(await get(h.address, nodePort)),
      );

    // An unready pod leaves the rotation (on both nodes' rules).
    const victim = web.find((p) => p.spec.nodeName === lab!.hosts[1].name)!;
    const vr = await baton('exec', victim.metadata.name, '--', 'touch', '/tmp/unready');
    assert.equal(vr.code, 0, vr.stderr);
    await waitFor("the unready pod gone from both nodes' rules", async () => {
      const saves = await Promise.all([0, 1].map(iptablesSave));
      return saves.every((s) => !s.includes(`--to-destination ${victim.status!.podIP}:8080`));
    });
    const after = await answers(`http://${vip}/`, 30);
    assert.ok(!after.has(victim.metadata.name), `the unready pod still answered: ${[...after]}`);
    assert.equal(after.size, 2);

    // Deleting the service removes every rule it had, on both nodes.
    const before = await Promise.all([0, 1].map(iptablesSave));
    for (const s of before) assert.ok(s.includes('default/web:http/TCP'));
    await client.delete({ kind: 'Service', namespace: 'default', name: 'web' });
    await waitFor('no rule of the service left on either node', async () => {
      const saves = await Promise.all([0, 1].map(iptablesSave));
      return saves.every(
        (s) => !s.includes('default/web') && !s.includes(vip) && !s.includes(`--dport ${nodePort}`),
      );
    });
    const gone = await baton('exec', 'client', '--', 'nslookup', 'web.default.svc.cluster.local');
    assert.notEqual(gone.code, 0, 'the name no longer resolves');
  });

  it('keeps an established connection through a node daemon restart', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'echo', labels: { app: 'echo' } },
        spec: {
          nodeName: lab!.hosts[1].name,
          terminationGracePeriodSeconds: 0,
          containers: [
            { name: 'nc', image: TEST_IMAGE, command: ['nc', '-ll', '-p', '9000', '-e', 'cat'] },
          ],
        },
      }),
    );
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'echo' },
        spec: { type: 'NodePort', selector: { app: 'echo' }, ports: [{ port: 9000 }] },
      }),
    );
    const port = (
      parse((await client.get('Service', 'default', 'echo')).objectJson).spec as {
        ports: { nodePort: number }[];
      }
    ).ports[0].nodePort;
    // From outside, through the first node's NodePort to the pod on the second.
    const h0 = lab!.hosts[0];
    let sock: net.Socket | undefined;
    await waitFor('the echo service answering on the NodePort', async () => {
      sock?.destroy();
      sock = await connect(h0.address, port);
      return (await roundTrip(sock, 'one')) === 'one';
    });
    await nodes[0].restart();
    await waitFor('the restarted node to program the service again', async () =>
      (await iptablesSave(0)).includes('default/echo'),
    );
    assert.equal(await roundTrip(sock!, 'two'), 'two', 'the connection survived the restart');
    const fresh = await connect(h0.address, port);
    assert.equal(await roundTrip(fresh, 'three'), 'three');
    fresh.destroy();
    sock!.destroy();
  });

  it('leaves no rule, chain or route behind when the node daemons stop', async () => {
    for (const n of nodes) await n.stop();
    nodes.length = 0;
    for (const h of lab!.hosts) {
      const save = (await h.exec(['iptables-save'])).stdout;
      assert.doesNotMatch(save, /BATON-/);
      const routes = (await h.exec(['ip', 'route', 'show', 'proto', '177'])).stdout;
      assert.equal(routes.trim(), '');
    }
  });
});

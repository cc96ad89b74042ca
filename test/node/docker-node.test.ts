/**
 * `baton node` end to end on real Docker: three real masters, one node
 * daemon process, pods as real containers (an infra container holding the
 * network namespace, app containers joined to it), probes, init
 * containers, volumes, logs and exec through the masters, and a leader
 * killed under a running node.
 */
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { ApiObject } from '../../src/api/types';
import { BatonClient } from '../../src/client/cluster-client';
import { CidrBlocks } from '../../src/master/controllers/node-ipam';
import { LABEL } from '../../src/node/runtime';
import { runBaton } from '../support/cli';
import { requireDocker, TEST_IMAGE } from '../support/docker';
import { MasterCluster } from '../support/master-cluster';
import { NodeDaemon } from '../support/node-daemon';
import { until } from '../support/until';

const parse = (j: string) => JSON.parse(j) as ApiObject;

interface ContainerStatusView {
  name: string;
  ready: boolean;
  restartCount: number;
  containerID?: string;
  state: {
    running?: unknown;
    waiting?: { reason: string; message?: string };
    terminated?: { reason: string; exitCode: number };
  };
  lastState?: { terminated?: { reason: string; exitCode: number } };
}
interface PodStatusView {
  phase?: string;
  podIP?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: ContainerStatusView[];
  initContainerStatuses?: ContainerStatusView[];
}
const statusOf = (p: ApiObject) => (p.status ?? {}) as PodStatusView;
const condition = (p: ApiObject, type: string) =>
  statusOf(p).conditions?.find((c) => c.type === type)?.status;
const ready = (p: ApiObject) => condition(p, 'Ready') === 'True';

describe('node daemon on Docker: pods as real containers', function () {
  this.timeout(180_000);
  const docker = new Docker();
  const nodeName = `docker-node-${process.pid}`;
  let c: MasterCluster | undefined;
  let client: BatonClient;
  let node: NodeDaemon | undefined;

  const containers = () => node!.containers();
  const pods = async (selector: string) =>
    (await client.list({ kind: 'Pod', labelSelector: selector })).itemsJson.map(parse);
  const pod = async (name: string) => parse((await client.get('Pod', 'default', name)).objectJson);
  const eventsFor = async (name: string) =>
    (await client.list({ kind: 'Event', namespace: 'default' })).itemsJson
      .map(parse)
      .filter((e) => (e.involvedObject as { name: string }).name === name)
      .map((e) => `${e.reason as string}: ${e.message as string}`);
  const baton = (...args: string[]) => runBaton(c!.servers().join(','), args);
  /** Waits for `what`, and on a timeout says where every pod stood and what the node logged. */
  const waitFor = (what: string, fn: () => Promise<boolean>, ms = 60_000) =>
    until(what, fn, ms).catch(async (e: Error) => {
      const seen = (await client.list({ kind: 'Pod' })).itemsJson
        .map(parse)
        .map((p) => ({ name: p.metadata.name, status: p.status }));
      throw new Error(`${e.message}\npods: ${JSON.stringify(seen)}\nnode log:\n${node?.log}`);
    });
  const createPod = (name: string, spec: unknown, labels: Record<string, string> = {}) =>
    client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { test: name, ...labels } },
        spec,
      }),
    );
  const deletePod = async (name: string) => {
    await client.delete({ kind: 'Pod', namespace: 'default', name });
    await waitFor(`pod ${name}'s containers removed`, async () =>
      (await containers()).every((x) => x.Labels[LABEL.pod] !== name),
    );
  };

  before(async function () {
    await requireDocker(this);
    c = await MasterCluster.start(3);
    client = c.client();
    await c.leader();
    node = await NodeDaemon.start(nodeName, c.servers());
    await waitFor('the node to register Ready with a pod CIDR', async () => {
      const n = parse((await client.get('Node', '', nodeName)).objectJson);
      return ready(n) && (n.spec as { podCIDR?: string }).podCIDR !== undefined;
    });
  });

  after(async () => {
    await node?.stop();
    client?.close();
    await c?.stop();
  });

  it('runs a 3-replica deployment on the node pod CIDR, restarts a container killed from outside, and leaves nothing after delete', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'sleepers' },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'sleepers' } },
          template: {
            metadata: { labels: { app: 'sleepers' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [
                {
                  name: 'main',
                  image: TEST_IMAGE,
                  command: ['sleep', '3600'],
                  resources: { limits: { memory: '64Mi' } },
                },
              ],
            },
          },
        },
      }),
    );
    await waitFor('3 pods Running and Ready', async () => {
      const ps = await pods('app=sleepers');
      return ps.length === 3 && ps.every((p) => statusOf(p).phase === 'Running' && ready(p));
    });
    const ps = await pods('app=sleepers');
    const ips = ps.map((p) => statusOf(p).podIP!);
    assert.equal(new Set(ips).size, 3, 'each pod has its own IP');
    const n = parse((await client.get('Node', '', nodeName)).objectJson);
    const blocks = new CidrBlocks('10.244.0.0/16', 24);
    const cidr = (n.spec as { podCIDR: string }).podCIDR;
    assert.notEqual(blocks.indexOf(cidr), undefined);
    for (const ip of ips)
      assert.equal(ip.split('.').slice(0, 3).join('.'), cidr.split('.').slice(0, 3).join('.'));

    // One infra and one app container per pod; the app joins the infra's network.
    const cs = await containers();
    assert.equal(cs.length, 6);
    const infra = cs.filter((x) => x.Labels[LABEL.container] === 'POD');
    const apps = cs.filter((x) => x.Labels[LABEL.container] === 'main');
    assert.equal(infra.length, 3);
    assert.equal(apps.length, 3);
    for (const a of apps) {
      const i = await docker.getContainer(a.Id).inspect();
      const sandbox = infra.find((x) => x.Labels[LABEL.uid] === a.Labels[LABEL.uid])!;
      assert.equal(i.HostConfig.NetworkMode, `container:${sandbox.Id}`);
      assert.equal(i.HostConfig.Memory, 64 * 1024 * 1024);
    }

    // Killed from outside: restarted, and the restart is counted.
    const victim = ps[0];
    const id = statusOf(victim).containerStatuses![0].containerID!.replace('docker://', '');
    await docker.getContainer(id).kill();
    await waitFor('the killed container to be restarted', async () => {
      const p = await pod(victim.metadata.name);
      const cs0 = statusOf(p).containerStatuses?.[0];
      return cs0?.restartCount === 1 && cs0.state.running !== undefined && ready(p);
    });
    const last = statusOf(await pod(victim.metadata.name)).containerStatuses![0].lastState;
    assert.equal(last?.terminated?.exitCode, 137);

    // `sleep` ignores SIGTERM: the pod's 1 s grace period, not the default 30 s, bounds the delete.
    const t0 = Date.now();
    await client.delete({ kind: 'Deployment', namespace: 'default', name: 'sleepers' });
    await waitFor('no pods and no containers left', async () => {
      return (await pods('app=sleepers')).length === 0 && (await containers()).length === 0;
    });
    assert.ok(Date.now() - t0 < 20_000, `deleted in ${Date.now() - t0} ms`);
  });

  it('runs init containers in order, mounts ConfigMap and emptyDir volumes, shares localhost between containers, and serves logs and exec through the masters', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'web-content' },
        data: { 'index.html': 'hello from baton\n', GREETING: 'hi' },
      }),
    );
    await createPod('web', {
      terminationGracePeriodSeconds: 1,
      volumes: [
        { name: 'content', configMap: { name: 'web-content' } },
        { name: 'shared', emptyDir: {} },
      ],
      initContainers: [
        {
          name: 'first',
          image: TEST_IMAGE,
          command: ['sh', '-c', 'echo first >> /shared/order'],
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        },
        {
          name: 'second',
          image: TEST_IMAGE,
          command: ['sh', '-c', 'echo second >> /shared/order'],
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        },
      ],
      containers: [
        {
          name: 'server',
          image: TEST_IMAGE,
          command: ['httpd', '-f', '-v', '-p', '8080', '-h', '/www'],
          ports: [{ name: 'http', containerPort: 8080 }],
          volumeMounts: [{ name: 'content', mountPath: '/www', readOnly: true }],
          readinessProbe: { httpGet: { path: '/index.html', port: 'http' }, periodSeconds: 1 },
        },
        {
          name: 'client',
          image: TEST_IMAGE,
          command: [
            'sh',
            '-c',
            'until wget -qO /shared/got http://127.0.0.1:8080/index.html; do sleep 0.2; done; echo "$GREETING, fetched $(cat /shared/got)"; exec sleep 3600',
          ],
          env: [
            {
              name: 'GREETING',
              valueFrom: { configMapKeyRef: { name: 'web-content', key: 'GREETING' } },
            },
          ],
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        },
      ],
    });
    await waitFor('the web pod Ready', async () => ready(await pod('web')));
    const p = await pod('web');
    assert.deepEqual(
      statusOf(p).initContainerStatuses!.map((s) => [s.name, s.state.terminated?.reason]),
      [
        ['first', 'Completed'],
        ['second', 'Completed'],
      ],
    );
    await waitFor('the client to have fetched the page over localhost', async () =>
      (await baton('logs', 'web', '-c', 'client')).stdout.includes('hi, fetched hello from baton'),
    );
    const order = await baton('exec', 'web', '-c', 'client', '--', 'cat', '/shared/order');
    assert.equal(order.code, 0, order.stderr);
    assert.equal(order.stdout, 'first\nsecond\n');
    const fail = await baton('exec', 'web', '-c', 'client', '--', 'sh', '-c', 'exit 7');
    assert.equal(fail.code, 7);
    const tail = await baton('logs', 'web', '-c', 'server', '--tail', '1');
    assert.equal(tail.code, 0, tail.stderr);
    assert.equal(tail.stdout.trim().split('\n').length, 1);
    const noSuch = await baton('logs', 'web', '-c', 'nope');
    assert.notEqual(noSuch.code, 0);
    assert.match(noSuch.stderr, /container "nope" is not valid for pod "web"/);
    await deletePod('web');
  });

  it('restarts a container whose liveness probe fails, and keeps a pod unready while its readiness probe fails', async () => {
    await createPod('liveness', {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: TEST_IMAGE,
          command: ['sh', '-c', 'touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 3600'],
          livenessProbe: {
            exec: { command: ['cat', '/tmp/healthy'] },
            periodSeconds: 1,
            failureThreshold: 2,
          },
        },
      ],
    });
    await createPod('closed-port', {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: TEST_IMAGE,
          command: ['sleep', '3600'],
          readinessProbe: { tcpSocket: { port: 9999 }, periodSeconds: 1 },
        },
      ],
    });
    await waitFor('the liveness pod restarted by its probe', async () => {
      const s = statusOf(await pod('liveness')).containerStatuses?.[0];
      return (s?.restartCount ?? 0) >= 1;
    });
    // The node's events are API writes of their own (src/node/node-events.ts), not ordered
    // with the pod status it reports: wait for them too.
    const unhealthy =
      /^Unhealthy: Liveness probe failed: command \["cat","\/tmp\/healthy"\] exited with 1/;
    const killing = 'Killing: Container main failed liveness probe, will be restarted';
    await waitFor('the Unhealthy and Killing events', async () => {
      const ev = await eventsFor('liveness');
      return ev.some((e) => unhealthy.test(e)) && ev.includes(killing);
    });
    const ev = await eventsFor('liveness');
    assert.ok(
      ev.some((e) => unhealthy.test(e)),
      ev.join('\n'),
    );
    assert.ok(
      ev.some((e) => e === killing),
      ev.join('\n'),
    );

    // Another pod than the one waited for: wait for it to run before looking at it.
    await waitFor(
      'the closed-port pod Running',
      async () => statusOf(await pod('closed-port')).phase === 'Running',
    );
    const unready = await pod('closed-port');
    assert.equal(statusOf(unready).phase, 'Running');
    assert.equal(condition(unready, 'Ready'), 'False');
    await waitFor('an Unhealthy event naming the closed port', async () =>
      (await eventsFor('closed-port')).some((e) =>
        /^Unhealthy: Readiness probe failed: dial tcp [\d.]+:9999: connect: connection refused$/.test(
          e,
        ),
      ),
    );
    assert.equal(condition(await pod('closed-port'), 'Ready'), 'False');
    await Promise.all([deletePod('liveness'), deletePod('closed-port')]);
  });

  it('shows bad input as Kubernetes users expect: a missing image, a command that exits at once, a memory limit too small', async () => {
    await createPod('no-such-image', {
      containers: [{ name: 'main', image: 'baton/does-not-exist:1' }],
    });
    await createPod('exits', {
      containers: [{ name: 'main', image: TEST_IMAGE, command: ['sh', '-c', 'echo bye; exit 3'] }],
    });
    await createPod('oom', {
      containers: [
        {
          name: 'main',
          image: TEST_IMAGE,
          command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'],
          resources: { limits: { memory: '8Mi' } },
        },
      ],
    });
    await waitFor('ErrImagePull / ImagePullBackOff', async () => {
      const p = await pod('no-such-image');
      const w = statusOf(p).containerStatuses?.[0]?.state.waiting;
      return (
        w !== undefined &&
        /^(ErrImagePull|ImagePullBackOff)$/.test(w.reason) &&
        /baton\/does-not-exist:1/.test(w.message ?? '') &&
        statusOf(p).phase === 'Pending'
      );
    });
    await waitFor('the Failed event of the pull', async () =>
      (await eventsFor('no-such-image')).some((e) =>
        e.startsWith('Failed: Failed to pull image "baton/does-not-exist:1"'),
      ),
    );
    await waitFor('CrashLoopBackOff with the exit code', async () => {
      const s = statusOf(await pod('exits')).containerStatuses?.[0];
      return (
        s?.state.waiting?.reason === 'CrashLoopBackOff' &&
        s.lastState?.terminated?.exitCode === 3 &&
        s.lastState.terminated.reason === 'Error'
      );
    });
    await waitFor('the BackOff event', async () =>
      (await eventsFor('exits')).some(
        (e) => e === 'BackOff: Back-off restarting failed container main in pod exits',
      ),
    );
    assert.match((await baton('logs', 'exits')).stdout, /bye/);
    await waitFor('OOMKilled', async () => {
      const s = statusOf(await pod('oom')).containerStatuses?.[0];
      return (
        s?.state.terminated?.reason === 'OOMKilled' ||
        s?.lastState?.terminated?.reason === 'OOMKilled'
      );
    });
    await Promise.all(['no-such-image', 'exits', 'oom'].map(deletePod));
  });

  it('adopts its running containers when the daemon restarts, and keeps them running while every master is down', async () => {
    await createPod('adopted', {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: TEST_IMAGE, command: ['sleep', '3600'] }],
    });
    await waitFor('the pod Ready', async () => ready(await pod('adopted')));
    const before = (await containers()).map((x) => x.Id).sort();
    await node!.restart();
    // The new daemon finds both containers and reports the pod as it is: no restart, same ids.
    await until('a session from the restarted daemon', async () =>
      node!.log.includes('connecting to'),
    );
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual((await containers()).map((x) => x.Id).sort(), before);
    const s = statusOf(await pod('adopted')).containerStatuses![0];
    assert.equal(s.restartCount, 0);
    assert.ok(s.state.running);

    // Every master down: the pod keeps running; masters back: status flows again.
    const ids = c!.ids();
    for (const id of ids) await c!.kill(id);
    await new Promise((r) => setTimeout(r, 2000));
    for (const x of await containers()) assert.equal(x.State, 'running', x.Names[0]);
    await Promise.all(ids.map((id) => c!.startMaster(id)));
    await c!.leader(30_000);
    const id = s.containerID!.replace('docker://', '');
    await docker.getContainer(id).kill();
    await waitFor('the restart reported after the masters came back', async () => {
      const now = statusOf(await pod('adopted')).containerStatuses?.[0];
      return now?.restartCount === 1 && now.state.running !== undefined;
    });
    await deletePod('adopted');
  });

  it('keeps every container running when the leader master is killed, and status keeps flowing', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'steady' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'steady' } },
          template: {
            metadata: { labels: { app: 'steady' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [{ name: 'main', image: TEST_IMAGE, command: ['sleep', '3600'] }],
            },
          },
        },
      }),
    );
    await waitFor('2 pods Ready', async () => {
      const ps = await pods('app=steady');
      return ps.length === 2 && ps.every(ready);
    });
    const before = (await containers()).map((x) => x.Id).sort();
    const leader = await c!.leader();
    await c!.kill(leader);
    await c!.leader(); // a new one
    // Status flows through the new leader: a container killed from outside shows as restarted.
    const [victim] = await pods('app=steady');
    const id = statusOf(victim).containerStatuses![0].containerID!.replace('docker://', '');
    await docker.getContainer(id).kill();
    await waitFor('the restart reported through the new leader', async () => {
      const s = statusOf(await pod(victim.metadata.name)).containerStatuses?.[0];
      return s?.restartCount === 1 && s.state.running !== undefined;
    });
    const after = await containers();
    const untouched = before.filter((x) => x !== id);
    for (const x of untouched)
      assert.ok(
        after.some((a) => a.Id === x && a.State === 'running'),
        `container ${x.slice(0, 12)} still running`,
      );
    await client.delete({ kind: 'Deployment', namespace: 'default', name: 'steady' });
    await waitFor('nothing left', async () => (await containers()).length === 0);
  });
});

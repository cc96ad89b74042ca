/**
 * `baton node` end to end on real Docker: three real masters, one node
 * daemon process, pods as real containers (an infra container holding the
 * network namespace, app containers joined to it).
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import Docker from 'dockerode';
import { ApiObject } from '../../src/api/types';
import { BatonClient } from '../../src/client/cluster-client';
import { LABEL } from '../../src/node/docker-runtime';
import { requireDocker, TEST_IMAGE } from '../support/docker';
import { BATON_BIN, MasterCluster } from '../support/master-cluster';
import { until } from '../support/until';

const parse = (j: string) => JSON.parse(j) as ApiObject;

interface PodStatusView {
  phase?: string;
  podIP?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: {
    restartCount: number;
    containerID?: string;
    state: { running?: unknown; waiting?: { reason: string; message?: string } };
  }[];
}
const statusOf = (p: ApiObject) => (p.status ?? {}) as PodStatusView;
const ready = (p: ApiObject) =>
  statusOf(p).conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

describe('node daemon on Docker: pods as real containers', function () {
  this.timeout(120_000);
  const docker = new Docker();
  const nodeName = `docker-node-${process.pid}`;
  let c: MasterCluster | undefined;
  let client: BatonClient;
  let node: ChildProcess | undefined;
  let nodeLog = '';

  const containers = () =>
    docker.listContainers({ all: true, filters: { label: [`${LABEL.node}=${nodeName}`] } });
  const pods = async (selector: string) =>
    (await client.list({ kind: 'Pod', labelSelector: selector })).itemsJson.map(parse);

  before(async function () {
    await requireDocker(this);
    c = await MasterCluster.start(3);
    client = c.client();
    await c.leader();
    node = spawn(
      process.execPath,
      [
        BATON_BIN,
        'node',
        '--name',
        nodeName,
        '--masters',
        c.servers().join(','),
        '--log-level',
        process.env.BATON_TEST_LOG_LEVEL ?? 'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    node.stderr!.on('data', (d: Buffer) => (nodeLog = (nodeLog + d.toString()).slice(-4000)));
    await until('the node to register Ready', async () => {
      const n = parse((await client.get('Node', '', nodeName)).objectJson);
      return (
        (n.status as PodStatusView).conditions?.some(
          (x) => x.type === 'Ready' && x.status === 'True',
        ) === true
      );
    });
  });

  after(async () => {
    node?.kill('SIGTERM');
    client?.close();
    await c?.stop();
    for (const x of await containers().catch(() => []))
      await docker
        .getContainer(x.Id)
        .remove({ force: true })
        .catch(() => undefined);
  });

  it('runs a 3-replica deployment, restarts a container killed from outside, and leaves nothing after delete', async () => {
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
    await until(
      '3 pods Running and Ready',
      async () => {
        const ps = await pods('app=sleepers');
        return ps.length === 3 && ps.every((p) => statusOf(p).phase === 'Running' && ready(p));
      },
      60_000,
    ).catch(async (e: Error) => {
      const seen = (await pods('app=sleepers')).map((p) => ({
        name: p.metadata.name,
        node: (p.spec as { nodeName?: string }).nodeName,
        status: p.status,
      }));
      throw new Error(`${e.message}\npods: ${JSON.stringify(seen)}\nnode log:\n${nodeLog}`);
    });
    const ps = await pods('app=sleepers');
    const ips = new Set(ps.map((p) => statusOf(p).podIP));
    assert.equal(ips.size, 3, 'each pod has its own IP');

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
    await until('the killed container to be restarted', async () => {
      const p = parse((await client.get('Pod', 'default', victim.metadata.name)).objectJson);
      const cs0 = statusOf(p).containerStatuses?.[0];
      return cs0?.restartCount === 1 && cs0.state.running !== undefined && ready(p);
    });

    await client.delete({ kind: 'Deployment', namespace: 'default', name: 'sleepers' });
    await until(
      'no pods and no containers left',
      async () => {
        return (await pods('app=sleepers')).length === 0 && (await containers()).length === 0;
      },
      60_000,
    );
  });

  it('shows an image that cannot be pulled as ErrImagePull or ImagePullBackOff', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'no-such-image', labels: { app: 'bad' } },
        spec: { containers: [{ name: 'main', image: 'baton/does-not-exist:1' }] },
      }),
    );
    await until(
      'a waiting reason about the image',
      async () => {
        const [p] = await pods('app=bad');
        const w = p && statusOf(p).containerStatuses?.[0]?.state.waiting;
        return (
          w !== undefined &&
          /^(ErrImagePull|ImagePullBackOff)$/.test(w.reason) &&
          /baton\/does-not-exist:1/.test(w.message ?? '') &&
          statusOf(p).phase === 'Pending'
        );
      },
      60_000,
    );
    await client.delete({ kind: 'Pod', namespace: 'default', name: 'no-such-image' });
    await until('its sandbox removed', async () => (await containers()).length === 0, 30_000);
  });
});

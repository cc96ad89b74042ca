/**
 * The leader's loops on a real 3-master cluster (real `baton master`
 * processes, real gRPC, real LevelDB) driven through the API, with hollow
 * nodes speaking the real node protocol: rolling updates with unready pods,
 * rollback, job retries, node loss, anti-affinity, and the leader killed in
 * the middle of a rolling update.
 */
import assert from 'node:assert/strict';
import { ApiObject } from '../../src/api/types';
import { BatonClient } from '../../src/client/cluster-client';
import { EventType } from '../../src/gen/api';
import { DELAY, HollowNodes, OUTCOME } from '../support/hollow-nodes';
import { MasterCluster } from '../support/master-cluster';
import { until } from '../support/until';
import { runBaton } from '../support/cli';

const parse = (json: string) => JSON.parse(json) as ApiObject;

function deployment(
  name: string,
  replicas: number,
  opts: {
    version?: string;
    annotations?: Record<string, string>;
    strategy?: unknown;
    affinity?: unknown;
    progressDeadlineSeconds?: number;
  } = {},
) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
      ...(opts.progressDeadlineSeconds
        ? { progressDeadlineSeconds: opts.progressDeadlineSeconds }
        : {}),
      template: {
        metadata: {
          labels: { app: name, version: opts.version ?? 'v1' },
          ...(opts.annotations ? { annotations: opts.annotations } : {}),
        },
        spec: {
          containers: [
            {
              name: 'web',
              image: `baton/busybox:${opts.version ?? 'v1'}`,
              resources: { requests: { cpu: '100m' } },
            },
          ],
          ...(opts.affinity ? { affinity: opts.affinity } : {}),
        },
      },
    },
  };
}

describe('leader loops on three real masters with hollow nodes', function () {
  this.timeout(120_000);
  let c: MasterCluster;
  let client: BatonClient;
  let nodes: HollowNodes;

  before(async () => {
    c = await MasterCluster.start(3, [
      '--node-grace-period-ms',
      '2000',
      '--pod-eviction-delay-ms',
      '1000',
      '--heartbeat-period-ms',
      '200',
    ]);
    client = c.client();
    await c.leader();
    nodes = new HollowNodes({ masters: c.servers(), count: 4, cpu: '4', memory: '8Gi' });
    nodes.start();
    await until('4 ready nodes', async () => (await readyNodes()).length === 4, 20_000);
  });
  after(async () => {
    await nodes?.stop();
    client?.close();
    await c?.stop();
  });

  async function list(kind: string, labelSelector = ''): Promise<ApiObject[]> {
    const r = await client.list({ kind, namespace: 'default', labelSelector });
    return r.itemsJson.map(parse);
  }

  async function readyNodes(): Promise<string[]> {
    const r = await client.list({ kind: 'Node' });
    return r.itemsJson
      .map(parse)
      .filter((n) =>
        (n.status as { conditions?: { type: string; status: string }[] }).conditions?.some(
          (x) => x.type === 'Ready' && x.status === 'True',
        ),
      )
      .map((n) => n.metadata.name);
  }

  const status = async (kind: string, name: string) =>
    (parse((await client.get(kind, 'default', name)).objectJson).status ?? {}) as Record<
      string,
      unknown
    >;
  const condition = (s: Record<string, unknown>, type: string) =>
    (s.conditions as { type: string; status: string; reason?: string }[] | undefined)?.find(
      (x) => x.type === type,
    );
  const running = (pods: ApiObject[]) =>
    pods.filter((p) => (p.status as { phase?: string } | undefined)?.phase === 'Running');

  it('runs a deployment, stalls a rolling update whose new pods never become ready, and rolls back', async () => {
    await client.apply(JSON.stringify(deployment('web', 3)));
    await until(
      '3 available',
      async () => (await status('Deployment', 'web')).availableReplicas === 3,
    );
    const v1 = running(await list('Pod', 'app=web'));
    assert.equal(v1.length, 3);
    assert.ok(v1.every((p) => (p.spec as { nodeName?: string }).nodeName?.startsWith('hollow-')));

    await client.apply(
      JSON.stringify(
        deployment('web', 3, {
          version: 'v2',
          annotations: { [OUTCOME]: 'unready' },
          progressDeadlineSeconds: 3,
        }),
      ),
    );
    await until(
      'the rollout to be marked failed',
      async () =>
        condition(await status('Deployment', 'web'), 'Progressing')?.reason ===
        'ProgressDeadlineExceeded',
    );
    const pods = await list('Pod', 'app=web');
    const ready = pods.filter((p) => p.metadata.labels?.version === 'v1');
    assert.ok(
      ready.length >= 2,
      `old pods kept serving (maxUnavailable 25% of 3 rounds down to 0): ${ready.length}`,
    );

    // Roll back: the v1 template again (what `baton rollout undo` does).
    await client.apply(JSON.stringify(deployment('web', 3)));
    await until('rolled back', async () => {
      const s = await status('Deployment', 'web');
      const all = await list('Pod', 'app=web');
      return (
        s.availableReplicas === 3 &&
        s.updatedReplicas === 3 &&
        all.length === 3 &&
        all.every((p) => p.metadata.labels?.version === 'v1')
      );
    });
    // The v1 ReplicaSet came back rather than a new one being made.
    const rss = await list('ReplicaSet', 'app=web');
    assert.equal(rss.length, 2);
  });

  it('retries a failing job up to its backoffLimit, then fails it', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'flaky' },
        spec: {
          backoffLimit: 2,
          template: {
            metadata: { annotations: { [OUTCOME]: 'fail' } },
            spec: { restartPolicy: 'Never', containers: [{ name: 'j', image: 'baton/busybox' }] },
          },
        },
      }),
    );
    await until(
      'the job to fail',
      async () => condition(await status('Job', 'flaky'), 'Failed')?.status === 'True',
      60_000,
    );
    const s = await status('Job', 'flaky');
    assert.equal(s.failed, 3);
    assert.equal(condition(s, 'Failed')?.reason, 'BackoffLimitExceeded');
  });

  it('places required anti-affinity replicas on distinct nodes and explains the one that fits nowhere', async () => {
    const anti = {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          {
            labelSelector: { matchLabels: { app: 'spread' } },
            topologyKey: 'kubernetes.io/hostname',
          },
        ],
      },
    };
    await client.apply(JSON.stringify(deployment('spread', 5, { affinity: anti })));
    await until('4 running', async () => running(await list('Pod', 'app=spread')).length === 4);
    const pods = await list('Pod', 'app=spread');
    const placed = pods.map((p) => (p.spec as { nodeName?: string }).nodeName).filter(Boolean);
    assert.equal(new Set(placed).size, 4, 'four distinct nodes');
    await until('a FailedScheduling event', async () =>
      (await list('Event')).some(
        (e) =>
          e.reason === 'FailedScheduling' &&
          /0\/4 nodes are available: 4 node\(s\) didn't match pod anti-affinity rules/.test(
            String(e.message),
          ),
      ),
    );
    await client.delete({ kind: 'Deployment', namespace: 'default', name: 'spread' });
  });

  it('replaces the pods of a lost node on the other nodes', async () => {
    await client.apply(JSON.stringify(deployment('survivor', 4)));
    await until(
      '4 available',
      async () => (await status('Deployment', 'survivor')).availableReplicas === 4,
    );
    const byNode = new Map<string, number>();
    for (const p of await list('Pod', 'app=survivor')) {
      const n = (p.spec as { nodeName: string }).nodeName;
      byNode.set(n, (byNode.get(n) ?? 0) + 1);
    }
    const victim = [...byNode.keys()][0];
    await nodes.stopNode(victim);
    await until('the node to be NotReady', async () => !(await readyNodes()).includes(victim));
    await until(
      '4 available again, none on the lost node',
      async () => {
        const pods = await list('Pod', 'app=survivor');
        return (
          (await status('Deployment', 'survivor')).availableReplicas === 4 &&
          pods.length === 4 &&
          pods.every((p) => (p.spec as { nodeName: string }).nodeName !== victim)
        );
      },
      30_000,
    );
    nodes.startNode(victim);
    await until('the node to be Ready again', async () => (await readyNodes()).includes(victim));
    await client.delete({ kind: 'Deployment', namespace: 'default', name: 'survivor' });
  });

  it('drains a node with the CLI: cordoned, its pods recreated elsewhere, a bare pod only with --force', async () => {
    const baton = (...args: string[]) => runBaton(c.servers().join(','), args);
    const nodeOf = (p: ApiObject) => (p.spec as { nodeName?: string }).nodeName;
    const unschedulable = async (name: string) =>
      (parse((await client.get('Node', '', name)).objectJson).spec as { unschedulable?: boolean })
        .unschedulable === true;
    await client.apply(JSON.stringify(deployment('drained', 4)));
    await until(
      '4 available',
      async () => (await status('Deployment', 'drained')).availableReplicas === 4,
    );
    const target = nodeOf((await list('Pod', 'app=drained'))[0]!)!;
    // A pod no controller would recreate, placed on the node directly.
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'bare', labels: { app: 'bare' } },
        spec: { nodeName: target, containers: [{ name: 'c', image: 'baton/busybox:v1' }] },
      }),
    );

    const refused = await baton('drain', target);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(
      refused.stderr,
      /cannot delete pod default\/bare: not managed by a ReplicaSet, Job or other controller/,
    );
    // Like kubectl, the node is cordoned before the refusal, and nothing is evicted.
    assert.ok(await unschedulable(target));
    assert.equal((await list('Pod', 'app=bare')).length, 1);

    const forced = await baton('drain', target, '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`^node/${target} cordoned\n`));
    assert.match(forced.stdout, /evicting pod default\/bare\n/);
    assert.match(forced.stdout, new RegExp(`node/${target} drained\n$`));
    assert.equal((await list('Pod', 'app=bare')).length, 0);
    await until(
      '4 available again, none on the drained node',
      async () => {
        const pods = await list('Pod', 'app=drained');
        return (
          (await status('Deployment', 'drained')).availableReplicas === 4 &&
          pods.length === 4 &&
          pods.every((p) => nodeOf(p) !== target)
        );
      },
      30_000,
    );

    // Cordoned, it gets no new pods; uncordoned, it may again.
    await client.apply(JSON.stringify(deployment('drained', 8)));
    await until(
      '8 available',
      async () => (await status('Deployment', 'drained')).availableReplicas === 8,
    );
    assert.ok((await list('Pod', 'app=drained')).every((p) => nodeOf(p) !== target));
    const un = await baton('uncordon', target);
    assert.equal(un.stdout, `node/${target} uncordoned\n`, un.stderr);
    assert.equal(await unschedulable(target), false);
    assert.equal((await baton('uncordon', target)).stdout, `node/${target} already uncordoned\n`);
    const missing = await baton('cordon', 'no-such-node');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Node "no-such-node" not found/);
    await client.delete({ kind: 'Deployment', namespace: 'default', name: 'drained' });
  });

  it('finishes a rolling update after the leader is killed in its middle, creating no pod twice', async () => {
    const slow = { [DELAY]: '400' };
    await client.apply(
      JSON.stringify(
        deployment('roll', 6, {
          annotations: slow,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        }),
      ),
    );
    await until(
      '6 available',
      async () => (await status('Deployment', 'roll')).availableReplicas === 6,
      30_000,
    );

    // Count every pod ever created for the deployment from here on.
    const abort = new AbortController();
    const created = new Set<string>();
    /** The revision up to which the watch has delivered every change (bookmarks say so when quiet). */
    let delivered = 0;
    const rv = (await client.list({ kind: 'Pod', namespace: 'default' })).revision;
    const watching = (async () => {
      try {
        for await (const ev of client.watch(
          {
            kind: 'Pod',
            namespace: 'default',
            labelSelector: 'app=roll',
            fromRevision: rv,
            bookmarkMs: 500,
          },
          abort.signal,
        )) {
          if (ev.type === EventType.ADDED) created.add(parse(ev.objectJson).metadata.name);
          delivered = Math.max(delivered, ev.revision);
        }
      } catch {
        // ended by the abort
      }
    })();

    await client.apply(
      JSON.stringify(
        deployment('roll', 6, {
          version: 'v2',
          annotations: slow,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        }),
      ),
    );
    await until('the rollout to be under way', async () => {
      const pods = await list('Pod', 'app=roll,version=v2');
      return pods.length >= 2;
    });
    const leader = await c.leader();
    await c.kill(leader);
    await until(
      'the new leader to finish the rollout',
      async () => {
        const s = await status('Deployment', 'roll');
        const pods = await list('Pod', 'app=roll');
        return (
          s.updatedReplicas === 6 &&
          s.availableReplicas === 6 &&
          pods.length === 6 &&
          pods.every((p) => p.metadata.labels?.version === 'v2')
        );
      },
      60_000,
    );
    // The watch is a stream of its own, cut with the leader and resumed on another master:
    // it may still be behind what the polls read. Count once it has caught up with them.
    const done = (await client.list({ kind: 'Pod', namespace: 'default' })).revision;
    await until('the watch to catch up', () => delivered >= done);
    abort.abort();
    await watching;
    const v2 = [...created];
    assert.equal(v2.length, 6, `pods created for the new version: ${v2.join(', ')}`);
    await c.startMaster(leader);
  });
});

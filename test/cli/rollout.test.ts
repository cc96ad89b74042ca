/**
 * `baton scale`, `set image` and `rollout ...` end to end: the real CLI
 * against a real master, with a real node daemon (exec runtime: pods are
 * host processes) so that rollouts really progress and complete.
 */
import assert from 'node:assert/strict';
import { ApiObject } from '../../src/api/types';
import { BatonClient } from '../../src/client/cluster-client';
import { mutate } from '../../src/cli/mutate';
import { CliResult, runBaton, startBaton } from '../support/cli';
import { MasterCluster } from '../support/master-cluster';
import { NodeDaemon } from '../support/node-daemon';
import { until } from '../support/until';

const parse = (j: string) => JSON.parse(j) as ApiObject;
const SLEEPER = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];
/** Host processes start in milliseconds: hold readiness back so a rollout has steps to show. */
const READY_AFTER_A_SECOND = {
  exec: { command: [process.execPath, '-e', ''] },
  initialDelaySeconds: 1,
  periodSeconds: 1,
};

interface Opts {
  replicas?: number;
  progressDeadlineSeconds?: number;
  readinessProbe?: unknown;
}

function deployment(name: string, image: string, o: Opts = {}): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: o.replicas ?? 2,
      ...(o.progressDeadlineSeconds ? { progressDeadlineSeconds: o.progressDeadlineSeconds } : {}),
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'web',
              image, // the exec runtime runs the command; the image only tells revisions apart
              command: SLEEPER,
              readinessProbe: o.readinessProbe ?? READY_AFTER_A_SECOND,
            },
          ],
        },
      },
    },
  });
}

/** Every line a rollout status may print while it waits or when it is done. */
const STATUS_LINE =
  /^(Waiting for deployment spec update to be observed\.\.\.|Waiting for deployment "web" rollout to finish: (\d+ out of \d+ new replicas have been updated|\d+ old replicas are pending termination|\d+ of \d+ updated replicas are available)\.\.\.|deployment "web" successfully rolled out)$/;

function assertStatusLines(r: CliResult): string[] {
  const seen = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.code, 0, seen);
  const lines = r.stdout.trimEnd().split('\n');
  for (const l of lines) assert.match(l, STATUS_LINE, seen);
  lines.slice(1).forEach((l, i) => assert.notEqual(l, lines[i], `a line repeated; ${seen}`));
  assert.equal(lines.at(-1), 'deployment "web" successfully rolled out', seen);
  return lines;
}

describe('cli: scale, set image and rollout against a master and an exec node', function () {
  this.timeout(120_000);
  let c: MasterCluster;
  let client: BatonClient;
  let node: NodeDaemon;

  const baton = (...args: string[]) => runBaton(c.servers().join(','), args);
  const getDeployment = async (name: string) =>
    parse((await client.get('Deployment', 'default', name)).objectJson) as ApiObject & {
      spec: {
        replicas: number;
        paused?: boolean;
        template: {
          metadata: { annotations?: Record<string, string> };
          spec: { containers: { image: string }[] };
        };
      };
    };
  const imageOf = async (name: string) =>
    (await getDeployment(name)).spec.template.spec.containers[0].image;
  const ok = (r: CliResult, stdout: string) => {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, stdout);
  };
  const fails = (r: CliResult, stderr: string) => {
    assert.equal(r.code, 1, `stdout: ${r.stdout}`);
    assert.equal(r.stderr, stderr);
  };
  const rolledOut = async () =>
    assertStatusLines(await baton('rollout', 'status', 'deploy/web', '--timeout', '60s'));

  before(async () => {
    c = await MasterCluster.start(1);
    client = c.client();
    await c.leader();
    node = await NodeDaemon.start(`rollout-node-${process.pid}`, c.servers(), { runtime: 'exec' });
    await client.apply(deployment('web', 'v1'));
  });

  after(async () => {
    await node?.stop();
    client?.close();
    await c?.stop();
  });

  it('rollout status follows a new deployment until every replica is available', async () => {
    const lines = await rolledOut();
    assert.ok(lines.length >= 1);
    // Once rolled out, a second look says so at once.
    ok(
      await baton('rollout', 'status', 'deployment', 'web'),
      'deployment "web" successfully rolled out\n',
    );
  });

  it('scale sets the replicas, honours --current-replicas, and refuses kinds without a scale', async () => {
    ok(await baton('scale', 'deploy/web', '--replicas', '3'), 'deployment.apps/web scaled\n');
    assert.equal((await getDeployment('web')).spec.replicas, 3);
    fails(
      await baton('scale', 'deployment', 'web', '--replicas', '1', '--current-replicas', '2'),
      'error: Expected replicas to be 2, was 3\n',
    );
    assert.equal((await getDeployment('web')).spec.replicas, 3);
    ok(
      await baton('scale', 'deployment', 'web', '--current-replicas=3', '--replicas=3'),
      'deployment.apps/web scaled\n',
    );
    fails(
      await baton('scale', 'pod/web', '--replicas', '1'),
      'error: cannot scale pods "web": only deployments and replicasets can be scaled\n',
    );
    fails(
      await baton('scale', 'deploy/web'),
      'error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0\n',
    );
    const missing = await baton('scale', 'deploy/nope', '--replicas', '1');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Error from server: .*"nope" not found/);
    await rolledOut();
  });

  it('set image rolls out a new revision, printing each step once; an unknown container changes nothing', async () => {
    fails(
      await baton('set', 'image', 'deploy/web', 'web=v9', 'nope=v9'),
      'error: unable to find container named "nope"\n',
    );
    assert.equal(await imageOf('web'), 'v1');
    ok(await baton('set', 'image', 'deploy/web', 'web=v2'), 'deployment.apps/web image updated\n');
    ok(await baton('set', 'image', 'deploy/web', 'web=v2'), ''); // nothing to change
    const lines = await rolledOut();
    assert.ok(
      lines.some((l) => l.startsWith('Waiting for deployment')),
      `expected progress lines, got:\n${lines.join('\n')}`,
    );
    assert.equal(await imageOf('web'), 'v2');
  });

  it('rollout history lists the revisions with their causes, and shows one template', async () => {
    // The cause of the current revision, as `kubectl annotate` would record it; the
    // controller copies it to the revision's ReplicaSet, where history reads it.
    await mutate(client, 'Deployment', 'default', 'web', (o) => {
      o.metadata.annotations = { ...o.metadata.annotations, 'kubernetes.io/change-cause': 'to v2' };
      return o;
    });
    const listing =
      'deployment.apps/web\nREVISION  CHANGE-CAUSE\n1         <none>\n2         to v2\n';
    await until(
      'the cause on revision 2',
      async () => (await baton('rollout', 'history', 'deploy/web')).stdout === listing,
    );
    ok(await baton('rollout', 'history', 'deployment', 'web'), listing);
    const one = await baton('rollout', 'history', 'deploy/web', '--revision', '1');
    assert.equal(one.code, 0, one.stderr);
    assert.match(
      one.stdout,
      /^deployment\.apps\/web with revision #1\nPod Template:\n {2}Labels:\s+app=web\n[^]*\n {3}web:\n {4}Image:\s+v1\n/,
    );
    fails(
      await baton('rollout', 'history', 'deploy/web', '--revision', '7'),
      'error: unable to find the specified revision\n',
    );
    const rs = (await client.list({ kind: 'ReplicaSet', labelSelector: 'app=web' })).itemsJson.map(
      parse,
    )[0].metadata.name;
    fails(
      await baton('rollout', 'history', `rs/${rs}`),
      'error: no history viewer has been implemented for "ReplicaSet.apps"\n',
    );
  });

  it('rollout undo goes back to the previous or a given revision, and says when there is nothing to do', async () => {
    ok(await baton('rollout', 'undo', 'deploy/web'), 'deployment.apps/web rolled back\n');
    assert.equal(await imageOf('web'), 'v1');
    // kubectl's rollback brings the revision's annotations back: revision 1 had no cause.
    assert.equal(
      (await getDeployment('web')).metadata.annotations?.['kubernetes.io/change-cause'],
      undefined,
    );
    await rolledOut();
    // Revision 1 came back as revision 3.
    ok(
      await baton('rollout', 'history', 'deploy/web'),
      'deployment.apps/web\nREVISION  CHANGE-CAUSE\n2         to v2\n3         <none>\n',
    );
    ok(
      await baton('rollout', 'undo', 'deploy/web', '--to-revision', '3'),
      'deployment.apps/web skipped rollback (current template already matches revision 3)\n',
    );
    fails(
      await baton('rollout', 'undo', 'deploy/web', '--to-revision=9'),
      'error: unable to find specified revision 9 in history of deployment "web"\n',
    );
    ok(
      await baton('rollout', 'undo', 'deploy/web', '--to-revision', '2'),
      'deployment.apps/web rolled back\n',
    );
    assert.equal(await imageOf('web'), 'v2');
    assert.equal(
      (await getDeployment('web')).metadata.annotations?.['kubernetes.io/change-cause'],
      'to v2',
    );
    await rolledOut();
  });

  it('rollout pause holds template changes back until resume; each refuses a second time', async () => {
    ok(await baton('rollout', 'pause', 'deploy/web'), 'deployment.apps/web paused\n');
    fails(
      await baton('rollout', 'pause', 'deploy/web'),
      'error: deployments.apps "web" is already paused\n',
    );
    ok(await baton('set', 'image', 'deploy/web', 'web=v3'), 'deployment.apps/web image updated\n');
    // Paused: the rollout does not move, so a bounded wait times out.
    const waiting = await baton('rollout', 'status', 'deploy/web', '--timeout', '2s');
    assert.equal(waiting.code, 1, waiting.stdout);
    assert.equal(waiting.stderr, 'error: timed out waiting for the condition\n');
    assert.match(
      waiting.stdout,
      /Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated\.\.\.\n$/,
    );
    ok(
      await baton('rollout', 'status', 'deploy/web', '--watch=false'),
      'Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated...\n',
    );
    fails(
      await baton('rollout', 'undo', 'deploy/web'),
      "error: you cannot rollback a paused deployment; resume it first with 'baton rollout resume' and try again\n",
    );
    fails(
      await baton('rollout', 'restart', 'deploy/web'),
      'error: deployments.apps "web" can\'t restart paused deployment (run rollout resume first)\n',
    );
    ok(await baton('rollout', 'resume', 'deploy/web'), 'deployment.apps/web resumed\n');
    fails(
      await baton('rollout', 'resume', 'deploy/web'),
      'error: deployments.apps "web" is not paused\n',
    );
    assert.equal((await getDeployment('web')).spec.paused, undefined);
    await rolledOut();
    assert.match((await baton('rollout', 'history', 'deploy/web')).stdout, /\n5 {9}to v2\n$/);
  });

  it('rollout restart replaces the pods through a new revision', async () => {
    const podNames = async () =>
      (await client.list({ kind: 'Pod', labelSelector: 'app=web' })).itemsJson
        .map(parse)
        .filter((p) => !p.metadata.deletionTimestamp)
        .map((p) => p.metadata.name)
        .sort();
    const before = await podNames();
    ok(await baton('rollout', 'restart', 'deploy/web'), 'deployment.apps/web restarted\n');
    const stamp = (await getDeployment('web')).spec.template.metadata.annotations?.[
      'kubectl.kubernetes.io/restartedAt'
    ];
    assert.match(stamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    await rolledOut();
    await until('the old pods gone', async () => {
      const now = await podNames();
      return now.length === 3 && now.every((n) => !before.includes(n));
    });
  });

  it('mutate redoes a change that lost a race, and skips the write when nothing changes', async () => {
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'n' },
        data: { n: '0' },
      }),
    );
    const bump = () =>
      mutate(client, 'ConfigMap', 'default', 'n', (o) => {
        const data = o.data as { n: string };
        data.n = String(Number(data.n) + 1);
        return o;
      });
    const results = await Promise.all([bump(), bump(), bump(), bump(), bump()]);
    assert.ok(results.every((r) => r.changed));
    const cm = parse((await client.get('ConfigMap', 'default', 'n')).objectJson);
    assert.deepEqual(cm.data, { n: '5' });
    const same = await mutate(client, 'ConfigMap', 'default', 'n', () => undefined);
    assert.deepEqual(same, { object: cm, changed: false });
  });

  it('rollout status fails when the progress deadline passes, and on what it cannot follow', async () => {
    await client.apply(
      deployment('stuck', 'v1', {
        replicas: 1,
        progressDeadlineSeconds: 5,
        // Never ready: the rollout cannot make progress.
        readinessProbe: {
          exec: { command: [process.execPath, '-e', 'process.exit(1)'] },
          periodSeconds: 1,
        },
      }),
    );
    const running = startBaton(c.servers().join(','), ['rollout', 'status', 'deploy/stuck']);
    const r = await running.done;
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stderr, 'error: deployment "stuck" exceeded its progress deadline\n');
    assert.match(
      r.stdout,
      /Waiting for deployment "stuck" rollout to finish: 0 of 1 updated replicas are available\.\.\.\n$/,
    );

    const missing = await baton('rollout', 'status', 'deploy/nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Error from server: .*"nope" not found/);
    const rsName = (
      await client.list({ kind: 'ReplicaSet', labelSelector: 'app=stuck' })
    ).itemsJson.map(parse)[0].metadata.name;
    fails(
      await baton('rollout', 'status', `rs/${rsName}`),
      'error: no status viewer has been implemented for ReplicaSet.apps\n',
    );
    fails(
      await baton('rollout', 'pause', `replicaset/${rsName}`),
      `error: replicasets.apps "${rsName}" pausing is not supported\n`,
    );
  });
});

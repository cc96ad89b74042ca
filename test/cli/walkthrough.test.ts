/**
 * The README's walkthrough, step by step, as a new user runs it: the real
 * `baton` binary against a cluster made by `baton up` (3 masters, 2 nodes,
 * Docker), the app from examples/app.yaml, reached through its NodePort on
 * 127.0.0.1. Needs Docker with the test images and root (the first node
 * programs the host's iptables); pending otherwise.
 */
import { parse as parseYaml } from 'yaml';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localClusterBusy, UpCluster } from '../support/cli';
import { dockerUnavailableReason } from '../support/docker';
import { until } from '../support/until';

const APP = join(__dirname, '..', '..', '..', 'examples', 'app.yaml');

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

interface PodRow {
  name: string;
  ready: string;
  status: string;
  node: string;
}

/** `get pods -o wide` rows by column position under the header. */
function podRows(table: string): PodRow[] {
  const [header, ...lines] = table.trimEnd().split('\n');
  const at = (h: string) => header.indexOf(h);
  const cell = (l: string, h: string) => l.slice(at(h)).split(/\s+/)[0];
  return lines
    .filter((l) => l.trim())
    .map((l) => ({
      name: cell(l, 'NAME'),
      ready: cell(l, 'READY'),
      status: cell(l, 'STATUS'),
      node: cell(l, 'NODE'),
    }));
}

describe('walkthrough: baton up, deploy, scale, roll out, roll back, lose a master and a node', function () {
  this.timeout(600_000);
  // Each step builds on the one before: stop at the first failure.
  this.bail(true);
  let dir: string;
  let c: UpCluster;
  const url = 'http://127.0.0.1:30080/';

  before(async function () {
    const why =
      (await dockerUnavailableReason()) ??
      (process.getuid?.() !== 0 ? 'needs root (the first node programs iptables)' : null) ??
      localClusterBusy() ??
      null;
    if (why) {
      console.log(`      pending: ${why}`);
      return this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'baton-walk-'));
    c = new UpCluster(dir);
  });
  after(async () => {
    if (c) {
      await c.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const runningWeb = async () =>
    podRows(await c.ok(['get', 'pods', '-l', 'app=web', '-o', 'wide'])).filter(
      (p) => p.status === 'Running' && p.ready === '1/1',
    );

  it('baton up starts 3 masters and 2 nodes, says so, and a second up does nothing', async () => {
    const out = await c.ok(['up']);
    assert.match(out, /Runtime: docker/);
    assert.match(out, /Cluster ready: 3 masters, 2 nodes \(docker runtime\)/);
    assert.match(out, /^master-1\s+\d+\s+127\.0\.0\.1:\d+$/m);
    assert.match(out, /^node-2\s+\d+\s+127\.0\.0\.1:\d+$/m);
    // The masters, and the local admin's certificate: the local cluster is mutual TLS too.
    const cfg = parseYaml(readFileSync(c.config, 'utf8')) as Record<string, unknown>;
    assert.equal((cfg.server as string[]).length, 3);
    for (const k of ['ca', 'cert', 'key']) assert.match(String(cfg[k]), /-----BEGIN /);
    const again = await c.ok(['up']);
    assert.match(again, /already running .*nothing to do/);
    const nodes = await c.ok(['get', 'nodes']);
    assert.match(nodes, /^node-1\s+Ready\s/m);
    assert.match(nodes, /^node-2\s+Ready\s/m);
    const status = await c.ok(['status']);
    assert.match(status, /nodes ready: 2\/2/);
  });

  it('deploys the web app and its database; the web app answers through its service', async () => {
    const out = await c.ok(['apply', '-f', APP]);
    assert.equal(
      out,
      [
        'configmap/app-scripts created',
        'deployment.apps/db created',
        'service/db created',
        'deployment.apps/web created',
        'service/web created',
        '',
      ].join('\n'),
    );
    assert.match(await c.ok(['rollout', 'status', 'deploy/web']), /successfully rolled out/);
    assert.match(await c.ok(['rollout', 'status', 'deploy/db']), /successfully rolled out/);
    assert.match(
      await c.ok(['get', 'svc', 'web']),
      /^web\s+NodePort\s+10\.\S+\s+<none>\s+80:30080\/TCP/m,
    );
    // Through the NodePort, to a web pod, which asks the db by its service name.
    let body = '';
    await until(
      'the web app through its service',
      async () => {
        body = await httpGet(url);
        return /visit \d+/.test(body);
      },
      60_000,
    );
    assert.match(body, /^Hello from web v1 \(pod web-\S+\), visit \d+$/m);
  });

  it('scales the web app to 4 and they spread over both nodes', async () => {
    assert.equal(
      await c.ok(['scale', 'deploy/web', '--replicas', '4']),
      'deployment.apps/web scaled\n',
    );
    await until('4 web pods Running', async () => (await runningWeb()).length === 4, 90_000);
    const nodes = new Set((await runningWeb()).map((p) => p.node));
    assert.deepEqual([...nodes].sort(), ['node-1', 'node-2']);
    // The pods' readiness reaches the Deployment two writes later (the ReplicaSet's status,
    // then the Deployment's): wait for its row to say so.
    await until('web 4/4 ready, 4 up to date, 4 available', async () =>
      /^web\s+4\/4\s+4\s+4\s/m.test(await c.ok(['get', 'deploy', 'web'])),
    );
  });

  it('rolls out v2, watches it finish, then rolls back to v1', async () => {
    const v2 = join(dir, 'app-v2.yaml');
    // The manifest is what apply makes true: it carries the new replica count too.
    writeFileSync(
      v2,
      readFileSync(APP, 'utf8')
        .replace('value: v1', 'value: v2')
        .replace('replicas: 2', 'replicas: 4'),
    );
    assert.match(await c.ok(['apply', '-f', v2]), /deployment\.apps\/web configured/);
    const status = await c.ok(['rollout', 'status', 'deploy/web']);
    assert.match(status, /Waiting for deployment "web" rollout to finish/);
    assert.match(status, /deployment "web" successfully rolled out\n$/);
    await until('v2 answering', async () => /web v2/.test(await httpGet(url)), 30_000);
    const history = await c.ok(['rollout', 'history', 'deploy/web']);
    assert.match(history, /^REVISION\s+CHANGE-CAUSE$/m);
    assert.match(history, /^1\s/m);
    assert.match(history, /^2\s/m);
    assert.equal(
      await c.ok(['rollout', 'undo', 'deploy/web']),
      'deployment.apps/web rolled back\n',
    );
    assert.match(await c.ok(['rollout', 'status', 'deploy/web']), /successfully rolled out/);
    await until(
      'v1 answering again',
      async () => {
        const bodies = await Promise.all([1, 2, 3, 4].map(() => httpGet(url)));
        return bodies.every((b) => /web v1/.test(b));
      },
      60_000,
    );
    assert.match(await c.ok(['rollout', 'history', 'deploy/web']), /^3\s/m);
    // The old pods are gone and the four of v1 serve.
    await until(
      '4 web pods Running after the rollback',
      async () =>
        (await runningWeb()).length === 4 && !/Terminating/.test(await c.ok(['get', 'pods'])),
      60_000,
    );
  });

  it('kill -9 of the leader master: the app keeps answering and the CLI keeps working', async () => {
    const cs = JSON.parse(await c.ok(['cluster', 'status', '-o', 'json'])) as { leader: number };
    const st = JSON.parse(await c.ok(['status', '-o', 'json'])) as {
      processes: { name: string; pid?: number }[];
    };
    const leader = st.processes.find((p) => p.name === `master-${cs.leader}`)!;
    process.kill(leader.pid!, 'SIGKILL');
    assert.match(await httpGet(url), /Hello from web v1/);
    // Writes go on with the two masters left.
    assert.match(
      await c.ok(['create', 'configmap', 'after-kill', '--from-literal', 'a=1']),
      /configmap\/after-kill created/,
    );
    assert.equal((await runningWeb()).length, 4);
    const status = await c.baton(['status']);
    assert.equal(status.code, 1);
    assert.match(status.stdout, new RegExp(`^master-${cs.leader}\\s+stopped`, 'm'));
    // `up` again brings back what stopped, and only that.
    assert.match(
      await c.ok(['up']),
      new RegExp(`Starting what stopped in .*: master-${cs.leader}$`, 'm'),
    );
    assert.match(await c.ok(['status']), /leader: master-\d/);
  });

  it('kill -9 of a node daemon: its pods run again on the other node', async () => {
    const st = JSON.parse(await c.ok(['status', '-o', 'json'])) as {
      processes: { name: string; pid?: number }[];
    };
    const node2 = st.processes.find((p) => p.name === 'node-2')!;
    const onNode2 = (await runningWeb()).filter((p) => p.node === 'node-2').map((p) => p.name);
    assert.ok(onNode2.length > 0);
    process.kill(node2.pid!, 'SIGKILL');
    await until(
      'node-2 NotReady',
      async () => /^node-2\s+NotReady/m.test(await c.ok(['get', 'nodes'])),
      60_000,
    );
    await until(
      'every web pod Running on node-1',
      async () => {
        const pods = await runningWeb();
        return pods.length === 4 && pods.every((p) => p.node === 'node-1');
      },
      90_000,
    );
    for (const name of onNode2)
      assert.ok(!(await runningWeb()).some((p) => p.name === name), `${name} was not replaced`);
    await until(
      'the app answering from node-1',
      async () => /visit \d+/.test(await httpGet(url)),
      30_000,
    );
    // The node comes back: nothing duplicated.
    await c.ok(['up']);
    await until(
      'node-2 Ready again',
      async () => /^node-2\s+Ready/m.test(await c.ok(['get', 'nodes'])),
      60_000,
    );
    assert.equal((await runningWeb()).length, 4);
  });

  it('baton down stops everything and keeps the data; down --purge removes it', async () => {
    const out = await c.ok(['down']);
    assert.match(out, /Stopping .*master-1/);
    assert.match(out, /Data kept in/);
    const st = await c.baton(['status']);
    assert.equal(st.code, 1);
    assert.doesNotMatch(st.stdout, /\srunning\s/);
    // Pods went with their nodes.
    const left = execFileSync(
      'docker',
      ['ps', '-q', '--filter', 'label=baton.node=node-1', '--filter', 'label=baton.node=node-2'],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(left, '');
    // Up again: the same objects are still there.
    await c.ok(['up']);
    assert.match(await c.ok(['get', 'configmap', 'after-kill']), /after-kill/);
    await c.ok(['down', '--purge']);
    assert.match((await c.baton(['status'])).stderr, /No local cluster/);
  });
});

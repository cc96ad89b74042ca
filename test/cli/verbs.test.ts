import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Master } from '../../src/master/master';
import { BATON_BIN } from '../support/master-cluster';
import { CliResult, runBaton, soloMaster } from '../support/cli';
import { until } from '../support/until';

const deployment = (name: string, app: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels: { app: ${app} }
spec:
  replicas: 2
  selector: { matchLabels: { app: ${app} } }
  template:
    metadata: { labels: { app: ${app} } }
    spec:
      containers: [{ name: web, image: "nginx:1.27" }]
`;

/** The CLI verbs end to end: a real `baton` process against a real master (in this process). */
describe('cli: kubectl-like verbs against a master', function () {
  this.timeout(60_000);
  let dir: string;
  let m: Master;
  let address: string;

  const baton = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runBaton(address, args, { BATON_CONFIG: join(dir, 'none'), ...env });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-cli-'));
    ({ master: m, address } = await soloMaster(dir));
    writeFileSync(
      join(dir, 'apps.yaml'),
      `${deployment('web', 'web')}---\n${deployment('api', 'api')}`,
    );
  });
  after(async () => {
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('apply creates, then reports unchanged; get lists, selects and names', async () => {
    const first = await baton(['apply', '-f', join(dir, 'apps.yaml')]);
    assert.equal(
      first.stdout,
      'deployment.apps/web created\ndeployment.apps/api created\n',
      first.stderr,
    );
    const again = await baton(['apply', '-f', join(dir, 'apps.yaml')]);
    assert.equal(again.stdout, 'deployment.apps/web unchanged\ndeployment.apps/api unchanged\n');
    const table = await baton(['get', 'deploy']);
    assert.match(
      table.stdout,
      /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\napi\s+0\/2\s+\d\s+0\s+\d+s\nweb\s+0\/2/,
    );
    assert.equal(
      (await baton(['get', 'deployments', '-l', 'app=web', '-o', 'name'])).stdout,
      'deployment.apps/web\n',
    );
    const all = await baton(['get', 'deploy', '-A']);
    assert.match(all.stdout, /^NAMESPACE\s+NAME/);
    const json = JSON.parse((await baton(['get', 'deploy', 'web', '-o', 'json'])).stdout) as {
      spec: { replicas: number };
    };
    assert.equal(json.spec.replicas, 2);
  });

  it('says so when nothing matches, and exits 1 for a missing object or an unknown kind', async () => {
    const none = await baton(['get', 'pods', '-n', 'empty']);
    assert.equal(none.code, 0);
    assert.equal(none.stderr, 'No resources found in empty namespace.\n');
    const missing = await baton(['get', 'deploy', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Deployment "nope" not found in namespace "default"/);
    const kind = await baton(['get', 'widgets']);
    assert.equal(kind.code, 1);
    assert.match(kind.stderr, /doesn't have a resource type "widgets"/);
  });

  it('describe shows the object and its events', async () => {
    // The deployment controller records its ScalingReplicaSet event after the ReplicaSet's
    // create, as a write of its own: look until it is there rather than assume it is by now.
    let d!: CliResult;
    await until('the ScalingReplicaSet event', async () => {
      d = await baton(['describe', 'deployment', 'web']);
      return d.stdout.includes('ScalingReplicaSet');
    });
    assert.equal(d.code, 0, d.stderr);
    assert.match(
      d.stdout,
      /^Name:\s+web\nNamespace:\s+default\nKind:\s+Deployment \(apps\/v1\)\nLabels:\s+app=web/,
    );
    assert.match(d.stdout, /replicas: 2/);
    assert.match(
      d.stdout,
      /Events:\n\s+TYPE\s+REASON\s+AGE\s+FROM\s+MESSAGE\n\s+Normal\s+ScalingReplicaSet\s+\d+s\s+deployment-controller\s+Scaled up replica set web-\w+ from 0 to 2\n/,
    );
    writeFileSync(
      join(dir, 'quiet.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: quiet\ndata: { a: "1" }\n',
    );
    await baton(['apply', '-f', join(dir, 'quiet.yaml')]);
    const cm = await baton(['describe', 'configmap', 'quiet']);
    assert.match(cm.stdout, /Events:\s+<none>/);
  });

  it('get -w prints changes as they happen', async () => {
    const p = spawn(process.execPath, [BATON_BIN, 'get', 'cm', '-w', '-o', 'name'], {
      env: { ...process.env, BATON_SERVER: address, BATON_CONFIG: join(dir, 'none') },
    });
    let out = '';
    const seen = new Promise<void>((resolve) =>
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('configmap/watched')) resolve();
      }),
    );
    // Give the watch a moment to start, then make a change.
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(
      join(dir, 'cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata: { a: "1" }\n',
    );
    await baton(['apply', '-f', join(dir, 'cm.yaml')]);
    await seen;
    p.kill('SIGINT');
    assert.match(out, /configmap\/watched/);
  });

  it('delete by selector removes exactly the matching objects', async () => {
    const r = await baton(['delete', 'deploy', '-l', 'app=api']);
    assert.equal(r.stdout, 'deployment.apps/api deleted\n');
    assert.equal((await baton(['get', 'deploy', '-o', 'name'])).stdout, 'deployment.apps/web\n');
  });

  it('cluster status shows the leader and members; an unreachable master is named', async () => {
    const s = await baton(['cluster', 'status']);
    assert.match(s.stdout, /^leader: master 1 \(127\.0\.0\.1:\d+\)/);
    assert.match(s.stdout, /\n1\s+127\.0\.0\.1:\d+\s+leader\s+healthy/);
    const down = await baton(['get', 'pods', '--server', '127.0.0.1:1'], {
      BATON_CONFIG: join(dir, 'none'),
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /no master answered: tried 127\.0\.0\.1:1/);
  });
});

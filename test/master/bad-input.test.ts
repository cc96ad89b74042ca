import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatonClient, ClientError } from '../../src/client/cluster-client';
import { Master, startMaster } from '../../src/master/master';
import { BATON_BIN } from '../support/master-cluster';
import { freePort } from '../support/raft-kv/processes';

const pod = (
  name: string,
  extra: Record<string, unknown> = {},
  container: Record<string, unknown> = {},
) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { containers: [{ name: 'app', image: 'busybox', ...container }], ...extra },
});

/**
 * Bad input gets an error that names the field and the reason, with the
 * right gRPC code, and writes nothing: the store's revision and contents
 * are the same before and after.
 */
describe('masters: bad input is refused with a clear error and changes nothing', function () {
  this.timeout(60_000);
  let dir: string;
  let m: Master;
  let client: BatonClient;
  let address: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-bad-input-'));
    address = `127.0.0.1:${await freePort()}`;
    m = await startMaster({
      id: 1,
      listen: address,
      peers: { 1: address },
      dataDir: dir,
      bootstrap: true,
      // Without the scheduler and controllers nothing else writes, so a
      // byte-equal store proves the refused request changed nothing.
      noLeaderLoops: true,
    });
    client = new BatonClient([address]);
    // Wait for the new leader to create the default namespace, so that no
    // write of the server's own lands in the middle of a test.
    while (!m.store.get('Namespace', undefined, 'default'))
      await new Promise((r) => setTimeout(r, 20));
    await client.apply(
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'limited' } }),
    );
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ResourceQuota',
        metadata: { name: 'small', namespace: 'limited' },
        spec: { hard: { pods: '1', 'requests.memory': '1Gi' } },
      }),
    );
    await client.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'LimitRange',
        metadata: { name: 'defaults', namespace: 'limited' },
        spec: {
          limits: [
            {
              type: 'Container',
              default: { memory: '256Mi' },
              defaultRequest: { memory: '128Mi' },
              max: { memory: '512Mi' },
            },
          ],
        },
      }),
    );
  });
  after(async () => {
    client?.close();
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function refused(
    obj: unknown,
    code: grpc.status,
    message: RegExp,
    via: 'apply' | 'create' = 'apply',
  ): Promise<void> {
    const before = Buffer.from(m.store.snapshot());
    const json = typeof obj === 'string' ? obj : JSON.stringify(obj);
    await assert.rejects(via === 'apply' ? client.apply(json) : client.create(json), (e: Error) => {
      assert.ok(e instanceof ClientError, String(e));
      assert.equal(grpc.status[e.code], grpc.status[code], e.message);
      assert.match(e.message, message);
      return true;
    });
    // Nothing was written: the same objects at the same revision.
    assert.ok(Buffer.from(m.store.snapshot()).equals(before), 'the store changed');
  }

  const cases: [string, unknown, grpc.status, RegExp][] = [
    [
      'text that is not JSON',
      '{"kind": ',
      grpc.status.INVALID_ARGUMENT,
      /object_json: not valid JSON/,
    ],
    [
      'an unknown kind',
      { apiVersion: 'v1', kind: 'Pdo', metadata: { name: 'x' } },
      grpc.status.INVALID_ARGUMENT,
      /kind: .*"Pdo"/,
    ],
    [
      'a wrong apiVersion',
      { ...pod('x'), apiVersion: 'apps/v1' },
      grpc.status.INVALID_ARGUMENT,
      /apiVersion: expected "v1" for Pod, got "apps\/v1"/,
    ],
    [
      'an unknown field, deep',
      pod('x', {}, { imagePullPolicyy: 'Always' }),
      grpc.status.INVALID_ARGUMENT,
      /spec\.containers\[0\]\.imagePullPolicyy: unknown field/,
    ],
    [
      'a wrong type',
      pod('x', { terminationGracePeriodSeconds: 'soon' }),
      grpc.status.INVALID_ARGUMENT,
      /spec\.terminationGracePeriodSeconds: expected integer, got string/,
    ],
    ['an upper-case name', pod('Web'), grpc.status.INVALID_ARGUMENT, /metadata\.name: .*lower/],
    [
      'a name too long',
      pod('a'.repeat(254)),
      grpc.status.INVALID_ARGUMENT,
      /metadata\.name: .*253/,
    ],
    [
      'a bad label value',
      { ...pod('x'), metadata: { name: 'x', labels: { app: '-bad' } } },
      grpc.status.INVALID_ARGUMENT,
      /metadata\.labels/,
    ],
    [
      'a bad port',
      pod('x', {}, { ports: [{ containerPort: 70000 }] }),
      grpc.status.INVALID_ARGUMENT,
      /spec\.containers\[0\]\.ports\[0\]\.containerPort/,
    ],
    [
      'a missing namespace',
      { ...pod('x'), metadata: { name: 'x', namespace: 'nowhere' } },
      grpc.status.NOT_FOUND,
      /namespace "nowhere" not found/,
    ],
    [
      'a container over the LimitRange maximum',
      {
        ...pod('big', {}, { resources: { limits: { memory: '1Gi' } } }),
        metadata: { name: 'big', namespace: 'limited' },
      },
      grpc.status.FAILED_PRECONDITION,
      /maximum memory usage per Container is 512Mi .*but limit is 1Gi/,
    ],
  ];
  for (const [what, obj, code, message] of cases)
    it(`refuses ${what}`, () => refused(obj, code, message));

  it('fills LimitRange defaults, then enforces the ResourceQuota', async () => {
    const r = await client.apply(
      JSON.stringify({ ...pod('first'), metadata: { name: 'first', namespace: 'limited' } }),
    );
    const created = JSON.parse(r.objectJson) as { spec: { containers: { resources: unknown }[] } };
    assert.deepEqual(created.spec.containers[0].resources, {
      limits: { memory: '256Mi' },
      requests: { memory: '128Mi' },
    });
    await refused(
      { ...pod('second'), metadata: { name: 'second', namespace: 'limited' } },
      grpc.status.FAILED_PRECONDITION,
      /Pod "second" in namespace "limited" is forbidden: exceeded quota: small, requested: pods=1, used: pods=1, limited: pods=1/,
    );
    const q = JSON.parse((await client.get('quota', 'limited', 'small')).objectJson) as {
      status: unknown;
    };
    assert.deepEqual(q.status, {
      hard: { pods: '1', 'requests.memory': '1Gi' },
      used: { pods: '1', 'requests.memory': String(128 * 1024 * 1024) },
    });
  });

  it('refuses a create of an existing object (ALREADY_EXISTS) and a delete of a missing one (NOT_FOUND)', async () => {
    await client.apply(
      JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'once' }, data: {} }),
    );
    await refused(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'once' }, data: {} },
      grpc.status.ALREADY_EXISTS,
      /ConfigMap "once" in namespace "default" already exists/,
      'create',
    );
    await assert.rejects(
      client.delete({ kind: 'ConfigMap', name: 'never' }),
      (e: ClientError) =>
        e.code === grpc.status.NOT_FOUND &&
        /ConfigMap "never" in namespace "default" not found/.test(e.message),
    );
    await assert.rejects(
      client.delete({ kind: 'Namespace', name: 'default' }),
      (e: ClientError) =>
        e.code === grpc.status.FAILED_PRECONDITION && /may not be deleted/.test(e.message),
    );
  });

  // The master runs in this process: the CLI must run without blocking it.
  const cli = (args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [BATON_BIN, ...args, '--server', address], (err, stdout, stderr) =>
        resolve({ status: err ? Number(err.code) : 0, stdout, stderr }),
      ),
    );

  it('the CLI names the file and the document of a bad manifest, applies the good ones and exits 1', async () => {
    const f = join(dir, 'mixed.yaml');
    writeFileSync(
      f,
      [
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  a: "1"\n',
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n',
      ].join('---\n'),
    );
    const r = await cli(['apply', '-f', f]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /^configmap\/good created$/m);
    assert.match(r.stderr, /metadata\.name: .*\(.*mixed\.yaml, document 2\)/s);

    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n');
    const r2 = await cli(['apply', '-f', broken]);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /broken\.yaml: document 1 \(line \d+/);
  });
});

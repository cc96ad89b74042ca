import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigMap, Pod, Secret } from '../../src/api/schema';
import { expandVars, PodConfig } from '../../src/node/pod-config';
import { RuntimeError } from '../../src/node/runtime';

const objects: Record<string, ConfigMap | Secret> = {
  'ConfigMap/app': {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'app', namespace: 'default' },
    data: { MODE: 'fast', 'app.conf': 'listen 80\n' },
  } as ConfigMap,
  'Secret/db': {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'default' },
    type: 'Opaque',
    data: { password: Buffer.from('s3cret').toString('base64') },
  } as Secret,
};

const pod = (spec: Partial<Pod['spec']>): Pod =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'uid-1', labels: { app: 'web' } },
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'i' }], ...spec },
  }) as Pod;

describe('pod config: env and volumes resolved on the node', () => {
  let dir: string;
  let cfg: PodConfig;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-podcfg-'));
    cfg = new PodConfig(join(dir, 'pods'), async (kind, _ns, name) => objects[`${kind}/${name}`]);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('expands $(VAR) like Kubernetes: known names, $$ escapes, unknown names stay', () => {
    const vars = new Map([['A', 'x']]);
    assert.equal(expandVars('$(A)-$(B)-$$(A)', vars), 'x-$(B)-$(A)');
  });

  it('resolves envFrom, ConfigMap and Secret keys, the downward API, and references to earlier vars', async () => {
    const p = pod({});
    const env = await cfg.env(
      p,
      {
        name: 'c',
        image: 'i',
        envFrom: [{ prefix: 'CM_', configMapRef: { name: 'app' } }],
        env: [
          { name: 'PASS', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'URL', value: 'db://$(PASS)@$(IP)/$(CM_MODE)' },
          {
            name: 'OPT',
            valueFrom: { configMapKeyRef: { name: 'gone', key: 'k', optional: true } },
          },
        ],
      } as never,
      '10.244.1.5',
      '192.0.2.2',
    );
    assert.deepEqual(Object.fromEntries(env), {
      CM_MODE: 'fast',
      'CM_app.conf': 'listen 80\n',
      PASS: 's3cret',
      POD: 'p',
      APP: 'web',
      IP: '10.244.1.5',
      URL: 'db://s3cret@10.244.1.5/fast',
    });
  });

  it('names the missing ConfigMap, Secret or key as a CreateContainerConfigError', async () => {
    const attempt = (env: unknown) =>
      cfg.env(pod({}), { name: 'c', image: 'i', env } as never, undefined, '192.0.2.2');
    await assert.rejects(
      attempt([{ name: 'X', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k' } } }]),
      (e: RuntimeError) =>
        e.reason === 'CreateContainerConfigError' && e.message === 'configmap "nope" not found',
    );
    await assert.rejects(
      attempt([{ name: 'X', valueFrom: { secretKeyRef: { name: 'db', key: 'user' } } }]),
      /couldn't find key user in Secret default\/db \(env X\)/,
    );
  });

  it('makes emptyDir, checks hostPath, and writes ConfigMap and Secret files with their modes', async () => {
    const hostFile = join(dir, 'host.txt');
    writeFileSync(hostFile, 'x');
    const p = pod({
      volumes: [
        { name: 'scratch', emptyDir: {} },
        { name: 'made', hostPath: { path: join(dir, 'made'), type: 'DirectoryOrCreate' } },
        { name: 'file', hostPath: { path: hostFile, type: 'File' } },
        {
          name: 'conf',
          configMap: {
            name: 'app',
            items: [{ key: 'app.conf', path: 'etc/app.conf', mode: 0o600 }],
          },
        },
        { name: 'sec', secret: { secretName: 'db', defaultMode: 0o400 } },
      ],
    } as never);
    const v = await cfg.volumes(p);
    assert.ok(statSync(v.get('scratch')!).isDirectory());
    assert.ok(statSync(join(dir, 'made')).isDirectory());
    assert.equal(v.get('file'), hostFile);
    assert.equal(readFileSync(join(v.get('conf')!, 'etc/app.conf'), 'utf8'), 'listen 80\n');
    assert.equal(statSync(join(v.get('conf')!, 'etc/app.conf')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(v.get('sec')!, 'password'), 'utf8'), 's3cret');
    assert.equal(statSync(join(v.get('sec')!, 'password')).mode & 0o777, 0o400);

    const launch = await cfg.launch(
      p,
      {
        name: 'c',
        image: 'i',
        command: ['echo', '$(GREETING)'],
        env: [{ name: 'GREETING', value: 'hi' }],
        volumeMounts: [
          { name: 'conf', mountPath: '/etc/app', readOnly: true },
          { name: 'scratch', mountPath: '/data', subPath: 'sub' },
        ],
        resources: { limits: { memory: '64Mi', cpu: '500m' }, requests: { cpu: '250m' } },
      } as never,
      { init: false, restarts: 2, podIP: '10.0.0.1', hostIP: '192.0.2.2', volumes: v },
    );
    assert.deepEqual(launch.command, ['echo', 'hi']);
    assert.deepEqual(launch.mounts, [
      { hostPath: v.get('conf'), containerPath: '/etc/app', readOnly: true },
      { hostPath: join(v.get('scratch')!, 'sub'), containerPath: '/data', readOnly: false },
    ]);
    assert.equal(launch.memoryBytes, 64 * 1024 * 1024);
    assert.equal(launch.nanoCpus, 500_000_000);
    assert.equal(launch.cpuShares, 256);
    assert.equal(launch.restarts, 2);

    cfg.cleanup('uid-1');
    assert.throws(() => statSync(join(dir, 'pods', 'uid-1')));
  });

  it('refuses a hostPath that is not what its type says', async () => {
    await assert.rejects(
      cfg.volumes(
        pod({ volumes: [{ name: 'h', hostPath: { path: dir, type: 'File' } }] } as never),
      ),
      new RegExp(`hostPath volume: ${dir} is not a file`),
    );
  });
});

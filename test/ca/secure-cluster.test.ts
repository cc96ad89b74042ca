/**
 * The secure bootstrap end to end, with real processes on loopback:
 * `baton master --init`, masters and a node joining with tokens, tokens
 * refused when used, rotated, of another role or of another cluster,
 * connections without a valid certificate refused, roles on the RPCs, and
 * certificates renewed before they expire while a pod keeps running.
 */
import { parse as parseYaml } from 'yaml';
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { enroll } from '../../src/ca/enroll';
import { certInfo, createCa, generateKeyPair, issueCertificate } from '../../src/ca/pki';
import {
  anonymousChannelCredentials,
  loadPki,
  TlsIdentity,
  TLS_CHANNEL_OPTIONS,
} from '../../src/ca/tls';
import { BatonClient, ClientError } from '../../src/client/cluster-client';
import { DispatcherClient, LeaderMessage } from '../../src/gen/node';
import { runBaton } from '../support/cli';
import { BATON_BIN } from '../support/master-cluster';
import { freePort } from '../support/raft-kv/processes';
import { until } from '../support/until';

/** Certificates this short-lived are renewed every ~5 s, several times within the suite. */
const CERT_TTL = '8s';

describe('secure cluster: tokens, mutual TLS, roles and certificate renewal (real processes)', function () {
  this.timeout(120_000);
  let dir: string;
  const procs: ChildProcess[] = [];
  const out = new Map<string, string>();
  const addr: string[] = [];
  let adminConf: string;
  let admin: BatonClient;

  function start(name: string, args: string[]): ChildProcess {
    const p = spawn(process.execPath, [BATON_BIN, ...args, '--log-level', 'info'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BATON_LOG_PRETTY: '0' },
    });
    out.set(name, '');
    const keep = (d: Buffer) => out.set(name, out.get(name)! + d.toString());
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    procs.push(p);
    return p;
  }
  const cli = (args: string[], config = adminConf) =>
    runBaton('', args, { BATON_CONFIG: config, BATON_SERVER: '' });
  const tokensOf = (text: string) => [...text.matchAll(/BTN-1-[a-z0-9.-]+/g)].map((m) => m[0]);
  const expectCode = async (p: Promise<unknown>, code: grpc.status, msg: RegExp) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof ClientError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, msg);
      return true;
    });
  };
  const clientWith = (creds: grpc.ChannelCredentials) =>
    new BatonClient([addr[0]], { timeoutMs: 3000, credentials: creds });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-secure-'));
    for (let i = 0; i < 3; i++) addr.push(`127.0.0.1:${await freePort()}`);
    start('m1', [
      'master',
      '--init',
      '--id',
      '1',
      '--listen',
      addr[0],
      '--data-dir',
      join(dir, 'm1'),
      '--cert-ttl',
      CERT_TTL,
    ]);
    await until('the join tokens of --init', () => tokensOf(out.get('m1')!).length === 2, 30_000);
    adminConf = join(dir, 'm1', 'admin.conf');
    const a = loadAdmin(adminConf);
    admin = new BatonClient(addr, {
      timeoutMs: 15_000,
      credentials: a.channelCredentials(['master']),
    });
  });

  after(async () => {
    admin?.close();
    for (const p of procs) p.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed')
      for (const [n, o] of out) process.stderr.write(`--- ${n}\n${o.slice(-3000)}\n`);
  });

  it('--init prints a master and a node token and writes an admin config that works', async () => {
    const text = out.get('m1')!;
    assert.match(text, /Baton cluster baton-[0-9a-f]+ initialized/);
    assert.match(text, /--join 127\.0\.0\.1:\d+ --token BTN-1-/);
    assert.match(text, /baton node --masters 127\.0\.0\.1:\d+ --token BTN-1-/);
    assert.equal(readFileSync(adminConf).length > 0, true);
    const r = await cli(['token', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /master\s+valid\s+0\/1/);
    assert.match(r.stdout, /node\s+valid\s+0\/1/);
  });

  it('two masters join with tokens (one through a follower) and all three vote', async () => {
    const [masterToken] = tokensOf(out.get('m1')!);
    const m = (i: number, via: string, token: string) =>
      start(`m${i}`, [
        'master',
        '--id',
        String(i),
        '--listen',
        addr[i - 1],
        '--data-dir',
        join(dir, `m${i}`),
        '--join',
        via,
        '--token',
        token,
        '--cert-ttl',
        CERT_TTL,
      ]);
    m(2, addr[0], masterToken);
    await until('master 2 a voter', async () => {
      const s = await admin.status();
      return s.members.filter((x) => x.voter && x.healthy).length === 2;
    });
    const t3 = await cli(['token', 'create', '--role', 'master']);
    assert.equal(t3.code, 0, t3.stderr);
    m(3, addr[1], t3.stdout.trim());
    await until('three healthy voters', async () => {
      const s = await admin.status();
      return s.members.filter((x) => x.voter && x.healthy).length === 3;
    });
    // Every master received the same CA and the Secrets key.
    const key = readFileSync(join(dir, 'm1', 'pki', 'secrets.key'));
    for (const i of [2, 3]) {
      assert.deepEqual(readFileSync(join(dir, `m${i}`, 'pki', 'secrets.key')), key);
      assert.equal(
        readFileSync(join(dir, `m${i}`, 'pki', 'ca.crt'), 'utf8'),
        readFileSync(join(dir, 'm1', 'pki', 'ca.crt'), 'utf8'),
      );
    }
  });

  it('refuses a used token, a rotated one, one of another role (unspent) and one of another cluster (before sending it)', async () => {
    const [masterToken] = tokensOf(out.get('m1')!);
    await assert.rejects(
      enroll(addr[1], masterToken, 'master-9', 'master'),
      /already used \(1 use\); ask an admin for a new one/,
    );
    const nodeToken = (await cli(['token', 'create', '--role', 'node'])).stdout.trim();
    await assert.rejects(
      enroll(addr[0], nodeToken, 'master-9', 'master'),
      /it is a node token, and a master token is needed here \(the token was not used\)/,
    );
    const rot = await cli(['token', 'rotate', '--role', 'node']);
    assert.equal(rot.code, 0, rot.stderr);
    assert.match(rot.stderr, /node token\(s\) rotated/);
    await assert.rejects(enroll(addr[0], nodeToken, 'n9', 'node'), /it was rotated at /);
    const other = await createCa();
    const foreign = nodeToken.replace(/^BTN-1-[a-z2-7]{52}/, `BTN-1-${'a'.repeat(52)}`);
    assert.notEqual(foreign, nodeToken, other.cluster);
    await assert.rejects(
      enroll(addr[0], foreign, 'n9', 'node'),
      /holds another CA than the token names .* nothing was sent/,
    );
    await assert.rejects(enroll(addr[0], 'hello', 'n9', 'node'), /not a Baton join token/);
  });

  it('refuses calls without a certificate, with one of another CA, and plaintext connections', async () => {
    const ca = readFileSync(join(dir, 'm1', 'pki', 'ca.crt'), 'utf8');
    const anon = clientWith(anonymousChannelCredentials(ca, ['master']));
    await expectCode(
      anon.list({ kind: 'Pod' }),
      grpc.status.UNAUTHENTICATED,
      /a client certificate issued by this cluster's CA is required/,
    );
    anon.close();
    const other = await createCa();
    const key = generateKeyPair();
    const cert = await issueCertificate(other, {
      name: 'mallory',
      role: 'admin',
      publicKeyPem: key.publicKeyPem,
    });
    // Trusting our CA for the server, showing a certificate of another CA.
    const forged = grpc.credentials.createSsl(
      Buffer.from(ca),
      Buffer.from(key.privateKeyPem),
      Buffer.from(cert),
      { checkServerIdentity: () => undefined },
    );
    const f = clientWith(forged);
    await expectCode(f.list({ kind: 'Pod' }), grpc.status.UNAUTHENTICATED, /certificate/);
    f.close();
    const plain = new BatonClient([addr[0]], { timeoutMs: 2000 });
    await assert.rejects(plain.list({ kind: 'Pod' }), (e: unknown) => {
      assert.ok(e instanceof ClientError);
      assert.notEqual(e.code, grpc.status.OK);
      return true;
    });
    plain.close();
  });

  it('a read-only user reads everything but Secrets and writes nothing', async () => {
    const t = (await cli(['token', 'create', '--role', 'readonly'])).stdout.trim();
    const conf = join(dir, 'alice.conf');
    const login = await runBaton(addr[2], ['login', '--token', t, '--user', 'alice'], {
      BATON_CONFIG: conf,
    });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /logged in as readonly "alice"/);
    assert.equal(
      (await cli(['create', 'secret', 'generic', 'db', '--from-literal', 'pw=x'])).code,
      0,
    );
    const get = await cli(['get', 'pods'], conf);
    assert.equal(get.code, 0, get.stderr);
    const create = await cli(['create', 'configmap', 'x', '--from-literal', 'a=b'], conf);
    assert.equal(create.code, 1);
    assert.match(create.stderr, /readonly "alice" may not call this/);
    const secrets = await cli(['get', 'secret', 'db'], conf);
    assert.equal(secrets.code, 1);
    assert.match(secrets.stderr, /readonly "alice" may not read Secrets/);
    const all = await cli(['get', 'secrets'], conf);
    assert.match(all.stderr, /may not list Secret objects/);
  });

  it('a node reads only its own Node and what its pods use, and opens a session only as itself', async () => {
    const t = (await cli(['token', 'create', '--role', 'node'])).stdout.trim();
    const got = await enroll(addr[0], t, 'edge-1', 'node');
    const me = new TlsIdentity(got.caCertPem, got.certPem, got.key.privateKeyPem);
    const node = clientWith(me.channelCredentials(['master']));
    await cli(['create', 'secret', 'generic', 'used', '--from-literal', 'k=v']);
    await expectCode(node.list({ kind: 'Pod' }), grpc.status.PERMISSION_DENIED, /node "edge-1"/);
    await expectCode(
      node.get('Secret', 'default', 'used'),
      grpc.status.PERMISSION_DENIED,
      /no pod on this node uses it/,
    );
    // A pod bound to edge-1 that mounts the Secret makes it readable to edge-1 only.
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'uses-secret', namespace: 'default' },
      spec: {
        nodeName: 'edge-1',
        containers: [{ name: 'c', image: 'baton/busybox', command: ['sleep', '1'] }],
        volumes: [{ name: 's', secret: { secretName: 'used' } }],
      },
    };
    await admin.create(JSON.stringify(pod));
    const s = JSON.parse((await node.get('Secret', 'default', 'used')).objectJson);
    assert.equal(Buffer.from(s.data.k, 'base64').toString(), 'v');
    await expectCode(
      node.get('Secret', 'default', 'db'),
      grpc.status.PERMISSION_DENIED,
      /no pod on this node uses it/,
    );
    await expectCode(node.get('Node', '', 'node-x'), grpc.status.PERMISSION_DENIED, /read Node/);
    await expectCode(
      node.create(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })),
      grpc.status.PERMISSION_DENIED,
      /may not create ConfigMap objects/,
    );
    node.close();
    // A dispatcher session under another node's name is refused.
    const d = new DispatcherClient(addr[0], me.channelCredentials(['master']), TLS_CHANNEL_OPTIONS);
    const leader = (await admin.status()).leaderAddress;
    const dl = new DispatcherClient(leader, me.channelCredentials(['master']), TLS_CHANNEL_OPTIONS);
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const call = dl.session();
      call.on('data', (_m: LeaderMessage) => {});
      call.on('error', resolve);
      call.write({ msg: { $case: 'hello', value: { nodeName: 'node-x', nodeJson: '{}' } } });
    });
    assert.equal(err.code, grpc.status.PERMISSION_DENIED, err.details);
    assert.match(err.details, /node "edge-1" may not open a session as node "node-x"/);
    d.close();
    dl.close();
  });

  it('a node joins with a token; certificates are renewed before expiry while its pod keeps running', async () => {
    const nodeToken = (await cli(['token', 'create', '--role', 'node'])).stdout.trim();
    const nodeDir = join(dir, 'n1');
    start('n1', [
      'node',
      '--name',
      'n1',
      '--masters',
      addr.join(','),
      '--token',
      nodeToken,
      '--runtime',
      'exec',
      '--listen',
      `127.0.0.1:${await freePort()}`,
      '--address',
      '127.0.0.1',
      '--proxy-mode',
      'none',
      '--data-dir',
      nodeDir,
    ]);
    const ready = async () => {
      const n = JSON.parse((await admin.get('Node', '', 'n1')).objectJson);
      return n.status.conditions.some(
        (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
      );
    };
    await until('n1 Ready', ready, 30_000);
    const r = await cli([
      'create',
      'deployment',
      'sleeper',
      '--image',
      'baton/busybox',
      '--',
      'sleep',
      '3600',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const running = async () => {
      const pods = (await admin.list({ kind: 'Pod', labelSelector: 'app=sleeper' })).itemsJson.map(
        (j) => JSON.parse(j),
      );
      return pods.length === 1 && pods[0].status?.phase === 'Running' ? pods[0] : undefined;
    };
    await until('the pod running on n1', async () => (await running()) !== undefined, 30_000);
    const before = (await running())!;
    const nodeCert = () => loadPki(join(nodeDir, 'pki')).certPem;
    const masterCert = () => loadPki(join(dir, 'm1', 'pki')).certPem;
    const first = certInfo(nodeCert());
    const firstMaster = certInfo(masterCert());
    // Past the first certificates' expiry, with at least two renewals each.
    const seen = new Set([first.serial]);
    const seenMaster = new Set([firstMaster.serial]);
    await until(
      'two renewals of the node and master certificates, past the first ones’ expiry',
      () => {
        seen.add(certInfo(nodeCert()).serial);
        seenMaster.add(certInfo(masterCert()).serial);
        return (
          seen.size >= 3 && seenMaster.size >= 3 && Date.now() > first.notAfter.getTime() + 1000
        );
      },
      40_000,
    );
    const after = (await running())!;
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.equal(after.status.containerStatuses[0].restartCount, 0);
    assert.equal(
      after.status.containerStatuses[0].containerID,
      before.status.containerStatuses[0].containerID,
    );
    assert.ok(await ready(), 'n1 still Ready');
    // New connections (master → node for exec, the CLI → masters) use the renewed certificates.
    const exec = await cli(['exec', before.metadata.name, '--', 'echo', 'still-here']);
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(exec.stdout, /still-here/);
    assert.match(out.get('n1')!, /certificate renewed/);
  });
});

function loadAdmin(file: string): TlsIdentity {
  const c = parseYaml(readFileSync(file, 'utf8')) as { ca: string; cert: string; key: string };
  return new TlsIdentity(c.ca, c.cert, c.key);
}

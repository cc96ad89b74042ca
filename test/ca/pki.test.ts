import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { decide, RULES } from '../../src/ca/authz';
import {
  caDigest,
  certTtlFor,
  createCa,
  generateKeyPair,
  identityOf,
  issueCertificate,
  verifyIssuedBy,
} from '../../src/ca/pki';
import { renewalTime } from '../../src/ca/renewal';
import { TlsIdentity } from '../../src/ca/tls';
import {
  formatToken,
  newToken,
  parseToken,
  readRecord,
  revokedSecret,
  tokenSecret,
  useToken,
} from '../../src/ca/tokens';
import { ClusterService } from '../../src/gen/api';
import { DispatcherService, NodeApiService } from '../../src/gen/node';
import { RaftTransportService } from '../../src/gen/raft';
import { referencedBy } from '../../src/master/access';

describe('ca: the cluster CA, certificates and identities', () => {
  it('issues certificates whose subject names the holder, its role and the cluster', async () => {
    const ca = await createCa();
    const key = generateKeyPair();
    const cert = await issueCertificate(ca, {
      name: 'node-1',
      role: 'node',
      publicKeyPem: key.publicKeyPem,
      hosts: ['10.0.0.5', 'vm5.example'],
    });
    assert.deepEqual(identityOf(cert), { name: 'node-1', role: 'node', cluster: ca.cluster });
    verifyIssuedBy(cert, ca.certPem);
    const id = new TlsIdentity(ca.certPem, cert, key.privateKeyPem);
    assert.equal(id.identity.role, 'node');
  });

  it('refuses a certificate of another CA, a mismatched key and bad names', async () => {
    const ca = await createCa();
    const other = await createCa();
    const key = generateKeyPair();
    const foreign = await issueCertificate(other, {
      name: 'x',
      role: 'admin',
      publicKeyPem: key.publicKeyPem,
    });
    assert.throws(() => verifyIssuedBy(foreign, ca.certPem), /not signed by the cluster CA/);
    const mine = await issueCertificate(ca, {
      name: 'x',
      role: 'admin',
      publicKeyPem: key.publicKeyPem,
    });
    assert.throws(
      () => new TlsIdentity(ca.certPem, mine, generateKeyPair().privateKeyPem),
      /private key does not belong/,
    );
    await assert.rejects(
      issueCertificate(ca, { name: 'Bad_Name', role: 'node', publicKeyPem: key.publicKeyPem }),
      /name "Bad_Name": must be lowercase/,
    );
    await assert.rejects(
      issueCertificate(ca, { name: 'n', role: 'node', publicKeyPem: 'nonsense' }),
      /public key: not a PEM public key/,
    );
  });

  it('renews at two thirds of the lifetime, after the certificate was made even when it is short', async () => {
    const ca = await createCa();
    const key = generateKeyPair();
    const now = new Date();
    const cert = await issueCertificate(ca, {
      name: 'm',
      role: 'master',
      publicKeyPem: key.publicKeyPem,
      ttlMs: 9000,
      now,
    });
    const c = new TlsIdentity(ca.certPem, cert, key.privateKeyPem);
    const at = renewalTime(new Date(now.getTime() - 900), c.notAfter).getTime() - now.getTime();
    assert.ok(at > 4000 && at < 7000, `renewal ${at} ms after issue`);
  });

  it('gives a person a year at least (nothing renews their certificate), daemons the cluster TTL', () => {
    const day = 86_400_000;
    assert.equal(certTtlFor('node', 90 * day), 90 * day);
    assert.equal(certTtlFor('master', 2 * day), 2 * day);
    assert.equal(certTtlFor('admin', 90 * day), 365 * day);
    assert.equal(certTtlFor('readonly', 90 * day), 365 * day);
    assert.equal(certTtlFor('admin', 800 * day), 800 * day);
  });
});

describe('ca: join tokens', () => {
  it('round-trips the token format and refuses anything else, naming the expected form', async () => {
    const ca = await createCa();
    const t = newToken(ca.certPem);
    assert.equal(t.caDigest, caDigest(ca.certPem));
    assert.deepEqual(parseToken(formatToken(t)), t);
    for (const bad of ['', 'BTN-1-abc', formatToken(t).toUpperCase(), formatToken(t) + 'x'])
      assert.throws(() => parseToken(bad), /token: not a Baton join token \(expected BTN-1-/);
  });

  it('counts uses, and refuses a used, expired, rotated or wrong-secret token saying which', async () => {
    const ca = await createCa();
    const t = newToken(ca.certPem);
    const now = new Date('2026-01-01T00:00:00Z');
    const rec = {
      ...tokenSecret(t, { role: 'node', uses: 2, expires: new Date('2026-01-02T00:00:00Z') }),
    };
    rec.metadata.uid = 'u';
    const once = useToken(rec, t, now);
    assert.equal(once.role, 'node');
    assert.equal(readRecord(once.next).usesLeft, 1);
    const twice = useToken(once.next, t, now);
    assert.throws(() => useToken(twice.next, t, now), /already used \(2 uses\)/);
    assert.throws(() => useToken(rec, t, new Date('2026-01-03T00:00:00Z')), /expired at/);
    assert.throws(() => useToken(revokedSecret(rec, now), t, now), /was rotated at/);
    assert.throws(
      () => useToken(rec, { ...t, secret: 'x'.repeat(24) }, now),
      /the secret does not match/,
    );
    // The record holds a hash, never the secret.
    assert.ok(!JSON.stringify(rec).includes(t.secret));
    assert.ok(!JSON.stringify(rec).includes(Buffer.from(t.secret).toString('base64')));
  });
});

describe('ca: who may call what', () => {
  const cluster = 'baton-test';
  const as = (role: 'master' | 'node' | 'admin' | 'readonly', name = 'x') => ({
    name,
    role,
    cluster,
  });

  it('lists every RPC of every service (a new RPC cannot ship open by accident)', () => {
    const open = ['/baton.api.Cluster/GetCa', '/baton.api.Cluster/Enroll'];
    for (const svc of [ClusterService, DispatcherService, NodeApiService, RaftTransportService])
      for (const m of Object.values(svc))
        assert.ok(RULES[m.path] || open.includes(m.path), `${m.path} has no rule`);
  });

  const cases: [string, ReturnType<typeof as> | undefined, boolean | grpc.status][] = [
    ['/baton.api.Cluster/GetCa', undefined, true],
    ['/baton.api.Cluster/Enroll', undefined, true],
    ['/baton.api.Cluster/List', undefined, grpc.status.UNAUTHENTICATED],
    ['/baton.api.Cluster/List', { ...as('admin'), cluster: 'other' }, grpc.status.UNAUTHENTICATED],
    ['/baton.api.Cluster/Apply', as('admin'), true],
    ['/baton.api.Cluster/Apply', as('readonly'), grpc.status.PERMISSION_DENIED],
    ['/baton.api.Cluster/List', as('readonly'), true],
    ['/baton.api.Cluster/Exec', as('readonly'), grpc.status.PERMISSION_DENIED],
    ['/baton.api.Cluster/List', as('node'), grpc.status.PERMISSION_DENIED],
    ['/baton.api.Cluster/Get', as('node'), true],
    ['/baton.api.Cluster/Delete', as('node'), grpc.status.PERMISSION_DENIED],
    ['/baton.node.Dispatcher/Session', as('node'), true],
    ['/baton.node.Dispatcher/Session', as('admin'), grpc.status.PERMISSION_DENIED],
    ['/baton.raft.RaftTransport/Send', as('admin'), grpc.status.PERMISSION_DENIED],
    ['/baton.raft.RaftTransport/Send', as('master'), true],
    ['/baton.node.NodeApi/Exec', as('admin'), grpc.status.PERMISSION_DENIED],
    ['/baton.api.Cluster/Unknown', as('master'), grpc.status.PERMISSION_DENIED],
  ];
  for (const [method, who, want] of cases)
    it(`${method} by ${who ? `${who.role}${who.cluster !== cluster ? ' of another cluster' : ''}` : 'no certificate'}: ${want === true ? 'allowed' : grpc.status[want as number]}`, () => {
      const d = decide(method, who, cluster);
      if (want === true) assert.ok(d.ok);
      else {
        assert.ok(!d.ok);
        assert.equal(d.code, want);
        assert.ok(d.details.startsWith(method));
      }
    });

  it('finds every Secret and ConfigMap a pod uses (what its node may read)', () => {
    const r = referencedBy({
      containers: [
        {
          env: [
            { valueFrom: { secretKeyRef: { name: 's-env' } } },
            { valueFrom: { configMapKeyRef: { name: 'c-env' } } },
          ],
          envFrom: [{ secretRef: { name: 's-from' } }, { configMapRef: { name: 'c-from' } }],
        },
      ],
      initContainers: [{ env: [{ valueFrom: { secretKeyRef: { name: 's-init' } } }] }],
      volumes: [
        { secret: { secretName: 's-vol' } },
        { configMap: { name: 'c-vol' } },
        {
          projected: {
            sources: [{ secret: { name: 's-proj' } }, { configMap: { name: 'c-proj' } }],
          },
        },
      ],
      imagePullSecrets: [{ name: 's-pull' }],
    });
    assert.deepEqual([...r.Secret].sort(), [
      's-env',
      's-from',
      's-init',
      's-proj',
      's-pull',
      's-vol',
    ]);
    assert.deepEqual([...r.ConfigMap].sort(), ['c-env', 'c-from', 'c-proj', 'c-vol']);
  });
});

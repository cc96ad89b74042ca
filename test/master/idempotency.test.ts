import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { IDEMPOTENCY_KEY } from '../../src/api/idempotency';
import { ApiError } from '../../src/master/api-error';
import { digestOf, FORWARDED, forwardKey, keyed, writeKey } from '../../src/master/idempotency';

/** A server call as the authorization code sees it: metadata, and the peer's certificate subject. */
function call(
  md: Record<string, string>,
  subject?: Record<string, string>,
  request: unknown = { objectJson: '{"kind":"ConfigMap"}', dryRun: false },
) {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(md)) metadata.set(k, v);
  return {
    metadata,
    request,
    getAuthContext: () => (subject ? { sslPeerCertificate: { subject } } : {}),
  };
}
/** The scoped key alone. */
const requestKey = (c: ReturnType<typeof call>) => writeKey(c, 'apply')?.key;
const alice = { CN: 'alice', OU: 'admin', O: 'c1' };
const bob = { CN: 'bob', OU: 'admin', O: 'c1' };

describe('idempotency keys of writes', () => {
  it('scope a client key to its caller, so that nobody shares or reads another caller key', () => {
    const k = 'Zm9vYmFyYmF6cXV1eA';
    assert.equal(requestKey(call({ [IDEMPOTENCY_KEY]: k }, alice)), `admin:alice/${k}`);
    assert.notEqual(
      requestKey(call({ [IDEMPOTENCY_KEY]: k }, alice)),
      requestKey(call({ [IDEMPOTENCY_KEY]: k }, bob)),
    );
    // Without TLS there are no callers to tell apart.
    assert.equal(requestKey(call({ [IDEMPOTENCY_KEY]: k })), `-/${k}`);
    assert.equal(requestKey(call({})), undefined);
  });

  it('pass the scoped key and the digest of the client request on when a master forwards the write', () => {
    const sent = writeKey(call({ [IDEMPOTENCY_KEY]: 'abcdefgh' }, alice), 'apply')!;
    const md = new grpc.Metadata();
    md.set(FORWARDED, '2');
    forwardKey(md, sent);
    const master = { CN: 'master-2', OU: 'master', O: 'c1' };
    // The forwarding master sends the validated object, not the client's text: the digest is the client's.
    const leaderSees = {
      metadata: md,
      request: { objectJson: '{"kind":"ConfigMap","metadata":{}}', dryRun: false },
      getAuthContext: () => ({ sslPeerCertificate: { subject: master } }),
    };
    assert.deepEqual(writeKey(leaderSees, 'apply'), {
      key: 'admin:alice/abcdefgh',
      digest: sent.digest,
    });
    // The scoped key counts only on a forwarded call (ca/authz drops baton-* metadata from non-masters).
    const md2 = new grpc.Metadata();
    forwardKey(md2, sent);
    md2.set(IDEMPOTENCY_KEY, 'mine-mine');
    assert.equal(
      writeKey(
        {
          metadata: md2,
          request: {},
          getAuthContext: () => ({ sslPeerCertificate: { subject: bob } }),
        },
        'apply',
      )?.key,
      'admin:bob/mine-mine',
    );
  });

  it('tell requests apart by method and fields, and a retry from its original by neither', () => {
    const req = { objectJson: '{"kind":"ConfigMap","metadata":{"name":"a"}}', dryRun: false };
    const k = { [IDEMPOTENCY_KEY]: 'abcdefgh' };
    const d = writeKey(call(k, alice, req), 'apply')!.digest!;
    assert.match(d, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(writeKey(call(k, alice, { ...req }), 'apply')!.digest, d, 'a retry');
    assert.equal(digestOf('apply', req), d);
    assert.notEqual(writeKey(call(k, alice, req), 'create')!.digest, d, 'another method');
    assert.notEqual(
      writeKey(
        call(k, alice, { ...req, objectJson: req.objectJson.replace('"a"', '"b"') }),
        'apply',
      )!.digest,
      d,
      'another object',
    );
  });

  it('refuse a malformed key, naming the metadata', () => {
    for (const bad of ['short', 'has space in it', 'x'.repeat(65), 'slash/inside'])
      assert.throws(
        () => requestKey(call({ [IDEMPOTENCY_KEY]: bad })),
        (e: Error) =>
          e instanceof ApiError &&
          e.code === grpc.status.INVALID_ARGUMENT &&
          /^metadata idempotency-key: must be 8 to 64 letters/.test(e.message),
      );
  });

  it('wrap a keyed command for the log, and leave an unkeyed one as it is', () => {
    const cmd = { op: 'delete', kind: 'ConfigMap', name: 'a', propagation: 'Background' } as const;
    assert.deepEqual(keyed(cmd, { key: '-/k', digest: 'd' }, 5), {
      op: 'once',
      key: '-/k',
      digest: 'd',
      at: 5,
      command: cmd,
    });
    assert.equal(keyed(cmd, undefined, 5), cmd);
  });
});

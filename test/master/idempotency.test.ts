import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { IDEMPOTENCY_KEY } from '../../src/api/idempotency';
import { ApiError } from '../../src/master/api-error';
import { FORWARDED, forwardKey, keyed, requestKey } from '../../src/master/idempotency';

/** A server call as the authorization code sees it: metadata, and the peer's certificate subject. */
function call(md: Record<string, string>, subject?: Record<string, string>) {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(md)) metadata.set(k, v);
  return {
    metadata,
    getAuthContext: () => (subject ? { sslPeerCertificate: { subject } } : {}),
  };
}
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

  it('pass the scoped key on when a master forwards the write to the leader', () => {
    const scoped = requestKey(call({ [IDEMPOTENCY_KEY]: 'abcdefgh' }, alice));
    const md = new grpc.Metadata();
    md.set(FORWARDED, '2');
    forwardKey(md, scoped);
    const master = { CN: 'master-2', OU: 'master', O: 'c1' };
    const leaderSees = {
      metadata: md,
      getAuthContext: () => ({ sslPeerCertificate: { subject: master } }),
    };
    assert.equal(requestKey(leaderSees), 'admin:alice/abcdefgh');
    // The scoped key counts only on a forwarded call (ca/authz drops baton-* metadata from non-masters).
    const md2 = new grpc.Metadata();
    forwardKey(md2, 'admin:alice/abcdefgh');
    md2.set(IDEMPOTENCY_KEY, 'mine-mine');
    assert.equal(
      requestKey({
        metadata: md2,
        getAuthContext: () => ({ sslPeerCertificate: { subject: bob } }),
      }),
      'admin:bob/mine-mine',
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
    assert.deepEqual(keyed(cmd, '-/k', 5), { op: 'once', key: '-/k', at: 5, command: cmd });
    assert.equal(keyed(cmd, undefined, 5), cmd);
  });
});

import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { ClusterClient, ClusterService, VersionResponse } from '../../src/gen/api';
import { featuresOf, joinRefusal, KEYED_WRITES, MASTER_FEATURES } from '../../src/master/features';
import { ClusterStore } from '../../src/master/store/cluster-store';
import { Command } from '../../src/master/store/commands';

/** A master's Version endpoint on loopback, answering with these features (none: an older release). */
async function versionServer(features?: string[]) {
  const server = new grpc.Server();
  server.addService(ClusterService, {
    version: (
      _call: grpc.ServerUnaryCall<unknown, VersionResponse>,
      cb: grpc.sendUnaryData<VersionResponse>,
    ) =>
      // No features is what an older release sends: an empty repeated field is not on the wire.
      cb(null, { version: '0.1.0', nodeName: 'master-4', features: features ?? [] }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const client = new ClusterClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    client,
    close: () => {
      client.close();
      server.forceShutdown();
    },
  };
}

const apply = (store: ClusterStore, c: Command) =>
  store.apply(Buffer.from(JSON.stringify(c)), store.revision + 1);

describe('log features (rolling upgrades never split the masters)', () => {
  it('this release has keyed writes', () => {
    assert.ok(MASTER_FEATURES.includes(KEYED_WRITES));
  });

  it('a feature entry turns it on, in every replica and in snapshots', async () => {
    const store = new ClusterStore();
    assert.equal(store.features.has(KEYED_WRITES), false);
    assert.ok(apply(store, { op: 'feature', name: KEYED_WRITES }).ok);
    assert.ok(store.features.has(KEYED_WRITES));
    for (const snap of [store.snapshot(), await store.capture()]) {
      const restored = new ClusterStore();
      restored.restore(snap);
      assert.deepEqual([...restored.features], [KEYED_WRITES]);
      assert.ok(Buffer.from(restored.snapshot()).equals(Buffer.from(store.snapshot())));
    }
    const old = new ClusterStore();
    old.restore(Buffer.from('{"revision":3,"objects":[]}'));
    assert.equal(old.features.size, 0);
  });

  it('reads the features a master answers with, none from an older release', async () => {
    const now = await versionServer([KEYED_WRITES]);
    const before = await versionServer();
    try {
      assert.deepEqual(await featuresOf(now.client), [KEYED_WRITES]);
      assert.deepEqual(await featuresOf(before.client), []);
    } finally {
      now.close();
      before.close();
    }
  });

  it('refuses a master of an older release once the cluster uses a feature it lacks', async () => {
    const old = await versionServer();
    const current = await versionServer([KEYED_WRITES]);
    try {
      const store = new ClusterStore();
      // Nothing turned on yet: anyone may join (the leader will wait for it).
      assert.equal(await joinRefusal(store, old.client, 4), undefined);
      apply(store, { op: 'feature', name: KEYED_WRITES });
      assert.equal(
        await joinRefusal(store, old.client, 4),
        'master 4 runs a release without the log feature(s) keyed-writes this cluster uses: upgrade it first',
      );
      assert.equal(await joinRefusal(store, current.client, 4), undefined);
    } finally {
      old.close();
      current.close();
    }
  });

  it('a master that does not answer is asked to retry', async () => {
    const gone = await versionServer([KEYED_WRITES]);
    gone.close();
    const client = new ClusterClient('127.0.0.1:1', grpc.credentials.createInsecure());
    try {
      const store = new ClusterStore();
      apply(store, { op: 'feature', name: KEYED_WRITES });
      assert.match(
        (await joinRefusal(store, client, 5)) ?? '',
        /^master 5 does not answer Version .*; retry$/,
      );
    } finally {
      client.close();
    }
  });
});

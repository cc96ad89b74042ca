import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { ANSWERED_BY } from '../../src/api/answered-by';
import { BatonClient } from '../../src/client/cluster-client';
import { ClusterService, WriteResponse } from '../../src/gen/api';
import { MasterCluster } from '../support/master-cluster';
import { freePort } from '../support/raft-kv/processes';

const configMap = (name: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name },
  data: { v: '1' },
});

/**
 * A master whose leader just died: until `electedAt` it answers writes as a
 * follower forwarding to a dead leader does (UNAVAILABLE, quoting the
 * refused connection), marked as its own answer; then it takes them.
 */
async function survivor(electedAt: number, deadLeader: string) {
  const server = new grpc.Server();
  server.addService(ClusterService, {
    apply: (
      _call: grpc.ServerUnaryCall<unknown, WriteResponse>,
      cb: grpc.sendUnaryData<WriteResponse>,
    ) => {
      if (Date.now() < electedAt) {
        const metadata = new grpc.Metadata();
        metadata.set(ANSWERED_BY, '2');
        cb({
          code: grpc.status.UNAVAILABLE,
          details: `master 2 cannot reach the leader (1 at ${deadLeader}): No connection established. Last error: Error: connect ECONNREFUSED ${deadLeader}. Resolution note: ; retry`,
          metadata,
        });
        return;
      }
      cb(null, { objectJson: '{}', warnings: [], revision: 7, created: true, unchanged: false });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { address: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

describe('masters: a write right after the leader died waits out the election', function () {
  this.timeout(120_000);

  // A follower that cannot reach the dead leader answers with that
  // connection's error. The client took such answers for the masters being
  // down and gave up after three rounds and two seconds ("no master
  // answered", every master quoting the dead leader's ECONNREFUSED) while
  // the survivors were still electing: a failure seen once in CI in the
  // kill -9 case of masters.test.ts.
  it('a client keeps trying masters that answer, even with a connection error of theirs', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const survivors = [await survivor(started + 4000, dead), await survivor(started + 4000, dead)];
    const client = new BatonClient([dead, ...survivors.map((s) => s.address)], {
      timeoutMs: 15_000,
    });
    try {
      const r = await client.apply(JSON.stringify(configMap('after')));
      assert.equal(r.revision, 7);
      assert.ok(Date.now() - started >= 4000);
    } finally {
      client.close();
      for (const s of survivors) s.stop();
    }
  });

  it('nobody listening anywhere still fails fast', async () => {
    const client = new BatonClient(
      [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`],
      { timeoutMs: 120_000 },
    );
    const started = Date.now();
    try {
      await assert.rejects(client.apply(JSON.stringify(configMap('x'))), /no master answered/);
      // Gave up on its own (three rounds), long before its deadline.
      assert.ok(Date.now() - started < 60_000, `${Date.now() - started} ms`);
    } finally {
      client.close();
    }
  });

  describe('three real masters, elections after 4-8 s', () => {
    let c: MasterCluster;

    before(async () => {
      // Elections after 80-160 ticks of 50 ms: longer than the client's
      // "nobody is listening" cut-off (three rounds, two seconds), as a
      // loaded machine (slow ticks, slow fsyncs, a split vote) can make the
      // default 1-2 s.
      c = await MasterCluster.start(3, ['--admission', 'leader', '--election-ticks', '80']);
      await c.leader(20_000);
    });
    after(async () => {
      await c?.stop();
    });

    it('a write through the survivors of a kill -9 of the leader is answered once they elect one', async () => {
      const client = c.client();
      try {
        await client.apply(JSON.stringify(configMap('before')));
        await c.kill(await c.leader());
        const r = await client.apply(JSON.stringify(configMap('after')));
        assert.equal(r.created, true);
      } finally {
        client.close();
      }
    });
  });
});

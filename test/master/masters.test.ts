import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { ApiObject } from '../../src/api/types';
import { BatonClient, ClientError } from '../../src/client/cluster-client';
import { IDEMPOTENCY_KEY } from '../../src/api/idempotency';
import {
  ClusterClient,
  DeleteResponse,
  EventType,
  WatchEvent,
  WriteResponse,
} from '../../src/gen/api';
import { MasterCluster } from '../support/master-cluster';
import { until } from '../support/until';

const deployment = (name: string, replicas = 2, image = 'nginx:1.27') => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, labels: { app: name } },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'web', image }] },
    },
  },
});
const configMap = (name: string, v: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name },
  data: { v },
});

const parse = (json: string) => JSON.parse(json) as ApiObject;

async function rejects(p: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof ClientError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

/** One call to one master with an idempotency key, as any gRPC client would send it (no retries). */
function keyedCall<Res>(address: string, method: string, req: object, key: string): Promise<Res> {
  const raw = new ClusterClient(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set(IDEMPOTENCY_KEY, key);
  const methods = raw as unknown as Record<
    string,
    (r: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, res: Res) => void) => void
  >;
  return new Promise<Res>((resolve, reject) =>
    methods[method].call(raw, req, md, (e, res) => (e ? reject(e) : resolve(res))),
  ).finally(() => raw.close());
}

// Both ways of admitting writes: forwarded to the leader's API, or admitted
// where they arrive with Raft forwarding the proposal.
for (const admission of ['leader', 'local'])
  describe(`masters: three real \`baton master\` processes (--admission ${admission})`, function () {
    this.timeout(120_000);
    let c: MasterCluster;
    let client: BatonClient;

    before(async () => {
      c = await MasterCluster.start(3, ['--admission', admission]);
      client = c.client();
      await c.leader();
    });
    after(async () => {
      client?.close();
      await c?.stop();
    });
    // A failure here once left two masters without a leader for a minute (CI, not reproduced):
    // what each master logged says why the next time.
    afterEach(function () {
      if (this.currentTest?.state !== 'failed') return;
      for (const [id, text] of c?.logs ?? []) process.stderr.write(`--- master ${id}\n${text}\n`);
    });

    it('applies a Deployment through any master and reads it back from every master', async () => {
      const r = await c.client([2]).apply(JSON.stringify(deployment('web')));
      assert.equal(r.created, true);
      const o = parse(r.objectJson);
      assert.equal(o.metadata.namespace, 'default');
      assert.equal(o.metadata.resourceVersion, String(r.revision));
      assert.equal(o.metadata.generation, 1);
      assert.match(o.metadata.uid!, /^[0-9a-f-]{36}$/);
      // Defaults were filled in by the server.
      assert.deepEqual((o.spec as { strategy: unknown }).strategy, {
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
      });
      for (const id of c.ids()) {
        const one = c.client([id]);
        const g = await one.get('deployments', 'default', 'web');
        one.close();
        assert.equal(parse(g.objectJson).metadata.uid, o.metadata.uid, `master ${id}`);
      }
      // Applying the same manifest again changes nothing.
      const again = await client.apply(JSON.stringify(deployment('web')));
      assert.equal(again.unchanged, true);
      // ...and keeps what the deployment controller added since.
      await until('the revision annotation', async () => {
        const g = await client.get('deployments', 'default', 'web');
        return (
          parse(g.objectJson).metadata.annotations?.['deployment.kubernetes.io/revision'] === '1'
        );
      });
      const third = await client.apply(JSON.stringify(deployment('web')));
      assert.equal(third.unchanged, true);
      assert.equal(
        parse(third.objectJson).metadata.annotations?.['deployment.kubernetes.io/revision'],
        '1',
      );
      // A changed spec bumps the generation.
      const changed = await client.apply(JSON.stringify(deployment('web', 5)));
      assert.equal(parse(changed.objectJson).metadata.generation, 2);
    });

    it('lists with label and field selectors', async () => {
      await client.apply(JSON.stringify(deployment('api')));
      const byLabel = await client.list({ kind: 'deploy', labelSelector: 'app in (api,nothing)' });
      assert.deepEqual(
        byLabel.itemsJson.map((j) => parse(j).metadata.name),
        ['api'],
      );
      const byField = await client.list({
        kind: 'Deployment',
        fieldSelector: 'metadata.name!=api',
      });
      assert.deepEqual(
        byField.itemsJson.map((j) => parse(j).metadata.name),
        ['web'],
      );
      await rejects(
        client.list({ kind: 'Deployment', labelSelector: 'app in (x' }),
        grpc.status.INVALID_ARGUMENT,
        /label selector/,
      );
      await rejects(
        client.list({ kind: 'Deployment', fieldSelector: 'spec.replicas=1' }),
        grpc.status.INVALID_ARGUMENT,
        /spec.replicas/,
      );
    });

    it('refuses an update with a stale resourceVersion (ABORTED) and keeps the newer write', async () => {
      const v1 = parse((await client.apply(JSON.stringify(configMap('cfg', 'one')))).objectJson);
      const v2 = parse(
        (await client.update(JSON.stringify({ ...v1, data: { v: 'two' } }))).objectJson,
      );
      assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
      await rejects(
        client.update(JSON.stringify({ ...v1, data: { v: 'three' } })),
        grpc.status.ABORTED,
        new RegExp(
          `you sent resourceVersion ${v1.metadata.resourceVersion}, it is now ${v2.metadata.resourceVersion}`,
        ),
      );
      assert.deepEqual(parse((await client.get('cm', 'default', 'cfg')).objectJson).data, {
        v: 'two',
      });
    });

    it('applies a write retried with its idempotency key once, through any master', async () => {
      const [a, b] = c.servers();
      // The leader turns keyed writes on once every master says it has them (log features).
      await until('keyed writes on', async () => {
        const key = `probe-${admission}-${Date.now()}`;
        const probe = { objectJson: JSON.stringify(configMap('probe', key)), dryRun: false };
        const first = await keyedCall<WriteResponse>(a, 'apply', probe, key);
        await client.apply(JSON.stringify(configMap('probe', 'other')));
        return (await keyedCall<WriteResponse>(b, 'apply', probe, key)).revision === first.revision;
      });
      const write = { objectJson: JSON.stringify(configMap('retried', 'one')), dryRun: false };
      const first = await keyedCall<WriteResponse>(a, 'apply', write, `k1-${admission}`);
      // Someone else's newer write, then the first one again (as if its answer had been lost).
      await client.apply(JSON.stringify(configMap('retried', 'two')));
      const again = await keyedCall<WriteResponse>(b, 'apply', write, `k1-${admission}`);
      assert.equal(again.revision, first.revision);
      assert.deepEqual(parse((await client.get('cm', 'default', 'retried')).objectJson).data, {
        v: 'two',
      });
      // The key sent again with another request is refused, naming the write that used it.
      const other = { objectJson: JSON.stringify(configMap('reused', 'x')), dryRun: false };
      await assert.rejects(
        keyedCall(b, 'apply', other, `k1-${admission}`),
        (e: grpc.ServiceError) =>
          e.code === grpc.status.INVALID_ARGUMENT &&
          e.details.includes(
            `metadata idempotency-key: already used by another write (the one applied at revision ${first.revision})`,
          ),
      );
      await rejects(client.get('cm', 'default', 'reused'), grpc.status.NOT_FOUND, /not found/);
      // An apply that created its object says so again when retried.
      const fresh = { objectJson: JSON.stringify(configMap('applied-new', 'x')), dryRun: false };
      const applied = await keyedCall<WriteResponse>(a, 'apply', fresh, `k5-${admission}`);
      const reapplied = await keyedCall<WriteResponse>(b, 'apply', fresh, `k5-${admission}`);
      assert.deepEqual(
        [applied.created, reapplied.created, reapplied.revision],
        [true, true, applied.revision],
      );
      // A create retried is not "already exists"; a delete retried is not "not found".
      const create = { objectJson: JSON.stringify(configMap('made-once', 'x')), dryRun: false };
      const made = await keyedCall<WriteResponse>(a, 'create', create, `k2-${admission}`);
      const remade = await keyedCall<WriteResponse>(b, 'create', create, `k2-${admission}`);
      assert.equal(remade.created, true);
      assert.equal(remade.revision, made.revision);
      const del = {
        kind: 'ConfigMap',
        namespace: 'default',
        name: 'made-once',
        uid: '',
        resourceVersion: '',
        propagation: 0,
        dryRun: false,
      };
      const gone = await keyedCall<DeleteResponse>(b, 'delete', del, `k3-${admission}`);
      const goneAgain = await keyedCall<DeleteResponse>(a, 'delete', del, `k3-${admission}`);
      assert.equal(goneAgain.revision, gone.revision);
      assert.equal(parse(goneAgain.objectJson).metadata.name, 'made-once');
      // Another key is another write.
      await assert.rejects(
        keyedCall(a, 'delete', del, `k4-${admission}`),
        (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
      );
      // A malformed key is refused, naming it, and nothing is written.
      const bad = { objectJson: JSON.stringify(configMap('bad-key', 'x')), dryRun: false };
      await assert.rejects(
        keyedCall(b, 'create', bad, 'not a key'),
        (e: grpc.ServiceError) =>
          e.code === grpc.status.INVALID_ARGUMENT &&
          /metadata idempotency-key: must be/.test(e.details),
      );
      await rejects(client.get('cm', 'default', 'bad-key'), grpc.status.NOT_FOUND, /not found/);
    });

    it('watches from a revision: exactly the later changes, in order', async () => {
      const start = Number((await client.list({ kind: 'ConfigMap' })).revision);
      await client.apply(JSON.stringify(configMap('w1', 'a')));
      await client.apply(JSON.stringify(configMap('w1', 'b')));
      await client.delete({ kind: 'ConfigMap', name: 'w1' });
      const ac = new AbortController();
      const seen: WatchEvent[] = [];
      for await (const ev of client.watch(
        { kind: 'ConfigMap', fromRevision: start, fieldSelector: 'metadata.name=w1' },
        ac.signal,
      )) {
        seen.push(ev);
        if (seen.length === 3) ac.abort();
      }
      assert.deepEqual(
        seen.map((e) => [e.type, parse(e.objectJson).data]),
        [
          [EventType.ADDED, { v: 'a' }],
          [EventType.MODIFIED, { v: 'b' }],
          [EventType.DELETED, { v: 'b' }],
        ],
      );
      assert.ok(
        seen[0].revision > start &&
          seen[1].revision > seen[0].revision &&
          seen[2].revision > seen[1].revision,
      );
    });

    it('deletes dependents with their owner (cascading), and a namespace with its contents', async () => {
      const owner = parse((await client.apply(JSON.stringify(configMap('owner', 'x')))).objectJson);
      const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid };
      for (const n of ['dep1', 'dep2'])
        await client.create(
          JSON.stringify({ ...configMap(n, 'y'), metadata: { name: n, ownerReferences: [ref] } }),
        );
      const d = await client.delete({ kind: 'ConfigMap', name: 'owner' });
      assert.deepEqual([...d.alsoDeleted].sort(), [
        'ConfigMap/default/dep1',
        'ConfigMap/default/dep2',
      ]);
      await rejects(
        client.get('ConfigMap', 'default', 'dep1'),
        grpc.status.NOT_FOUND,
        /ConfigMap "dep1" not found in namespace "default"/,
      );

      await client.apply(
        JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }),
      );
      await client.apply(
        JSON.stringify({
          ...configMap('in-team', 'z'),
          metadata: { name: 'in-team', namespace: 'team' },
        }),
      );
      await client.delete({ kind: 'Namespace', name: 'team' });
      assert.equal(
        (await client.list({ kind: 'ConfigMap', namespace: 'team' })).itemsJson.length,
        0,
      );
    });

    it('keeps serving through a kill -9 of the leader; the restarted master catches up', async () => {
      const leader = await c.leader();
      await c.kill(leader);
      const acked: string[] = [];
      for (let i = 0; i < 20; i++) {
        await client.apply(JSON.stringify(configMap(`after-kill-${i}`, String(i))));
        acked.push(`after-kill-${i}`);
      }
      await c.startMaster(leader);
      const restarted = c.client([leader]);
      // A linearizable read on the restarted master sees every acknowledged write.
      const names = new Set(
        (await restarted.list({ kind: 'ConfigMap' })).itemsJson.map((j) => parse(j).metadata.name),
      );
      restarted.close();
      for (const n of acked) assert.ok(names.has(n), `${n} missing on restarted master ${leader}`);
    });

    it('a watch survives a leader change: resumes from its last revision without gaps or duplicates', async () => {
      const from = Number((await client.list({ kind: 'ConfigMap' })).revision);
      const leader = await c.leader();
      // Watch through the leader first, so that killing it breaks the stream.
      const order = [leader, ...c.ids().filter((i) => i !== leader)];
      const watcher = c.client(order);
      const ac = new AbortController();
      const seen: number[] = [];
      const names: string[] = [];
      const done = (async () => {
        for await (const ev of watcher.watch(
          { kind: 'ConfigMap', fromRevision: from, labelSelector: '' },
          ac.signal,
        )) {
          if (ev.type === EventType.BOOKMARK) continue;
          seen.push(Number(ev.revision));
          names.push(parse(ev.objectJson).metadata.name);
          if (names.includes('last')) ac.abort();
        }
      })();
      const writer = c.client(order.slice(1));
      const written: number[] = [];
      for (let i = 0; i < 10; i++)
        written.push(
          Number((await writer.apply(JSON.stringify(configMap(`w-${i}`, 'x')))).revision),
        );
      await c.kill(leader);
      for (let i = 10; i < 20; i++)
        written.push(
          Number((await writer.apply(JSON.stringify(configMap(`w-${i}`, 'x')))).revision),
        );
      written.push(Number((await writer.apply(JSON.stringify(configMap('last', 'x')))).revision));
      await done;
      watcher.close();
      writer.close();
      assert.deepEqual(seen, written, 'each write seen once, in order');
      await c.startMaster(leader);
    });

    it('reports cluster status: three healthy voters, one leader', async () => {
      // The previous case restarted a killed master: wait until the leader hears from it again
      // (a fixed half second failed in CI), then check the whole status.
      await until('three healthy voters and a leader', async () => {
        const st = await client.status();
        return (
          st.members.filter((m) => m.leader).length === 1 && st.members.every((m) => m.healthy)
        );
      });
      const s = await client.status();
      assert.equal(s.members.length, 3);
      assert.equal(s.members.filter((m) => m.leader).length, 1);
      assert.ok(s.fromLeader);
      assert.ok(
        s.members.every((m) => m.voter && m.healthy),
        JSON.stringify(s.members),
      );
      assert.ok(Number(s.commitIndex) > 0 && Number(s.term) > 0);
    });

    it('adds a fourth master with --join: it catches up as a learner, then votes', async () => {
      await c.startMaster(4, c.addresses[1]);
      const deadline = Date.now() + 20_000;
      let s = await client.status();
      while (!s.members.some((m) => Number(m.id) === 4 && m.voter) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        s = await client.status();
      }
      const m4 = s.members.find((m) => Number(m.id) === 4);
      assert.ok(m4?.voter, JSON.stringify(s.members));
      assert.equal(m4.address, c.addresses[4]);
      // It holds the data written before it joined.
      const four = c.client([4]);
      const g = await four.get('Deployment', 'default', 'web', true);
      four.close();
      assert.equal(parse(g.objectJson).metadata.name, 'web');
    });

    it('stops cleanly on SIGTERM and restarts from its data directory', async () => {
      const follower = c.ids().find((id) => id !== 0)!;
      assert.equal(await c.terminate(follower), 0);
      await c.startMaster(follower);
      const one = c.client([follower]);
      const g = await one.get('Deployment', 'default', 'web');
      one.close();
      assert.equal(parse(g.objectJson).metadata.name, 'web');
    });
  });

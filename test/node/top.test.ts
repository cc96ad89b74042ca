/**
 * `baton top` end to end: a real master, real node daemons (the exec
 * runtime everywhere, Docker where there is one), a pod that burns CPU
 * beside one that sleeps, and the real CLI. A Node whose API never
 * answers shows as <unknown> while the others are still measured.
 */
import assert from 'node:assert/strict';
import { createServer, Server, Socket } from 'node:net';
import { join } from 'node:path';
import { ApiObject } from '../../src/api/types';
import { BatonClient } from '../../src/client/cluster-client';
import { TopKind } from '../../src/gen/api';
import { ExecRuntime } from '../../src/node/exec-runtime';
import { runBaton } from '../support/cli';
import { requireDocker, TEST_IMAGE } from '../support/docker';
import { MasterCluster } from '../support/master-cluster';
import { NodeDaemon } from '../support/node-daemon';
import { until } from '../support/until';

const parse = (j: string) => JSON.parse(j) as ApiObject;
const ready = (o: ApiObject) =>
  ((o.status ?? {}) as { conditions?: { type: string; status: string }[] }).conditions?.some(
    (c) => c.type === 'Ready' && c.status === 'True',
  ) === true;
const phase = (o: ApiObject) => (o.status as { phase?: string } | undefined)?.phase;

/** A table as printed: rows of cells (no cell holds a space). */
const table = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s+/));
const milli = (cell: string) => {
  assert.match(cell, /^\d+m$/);
  return parseInt(cell, 10);
};

describe('baton top: usage measured on real nodes', function () {
  this.timeout(120_000);
  let c: MasterCluster;
  let client: BatonClient;
  const baton = (...args: string[]) => runBaton(c.servers().join(','), args);

  before(async () => {
    // A pod range of our own: Docker refuses a node network whose subnet another (a leftover
    // of another run, a suite running beside this one) already holds, and pods would wait.
    c = await MasterCluster.start(1, ['--cluster-cidr', `10.${180 + (process.pid % 40)}.0.0/16`]);
    client = c.client();
    await c.leader();
  });

  after(async () => {
    client?.close();
    await c?.stop();
  });

  function onRuntime(runtime: 'exec' | 'docker', image: string) {
    describe(`on the ${runtime} runtime`, () => {
      const nodeName = `top-${runtime}-${process.pid}`;
      const label = `top=${runtime}`;
      let node: NodeDaemon | undefined;
      const waitFor = (what: string, fn: () => Promise<boolean>, ms = 60_000) =>
        until(what, fn, ms).catch(async (e: Error) => {
          const seen = (await pods()).map((p) => ({ name: p.metadata.name, status: p.status }));
          throw new Error(`${e.message}\npods: ${JSON.stringify(seen)}\nnode log:\n${node?.log}`);
        });
      const pods = async () =>
        (await client.list({ kind: 'Pod', labelSelector: label })).itemsJson.map(parse);

      before(async function () {
        if (runtime === 'docker') await requireDocker(this);
        node = await NodeDaemon.start(nodeName, c.servers(), { runtime });
        await waitFor('the node Ready', async () =>
          ready(parse((await client.get('Node', '', nodeName)).objectJson)),
        );
      });

      after(async () => {
        if (!node) return;
        for (const p of await pods().catch(() => []))
          await client.delete({ kind: 'Pod', namespace: 'default', name: p.metadata.name });
        await until('the pods gone', async () => (await pods()).length === 0, 30_000).catch(
          () => undefined,
        );
        // A stopped exec node leaves its processes running: no busy loop may outlive the test.
        if (runtime === 'exec') {
          const rt = new ExecRuntime(nodeName, join(node.dataDir, 'exec'));
          for (const x of await rt.list()) await rt.remove(x.id, 0);
        }
        await node.stop();
      });

      it('a busy pod shows clearly more CPU than an idle one, both hold memory, and the node its totals', async () => {
        const pod = (name: string, command: string[]) =>
          client.apply(
            JSON.stringify({
              apiVersion: 'v1',
              kind: 'Pod',
              metadata: { name, labels: { top: runtime } },
              spec: {
                nodeName,
                terminationGracePeriodSeconds: 1,
                containers: [{ name: 'main', image, command }],
              },
            }),
          );
        const busy = `busy-${runtime}`;
        const idle = `idle-${runtime}`;
        await pod(busy, ['/bin/sh', '-c', 'while :; do :; done']);
        await pod(idle, ['sleep', '3600']);
        await waitFor('both pods Running', async () => {
          const ps = await pods();
          return ps.length === 2 && ps.every((p) => phase(p) === 'Running');
        });

        const topPods = async () => {
          const r = await baton('top', 'pods', '-l', label);
          assert.equal(r.code, 0, r.stderr);
          const [header, ...rows] = table(r.stdout);
          assert.deepEqual(header, ['NAME', 'CPU(cores)', 'MEMORY(bytes)']);
          assert.deepEqual(
            rows.map((x) => x[0]),
            [busy, idle],
          );
          for (const x of rows) assert.match(x[2], /^\d+Mi$/);
          return rows.map((x) => milli(x[1]));
        };
        // The busy loop gets what share of the CPU a loaded machine leaves it,
        // and one window may find it starved: ask again (each call rates over
        // at least a second, since the node's previous sample) until a window
        // shows it busy.
        let [busyCpu, idleCpu] = await topPods();
        for (const deadline = Date.now() + 40_000; busyCpu < 200 && Date.now() < deadline;)
          [busyCpu, idleCpu] = await topPods();
        assert.ok(busyCpu >= 200, `busy pod at ${busyCpu}m`);
        assert.ok(idleCpu * 5 <= busyCpu, `idle ${idleCpu}m vs busy ${busyCpu}m`);

        // Bytes, not whole Mi: a shell and a sleep hold well under one.
        const api = await client.top({ kind: TopKind.TOP_PODS, labelSelector: label });
        for (const p of api.pods) {
          assert.equal(p.unavailable, '');
          assert.equal(p.nodeName, nodeName);
          assert.ok(p.containers[0].memoryWorkingSetBytes > 0, `${p.name} holds memory`);
        }

        const sorted = await baton(
          'top',
          'pods',
          '-l',
          label,
          '--containers',
          '--sort-by',
          'cpu',
          '--no-headers',
        );
        assert.equal(sorted.code, 0, sorted.stderr);
        assert.deepEqual(
          table(sorted.stdout).map((x) => x.slice(0, 2)),
          [
            [busy, 'main'],
            [idle, 'main'],
          ],
        );

        const one = await baton('top', 'pods', idle);
        assert.equal(one.code, 0, one.stderr);
        assert.deepEqual(
          table(one.stdout).map((x) => x[0]),
          ['NAME', idle],
        );

        const n = await baton('top', 'nodes', nodeName);
        assert.equal(n.code, 0, n.stderr);
        const [nodeHeader, nodeRow] = table(n.stdout);
        assert.deepEqual(nodeHeader, ['NAME', 'CPU(cores)', 'CPU%', 'MEMORY(bytes)', 'MEMORY%']);
        assert.equal(nodeRow[0], nodeName);
        assert.match(nodeRow[2], /^\d+%$/);
        assert.match(nodeRow[3], /^[1-9]\d*Mi$/);
        assert.match(nodeRow[4], /^\d+%$/);
        // The host runs the busy loop too.
        assert.ok(milli(nodeRow[1]) >= 150, `node at ${nodeRow[1]}`);
      });
    });
  }

  onRuntime('exec', 'unused-by-exec');
  onRuntime('docker', TEST_IMAGE);

  describe('a node that does not answer', () => {
    let silent: Server;
    const sockets = new Set<Socket>();
    const name = `silent-${process.pid}`;

    before(async () => {
      // Accepts connections and never says a word: a node hung, or its address black-holed.
      silent = createServer((s) => sockets.add(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const port = (silent.address() as { port: number }).port;
      await client.create(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name },
          spec: { unschedulable: true },
          status: {
            addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
            daemonEndpoints: { kubeletEndpoint: { Port: port } },
          },
        }),
      );
      const p = parse(
        (
          await client.create(
            JSON.stringify({
              apiVersion: 'v1',
              kind: 'Pod',
              metadata: { name: 'stranded', labels: { top: 'silent' } },
              spec: { nodeName: name, containers: [{ name: 'main', image: 'none' }] },
            }),
          )
        ).objectJson,
      );
      await client.update(JSON.stringify({ ...p, status: { phase: 'Running' } }), 'status');
    });

    after(async () => {
      await client.delete({ kind: 'Pod', namespace: 'default', name: 'stranded' }).catch(() => {});
      await client.delete({ kind: 'Node', name }).catch(() => {});
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent?.close(r));
    });

    it('is shown as <unknown>, saying why, within seconds; the call still succeeds', async () => {
      const started = Date.now();
      const [nodes, pods] = await Promise.all([
        baton('top', 'nodes'),
        baton('top', 'pods', '-l', 'top=silent'),
      ]);
      assert.ok(Date.now() - started < 10_000, 'answered within the node deadline');
      assert.equal(nodes.code, 0, nodes.stderr);
      const row = table(nodes.stdout).find((x) => x[0] === name);
      assert.deepEqual(row, [name, '<unknown>', '<unknown>', '<unknown>', '<unknown>']);
      assert.match(
        nodes.stderr,
        new RegExp(`Warning: node ${name} \\(127\\.0\\.0\\.1:\\d+\\) did not answer within 5 s`),
      );
      assert.equal(pods.code, 0, pods.stderr);
      assert.deepEqual(table(pods.stdout), [
        ['NAME', 'CPU(cores)', 'MEMORY(bytes)'],
        ['stranded', '<unknown>', '<unknown>'],
      ]);
      assert.match(pods.stderr, /did not answer within 5 s/);
    });
  });
});

/**
 * `baton node --runtime exec` end to end: pods as plain host processes (no
 * Docker needed, so this runs everywhere), with the same agent as on
 * Docker — restart policy, probes, env, logs and exec through the masters.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { ApiObject } from '../../src/api/types';
import { BatonClient } from '../../src/client/cluster-client';
import { runBaton } from '../support/cli';
import { MasterCluster } from '../support/master-cluster';
import { NodeDaemon } from '../support/node-daemon';
import { freePort } from '../support/raft-kv/processes';
import { until } from '../support/until';

const parse = (j: string) => JSON.parse(j) as ApiObject;
interface View {
  phase?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: {
    restartCount: number;
    containerID?: string;
    state: { running?: unknown };
  }[];
}
const statusOf = (p: ApiObject) => (p.status ?? {}) as View;
const ready = (p: ApiObject) =>
  statusOf(p).conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** The pid recorded by the exec runtime for a container id ("<uid>/<name>-<n>"). */
function pidOf(dataDir: string, containerID: string): number {
  const id = containerID.replace('exec://', '');
  return (JSON.parse(readFileSync(`${dataDir}/exec/${id}/meta.json`, 'utf8')) as { pid: number })
    .pid;
}

describe('node daemon with the exec runtime: pods as host processes', function () {
  this.timeout(120_000);
  let c: MasterCluster;
  let client: BatonClient;
  let node: NodeDaemon;
  const nodeName = `exec-node-${process.pid}`;

  const pods = async (selector: string) =>
    (await client.list({ kind: 'Pod', labelSelector: selector })).itemsJson.map(parse);
  const waitFor = (what: string, fn: () => Promise<boolean>, ms = 40_000) =>
    until(what, fn, ms).catch(async (e: Error) => {
      const seen = (await client.list({ kind: 'Pod' })).itemsJson
        .map(parse)
        .map((p) => ({ name: p.metadata.name, status: p.status }));
      throw new Error(`${e.message}\npods: ${JSON.stringify(seen)}\nnode log:\n${node.log}`);
    });

  before(async () => {
    c = await MasterCluster.start(3);
    client = c.client();
    await c.leader();
    node = await NodeDaemon.start(nodeName, c.servers(), { runtime: 'exec' });
    await waitFor('the node Ready', async () =>
      ready(parse((await client.get('Node', '', nodeName)).objectJson)),
    );
  });

  after(async () => {
    await node?.stop();
    client?.close();
    await c?.stop();
  });

  it('runs a deployment as processes with probes, restarts a killed one, serves logs and exec, and stops them on delete', async () => {
    const port = await freePort();
    // A tiny HTTP server in Node itself: the host has no busybox necessarily, but it has node.
    const server = `require('http').createServer((q, s) => s.end('ok ' + process.env.POD)).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('serving', process.env.POD))`;
    await client.apply(
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'procs' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'procs' } },
          template: {
            metadata: { labels: { app: 'procs' } },
            spec: {
              terminationGracePeriodSeconds: 2,
              containers: [
                {
                  name: 'web',
                  image: 'unused-by-exec',
                  command: [process.execPath, '-e', server],
                  env: [
                    { name: 'PORT', value: String(port) },
                    { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  ],
                  readinessProbe: { httpGet: { path: '/', port }, periodSeconds: 1 },
                  livenessProbe: { tcpSocket: { port }, periodSeconds: 1, failureThreshold: 5 },
                },
              ],
            },
          },
        },
      }),
    );
    await waitFor('the pod Running and Ready through its HTTP probe', async () => {
      const [p] = await pods('app=procs');
      return p !== undefined && statusOf(p).phase === 'Running' && ready(p);
    });
    const [p] = await pods('app=procs');
    const name = p.metadata.name;
    const baton = (...args: string[]) => runBaton(c.servers().join(','), args);
    await waitFor('the log line', async () =>
      (await baton('logs', name)).stdout.includes(`serving ${name}`),
    );
    const ex = await baton('exec', name, '--', 'sh', '-c', 'echo "$POD on $PORT"');
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(ex.stdout, `${name} on ${port}\n`);

    // Killed from outside: restarted by the restart policy, counted.
    const pid = pidOf(node.dataDir, statusOf(p).containerStatuses![0].containerID!);
    process.kill(pid, 'SIGKILL');
    await waitFor('the killed process restarted and Ready again', async () => {
      const [q] = await pods('app=procs');
      const s = statusOf(q).containerStatuses?.[0];
      return s?.restartCount === 1 && s.state.running !== undefined && ready(q);
    });
    const [q] = await pods('app=procs');
    const newPid = pidOf(node.dataDir, statusOf(q).containerStatuses![0].containerID!);
    assert.notEqual(newPid, pid);

    await client.delete({ kind: 'Deployment', namespace: 'default', name: 'procs' });
    await waitFor('the process stopped and its records gone', async () => {
      return (await pods('app=procs')).length === 0 && !existsSync(`/proc/${newPid}/stat`);
    });
  });
});

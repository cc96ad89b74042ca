import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { ApiObject } from '../../src/api/types';
import {
  formatAge,
  humanDuration,
  noResourcesMessage,
  parseOutputFormat,
  podStatus,
  printObjects,
  renderTable,
} from '../../src/cli/printers';

const now = new Date('2026-11-22T12:00:00Z');
/** The ISO time `s` seconds before `now`. */
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const S = 1;
const M = 60;
const H = 3600;
const D = 86400;
const Y = 365 * D;

/** A table as lines, so a failing comparison shows the row that differs. */
const lines = (...rows: string[]) => rows.join('\n');

const GROUPS: Record<string, string> = {
  Deployment: 'apps/v1',
  ReplicaSet: 'apps/v1',
  Job: 'batch/v1',
};

/** An object in namespace "default", created five minutes ago, with `fields` beside (and in) its metadata. */
function obj(kind: string, name: string, fields: Record<string, unknown> = {}): ApiObject {
  const { metadata, ...rest } = fields as { metadata?: Record<string, unknown> };
  return {
    apiVersion: GROUPS[kind] ?? 'v1',
    kind,
    metadata: { name, namespace: 'default', creationTimestamp: ago(5 * M), ...metadata },
    ...rest,
  };
}

const running = () => ({ ready: true, restartCount: 0, state: { running: {} } });
const waiting = (reason: string, restartCount = 0) => ({
  ready: false,
  restartCount,
  state: { waiting: { reason } },
});
const terminated = (exitCode: number, reason?: string, restartCount = 0) => ({
  ready: false,
  restartCount,
  state: { terminated: { exitCode, ...(reason ? { reason } : {}) } },
});

describe('cli: printing objects like kubectl', () => {
  describe('ages (apimachinery HumanDuration)', () => {
    const table: [number, string][] = [
      [-1.5 * S, '0s'], // under two seconds of clock skew reads as "now"
      [-2 * S, '<invalid>'],
      [0, '0s'],
      [1.9 * S, '1s'],
      [45 * S, '45s'],
      [119 * S, '119s'],
      [2 * M, '2m'],
      [2 * M + 30 * S, '2m30s'],
      [9 * M + 59 * S, '9m59s'],
      [10 * M + 59 * S, '10m'],
      [179 * M, '179m'],
      [3 * H, '3h'],
      [3 * H + 5 * M + 59 * S, '3h5m'],
      [7 * H + 59 * M, '7h59m'],
      [8 * H + 30 * M, '8h'],
      [47 * H + 59 * M, '47h'],
      [2 * D, '2d'],
      [2 * D + 5 * H, '2d5h'],
      [7 * D + 23 * H, '7d23h'],
      [8 * D + 23 * H, '8d'],
      [729 * D, '729d'],
      [2 * Y, '2y'],
      [3 * Y + 1 * D, '3y1d'],
      [7 * Y + 364 * D, '7y364d'],
      [8 * Y + 100 * D, '8y'],
      [30 * Y, '30y'],
    ];
    for (const [seconds, want] of table)
      it(`${seconds}s ago is ${want}`, () => assert.equal(formatAge(ago(seconds), now), want));

    it('is "<unknown>" without a (valid) timestamp', () => {
      assert.equal(formatAge(undefined, now), '<unknown>');
      assert.equal(formatAge('', now), '<unknown>');
      assert.equal(formatAge('yesterday', now), '<unknown>');
    });

    it('never overstates a duration, and is short of it by less than its smallest unit', () => {
      const unit: Record<string, number> = { s: S, m: M, h: H, d: D, y: Y };
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 40 * Y * 1000 }), (ms) => {
          const text = humanDuration(ms);
          const parts = [...text.matchAll(/(\d+)([smhdy])/g)];
          assert.equal(parts.map((p) => p[0]).join(''), text);
          const shown = parts.reduce((a, p) => a + Number(p[1]) * unit[p[2]], 0);
          const smallest = unit[parts[parts.length - 1][2]];
          assert.ok(shown * 1000 <= ms && ms < (shown + smallest) * 1000, `${ms}ms as ${text}`);
        }),
      );
    });
  });

  describe('tables', () => {
    it('are columns three spaces apart (at least six wide), with no trailing blanks', () => {
      assert.equal(
        renderTable(
          ['NAME', 'AGE', 'X'],
          [
            ['a-long-name', '5m', 'x'],
            ['b', '', ''],
          ],
        ),
        lines('NAME          AGE   X', 'a-long-name   5m    x', 'b'),
      );
      assert.equal(renderTable(['A', 'B'], [['x', 'y']]), lines('A     B', 'x     y'));
      // Widths count characters (code points), as Go's tabwriter counts runes.
      assert.equal(
        renderTable(['MESSAGE', 'N'], [['🙂 ok', '1']]),
        lines('MESSAGE   N', '🙂 ok      1'),
      );
    });

    it('show a pod’s READY, STATUS and RESTARTS as kubectl computes them', () => {
      const one = [{ name: 'a' }];
      const pods = [
        obj('Pod', 'web-1', {
          spec: { containers: [{ name: 'a' }, { name: 'b' }], nodeName: 'n1' },
          status: {
            phase: 'Running',
            podIP: '10.0.0.5',
            containerStatuses: [running(), running()],
          },
        }),
        obj('Pod', 'web-2', {
          spec: { containers: [{ name: 'a' }, { name: 'b' }] },
          status: {
            phase: 'Running',
            containerStatuses: [
              running(),
              {
                ...waiting('CrashLoopBackOff', 4),
                lastState: { terminated: { exitCode: 1, finishedAt: ago(90 * S) } },
              },
            ],
          },
        }),
        obj('Pod', 'pull', {
          spec: { containers: one },
          status: { phase: 'Pending', containerStatuses: [waiting('ImagePullBackOff')] },
        }),
        obj('Pod', 'done', {
          spec: { containers: one },
          status: { phase: 'Succeeded', containerStatuses: [terminated(0, 'Completed')] },
        }),
        obj('Pod', 'killed', {
          spec: { containers: one },
          status: { phase: 'Failed', containerStatuses: [terminated(137)] },
        }),
        obj('Pod', 'going', {
          metadata: { deletionTimestamp: ago(1 * S) },
          spec: { containers: one },
          status: { phase: 'Running', containerStatuses: [running()] },
        }),
        obj('Pod', 'init', {
          spec: { initContainers: [{ name: 'i1' }, { name: 'i2' }], containers: one },
          status: {
            phase: 'Pending',
            initContainerStatuses: [terminated(0), { ...running(), ready: false }],
          },
        }),
        obj('Pod', 'init-failed', {
          spec: { initContainers: [{ name: 'i1' }], containers: one },
          status: { phase: 'Pending', initContainerStatuses: [terminated(1, 'Error', 2)] },
        }),
        obj('Pod', 'new', {
          metadata: { creationTimestamp: undefined },
          spec: { containers: one },
        }),
      ];
      assert.equal(
        printObjects(pods, 'table', { now }),
        lines(
          'NAME          READY   STATUS             RESTARTS      AGE',
          'web-1         2/2     Running            0             5m',
          'web-2         1/2     CrashLoopBackOff   4 (90s ago)   5m',
          'pull          0/1     ImagePullBackOff   0             5m',
          'done          0/1     Completed          0             5m',
          'killed        0/1     ExitCode:137       0             5m',
          'going         1/1     Terminating        0             5m',
          'init          0/1     Init:1/2           0             5m',
          'init-failed   0/1     Init:Error         2             5m',
          'new           0/1     Pending            0             <unknown>',
        ),
      );
      assert.equal(podStatus(pods[1]), 'CrashLoopBackOff');
      assert.equal(
        printObjects(pods.slice(0, 2), 'wide', { now, allNamespaces: true }),
        lines(
          'NAMESPACE   NAME    READY   STATUS             RESTARTS      AGE   IP         NODE',
          'default     web-1   2/2     Running            0             5m    10.0.0.5   n1',
          'default     web-2   1/2     CrashLoopBackOff   4 (90s ago)   5m    <none>     <none>',
        ),
      );
    });

    it('show workloads: deployments, replica sets and jobs', () => {
      const template = {
        spec: {
          containers: [
            { name: 'web', image: 'nginx:1.27' },
            { name: 'log', image: 'busybox' },
          ],
        },
      };
      const selector = {
        matchLabels: { app: 'web' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }],
      };
      const deploy = obj('Deployment', 'web', {
        spec: { replicas: 3, selector, template },
        status: { replicas: 3, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
      });
      assert.equal(
        printObjects([deploy], 'table', { now }),
        lines(
          'NAME   READY   UP-TO-DATE   AVAILABLE   AGE',
          'web    2/3     3            2           5m',
        ),
      );
      assert.equal(
        printObjects([deploy], 'wide', { now }),
        lines(
          'NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES               SELECTOR',
          'web    2/3     3            2           5m    web,log      nginx:1.27,busybox   app=web,tier in (a,b)',
        ),
      );
      const rs = obj('ReplicaSet', 'web-7d9f', {
        spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template },
        status: { replicas: 3 },
      });
      assert.equal(
        printObjects([rs], 'table', { now }),
        lines(
          'NAME       DESIRED   CURRENT   READY   AGE',
          'web-7d9f   3         3         0       5m',
        ),
      );
      const jobs = [
        obj('Job', 'pi', {
          spec: { completions: 1, parallelism: 1, template },
          status: {
            succeeded: 1,
            startTime: ago(5 * M),
            completionTime: ago(4 * M - 10 * S),
            conditions: [{ type: 'Complete', status: 'True' }],
          },
        }),
        obj('Job', 'queue', {
          spec: { parallelism: 3, template },
          status: { succeeded: 0, startTime: ago(3 * M + 5 * S) },
        }),
        obj('Job', 'broken', {
          spec: { completions: 5, template },
          status: {
            succeeded: 2,
            startTime: ago(H),
            completionTime: ago(10 * M),
            conditions: [
              { type: 'FailureTarget', status: 'True' },
              { type: 'Failed', status: 'True' },
            ],
          },
        }),
        obj('Job', 'later', { spec: { completions: 1, template } }),
      ];
      assert.equal(
        printObjects(jobs, 'table', { now }),
        lines(
          'NAME     STATUS     COMPLETIONS   DURATION   AGE',
          'pi       Complete   1/1           70s        5m',
          'queue    Running    0/1 of 3      3m5s       5m',
          'broken   Failed     2/5           50m        5m',
          'later    Running    0/1                      5m',
        ),
      );
    });

    it('show services and endpoints', () => {
      const svcs = [
        obj('Service', 'web', {
          spec: {
            clusterIP: '10.96.0.10',
            ports: [{ port: 80, protocol: 'TCP' }],
            selector: { tier: 'front', app: 'web' },
          },
        }),
        obj('Service', 'node', {
          spec: {
            type: 'NodePort',
            clusterIPs: ['10.96.0.11'],
            ports: [
              { port: 80, nodePort: 30080, protocol: 'TCP' },
              { port: 53, nodePort: 30053, protocol: 'UDP' },
            ],
          },
        }),
        obj('Service', 'lb', {
          spec: { type: 'LoadBalancer', clusterIP: '10.96.0.12', ports: [{ port: 443 }] },
        }),
        obj('Service', 'headless', { spec: { clusterIP: 'None', ports: [] } }),
        obj('Service', 'ext', { spec: { type: 'ExternalName', externalName: 'db.example.com' } }),
      ];
      assert.equal(
        printObjects(svcs, 'table', { now }),
        lines(
          'NAME       TYPE           CLUSTER-IP   EXTERNAL-IP      PORT(S)                     AGE',
          'web        ClusterIP      10.96.0.10   <none>           80/TCP                      5m',
          'node       NodePort       10.96.0.11   <none>           80:30080/TCP,53:30053/UDP   5m',
          'lb         LoadBalancer   10.96.0.12   <pending>        443/TCP                     5m',
          'headless   ClusterIP      None         <none>           <none>                      5m',
          'ext        ExternalName   <none>       db.example.com   <none>                      5m',
        ),
      );
      assert.equal(
        printObjects([svcs[0]], 'wide', { now }),
        lines(
          'NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE   SELECTOR',
          'web    ClusterIP   10.96.0.10   <none>        80/TCP    5m    app=web,tier=front',
        ),
      );
      const addresses = (n: number) =>
        Array.from({ length: n }, (_, i) => ({ ip: `10.1.0.${i + 1}` }));
      const eps = [
        obj('Endpoints', 'web', {
          subsets: [{ addresses: addresses(2), ports: [{ port: 8080 }] }],
        }),
        obj('Endpoints', 'big', { subsets: [{ addresses: addresses(5), ports: [{ port: 80 }] }] }),
        obj('Endpoints', 'empty'),
      ];
      assert.equal(
        printObjects(eps, 'table', { now }),
        lines(
          'NAME    ENDPOINTS                                         AGE',
          'web     10.1.0.1:8080,10.1.0.2:8080                       5m',
          'big     10.1.0.1:80,10.1.0.2:80,10.1.0.3:80 + 2 more...   5m',
          'empty   <none>                                            5m',
        ),
      );
    });

    it('show nodes and namespaces, without a NAMESPACE column even for -A', () => {
      const node = (name: string, ready?: string, labels?: object, unschedulable?: boolean) =>
        obj('Node', name, {
          metadata: { namespace: undefined, creationTimestamp: ago(3 * D), labels },
          spec: { unschedulable },
          status: {
            conditions: ready ? [{ type: 'Ready', status: ready }] : [],
            nodeInfo: { kubeletVersion: 'baton-0.1.0' },
          },
        });
      const roles = { 'node-role.kubernetes.io/worker': '', 'node-role.kubernetes.io/edge': '' };
      const nodes = [node('n1', 'True', roles), node('n2', 'False', {}, true), node('n3')];
      assert.equal(
        printObjects(nodes, 'table', { now, allNamespaces: true }),
        lines(
          'NAME   STATUS                        ROLES         AGE   VERSION',
          'n1     Ready                         edge,worker   3d    baton-0.1.0',
          'n2     NotReady,SchedulingDisabled   <none>        3d    baton-0.1.0',
          'n3     Unknown                       <none>        3d    baton-0.1.0',
        ),
      );
      const ns = (name: string, phase: string) =>
        obj('Namespace', name, { metadata: { namespace: undefined }, status: { phase } });
      assert.equal(
        printObjects([ns('default', 'Active'), ns('old', 'Terminating')], 'table', { now }),
        lines(
          'NAME      STATUS        AGE',
          'default   Active        5m',
          'old       Terminating   5m',
        ),
      );
    });

    it('show config maps, secrets, events, and the kinds with no columns of their own', () => {
      const cms = [
        obj('ConfigMap', 'cfg', { data: { a: '1', b: '2' }, binaryData: { c: 'AA==' } }),
        obj('ConfigMap', 'none'),
      ];
      assert.equal(
        printObjects(cms, 'table', { now }),
        lines('NAME   DATA   AGE', 'cfg    3      5m', 'none   0      5m'),
      );
      const secrets = [
        obj('Secret', 'tls', { type: 'kubernetes.io/tls', data: { 'tls.crt': '', 'tls.key': '' } }),
        obj('Secret', 'plain', { data: { a: '' } }),
      ];
      assert.equal(
        printObjects(secrets, 'table', { now }),
        lines(
          'NAME    TYPE                DATA   AGE',
          'tls     kubernetes.io/tls   2      5m',
          'plain   Opaque              1      5m',
        ),
      );
      const events = [
        obj('Event', 'web-1.a', {
          involvedObject: { kind: 'Pod', name: 'web-1' },
          type: 'Warning',
          reason: 'BackOff',
          message: 'Back-off restarting failed container\n',
          count: 3,
          firstTimestamp: ago(10 * M),
          lastTimestamp: ago(30 * S),
        }),
        obj('Event', 'web.b', {
          involvedObject: { kind: 'Deployment', name: 'web' },
          type: 'Normal',
          reason: 'ScalingReplicaSet',
          message: 'Scaled up replica set web-7d9f to 3',
          count: 1,
          firstTimestamp: ago(2 * M),
          lastTimestamp: ago(2 * M),
        }),
      ];
      assert.equal(
        printObjects(events, 'table', { now, allNamespaces: true }),
        lines(
          'NAMESPACE   LAST SEEN           TYPE      REASON              OBJECT           MESSAGE',
          'default     30s (x3 over 10m)   Warning   BackOff             pod/web-1        Back-off restarting failed container',
          'default     2m                  Normal    ScalingReplicaSet   deployment/web   Scaled up replica set web-7d9f to 3',
        ),
      );
      for (const kind of ['LimitRange', 'ResourceQuota'])
        assert.equal(
          printObjects([obj(kind, 'limits')], 'wide', { now }),
          lines('NAME     AGE', 'limits   5m'),
        );
    });

    it('print one table per kind, naming objects kind/name, when kinds are mixed', () => {
      const mixed = [
        obj('Deployment', 'web', { spec: { replicas: 1 }, status: { readyReplicas: 1 } }),
        obj('Service', 'web', { spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } }),
        obj('Deployment', 'api', { spec: { replicas: 2 } }),
      ];
      assert.equal(
        printObjects(mixed, 'table', { now }),
        lines(
          'NAME                  READY   UP-TO-DATE   AVAILABLE   AGE',
          'deployment.apps/web   1/1     0            0           5m',
          'deployment.apps/api   0/2     0            0           5m',
          '',
          'NAME          TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE',
          'service/web   ClusterIP   10.96.0.10   <none>        80/TCP    5m',
        ),
      );
    });

    it('say "No resources found" when there is nothing to show', () => {
      assert.equal(noResourcesMessage('default'), 'No resources found in default namespace.');
      assert.equal(noResourcesMessage(), 'No resources found');
      const empty = (opts: { kind?: string; allNamespaces?: boolean }) =>
        printObjects([], 'table', { now, namespace: 'prod', ...opts });
      assert.equal(empty({ kind: 'Pod' }), 'No resources found in prod namespace.');
      assert.equal(empty({ kind: 'Pod', allNamespaces: true }), 'No resources found');
      assert.equal(empty({ kind: 'Node' }), 'No resources found');
    });

    it('colour status words only when asked, without disturbing the alignment', () => {
      const pods = [
        obj('Pod', 'ok', {
          spec: { containers: [{}] },
          status: { phase: 'Running', containerStatuses: [running()] },
        }),
        obj('Pod', 'bad', {
          spec: { containers: [{}] },
          status: { phase: 'Running', containerStatuses: [waiting('ErrImagePull')] },
        }),
      ];
      const plain = printObjects(pods, 'table', { now });
      assert.ok(!plain.includes('\u001b'));
      const coloured = printObjects(pods, 'table', { now, color: true });
      const uncoloured = ['\u001b[32m', '\u001b[31m', '\u001b[0m'].reduce(
        (text, code) => text.replaceAll(code, ''),
        coloured,
      );
      assert.equal(uncoloured, plain);
      assert.equal(
        coloured,
        lines(
          'NAME   READY   STATUS         RESTARTS   AGE',
          'ok     1/1     \u001b[32mRunning\u001b[0m        0          5m',
          'bad    0/1     \u001b[31mErrImagePull\u001b[0m   0          5m',
        ),
      );
    });
  });

  describe('other formats', () => {
    const containers = [{ name: 'web', image: 'nginx' }];
    const web = obj('Deployment', 'web', {
      spec: { replicas: 2, template: { spec: { containers } } },
    });
    const pod = obj('Pod', 'web-abc', { spec: { containers } });
    const cm = obj('ConfigMap', 'c', {
      metadata: { creationTimestamp: undefined },
      data: { port: '80', flag: 'yes' },
    });

    it('names objects kind[.group]/name', () => {
      const objs = [web, pod, obj('Service', 'x'), obj('Job', 'pi'), obj('ReplicaSet', 'web-1')];
      assert.equal(
        printObjects(objs, 'name', { now }),
        lines(
          'deployment.apps/web',
          'pod/web-abc',
          'service/x',
          'job.batch/pi',
          'replicaset.apps/web-1',
        ),
      );
      assert.equal(printObjects([], 'name', { now }), '');
    });

    it('writes one object as itself and several as a List, in JSON with four-space indents', () => {
      assert.equal(
        printObjects([cm], 'json', { now }),
        lines(
          '{',
          '    "apiVersion": "v1",',
          '    "kind": "ConfigMap",',
          '    "metadata": {',
          '        "name": "c",',
          '        "namespace": "default"',
          '    },',
          '    "data": {',
          '        "port": "80",',
          '        "flag": "yes"',
          '    }',
          '}',
        ),
      );
      assert.deepEqual(JSON.parse(printObjects([web, pod], 'json', { now })), {
        apiVersion: 'v1',
        kind: 'List',
        items: [web, pod],
        metadata: { resourceVersion: '' },
      });
      assert.deepEqual(JSON.parse(printObjects([], 'json', { now })).items, []);
    });

    it('writes YAML in kubectl’s style: sequences flush with their key, no aliases', () => {
      assert.equal(
        printObjects([cm], 'yaml', { now }),
        lines(
          'apiVersion: v1',
          'kind: ConfigMap',
          'metadata:',
          '  name: c',
          '  namespace: default',
          'data:',
          '  port: "80"',
          '  flag: "yes"',
        ),
      );
      // The same object twice is written out twice, not as an anchor and an alias.
      assert.equal(
        printObjects([cm, cm], 'yaml', { now }),
        lines(
          'apiVersion: v1',
          'kind: List',
          'items:',
          '- apiVersion: v1',
          '  kind: ConfigMap',
          '  metadata:',
          '    name: c',
          '    namespace: default',
          '  data:',
          '    port: "80"',
          '    flag: "yes"',
          '- apiVersion: v1',
          '  kind: ConfigMap',
          '  metadata:',
          '    name: c',
          '    namespace: default',
          '  data:',
          '    port: "80"',
          '    flag: "yes"',
          'metadata:',
          '  resourceVersion: ""',
        ),
      );
    });

    it('round-trips any objects through YAML and JSON', () => {
      const object = fc.record({
        apiVersion: fc.constantFrom('v1', 'apps/v1'),
        kind: fc.constantFrom('ConfigMap', 'Deployment', 'Pod'),
        metadata: fc.record({
          name: fc.string({ minLength: 1 }),
          labels: fc.dictionary(fc.string(), fc.string()),
        }),
        // Through JSON: -0 is not JSON (it prints as 0), and manifests are.
        spec: fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown),
      });
      fc.assert(
        fc.property(fc.array(object, { maxLength: 3 }), (objs) => {
          // The generated objects may lack a prototype; compare plain data.
          const plain: unknown = JSON.parse(JSON.stringify(objs.length === 1 ? objs[0] : objs));
          const got = (v: unknown) => (objs.length === 1 ? v : (v as { items: unknown }).items);
          // The CLI ends what it prints with a newline: parse what the user sees,
          // as `baton apply -f` reads it (merge keys on).
          const yaml = `${printObjects(objs as ApiObject[], 'yaml', { now })}\n`;
          assert.deepEqual(got(parseYaml(yaml, { merge: true })), plain);
          assert.deepEqual(
            got(JSON.parse(printObjects(objs as ApiObject[], 'json', { now }))),
            plain,
          );
        }),
      );
    });

    it('quotes strings that a YAML 1.1 reader such as kubectl would take for something else', () => {
      const tricky = ['yes', 'on', 'N', '0644', '0o17', '1:30', '1_000', '0b101', '<<', '~', '1e3'];
      const data = fc.dictionary(
        fc.oneof(fc.constantFrom(...tricky), fc.string()),
        fc.oneof(fc.constantFrom(...tricky), fc.string()),
      );
      fc.assert(
        fc.property(data, (d) => {
          const text = printObjects([obj('ConfigMap', 'c', { data: d })], 'yaml', { now });
          const want = JSON.parse(JSON.stringify(d)) as unknown;
          for (const version of ['1.1', '1.2'] as const)
            assert.deepEqual(parseYaml(text, { version, merge: true }).data, want, version);
        }),
      );
    });
  });

  it('refuses an unknown output format, naming the choices', () => {
    assert.equal(parseOutputFormat(undefined), 'table');
    assert.equal(parseOutputFormat('wide'), 'wide');
    assert.throws(() => parseOutputFormat('xml'), {
      message: '--output: unknown format "xml" (expected one of: wide, yaml, json, name)',
    });
  });
});

import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Pod } from '../../src/api/schema';
import {
  addPod,
  buildView,
  newNodeInfo,
  nodeAllocatable,
  podIndex,
  podRequests,
  removePod,
  updateNode,
} from '../../src/master/scheduler/node-info';
import type { NodeInfo } from '../../src/master/scheduler/types';
import { node, pod } from './builders';

const Mi = 2 ** 20;
const Gi = 2 ** 30;

describe('podRequests', () => {
  const cases: [string, Pod, Record<string, number>][] = [
    ['no requests', pod('p'), {}],
    [
      'app containers add up; cpu in millicores, memory in bytes',
      pod('p', {
        requests: { cpu: '100m', memory: '128Mi' },
        containers: [{ requests: { cpu: 0.2, memory: '64Mi' } }],
      }),
      { cpu: 300, memory: 192 * Mi },
    ],
    [
      'an init container larger than the app containers sets the request',
      pod('p', {
        requests: { cpu: '500m', memory: '1Gi' },
        initContainers: [{ requests: { cpu: '2', memory: '64Mi' } }, { requests: { cpu: '1' } }],
      }),
      { cpu: 2000, memory: Gi },
    ],
    [
      'overhead comes on top',
      pod('p', { requests: { cpu: '1' }, overhead: { cpu: '250m', memory: '64Mi' } }),
      { cpu: 1250, memory: 64 * Mi },
    ],
    [
      'limits stand in for missing requests, per resource',
      pod('p', {
        requests: { cpu: '100m' },
        limits: { cpu: '500m', memory: '256Mi', 'nvidia.com/gpu': 2 },
      }),
      { cpu: 100, memory: 256 * Mi, 'nvidia.com/gpu': 2 },
    ],
    [
      'a sidecar adds to the app containers and to the init containers after it',
      pod('p', {
        requests: { cpu: '200m' },
        initContainers: [{ requests: { cpu: '100m' }, sidecar: true }, { requests: { cpu: '1' } }],
      }),
      { cpu: 1100 },
    ],
    [
      'sidecars run with the app containers',
      pod('p', {
        requests: { cpu: '1' },
        initContainers: [{ requests: { cpu: '500m' }, sidecar: true }],
      }),
      { cpu: 1500 },
    ],
    [
      'ephemeral storage in bytes',
      pod('p', { requests: { 'ephemeral-storage': '1G' } }),
      { 'ephemeral-storage': 1e9 },
    ],
  ];
  for (const [name, p, want] of cases) it(name, () => assert.deepEqual(podRequests(p), want));

  it('returns a copy the caller may change', () => {
    const p = pod('p', { requests: { cpu: '1' } });
    podRequests(p).cpu = 0;
    assert.equal(podRequests(p).cpu, 1000);
  });
});

describe('nodeAllocatable', () => {
  it('converts units and keeps extended resources', () =>
    assert.deepEqual(
      nodeAllocatable(
        node('n', { cpu: '3500m', memory: '8Gi', pods: 20, extra: { 'nvidia.com/gpu': 4 } }),
      ),
      {
        cpu: 3500,
        memory: 8 * Gi,
        pods: 20,
        'nvidia.com/gpu': 4,
      },
    ));

  it('falls back to capacity, and to the kubelet default of 110 pods', () => {
    const n = node('n');
    n.status = { capacity: { cpu: '2', memory: '1Gi' } };
    assert.deepEqual(nodeAllocatable(n), { cpu: 2000, memory: Gi, pods: 110 });
  });
});

describe('NodeInfo', () => {
  it('defaults the hostname label to the node name, and keeps one that is set', () => {
    assert.equal(newNodeInfo(node('n1')).labels['kubernetes.io/hostname'], 'n1');
    const info = newNodeInfo(node('n1', { labels: { 'kubernetes.io/hostname': 'host-1' } }));
    assert.equal(info.labels['kubernetes.io/hostname'], 'host-1');
  });

  it('adds and removes pods, keeping requests, pod count and host ports exact', () => {
    const info = newNodeInfo(node('n1'));
    const a = pod('a', { requests: { cpu: '1', memory: '1Gi' }, hostPorts: [80] });
    const b = pod('b', { requests: { cpu: '500m', 'nvidia.com/gpu': 1 } });
    addPod(info, a);
    addPod(info, b);
    assert.deepEqual(info.requested, { cpu: 1500, memory: Gi, pods: 2, 'nvidia.com/gpu': 1 });
    assert.deepEqual([...info.hostPorts], ['TCP/0.0.0.0/80']);
    assert.deepEqual([...info.pods.keys()].sort(), [a.metadata.uid, b.metadata.uid].sort());
    removePod(info, a);
    assert.deepEqual(info.requested, { cpu: 500, memory: 0, pods: 1, 'nvidia.com/gpu': 1 });
    assert.equal(info.hostPorts.size, 0);
  });

  it('replaces a pod added again under its uid instead of counting it twice', () => {
    const info = newNodeInfo(node('n1'));
    const v1 = pod('a', { uid: 'u1', requests: { cpu: '1' } });
    const v2 = pod('a', { uid: 'u1', requests: { cpu: '2' } });
    addPod(info, v1);
    addPod(info, v2);
    assert.deepEqual(info.requested, { cpu: 2000, memory: 0, pods: 1 });
    // Removal subtracts what was stored, whatever version the caller holds.
    removePod(info, v1);
    assert.deepEqual(info.requested, { cpu: 0, memory: 0, pods: 0 });
    removePod(info, v1); // unknown now: ignored
    assert.equal(info.requested.pods, 0);
  });

  it('frees a host port only with the last pod using it', () => {
    const info = newNodeInfo(node('n1'));
    const a = pod('a', { hostPorts: [{ hostPort: 53, protocol: 'UDP', hostIP: '10.0.0.1' }] });
    const b = pod('b', { hostPorts: [{ hostPort: 53, protocol: 'UDP', hostIP: '10.0.0.1' }] });
    addPod(info, a);
    addPod(info, b);
    removePod(info, a);
    assert.deepEqual([...info.hostPorts], ['UDP/10.0.0.1/53']);
    removePod(info, b);
    assert.deepEqual([...info.hostPorts], []);
  });

  it('updateNode changes labels and allocatable and keeps the pods', () => {
    const info = newNodeInfo(node('n1', { cpu: '2' }));
    addPod(info, pod('a', { requests: { cpu: '1' } }));
    updateNode(info, node('n1', { cpu: '8', labels: { zone: 'b' } }));
    assert.equal(info.allocatable.cpu, 8000);
    assert.equal(info.labels.zone, 'b');
    assert.equal(info.requested.cpu, 1000);
    assert.equal(info.pods.size, 1);
  });

  /** The index as addPod/removePod keep it must equal one built from scratch. */
  function indexSummary(info: NodeInfo) {
    const idx = podIndex(info);
    const sets = (m: Map<string, Set<Pod>>) =>
      Object.fromEntries([...m].map(([k, s]) => [k, [...s].map((p) => p.metadata.name).sort()]));
    const groups = (m: typeof idx.affinityGroups) =>
      Object.fromEntries([...m].map(([k, g]) => [k, g.pods.size]));
    return {
      byNamespace: sets(idx.byNamespace),
      byLabel: sets(idx.byLabel),
      byController: Object.fromEntries(idx.byController),
      anti: groups(idx.antiAffinityGroups),
      affinity: groups(idx.affinityGroups),
      ports: Object.fromEntries(idx.hostPortUsers),
      terminating: [...idx.terminating].map((p) => p.metadata.name).sort(),
      cpu: idx.nonZeroCpu,
      memory: idx.nonZeroMemory,
    };
  }

  it('keeps its pod index in step through any sequence of adds and removes (property)', () => {
    const antiWeb = {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' },
        ],
      },
    };
    const pool = Array.from({ length: 8 }, (_, i) =>
      pod(`p${i}`, {
        uid: `u${i}`,
        namespace: i % 3 === 0 ? 'other' : 'default',
        labels: { app: i % 2 === 0 ? 'web' : 'db', n: String(i) },
        requests: i % 4 === 0 ? undefined : { cpu: `${i}00m` },
        owner: i % 2 === 0 ? 'rs-web' : undefined,
        affinity: i % 3 === 1 ? antiWeb : undefined,
        hostPorts: i % 4 === 1 ? [8080] : undefined,
        terminating: i === 5,
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 7 })), { maxLength: 30 }),
        (ops) => {
          const info = newNodeInfo(node('n1'));
          for (const [add, i] of ops) (add ? addPod : removePod)(info, pool[i]);
          const fresh: NodeInfo = { ...info, pods: new Map(info.pods) };
          assert.deepEqual(indexSummary(info), indexSummary(fresh));
          const cpu = [...info.pods.values()].reduce((s, p) => s + (podRequests(p).cpu ?? 0), 0);
          assert.equal(info.requested.cpu, cpu);
          assert.equal(info.requested.pods, info.pods.size);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('buildView', () => {
  it('finds nodes by name and gives every namespace its metadata.name label', () => {
    const infos = [newNodeInfo(node('a')), newNodeInfo(node('b'))];
    const view = buildView(infos, new Map([['team-x', { team: 'x' }]]));
    assert.equal(view.byName.get('b'), infos[1]);
    assert.deepEqual(view.namespaceLabels('team-x'), {
      team: 'x',
      'kubernetes.io/metadata.name': 'team-x',
    });
    assert.deepEqual(view.namespaceLabels('other'), { 'kubernetes.io/metadata.name': 'other' });
  });

  it('reads namespace labels through a function once per namespace', () => {
    let reads = 0;
    const view = buildView([], (ns) => {
      reads++;
      return { ns };
    });
    view.namespaceLabels('a');
    view.namespaceLabels('a');
    assert.equal(reads, 1);
    assert.equal(view.namespaceLabels('a').ns, 'a');
  });
});

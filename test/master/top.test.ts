/**
 * How a master turns its nodes' Stats answers into `baton top` rows: the
 * share of the Node's allocatable, pods matched by uid with containers in
 * spec order, and a reason wherever there are no numbers.
 */
import assert from 'node:assert/strict';
import { ApiObject } from '../../src/api/types';
import { StatsResponse } from '../../src/gen/node';
import { allocatable, nodeMetrics, podMetrics } from '../../src/master/top';

const usage = (nanoCores: number, bytes: number, windowMs = 1000) => ({
  cpuUsageNanoCores: nanoCores,
  cpuUsageCoreNanoseconds: 0,
  memoryWorkingSetBytes: bytes,
  windowMs,
});

const nodeObj = (status: Record<string, unknown>): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'n1' },
  status,
});

const stats: StatsResponse = {
  timestampMs: 1234,
  node: {
    usage: usage(500_000_000, 3 * 2 ** 30),
    cpuCapacityMillicores: 8000,
    memoryCapacityBytes: 32 * 2 ** 30,
  },
  pods: [
    {
      uid: 'u-web',
      namespace: 'default',
      name: 'web',
      containers: [
        { name: 'sidecar', usage: usage(1_000_000, 100, 1500) },
        { name: 'app', usage: usage(300_000_000, 5000) },
      ],
    },
  ],
};

const podObj = (uid: string, phase = 'Running'): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default', uid },
  spec: { nodeName: 'n1', containers: [{ name: 'app' }, { name: 'sidecar' }] },
  status: { phase },
});

describe('master: top rows from node answers', () => {
  it('allocatable: from status.allocatable, else capacity; nothing when unparsable', () => {
    assert.deepEqual(allocatable(nodeObj({ allocatable: { cpu: '3500m', memory: '2Gi' } })), {
      cpuMillicores: 3500,
      memoryBytes: 2 * 2 ** 30,
    });
    assert.deepEqual(allocatable(nodeObj({ capacity: { cpu: '2', memory: '1024Ki' } })), {
      cpuMillicores: 2000,
      memoryBytes: 1024 * 1024,
    });
    assert.deepEqual(allocatable(nodeObj({ allocatable: { cpu: 'lots' } })), {
      cpuMillicores: undefined,
      memoryBytes: undefined,
    });
  });

  it("nodeMetrics: the node's usage against its allocatable (the host's capacity when it says nothing)", () => {
    const m = nodeMetrics(nodeObj({ allocatable: { cpu: '4', memory: '16Gi' } }), { stats });
    assert.deepEqual(m, {
      name: 'n1',
      unavailable: '',
      timestampMs: 1234,
      windowMs: 1000,
      cpuNanoCores: 500_000_000,
      memoryWorkingSetBytes: 3 * 2 ** 30,
      cpuAllocatableMillicores: 4000,
      memoryAllocatableBytes: 16 * 2 ** 30,
    });
    const bare = nodeMetrics(nodeObj({}), { stats });
    assert.equal(bare.cpuAllocatableMillicores, 8000);
    assert.equal(bare.memoryAllocatableBytes, 32 * 2 ** 30);
    const gone = nodeMetrics(nodeObj({}), { unavailable: 'node n1 did not answer within 5 s' });
    assert.equal(gone.unavailable, 'node n1 did not answer within 5 s');
    assert.equal(gone.cpuNanoCores, 0);
  });

  it('podMetrics: matched by uid, containers in spec order; a reason when there are no numbers', () => {
    const m = podMetrics(podObj('u-web'), { stats });
    assert.equal(m.unavailable, '');
    assert.equal(m.nodeName, 'n1');
    assert.equal(m.windowMs, 1500);
    assert.deepEqual(
      m.containers.map((c) => [c.name, c.cpuNanoCores, c.memoryWorkingSetBytes]),
      [
        ['app', 300_000_000, 5000],
        ['sidecar', 1_000_000, 100],
      ],
    );
    assert.match(
      podMetrics(podObj('u-other'), { stats }).unavailable,
      /no usage measured yet on node n1/,
    );
    assert.equal(
      podMetrics(podObj('u-web'), { unavailable: 'node n1 (127.0.0.1:1) is unreachable' })
        .unavailable,
      'node n1 (127.0.0.1:1) is unreachable',
    );
    assert.match(podMetrics(podObj('u-web', 'Pending'), undefined).unavailable, /is Pending/);
  });
});

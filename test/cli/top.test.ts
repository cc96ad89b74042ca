/**
 * `baton top`'s tables as kubectl top prints them: CPU in millicores
 * rounded up, memory in whole Mi rounded down, percentages truncated,
 * `<unknown>` for what a node did not answer, sorting and columns.
 */
import assert from 'node:assert/strict';
import { NodeMetrics, PodMetrics } from '../../src/gen/api';
import {
  formatCpu,
  formatMemory,
  formatPercent,
  nodeTable,
  podTable,
} from '../../src/cli/commands/top';

const MI = 2 ** 20;

function node(name: string, m: Partial<NodeMetrics> = {}): NodeMetrics {
  return {
    name,
    unavailable: '',
    timestampMs: 1,
    windowMs: 1000,
    cpuNanoCores: 0,
    memoryWorkingSetBytes: 0,
    cpuAllocatableMillicores: 2000,
    memoryAllocatableBytes: 8192 * MI,
    ...m,
  };
}

function pod(
  name: string,
  containers: [string, number, number][],
  m: Partial<PodMetrics> = {},
): PodMetrics {
  return {
    namespace: 'default',
    name,
    nodeName: 'n1',
    unavailable: '',
    timestampMs: 1,
    windowMs: 1000,
    containers: containers.map(([c, cpuNanoCores, memoryWorkingSetBytes]) => ({
      name: c,
      cpuNanoCores,
      memoryWorkingSetBytes,
    })),
    ...m,
  };
}

describe('cli: top tables', () => {
  it('cells: millicores rounded up, Mi rounded down, percent truncated', () => {
    const cases: [string, string, string][] = [
      ['0 nanocores', formatCpu(0), '0m'],
      ['one nanocore is 1m', formatCpu(1), '1m'],
      ['250m exactly', formatCpu(250_000_000), '250m'],
      ['250.1m rounds up', formatCpu(250_100_000), '251m'],
      ['two cores', formatCpu(2e9), '2000m'],
      ['0 bytes', formatMemory(0), '0Mi'],
      ['just under 1Mi', formatMemory(MI - 1), '0Mi'],
      ['512Mi and a bit', formatMemory(512 * MI + 1000), '512Mi'],
      ['12.9% truncates', formatPercent(129, 1000), '12%'],
      ['0%', formatPercent(0, 1000), '0%'],
      ['over 100%', formatPercent(3, 2), '150%'],
      ['no whole to share', formatPercent(5, 0), '<unknown>'],
    ];
    for (const [what, got, want] of cases) assert.equal(got, want, what);
  });

  it('nodes: cores, share of allocatable, memory; <unknown> for a node that did not answer', () => {
    const rows = nodeTable([
      node('a', { cpuNanoCores: 250_000_000, memoryWorkingSetBytes: 512 * MI }),
      node('b', { unavailable: 'node b (10.0.0.2:10250) did not answer within 5 s' }),
      node('c', { cpuNanoCores: 1_500_000_000, memoryWorkingSetBytes: 100 * MI }),
    ]);
    assert.deepEqual(rows, [
      ['a', '250m', '12%', '512Mi', '6%'],
      ['b', '<unknown>', '<unknown>', '<unknown>', '<unknown>'],
      ['c', '1500m', '75%', '100Mi', '1%'],
    ]);
    assert.deepEqual(
      nodeTable(
        [
          node('a', { cpuNanoCores: 1, memoryWorkingSetBytes: 9 }),
          node('b', { unavailable: 'gone' }),
          node('c', { cpuNanoCores: 5, memoryWorkingSetBytes: 1 }),
        ],
        'cpu',
      ).map((r) => r[0]),
      ['c', 'a', 'b'],
      'most CPU first, unknown last',
    );
  });

  it('pods: the sum of their containers; NAMESPACE under -A; POD and a row per container with --containers; sorted', () => {
    const pods = [
      pod('busy', [
        ['app', 900_000_000, 3 * MI],
        ['sidecar', 100_500_000, 2 * MI],
      ]),
      pod('idle', [['app', 200_000, 20 * MI]], { namespace: 'team' }),
      pod('lost', [], { unavailable: 'node n2 is unreachable', nodeName: 'n2' }),
    ];
    const plain = podTable(pods);
    assert.deepEqual(plain.headers, ['NAME', 'CPU(cores)', 'MEMORY(bytes)']);
    assert.deepEqual(plain.rows, [
      ['busy', '1001m', '5Mi'],
      ['idle', '1m', '20Mi'],
      ['lost', '<unknown>', '<unknown>'],
    ]);

    const wide = podTable(pods, { allNamespaces: true, containers: true });
    assert.deepEqual(wide.headers, ['NAMESPACE', 'POD', 'NAME', 'CPU(cores)', 'MEMORY(bytes)']);
    assert.deepEqual(wide.rows, [
      ['default', 'busy', 'app', '900m', '3Mi'],
      ['default', 'busy', 'sidecar', '101m', '2Mi'],
      ['team', 'idle', 'app', '1m', '20Mi'],
      ['default', 'lost', '<unknown>', '<unknown>', '<unknown>'],
    ]);

    assert.deepEqual(
      podTable(pods, { sortBy: 'memory' }).rows.map((r) => r[0]),
      ['idle', 'busy', 'lost'],
    );
    assert.deepEqual(
      podTable(pods, { sortBy: 'cpu' }).rows.map((r) => r[0]),
      ['busy', 'idle', 'lost'],
    );
  });
});

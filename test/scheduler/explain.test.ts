import assert from 'node:assert/strict';
import { explainUnschedulable } from '../../src/master/scheduler/explain';

describe('explainUnschedulable', () => {
  const cases: [string, number, [string, number][], string][] = [
    [
      'counts per reason, listed by reason text',
      5,
      [
        ['node(s) had untolerated taint {gpu: true}', 2],
        ['Insufficient memory', 3],
      ],
      '0/5 nodes are available: 3 Insufficient memory, 2 node(s) had untolerated taint {gpu: true}.',
    ],
    [
      'byte order, as Go sorts: capitals before lower case',
      7,
      [
        ["node(s) didn't match Pod's node affinity/selector", 1],
        ['Too many pods', 1],
        ['Insufficient memory', 2],
        ['Insufficient cpu', 3],
      ],
      "0/7 nodes are available: 3 Insufficient cpu, 2 Insufficient memory, 1 Too many pods, 1 node(s) didn't match Pod's node affinity/selector.",
    ],
    [
      'one reason',
      1,
      [['node(s) were unschedulable', 1]],
      '0/1 nodes are available: 1 node(s) were unschedulable.',
    ],
    ['an empty cluster', 0, [], '0/0 nodes are available: no nodes registered.'],
  ];
  for (const [name, total, reasons, want] of cases)
    it(name, () => assert.equal(explainUnschedulable(total, new Map(reasons)), want));
});

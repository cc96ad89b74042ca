/**
 * The cluster-wide totals are kept up to date from the change journal; they
 * must always equal totals counted from scratch.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Pod } from '../../src/api/schema';
import { addPod, buildView, podIndex, removePod } from '../../src/master/scheduler/node-info';
import {
  candidateNodes,
  clusterIndex,
  type ClusterIndex,
  type NodeCounts,
  type TermGroups,
} from '../../src/master/scheduler/plugins/cluster-index';
import { podAffinityTerms } from '../../src/master/scheduler/plugins/pod-query';
import type { NodeInfo } from '../../src/master/scheduler/types';
import { cluster, node, pod } from './builders';

function counts(m: Map<string, NodeCounts>) {
  return Object.fromEntries(
    [...m].map(([k, nodes]) => [k, Object.fromEntries([...nodes].map(([n, c]) => [n.name, c]))]),
  );
}

function groups(g: TermGroups) {
  const indexed = [...g.byLabel.values()].reduce((n, s) => n + s.size, 0) + g.unlabelled.size;
  assert.equal(indexed, g.byKey.size, 'every group is indexed once');
  return Object.fromEntries(
    [...g.byKey].map(([k, cg]) => [
      k,
      Object.fromEntries([...cg.nodes].map(([n, c]) => [n.name, c])),
    ]),
  );
}

function summary(ci: ClusterIndex) {
  return {
    labels: counts(ci.nodesByLabel),
    namespaces: counts(ci.nodesByNamespace),
    controllers: counts(ci.nodesByController),
    anti: groups(ci.antiAffinityGroups),
    affinity: groups(ci.affinityGroups),
  };
}

/** Totals for the same nodes counted from scratch (a new list has none yet). */
const fromScratch = (infos: NodeInfo[]) => summary(clusterIndex(buildView([...infos]), new Map()));
const current = (infos: NodeInfo[]) => summary(clusterIndex(buildView(infos), new Map()));

const antiWeb = {
  podAntiAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: [
      { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' },
    ],
  },
};
const preferDb = {
  podAffinity: {
    preferredDuringSchedulingIgnoredDuringExecution: [
      {
        weight: 5,
        podAffinityTerm: {
          labelSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
          topologyKey: 'zone',
        },
      },
    ],
  },
};

const pool: Pod[] = Array.from({ length: 10 }, (_, i) =>
  pod(`p${i}`, {
    uid: `u${i}`,
    namespace: i % 4 === 0 ? 'other' : 'default',
    labels: { app: ['web', 'db', 'cache'][i % 3] },
    owner: i % 2 === 0 ? 'rs-a' : 'rs-b',
    affinity: i % 3 === 0 ? antiWeb : i % 3 === 1 ? preferDb : undefined,
    terminating: i === 7,
  }),
);

describe('cluster index', () => {
  it('equals a count from scratch after any adds and removes, read at any moments (property)', () =>
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('add', 'remove', 'read'),
            fc.integer({ min: 0, max: 2 }),
            fc.integer({ min: 0, max: 9 }),
          ),
          { maxLength: 40 },
        ),
        (ops) => {
          const c = cluster([node('n0'), node('n1'), node('n2')]);
          for (const [op, n, p] of ops) {
            if (op === 'add') addPod(c.infos[n], pool[p]);
            else if (op === 'remove') removePod(c.infos[n], pool[p]);
            else assert.deepEqual(current(c.infos), fromScratch(c.infos));
          }
          assert.deepEqual(current(c.infos), fromScratch(c.infos));
        },
      ),
      { numRuns: 200 },
    ));

  it('counts afresh when the journal has forgotten changes', () => {
    const c = cluster([node('n0'), node('n1')]);
    current(c.infos);
    const filler = pod('filler', { labels: { app: 'x' } });
    for (let i = 0; i < 5000; i++) {
      addPod(c.infos[i % 2], filler);
      removePod(c.infos[i % 2], filler);
    }
    addPod(c.infos[1], pool[0]);
    assert.deepEqual(current(c.infos).labels, { 'other/app=web': { n1: 1 } });
  });

  it('counts afresh when a node pods were changed behind addPod back', () => {
    const c = cluster([node('n0'), node('n1')], { n0: [pool[1]] });
    current(c.infos);
    c.infos[1].pods.set('sneaky', pool[2]);
    podIndex(c.infos[1]); // notices, rebuilds, and says so in the journal
    assert.deepEqual(current(c.infos), fromScratch(c.infos));
    assert.deepEqual(current(c.infos).labels['default/app=cache'], { n1: 1 });
  });

  it('names as candidates only the nodes holding pods with the term key label', () => {
    const c = cluster([node('n0'), node('n1'), node('n2')], {
      n0: [pod('w', { labels: { app: 'web' } })],
      n2: [pod('d', { labels: { app: 'db' } })],
    });
    const term = podAffinityTerms(pool[3]).requiredAntiAffinity[0];
    const ci = clusterIndex(c.view, new Map());
    assert.deepEqual(
      [...candidateNodes(ci, term, c.view)].map((n) => n.name),
      ['n0'],
    );
  });
});

/**
 * The scores, each on a small cluster: normalized scores (0..100) and the
 * order of the nodes they imply.
 */
import assert from 'node:assert/strict';
import {
  InterPodAffinityScore,
  NodeAffinityScore,
  NodeResourcesBalancedAllocation,
  NodeResourcesLeastAllocated,
  PodTopologySpreadScore,
  SelectorSpread,
  TaintTolerationScore,
} from '../../src/master/scheduler/plugins';
import { cluster, node, pod, ranking, scoreAll, type PodOptions } from './builders';

const ZONE = 'topology.kubernetes.io/zone';
const HOST = 'kubernetes.io/hostname';
const zone = (z: string, more: Record<string, string> = {}) => ({ [ZONE]: z, ...more });

describe('NodeResourcesLeastAllocated', () => {
  const c = cluster([node('empty'), node('half'), node('over', { cpu: '1' })], {
    half: [pod('x', { requests: { cpu: '2', memory: '4Gi' } })],
  });

  it('scores the free share of cpu and memory with the pod placed', () =>
    assert.deepEqual(
      scoreAll(NodeResourcesLeastAllocated, pod('p', { requests: { cpu: '1', memory: '2Gi' } }), c),
      {
        empty: 75, // cpu 3/4 free, memory 6/8 free
        half: 25, // cpu 1/4, memory 2/8
        over: 37.5, // cpu all taken (0), memory 6/8
      },
    ));

  it('counts containers without requests as 100m and 200Mi, so best-effort pods spread', () => {
    const c2 = cluster([node('n1'), node('n2')], { n1: [pod('be1'), pod('be2')] });
    assert.deepEqual(ranking(scoreAll(NodeResourcesLeastAllocated, pod('p'), c2)), ['n2', 'n1']);
  });
});

describe('NodeResourcesBalancedAllocation', () => {
  const c = cluster([node('even'), node('cpu-heavy')], {
    'cpu-heavy': [pod('x', { requests: { cpu: '2' } })],
  });

  it('prefers nodes whose cpu and memory fill alike', () =>
    assert.deepEqual(
      scoreAll(
        NodeResourcesBalancedAllocation,
        pod('p', { requests: { cpu: '1', memory: '2Gi' } }),
        c,
      ),
      {
        even: 100, // 1/4 cpu, 2/8 memory
        'cpu-heavy': 75, // 3/4 cpu, 2/8 memory: 1 − 0.5/2
      },
    ));
});

describe('TaintTolerationScore', () => {
  const soft = (key: string) => ({ key, effect: 'PreferNoSchedule' });
  const c = cluster([
    node('clean'),
    node('one', { taints: [soft('spot')] }),
    node('two', { taints: [soft('spot'), soft('old')] }),
    node('hard', { taints: [{ key: 'x', effect: 'NoSchedule' }] }),
  ]);

  it('fewer intolerable PreferNoSchedule taints is better', () =>
    assert.deepEqual(scoreAll(TaintTolerationScore, pod('p'), c), {
      clean: 100,
      one: 50,
      two: 0,
      hard: 100,
    }));

  it('tolerated taints do not count (a NoSchedule-only toleration does not help)', () => {
    const tolerant = pod('p', {
      tolerations: [{ key: 'spot', operator: 'Exists', effect: 'PreferNoSchedule' }],
    });
    assert.deepEqual(scoreAll(TaintTolerationScore, tolerant, c), {
      clean: 100,
      one: 100,
      two: 0,
      hard: 100,
    });
    const wrongEffect = pod('p', {
      tolerations: [{ key: 'spot', operator: 'Exists', effect: 'NoSchedule' }],
    });
    assert.deepEqual(scoreAll(TaintTolerationScore, wrongEffect, c).one, 50);
  });
});

describe('NodeAffinityScore', () => {
  const c = cluster([
    node('both', { labels: zone('a', { disk: 'ssd' }) }),
    node('zone', { labels: zone('a') }),
    node('disk', { labels: zone('b', { disk: 'ssd' }) }),
    node('none', { labels: zone('b') }),
  ]);
  const prefer = (weight: number, key: string, values: string[]) => ({
    weight,
    preference: { matchExpressions: [{ key, operator: 'In', values }] },
  });

  it('adds the weights of the preferred terms a node matches, the best scoring 100', () => {
    const p = pod('p', {
      affinity: {
        nodeAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            prefer(60, ZONE, ['a']),
            prefer(20, 'disk', ['ssd']),
          ],
        },
      },
    });
    assert.deepEqual(scoreAll(NodeAffinityScore, p, c), { both: 100, zone: 75, disk: 25, none: 0 });
  });

  it('scores every node 0 without preferences', () =>
    assert.deepEqual(Object.values(scoreAll(NodeAffinityScore, pod('p'), c)), [0, 0, 0, 0]));
});

describe('InterPodAffinityScore', () => {
  const nodes = [
    node('n1', { labels: zone('a') }),
    node('n2', { labels: zone('a') }),
    node('n3', { labels: zone('b') }),
  ];
  const term = (weight: number, labels: Record<string, string>, topologyKey: string) => ({
    weight,
    podAffinityTerm: { labelSelector: { matchLabels: labels }, topologyKey },
  });
  const preferred = (kind: 'podAffinity' | 'podAntiAffinity', ...terms: object[]) => ({
    [kind]: { preferredDuringSchedulingIgnoredDuringExecution: terms },
  });

  it('preferred affinity draws the pod to the domain of the pods it selects', () => {
    const c = cluster(nodes, { n1: [pod('cache', { labels: { app: 'cache' } })] });
    const p = pod('p', { affinity: preferred('podAffinity', term(50, { app: 'cache' }, HOST)) });
    assert.deepEqual(scoreAll(InterPodAffinityScore, p, c), { n1: 100, n2: 0, n3: 0 });
    const byZone = pod('p', {
      affinity: preferred('podAffinity', term(50, { app: 'cache' }, ZONE)),
    });
    assert.deepEqual(scoreAll(InterPodAffinityScore, byZone, c), { n1: 100, n2: 100, n3: 0 });
  });

  it('preferred anti-affinity pushes it away, more so from more pods', () => {
    const c = cluster(nodes, {
      n1: [pod('w1', { labels: { app: 'web' } }), pod('w2', { labels: { app: 'web' } })],
      n2: [pod('w3', { labels: { app: 'web' } })],
    });
    const p = pod('p', { affinity: preferred('podAntiAffinity', term(10, { app: 'web' }, HOST)) });
    assert.deepEqual(scoreAll(InterPodAffinityScore, p, c), { n1: 0, n2: 50, n3: 100 });
  });

  it('existing pods terms that select the pod count too', () => {
    const fan = pod('fan', {
      labels: { app: 'fan' },
      affinity: preferred('podAffinity', term(30, { app: 'star' }, HOST)),
    });
    const hater = pod('hater', {
      affinity: preferred('podAntiAffinity', term(30, { app: 'star' }, HOST)),
    });
    const c = cluster(nodes, { n1: [fan], n3: [hater] });
    assert.deepEqual(
      ranking(scoreAll(InterPodAffinityScore, pod('star', { labels: { app: 'star' } }), c)),
      ['n1', 'n2', 'n3'],
    );
  });

  it('existing pods required affinity counts with weight 1', () => {
    const needy = pod('needy', {
      affinity: {
        podAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: ZONE },
          ],
        },
      },
    });
    const c = cluster(nodes, { n3: [needy] });
    assert.deepEqual(scoreAll(InterPodAffinityScore, pod('db', { labels: { app: 'db' } }), c), {
      n1: 0,
      n2: 0,
      n3: 100,
    });
  });
});

describe('PodTopologySpreadScore', () => {
  const web = (name: string, more: PodOptions = {}) =>
    pod(name, { labels: { app: 'web' }, ...more });
  const soft = [
    {
      maxSkew: 1,
      topologyKey: ZONE,
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { app: 'web' } },
    },
  ];
  const c = cluster(
    [
      node('a1', { labels: zone('a') }),
      node('b1', { labels: zone('b') }),
      node('c1', { labels: zone('c') }),
      node('nozone'),
    ],
    { a1: [web('w1'), web('w2'), web('w3')], b1: [web('w4')] },
  );

  it('fewer matching pods in the domain is better; a node without the label scores 0', () => {
    const scores = scoreAll(
      PodTopologySpreadScore,
      web('p', { topologySpreadConstraints: soft }),
      c,
    );
    assert.deepEqual(ranking(scores), ['c1', 'b1', 'a1', 'nozone']);
    assert.equal(scores.c1, 100);
    assert.equal(scores.nozone, 0);
  });

  it('gives every node the same score without ScheduleAnyway constraints', () =>
    assert.deepEqual(
      new Set(Object.values(scoreAll(PodTopologySpreadScore, web('p'), c))).size,
      1,
    ));
});

describe('SelectorSpread', () => {
  const sibling = (name: string) => pod(name, { owner: 'rs-1' });

  it('prefers nodes with fewer pods of the same controller', () => {
    const c = cluster([node('n1'), node('n2'), node('n3')], {
      n1: [sibling('s1'), sibling('s2')],
      n2: [sibling('s3'), pod('stranger', { owner: 'rs-2' })],
    });
    assert.deepEqual(scoreAll(SelectorSpread, sibling('p'), c), { n1: 0, n2: 50, n3: 100 });
  });

  it('also spreads across zones', () => {
    const c = cluster(
      [
        node('a1', { labels: zone('a') }),
        node('a2', { labels: zone('a') }),
        node('b1', { labels: zone('b') }),
      ],
      { a2: [sibling('s1'), sibling('s2')] },
    );
    // a1 and b1 both have no sibling, but a1's zone has two.
    assert.deepEqual(ranking(scoreAll(SelectorSpread, sibling('p'), c)), ['b1', 'a1', 'a2']);
  });

  it('leaves pods without a controller, or with spread constraints, alone', () => {
    const c = cluster([node('n1'), node('n2')], { n1: [sibling('s1')] });
    assert.deepEqual(scoreAll(SelectorSpread, pod('p'), c), { n1: 100, n2: 100 });
    const constrained = pod('p', {
      owner: 'rs-1',
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: HOST, whenUnsatisfiable: 'ScheduleAnyway' },
      ],
    });
    assert.deepEqual(scoreAll(SelectorSpread, constrained, c), { n1: 100, n2: 100 });
  });
});

/**
 * The filters, each on a small cluster: which nodes pass, and the exact
 * reason the others give (it is what `kubectl describe pod` will show).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { explainUnschedulable } from '../../src/master/scheduler/explain';
import { removePod } from '../../src/master/scheduler/node-info';
import {
  defaultFilters,
  defaultScores,
  InterPodAffinity,
  NodeAffinity,
  NodePorts,
  NodeResourcesFit,
  NodeUnschedulable,
  PodTopologySpread,
  TaintToleration,
} from '../../src/master/scheduler/plugins';
import { cluster, filterAll, node, passing, pod, type PodOptions } from './builders';

const ZONE = 'topology.kubernetes.io/zone';
const HOST = 'kubernetes.io/hostname';
const zone = (z: string, more: Record<string, string> = {}) => ({ [ZONE]: z, ...more });

describe('NodeUnschedulable', () => {
  const c = cluster([
    node('ready'),
    node('not-ready', { ready: 'False' }),
    node('never-reported', { ready: null }),
    node('unreachable', { ready: 'Unknown' }),
    node('cordoned', { unschedulable: true }),
  ]);

  it('admits only Ready nodes that are not cordoned, saying why', () =>
    assert.deepEqual(filterAll(NodeUnschedulable, pod('p'), c), {
      ready: undefined,
      'not-ready': 'node(s) were not ready',
      'never-reported': 'node(s) were not ready',
      unreachable: 'node(s) were unreachable',
      cordoned: 'node(s) were unschedulable',
    }));

  it('lets in pods that tolerate the matching node.kubernetes.io taint', () => {
    const tolerate = (key: string) => ({ key, operator: 'Exists', effect: 'NoSchedule' });
    const p = pod('ds', {
      tolerations: [
        tolerate('node.kubernetes.io/unschedulable'),
        tolerate('node.kubernetes.io/not-ready'),
      ],
    });
    assert.deepEqual(passing(NodeUnschedulable, p, c), [
      'ready',
      'not-ready',
      'never-reported',
      'cordoned',
    ]);
  });
});

describe('NodeResourcesFit', () => {
  const c = cluster(
    [
      node('small', { cpu: '1', memory: '1Gi' }),
      node('big', { cpu: '8', memory: '32Gi' }),
      node('gpu', { cpu: '8', memory: '32Gi', extra: { 'nvidia.com/gpu': 2 } }),
      node('busy', { cpu: '8', memory: '32Gi' }),
      node('full', { cpu: '8', memory: '32Gi', pods: 1 }),
    ],
    {
      busy: [pod('hog', { requests: { cpu: '7500m', memory: '1Gi' } })],
      full: [pod('only', {})],
    },
  );
  const verdicts = (o: PodOptions) => filterAll(NodeResourcesFit, pod('p', o), c);

  it('fits where every request fits in what is left', () =>
    assert.deepEqual(verdicts({ requests: { cpu: '2', memory: '2Gi' } }), {
      small: 'Insufficient cpu',
      big: undefined,
      gpu: undefined,
      busy: 'Insufficient cpu',
      full: 'Too many pods',
    }));

  it('says memory when cpu fits', () =>
    assert.equal(
      verdicts({ requests: { cpu: '500m', memory: '2Gi' } }).small,
      'Insufficient memory',
    ));

  it('counts extended resources, which a node without them lacks', () =>
    assert.deepEqual(verdicts({ limits: { 'nvidia.com/gpu': 1 } }), {
      small: 'Insufficient nvidia.com/gpu',
      big: 'Insufficient nvidia.com/gpu',
      gpu: undefined,
      busy: 'Insufficient nvidia.com/gpu',
      full: 'Too many pods',
    }));

  it('admits an exact fit', () =>
    assert.equal(verdicts({ requests: { cpu: '500m', memory: '31Gi' } }).busy, undefined));

  it('needs a pod slot even for a pod that requests nothing', () =>
    assert.deepEqual(passing(NodeResourcesFit, pod('p'), c), ['small', 'big', 'gpu', 'busy']));

  it('accepts a node iff every requested resource and a pod slot fit (property)', () => {
    const resources = ['cpu', 'memory', 'example.com/widget'];
    const amounts = fc.record(
      Object.fromEntries(resources.map((r) => [r, fc.integer({ min: 0, max: 8 })])),
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        amounts,
        fc.integer({ min: 0, max: 3 }),
        fc.array(amounts, { maxLength: 3 }),
        amounts,
        (alloc, maxPods, placed, want) => {
          // cpu in whole cores, memory in Mi, widgets as counts
          const q = (r: string, n: number) => (r === 'memory' ? `${n}Mi` : String(n));
          const list = (a: Record<string, number | undefined>) =>
            Object.fromEntries(Object.entries(a).map(([r, n]) => [r, q(r, n ?? 0)]));
          const n = node('n', { cpu: 0, memory: 0, pods: maxPods, extra: list(alloc) });
          const existing = placed.map((r, i) => pod(`e${i}`, { requests: list(r) }));
          const c1 = cluster([n], { n: existing });
          const reason = filterAll(NodeResourcesFit, pod('p', { requests: list(want) }), c1).n;
          const fits =
            existing.length + 1 <= maxPods &&
            resources.every(
              (r) =>
                (want[r] ?? 0) === 0 ||
                (want[r] ?? 0) <= (alloc[r] ?? 0) - placed.reduce((s, p) => s + (p[r] ?? 0), 0),
            );
          assert.equal(reason === undefined, fits, `reason: ${reason}`);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('NodeAffinity', () => {
  const c = cluster([
    node('a1', { labels: zone('a', { disk: 'ssd', cores: '16' }) }),
    node('a2', { labels: zone('a', { disk: 'hdd', cores: '4' }) }),
    node('b1', { labels: zone('b', { disk: 'ssd', cores: '8', gpu: '' }) }),
    node('plain'),
  ]);
  const REASON = "node(s) didn't match Pod's node affinity/selector";
  const required = (...nodeSelectorTerms: object[]) => ({
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } },
  });
  const expr = (key: string, operator: string, values?: string[]) => ({ key, operator, values });
  const fits = (o: PodOptions) => passing(NodeAffinity, pod('p', o), c);

  it('honours spec.nodeSelector, with the reason for the rest', () =>
    assert.deepEqual(filterAll(NodeAffinity, pod('p', { nodeSelector: { disk: 'ssd' } }), c), {
      a1: undefined,
      a2: REASON,
      b1: undefined,
      plain: REASON,
    }));

  const cases: [string, object, string[]][] = [
    ['In', required({ matchExpressions: [expr(ZONE, 'In', ['b', 'c'])] }), ['b1']],
    [
      'NotIn (a missing label passes)',
      required({ matchExpressions: [expr(ZONE, 'NotIn', ['a'])] }),
      ['b1', 'plain'],
    ],
    ['Exists', required({ matchExpressions: [expr('gpu', 'Exists')] }), ['b1']],
    ['DoesNotExist', required({ matchExpressions: [expr('disk', 'DoesNotExist')] }), ['plain']],
    ['Gt', required({ matchExpressions: [expr('cores', 'Gt', ['4'])] }), ['a1', 'b1']],
    ['Lt', required({ matchExpressions: [expr('cores', 'Lt', ['8'])] }), ['a2']],
    [
      'expressions in a term are ANDed',
      required({ matchExpressions: [expr(ZONE, 'In', ['a']), expr('disk', 'In', ['ssd'])] }),
      ['a1'],
    ],
    [
      'terms are ORed',
      required(
        { matchExpressions: [expr(ZONE, 'In', ['b'])] },
        { matchExpressions: [expr('disk', 'In', ['hdd'])] },
      ),
      ['a2', 'b1'],
    ],
    [
      'matchFields on metadata.name',
      required({ matchFields: [expr('metadata.name', 'In', ['a2', 'plain'])] }),
      ['a2', 'plain'],
    ],
    [
      'the hostname label every node has',
      required({ matchExpressions: [expr(HOST, 'NotIn', ['a1'])] }),
      ['a2', 'b1', 'plain'],
    ],
    ['an empty term matches no node', required({}), []],
  ];
  for (const [name, affinity, want] of cases)
    it(`required terms: ${name}`, () => assert.deepEqual(fits({ affinity }), want));

  it('needs both the nodeSelector and the affinity', () =>
    assert.deepEqual(
      fits({
        nodeSelector: { disk: 'ssd' },
        affinity: required({ matchExpressions: [expr(ZONE, 'In', ['a'])] }),
      }),
      ['a1'],
    ));
});

describe('TaintToleration', () => {
  const c = cluster([
    node('clean'),
    node('gpu', { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] }),
    node('draining', { taints: [{ key: 'maintenance', effect: 'NoExecute' }] }),
    node('soft', { taints: [{ key: 'spot', value: 'yes', effect: 'PreferNoSchedule' }] }),
  ]);
  const verdicts = (tolerations?: object[]) =>
    filterAll(TaintToleration, pod('p', { tolerations }), c);

  it('keeps pods off NoSchedule and NoExecute taints they do not tolerate, naming the taint', () =>
    assert.deepEqual(verdicts(), {
      clean: undefined,
      gpu: 'node(s) had untolerated taint {gpu: true}',
      draining: 'node(s) had untolerated taint {maintenance: }',
      soft: undefined,
    }));

  const cases: [string, object[], string[]][] = [
    [
      'Equal (the default) with the same value',
      [{ key: 'gpu', value: 'true' }],
      ['clean', 'gpu', 'soft'],
    ],
    [
      'Equal with another value',
      [{ key: 'gpu', operator: 'Equal', value: 'false' }],
      ['clean', 'soft'],
    ],
    [
      'Exists on the key',
      [{ key: 'maintenance', operator: 'Exists' }],
      ['clean', 'draining', 'soft'],
    ],
    [
      'an empty key with Exists tolerates everything',
      [{ operator: 'Exists' }],
      ['clean', 'gpu', 'draining', 'soft'],
    ],
    [
      'the effect must match when given',
      [{ key: 'gpu', value: 'true', effect: 'NoExecute' }],
      ['clean', 'soft'],
    ],
    [
      'an empty effect matches every effect',
      [{ key: 'maintenance', operator: 'Exists' }],
      ['clean', 'draining', 'soft'],
    ],
  ];
  for (const [name, tolerations, want] of cases)
    it(`tolerations: ${name}`, () =>
      assert.deepEqual(passing(TaintToleration, pod('p', { tolerations }), c), want));
});

describe('NodePorts', () => {
  const c = cluster([node('free'), node('any-ip'), node('one-ip'), node('udp')], {
    'any-ip': [pod('a', { hostPorts: [80] })],
    'one-ip': [pod('b', { hostPorts: [{ hostPort: 80, hostIP: '10.0.0.1' }] })],
    udp: [pod('c', { hostPorts: [{ hostPort: 80, protocol: 'UDP' }] })],
  });
  const REASON = "node(s) didn't have free ports for the requested pod ports";

  it('refuses a port taken on all IPs, and 0.0.0.0 where any IP has the port', () =>
    assert.deepEqual(filterAll(NodePorts, pod('p', { hostPorts: [80] }), c), {
      free: undefined,
      'any-ip': REASON,
      'one-ip': REASON,
      udp: undefined,
    }));

  it('lets two IPs share a port, but not with 0.0.0.0', () =>
    assert.deepEqual(
      passing(NodePorts, pod('p', { hostPorts: [{ hostPort: 80, hostIP: '10.0.0.2' }] }), c),
      ['free', 'one-ip', 'udp'],
    ));

  it('ignores pods without host ports, and other ports', () => {
    assert.equal(passing(NodePorts, pod('p'), c).length, 4);
    assert.equal(passing(NodePorts, pod('p', { hostPorts: [8080] }), c).length, 4);
  });
});

describe('InterPodAffinity', () => {
  const AFFINITY = "node(s) didn't match pod affinity rules";
  const ANTI = "node(s) didn't match pod anti-affinity rules";
  const EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules";
  const term = (
    labels: Record<string, string> | undefined,
    topologyKey: string,
    more: object = {},
  ) => ({
    labelSelector: labels && { matchLabels: labels },
    topologyKey,
    ...more,
  });
  const affinity = (...terms: object[]) => ({
    podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms },
  });
  const anti = (...terms: object[]) => ({
    podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms },
  });

  const nodes = [
    node('a1', { labels: zone('a') }),
    node('a2', { labels: zone('a') }),
    node('b1', { labels: zone('b') }),
    node('nozone'),
  ];

  it('affinity: only domains with a selected pod, and never a node without the topology label', () => {
    const c = cluster(nodes, { a1: [pod('db', { labels: { app: 'db' } })] });
    assert.deepEqual(
      filterAll(InterPodAffinity, pod('p', { affinity: affinity(term({ app: 'db' }, ZONE)) }), c),
      {
        a1: undefined,
        a2: undefined,
        b1: AFFINITY,
        nozone: AFFINITY,
      },
    );
  });

  it('affinity: every term must hold', () => {
    const c = cluster(nodes, {
      a1: [pod('db', { labels: { app: 'db' } })],
      a2: [pod('cache', { labels: { app: 'cache' } })],
    });
    const p = pod('p', {
      affinity: affinity(term({ app: 'db' }, ZONE), term({ app: 'cache' }, HOST)),
    });
    // No single pod matches both terms, and p is not its own kind: nowhere.
    assert.deepEqual(passing(InterPodAffinity, p, c), []);
  });

  it('affinity: the first pod of a group with affinity to itself may go anywhere with the label', () => {
    const c = cluster(nodes);
    const p = pod('p', { labels: { app: 'web' }, affinity: affinity(term({ app: 'web' }, ZONE)) });
    assert.deepEqual(passing(InterPodAffinity, p, c), ['a1', 'a2', 'b1']);
    const other = pod('q', {
      labels: { app: 'api' },
      affinity: affinity(term({ app: 'web' }, ZONE)),
    });
    assert.deepEqual(passing(InterPodAffinity, other, c), []);
  });

  it('affinity: an absent labelSelector selects no pod', () => {
    const c = cluster(nodes, { a1: [pod('db', { labels: { app: 'db' } })] });
    assert.deepEqual(
      passing(InterPodAffinity, pod('p', { affinity: affinity(term(undefined, ZONE)) }), c),
      [],
    );
  });

  it('anti-affinity: not in a domain holding a selected pod', () => {
    const c = cluster(nodes, { a1: [pod('web', { labels: { app: 'web' } })] });
    assert.deepEqual(
      filterAll(InterPodAffinity, pod('p', { affinity: anti(term({ app: 'web' }, HOST)) }), c),
      {
        a1: ANTI,
        a2: undefined,
        b1: undefined,
        nozone: undefined,
      },
    );
    assert.deepEqual(
      passing(InterPodAffinity, pod('p', { affinity: anti(term({ app: 'web' }, ZONE)) }), c),
      ['b1', 'nozone'],
    );
  });

  it('anti-affinity: an absent labelSelector selects no pod', () => {
    const c = cluster(nodes, { a1: [pod('web', { labels: { app: 'web' } })] });
    assert.equal(
      passing(InterPodAffinity, pod('p', { affinity: anti(term(undefined, HOST)) }), c).length,
      4,
    );
  });

  it('terms look in the pod namespace unless namespaces or namespaceSelector say otherwise', () => {
    const c = cluster(
      nodes,
      {
        a1: [pod('web', { namespace: 'team-x', labels: { app: 'web' } })],
        b1: [pod('web2', { namespace: 'team-y', labels: { app: 'web' } })],
      },
      new Map([['team-x', { team: 'x' }]]),
    );
    const fits = (more: object) =>
      passing(InterPodAffinity, pod('p', { affinity: anti(term({ app: 'web' }, HOST, more)) }), c);
    assert.deepEqual(fits({}), ['a1', 'a2', 'b1', 'nozone']);
    assert.deepEqual(fits({ namespaces: ['team-x'] }), ['a2', 'b1', 'nozone']);
    assert.deepEqual(fits({ namespaceSelector: { matchLabels: { team: 'x' } } }), [
      'a2',
      'b1',
      'nozone',
    ]);
    assert.deepEqual(fits({ namespaceSelector: {} }), ['a2', 'nozone']);
  });

  it('matchLabelKeys narrows the selector to the pod own value', () => {
    const c = cluster(nodes, { a1: [pod('v1', { labels: { app: 'web', rev: '1' } })] });
    const p = (rev: string) =>
      pod('p', {
        labels: { app: 'web', rev },
        affinity: anti(term({ app: 'web' }, HOST, { matchLabelKeys: ['rev'] })),
      });
    assert.deepEqual(filterAll(InterPodAffinity, p('1'), c).a1, ANTI);
    assert.deepEqual(filterAll(InterPodAffinity, p('2'), c).a1, undefined);
  });

  it('existing pods anti-affinity keeps the pods they select out of their domain', () => {
    const loner = pod('loner', {
      labels: { app: 'loner' },
      affinity: anti(term({ app: 'web' }, ZONE)),
    });
    const c = cluster(nodes, { a1: [loner] });
    assert.deepEqual(filterAll(InterPodAffinity, pod('web', { labels: { app: 'web' } }), c), {
      a1: EXISTING,
      a2: EXISTING,
      b1: undefined,
      nozone: undefined,
    });
    assert.equal(passing(InterPodAffinity, pod('db', { labels: { app: 'db' } }), c).length, 4);
  });

  it('counts replicas sharing a term once per domain, and forgets a pod once removed', () => {
    const replica = (i: number) =>
      pod(`r${i}`, {
        labels: { app: 'web' },
        owner: 'rs',
        affinity: anti(term({ app: 'web' }, HOST)),
      });
    const [r1, r2, r3] = [replica(1), replica(2), replica(3)];
    const c = cluster(nodes, { a1: [r1, r2], b1: [r3] });
    const p = replica(4);
    assert.deepEqual(filterAll(InterPodAffinity, p, c), {
      a1: ANTI,
      a2: undefined,
      b1: ANTI,
      nozone: undefined,
    });
    removePod(c.info('a1'), r1);
    assert.deepEqual(passing(InterPodAffinity, p, c), ['a2', 'nozone']);
    removePod(c.info('a1'), r2);
    assert.deepEqual(passing(InterPodAffinity, p, c), ['a1', 'a2', 'nozone']);
  });
});

describe('PodTopologySpread', () => {
  const REASON = "node(s) didn't match pod topology spread constraints";
  const MISSING = "node(s) didn't match pod topology spread constraints (missing required label)";
  const web = (name: string, more: PodOptions = {}) =>
    pod(name, { labels: { app: 'web' }, ...more });
  const spread = (more: object = {}) => [
    {
      maxSkew: 1,
      topologyKey: ZONE,
      whenUnsatisfiable: 'DoNotSchedule',
      labelSelector: { matchLabels: { app: 'web' } },
      ...more,
    },
  ];
  const nodes = [
    node('a1', { labels: zone('a') }),
    node('b1', { labels: zone('b') }),
    node('c1', { labels: zone('c', { disk: 'hdd' }) }),
    node('nozone'),
  ];

  it('admits only domains that keep the skew within maxSkew', () => {
    const c = cluster(nodes, { a1: [web('w1'), web('w2')], b1: [web('w3')] });
    assert.deepEqual(
      filterAll(PodTopologySpread, web('p', { topologySpreadConstraints: spread() }), c),
      {
        a1: REASON,
        b1: REASON,
        c1: undefined,
        nozone: MISSING,
      },
    );
    assert.deepEqual(
      passing(
        PodTopologySpread,
        web('p', { topologySpreadConstraints: spread({ maxSkew: 2 }) }),
        c,
      ),
      ['b1', 'c1'],
    );
  });

  it('does not count terminating pods, pods of other namespaces or the pod itself when it does not match', () => {
    const c = cluster(nodes, {
      a1: [web('w1', { terminating: true }), web('w2', { namespace: 'other' })],
    });
    assert.deepEqual(
      passing(PodTopologySpread, web('p', { topologySpreadConstraints: spread() }), c),
      ['a1', 'b1', 'c1'],
    );
    const c2 = cluster(nodes, { a1: [web('w1')] });
    // The pod is no web pod: placing it changes no count, so a1 (1 − 0 ≤ 1) is fine.
    assert.deepEqual(
      passing(PodTopologySpread, pod('p', { topologySpreadConstraints: spread() }), c2),
      ['a1', 'b1', 'c1'],
    );
  });

  it('treats the global minimum as 0 while there are fewer domains than minDomains', () => {
    const c = cluster(nodes, { a1: [web('w1')], b1: [web('w2')], c1: [web('w3')] });
    assert.deepEqual(
      passing(PodTopologySpread, web('p', { topologySpreadConstraints: spread() }), c),
      ['a1', 'b1', 'c1'],
    );
    assert.deepEqual(
      passing(
        PodTopologySpread,
        web('p', { topologySpreadConstraints: spread({ minDomains: 4 }) }),
        c,
      ),
      [],
    );
  });

  it('counts only the domains of nodes the pod may go to (nodeAffinityPolicy Honor, the default)', () => {
    const c = cluster(nodes, { a1: [web('w1')], b1: [web('w2')] });
    // c1 (hdd, empty) is out of the pod's reach: the minimum is 1, not 0.
    const honor = web('p', { nodeSelector: { [ZONE]: 'a' }, topologySpreadConstraints: spread() });
    assert.deepEqual(filterAll(PodTopologySpread, honor, c).a1, undefined);
    const ignore = web('p', {
      nodeSelector: { [ZONE]: 'a' },
      topologySpreadConstraints: spread({ nodeAffinityPolicy: 'Ignore' }),
    });
    assert.deepEqual(filterAll(PodTopologySpread, ignore, c).a1, REASON);
  });

  it('counts tainted nodes unless nodeTaintsPolicy is Honor', () => {
    const tainted = [
      node('a1', { labels: zone('a') }),
      node('b1', { labels: zone('b'), taints: [{ key: 'x', effect: 'NoSchedule' }] }),
    ];
    const c = cluster(tainted, { a1: [web('w1')] });
    assert.deepEqual(
      filterAll(PodTopologySpread, web('p', { topologySpreadConstraints: spread() }), c).a1,
      REASON,
    );
    const honor = web('p', { topologySpreadConstraints: spread({ nodeTaintsPolicy: 'Honor' }) });
    assert.deepEqual(filterAll(PodTopologySpread, honor, c).a1, undefined);
  });

  it('ignores ScheduleAnyway constraints', () => {
    const c = cluster(nodes, { a1: [web('w1'), web('w2')] });
    const p = web('p', {
      topologySpreadConstraints: spread({ whenUnsatisfiable: 'ScheduleAnyway' }),
    });
    assert.equal(passing(PodTopologySpread, p, c).length, 4);
  });
});

describe('default plugins', () => {
  it('filter cheapest first, and score with kube-scheduler weights', () => {
    assert.deepEqual(
      defaultFilters().map((f) => f.name),
      [
        'NodeUnschedulable',
        'NodeResourcesFit',
        'NodeAffinity',
        'TaintToleration',
        'NodePorts',
        'PodTopologySpread',
        'InterPodAffinity',
      ],
    );
    assert.deepEqual(
      defaultScores().map((s) => [s.name, s.weight]),
      [
        ['NodeResourcesLeastAllocated', 1],
        ['NodeResourcesBalancedAllocation', 1],
        ['TaintTolerationScore', 3],
        ['NodeAffinityScore', 2],
        ['InterPodAffinityScore', 2],
        ['PodTopologySpreadScore', 2],
        ['SelectorSpread', 1],
      ],
    );
  });

  it('explain why a pod fits nowhere, as kube-scheduler words it', () => {
    const c = cluster([
      ...['s1', 's2', 's3'].map((n) => node(n, { memory: '1Gi' })),
      ...['g1', 'g2'].map((n) =>
        node(n, { memory: '64Gi', taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] }),
      ),
    ]);
    const p = pod('p', { requests: { memory: '4Gi' } });
    const reasons = new Map<string, number>();
    const state = new Map();
    for (const f of defaultFilters()) f.preFilter?.(p, c.view, state);
    for (const info of c.infos) {
      for (const f of defaultFilters()) {
        const reason = f.filter(p, info, c.view, state);
        if (reason !== undefined) {
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          break;
        }
      }
    }
    assert.equal(
      explainUnschedulable(c.infos.length, reasons),
      '0/5 nodes are available: 3 Insufficient memory, 2 node(s) had untolerated taint {gpu: true}.',
    );
  });
});

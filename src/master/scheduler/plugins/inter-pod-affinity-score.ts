/**
 * InterPodAffinityScore, as kube-scheduler scores it: every topology domain
 * gets points from the pod's preferred terms (+weight per selected pod
 * there for affinity, -weight for anti-affinity) and from existing pods'
 * terms that select the pod (their required affinity counts 1, their
 * preferred terms their weight). A node scores the points of its domains;
 * scores are then rescaled from the lowest (0) to the highest (100).
 */
import type { Pod } from '../../../api/schema';
import { podFacts } from './pod-facts';
import { SKIP, type ClusterView, type CycleState, type ScorePlugin } from '../types';
import { labelOf } from './label-match';
import { normalizeMinMax } from './normalize';
import { candidateNodes, clusterIndex, forEachGroupSelecting } from './cluster-index';
import { countSelected, podAffinityTerms, type AffinityTerm } from './pod-query';

/** kube-scheduler's hardPodAffinityWeight: what an existing pod's required affinity term is worth. */
const HARD_POD_AFFINITY_WEIGHT = 1;

/** Per topology key, points per domain; parallel arrays for an allocation-free score. */
interface TopologyPoints {
  keys: string[];
  points: Map<string, number>[];
}

const KEY = 'InterPodAffinityScore';

function add(tp: TopologyPoints, key: string, value: string, points: number): void {
  if (points === 0) return;
  let i = tp.keys.indexOf(key);
  if (i < 0) {
    i = tp.keys.push(key) - 1;
    tp.points.push(new Map());
  }
  tp.points[i].set(value, (tp.points[i].get(value) ?? 0) + points);
}

function topologyPoints(pod: Pod, view: ClusterView, state: CycleState): TopologyPoints {
  const tp: TopologyPoints = { keys: [], points: [] };
  const me = podFacts(pod);
  const mine = podAffinityTerms(pod);
  const ci = clusterIndex(view, state);
  const except = { exceptKey: me.key };
  const preferred: [AffinityTerm, number][] = [
    ...mine.preferredAffinity.map((t): [AffinityTerm, number] => [t, t.weight]),
    ...mine.preferredAntiAffinity.map((t): [AffinityTerm, number] => [t, -t.weight]),
  ];
  for (const [t, points] of preferred)
    for (const info of candidateNodes(ci, t, view)) {
      const v = labelOf(info.labels, t.topologyKey);
      if (v !== undefined) add(tp, t.topologyKey, v, points * countSelected(info, t, view, except));
    }
  // Each distinct term of the existing pods is matched against the pod once;
  // every pod holding it counts: an existing pod's required affinity is worth
  // HARD_POD_AFFINITY_WEIGHT, its preferred terms their weight (anti-affinity against).
  forEachGroupSelecting(ci.affinityGroups, me, view, (g) => {
    const t = g.term;
    const each =
      g.kind === 'requiredAffinity'
        ? HARD_POD_AFFINITY_WEIGHT
        : g.kind === 'preferredAffinity'
          ? t.weight
          : -t.weight;
    for (const [info, pods] of g.nodes) {
      const v = labelOf(info.labels, t.topologyKey);
      if (v !== undefined) add(tp, t.topologyKey, v, each * pods);
    }
  });
  return tp;
}

function stateOf(pod: Pod, view: ClusterView, state: CycleState): TopologyPoints {
  let s = state.get(KEY) as TopologyPoints | undefined;
  if (s === undefined) {
    s = topologyPoints(pod, view, state);
    state.set(KEY, s);
  }
  return s;
}

export const InterPodAffinityScore: ScorePlugin = {
  name: 'InterPodAffinityScore',
  weight: 2,
  preScore(pod, _nodes, view, state) {
    const tp = topologyPoints(pod, view, state);
    if (tp.keys.length === 0) return SKIP;
    state.set(KEY, tp);
  },
  score(pod, info, view, state) {
    const tp = stateOf(pod, view, state);
    let sum = 0;
    for (let i = 0; i < tp.keys.length; i++) {
      const v = labelOf(info.labels, tp.keys[i]);
      if (v !== undefined) sum += tp.points[i].get(v) ?? 0;
    }
    return sum;
  },
  normalize(scores) {
    normalizeMinMax(scores);
  },
};

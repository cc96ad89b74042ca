/**
 * PodTopologySpread, kube-scheduler's rules. The filter (DoNotSchedule
 * constraints) admits a node when, placing the pod there, its domain would
 * hold at most maxSkew more matching pods than the emptiest domain. The
 * score (ScheduleAnyway constraints) prefers domains with fewer matching
 * pods. Domain counts are made once per cycle, so a node costs lookups only.
 */
import type { Pod } from '../../../api/schema';
import {
  SKIP,
  type ClusterView,
  type CycleState,
  type FilterPlugin,
  type NodeInfo,
  type ScorePlugin,
} from '../types';
import { labelOf } from './label-match';
import { candidateNodes, clusterIndex } from './cluster-index';
import { countSelected } from './pod-query';
import {
  eligibility,
  hasAllKeys,
  spreadConstraints,
  spreadCountOptions,
  type SpreadConstraint,
} from './topology-spread';

export const REASON_SPREAD = "node(s) didn't match pod topology spread constraints";
export const REASON_SPREAD_MISSING_LABEL = `${REASON_SPREAD} (missing required label)`;

/** Per constraint: matching pods per domain, and the global minimum the skew is measured from. */
interface SpreadState {
  constraints: SpreadConstraint[];
  counts: Map<string, number>[];
  minimum: number[];
}

const FILTER_KEY = 'PodTopologySpread';
const SCORE_KEY = 'PodTopologySpreadScore';

/**
 * Counts matching pods per domain over the nodes that count (all
 * constraints' labels present, policies met). Without `only`, every such
 * node's domain is counted, empty or not; with it, only those domains (the
 * score's: the feasible nodes' domains). Only nodes holding candidate pods
 * are looked into.
 */
function countDomains(
  pod: Pod,
  constraints: SpreadConstraint[],
  view: ClusterView,
  state: CycleState,
  only?: Map<string, number>[],
): Map<string, number>[] {
  const eligible = eligibility(pod);
  const counts = only ?? constraints.map(() => new Map<string, number>());
  if (only === undefined)
    for (const info of view.nodes) {
      if (!hasAllKeys(constraints, info)) continue;
      for (let i = 0; i < constraints.length; i++) {
        if (!eligible(info, constraints[i])) continue;
        const v = labelOf(info.labels, constraints[i].topologyKey) as string;
        if (!counts[i].has(v)) counts[i].set(v, 0);
      }
    }
  const ci = clusterIndex(view, state);
  const opts = spreadCountOptions(pod);
  constraints.forEach((c, i) => {
    for (const info of candidateNodes(ci, c.query, view)) {
      if (!hasAllKeys(constraints, info) || !eligible(info, c)) continue;
      const v = labelOf(info.labels, c.topologyKey) as string;
      const had = counts[i].get(v);
      if (had !== undefined) counts[i].set(v, had + countSelected(info, c.query, view, opts));
    }
  });
  return counts;
}

function filterState(pod: Pod, view: ClusterView, state: CycleState): SpreadState {
  const constraints = spreadConstraints(pod).filter((c) => c.hard);
  if (constraints.length === 0) return { constraints, counts: [], minimum: [] };
  const counts = countDomains(pod, constraints, view, state);
  const minimum = constraints.map((c, i) => {
    // Fewer domains than minDomains: the missing ones count as empty.
    if (counts[i].size < c.minDomains) return 0;
    let min = Infinity;
    for (const n of counts[i].values()) if (n < min) min = n;
    return min;
  });
  return { constraints, counts, minimum };
}

function stateOf(pod: Pod, view: ClusterView, state: CycleState): SpreadState {
  let s = state.get(FILTER_KEY) as SpreadState | undefined;
  if (s === undefined) {
    s = filterState(pod, view, state);
    state.set(FILTER_KEY, s);
  }
  return s;
}

export const PodTopologySpread: FilterPlugin = {
  name: 'PodTopologySpread',
  preFilter(pod, view, state) {
    const s = filterState(pod, view, state);
    if (s.constraints.length === 0) return SKIP;
    state.set(FILTER_KEY, s);
  },
  filter(pod, info, view, state) {
    const s = stateOf(pod, view, state);
    for (let i = 0; i < s.constraints.length; i++) {
      const c = s.constraints[i];
      const v = labelOf(info.labels, c.topologyKey);
      if (v === undefined) return REASON_SPREAD_MISSING_LABEL;
      const skew = (s.counts[i].get(v) ?? 0) + c.selfMatch - s.minimum[i];
      if (skew > c.maxSkew) return REASON_SPREAD;
    }
    return undefined;
  },
};

// ---------------------------------------------------------------------------
// Score

interface SpreadScoreState {
  constraints: SpreadConstraint[];
  counts: Map<string, number>[];
  /** log(domains + 2): spreading over few domains weighs less than over many. */
  weights: number[];
}

/** Score of a node lacking a constraint's label: kube-scheduler ignores it (it normalizes to 0). */
const IGNORED = -1;

function scoreState(
  pod: Pod,
  nodes: NodeInfo[],
  view: ClusterView,
  state: CycleState,
): SpreadScoreState {
  const constraints = spreadConstraints(pod).filter((c) => !c.hard);
  const domains = constraints.map(() => new Map<string, number>());
  for (const info of nodes) {
    if (!hasAllKeys(constraints, info)) continue;
    constraints.forEach((c, i) => domains[i].set(labelOf(info.labels, c.topologyKey) as string, 0));
  }
  const counts =
    constraints.length > 0 ? countDomains(pod, constraints, view, state, domains) : domains;
  return { constraints, counts, weights: counts.map((d) => Math.log(d.size + 2)) };
}

export const PodTopologySpreadScore: ScorePlugin = {
  name: 'PodTopologySpreadScore',
  weight: 2,
  preScore(pod, nodes, view, state) {
    const s = scoreState(pod, nodes, view, state);
    if (s.constraints.length === 0) return SKIP;
    state.set(SCORE_KEY, s);
  },
  score(pod, info, view, state) {
    let s = state.get(SCORE_KEY) as SpreadScoreState | undefined;
    if (s === undefined) {
      s = scoreState(pod, view.nodes, view, state);
      state.set(SCORE_KEY, s);
    }
    if (!hasAllKeys(s.constraints, info)) return IGNORED;
    let score = 0;
    for (let i = 0; i < s.constraints.length; i++) {
      const c = s.constraints[i];
      const n = s.counts[i].get(labelOf(info.labels, c.topologyKey) as string) ?? 0;
      score += n * s.weights[i] + (c.maxSkew - 1);
    }
    return Math.round(score);
  },
  /** kube-scheduler's: the fewest matching pods get 100, ignored nodes 0. */
  normalize(scores) {
    let min = Infinity;
    let max = 0;
    for (const s of scores) {
      if (s === IGNORED) continue;
      if (s < min) min = s;
      if (s > max) max = s;
    }
    for (let i = 0; i < scores.length; i++) {
      if (scores[i] === IGNORED) scores[i] = 0;
      else if (max === 0) scores[i] = 100;
      else scores[i] = (100 * (max + min - scores[i])) / max;
    }
  },
};

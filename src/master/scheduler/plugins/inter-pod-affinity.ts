/**
 * InterPodAffinity (required terms), as kube-scheduler decides it: which
 * topology domains (values of a term's topologyKey) hold pods the incoming
 * pod must be near or away from, and which domains existing pods' own
 * anti-affinity closes to it, is worked out once per cycle in preFilter
 * from the nodes' pod indexes; the filter then only looks up the node's
 * label values.
 */
import type { Pod } from '../../../api/schema';
import { podFacts, type PodFacts } from './pod-facts';
import {
  SKIP,
  type ClusterView,
  type CycleState,
  type FilterPlugin,
  type NodeInfo,
} from '../types';
import { labelOf } from './label-match';
import { candidateNodes, clusterIndex, forEachGroupSelecting } from './cluster-index';
import { countSelected, podAffinityTerms, querySelects, type AffinityTerm } from './pod-query';

export const REASON_AFFINITY = "node(s) didn't match pod affinity rules";
export const REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules";
export const REASON_EXISTING_ANTI_AFFINITY =
  "node(s) didn't satisfy existing pods anti-affinity rules";

/** Per topology key, the domains (label values) concerned. Parallel arrays: the filter walks them without allocating. */
export interface Domains {
  keys: string[];
  values: Set<string>[];
}

interface AffinityState {
  /** Domains closed by existing pods' required anti-affinity terms that select the incoming pod. */
  closedByExisting: Domains;
  /** Per required anti-affinity term of the pod: the domains holding a pod it selects. */
  antiKeys: string[];
  antiDomains: Set<string>[];
  /** Per required affinity term of the pod: the domains holding a pod that all the terms select. */
  affinityKeys: string[];
  affinityDomains: Set<string>[];
  /** No pod anywhere matches all the affinity terms, and the pod matches them itself (see filter). */
  firstOfItsKind: boolean;
}

const KEY = 'InterPodAffinity';

export function addDomain(d: Domains, key: string, value: string): void {
  const i = d.keys.indexOf(key);
  if (i >= 0) d.values[i].add(value);
  else {
    d.keys.push(key);
    d.values.push(new Set([value]));
  }
}

/** Whether any of the node's labels names a domain in `d`. */
export function inDomains(d: Domains, labels: Record<string, string>): boolean {
  for (let i = 0; i < d.keys.length; i++) {
    const v = labelOf(labels, d.keys[i]);
    if (v !== undefined && d.values[i].has(v)) return true;
  }
  return false;
}

function selectsAll(terms: AffinityTerm[], f: PodFacts, view: ClusterView): boolean {
  for (const t of terms) if (!querySelects(t, f.namespace, f.labels, view)) return false;
  return true;
}

function affinityState(pod: Pod, view: ClusterView, state: CycleState): AffinityState {
  const me = podFacts(pod);
  const terms = podAffinityTerms(pod);
  const { requiredAffinity: affinity, requiredAntiAffinity: anti } = terms;
  const s: AffinityState = {
    closedByExisting: { keys: [], values: [] },
    antiKeys: anti.map((t) => t.topologyKey),
    antiDomains: anti.map(() => new Set()),
    affinityKeys: affinity.map((t) => t.topologyKey),
    affinityDomains: affinity.map(() => new Set()),
    firstOfItsKind: false,
  };
  const ci = clusterIndex(view, state);

  // Each distinct term of the existing pods is matched against the pod once.
  // (The pod being scheduled is in no NodeInfo yet: the loop assumes a pod
  // only once it has chosen its node, so it cannot repel itself here.)
  forEachGroupSelecting(ci.antiAffinityGroups, me, view, (g) => {
    for (const info of g.nodes.keys()) {
      const v = labelOf(info.labels, g.term.topologyKey);
      if (v !== undefined) addDomain(s.closedByExisting, g.term.topologyKey, v);
    }
  });

  const any = { exceptKey: me.key, limit: 1 };
  anti.forEach((t, i) => {
    for (const info of candidateNodes(ci, t, view)) {
      const v = labelOf(info.labels, t.topologyKey);
      if (v === undefined || s.antiDomains[i].has(v)) continue;
      if (countSelected(info, t, view, any) > 0) s.antiDomains[i].add(v);
    }
  });

  if (affinity.length > 0) {
    const anyMatchingAll = {
      ...any,
      accept: (_p: Pod, f: PodFacts) => selectsAll(affinity, f, view),
    };
    for (const info of candidateNodes(ci, affinity[0], view))
      if (countSelected(info, affinity[0], view, anyMatchingAll) > 0)
        affinity.forEach((t, i) => {
          const v = labelOf(info.labels, t.topologyKey);
          if (v !== undefined) s.affinityDomains[i].add(v);
        });
  }
  // Kubernetes lets the first pod of a group with affinity to itself in,
  // or such groups could never start.
  s.firstOfItsKind =
    affinity.length > 0 &&
    s.affinityDomains.every((d) => d.size === 0) &&
    selectsAll(affinity, me, view);
  return s;
}

function stateOf(pod: Pod, view: ClusterView, state: CycleState): AffinityState {
  let s = state.get(KEY) as AffinityState | undefined;
  if (s === undefined) {
    s = affinityState(pod, view, state);
    state.set(KEY, s);
  }
  return s;
}

function satisfiesAffinity(s: AffinityState, info: NodeInfo): boolean {
  let everyDomainHasPods = true;
  for (let i = 0; i < s.affinityKeys.length; i++) {
    const v = labelOf(info.labels, s.affinityKeys[i]);
    // Every term's topology label must be on the node, even for the first of its kind.
    if (v === undefined) return false;
    if (!s.affinityDomains[i].has(v)) everyDomainHasPods = false;
  }
  return everyDomainHasPods || s.firstOfItsKind;
}

function satisfiesAntiAffinity(s: AffinityState, info: NodeInfo): boolean {
  for (let i = 0; i < s.antiKeys.length; i++) {
    const v = labelOf(info.labels, s.antiKeys[i]);
    if (v !== undefined && s.antiDomains[i].has(v)) return false;
  }
  return true;
}

export const InterPodAffinity: FilterPlugin = {
  name: 'InterPodAffinity',
  preFilter(pod, view, state) {
    const s = affinityState(pod, view, state);
    if (s.affinityKeys.length + s.antiKeys.length + s.closedByExisting.keys.length === 0)
      return SKIP;
    state.set(KEY, s);
  },
  filter(pod, info, view, state) {
    const s = stateOf(pod, view, state);
    if (!satisfiesAffinity(s, info)) return REASON_AFFINITY;
    if (!satisfiesAntiAffinity(s, info)) return REASON_ANTI_AFFINITY;
    if (inDomains(s.closedByExisting, info.labels)) return REASON_EXISTING_ANTI_AFFINITY;
    return undefined;
  },
};

/**
 * SelectorSpread (kube-scheduler's, before topology spread defaults
 * replaced it): replicas of one workload — pods with the same controller,
 * such as one ReplicaSet — should not share a node, nor crowd one zone.
 * A node scores by how few of the pod's siblings it has (a third of the
 * score) and how few its zone has (two thirds), each against the most
 * crowded. Pods with their own spread constraints are left to those.
 */
import type { Pod } from '../../../api/schema';
import { podFacts } from './pod-facts';
import { SKIP, type ClusterView, type CycleState, type NodeInfo, type ScorePlugin } from '../types';
import { clusterIndex, type NodeCounts } from './cluster-index';
import { labelOf } from './label-match';

const ZONE_LABEL = 'topology.kubernetes.io/zone';
const REGION_LABEL = 'topology.kubernetes.io/region';
const LEGACY_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone';
const LEGACY_REGION_LABEL = 'failure-domain.beta.kubernetes.io/region';

/** kube-scheduler's weight of the zone spread against the node spread. */
const ZONE_WEIGHTING = 2 / 3;

/** Zone keys by node labels object (a node's labels are replaced, never changed in place). */
const zoneKeys = new WeakMap<Record<string, string>, string>();

/** Region and zone, as kube-scheduler's GetZoneKey; "" for a node in no zone. */
export function zoneKey(labels: Record<string, string>): string {
  let k = zoneKeys.get(labels);
  if (k === undefined) {
    k = computeZoneKey(labels);
    zoneKeys.set(labels, k);
  }
  return k;
}

function computeZoneKey(labels: Record<string, string>): string {
  const zone = labelOf(labels, ZONE_LABEL) ?? labelOf(labels, LEGACY_ZONE_LABEL) ?? '';
  const region = labelOf(labels, REGION_LABEL) ?? labelOf(labels, LEGACY_REGION_LABEL) ?? '';
  return zone === '' && region === '' ? '' : `${region}:\x00:${zone}`;
}

interface SpreadState {
  /** The controller's uid; undefined when there is nothing to spread. */
  owner: string | undefined;
  /** How many of the pod's siblings each node has. */
  siblings: NodeCounts | undefined;
  maxOnNode: number;
  byZone: Map<string, number>;
  maxInZone: number;
}

const KEY = 'SelectorSpread';

function spreadState(
  pod: Pod,
  nodes: NodeInfo[],
  view: ClusterView,
  state: CycleState,
): SpreadState {
  const f = podFacts(pod);
  const owner = (pod.spec.topologySpreadConstraints ?? []).length > 0 ? undefined : f.controllerUid;
  const siblings =
    owner === undefined ? undefined : clusterIndex(view, state).nodesByController.get(owner);
  const s: SpreadState = { owner, siblings, maxOnNode: 0, byZone: new Map(), maxInZone: 0 };
  if (siblings === undefined) return s;
  for (const info of nodes) s.maxOnNode = Math.max(s.maxOnNode, siblings.get(info) ?? 0);
  // Zones count siblings on every node: those on nodes that cannot take this pod still crowd their zone.
  for (const [info, n] of siblings) {
    const zone = zoneKey(info.labels);
    if (zone !== '') s.byZone.set(zone, (s.byZone.get(zone) ?? 0) + n);
  }
  for (const n of s.byZone.values()) s.maxInZone = Math.max(s.maxInZone, n);
  return s;
}

export const SelectorSpread: ScorePlugin = {
  name: 'SelectorSpread',
  weight: 1,
  preScore(pod, nodes, view, state) {
    const s = spreadState(pod, nodes, view, state);
    if (s.owner === undefined) return SKIP;
    state.set(KEY, s);
  },
  score(pod, info, view, state) {
    let s = state.get(KEY) as SpreadState | undefined;
    if (s === undefined) {
      s = spreadState(pod, view.nodes, view, state);
      state.set(KEY, s);
    }
    if (s.owner === undefined) return 100;
    const here = s.siblings?.get(info) ?? 0;
    let score = s.maxOnNode > 0 ? (100 * Math.max(0, s.maxOnNode - here)) / s.maxOnNode : 100;
    const zone = zoneKey(info.labels);
    if (zone !== '') {
      const inZone = s.byZone.get(zone) ?? 0;
      const zoneScore = s.maxInZone > 0 ? (100 * (s.maxInZone - inZone)) / s.maxInZone : 100;
      score = score * (1 - ZONE_WEIGHTING) + zoneScore * ZONE_WEIGHTING;
    }
    return score;
  },
};

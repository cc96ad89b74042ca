/**
 * What PodTopologySpread's filter and score share: a pod's spread
 * constraints, parsed once per pod object, and which nodes' pods count
 * towards a constraint's domains (kube-scheduler's nodeAffinityPolicy and
 * nodeTaintsPolicy).
 */
import type { Pod } from '../../../api/schema';
import { podFacts } from './pod-facts';
import type { NodeInfo } from '../types';
import {
  compilePodSelector,
  labelKeyRequirements,
  labelOf,
  matchesRequirements,
} from './label-match';
import { nodePlacement, placementAllows } from './node-selection';
import { podQuery, type CountOptions, type PodQuery } from './pod-query';
import { firstUntoleratedTaint } from './tolerations';

export interface SpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  hard: boolean;
  /** Pods in the pod's namespace its selector (plus matchLabelKeys) selects. */
  query: PodQuery;
  minDomains: number;
  /** Count only nodes the pod's nodeSelector / required node affinity allow (default: yes). */
  honorAffinity: boolean;
  /** Count only nodes whose NoSchedule/NoExecute taints the pod tolerates (default: no). */
  honorTaints: boolean;
  /** 1 when the pod itself would count: it matches its own selector. */
  selfMatch: number;
}

const cache = new WeakMap<Pod, SpreadConstraint[]>();

/** The pod's spread constraints. An absent labelSelector selects no pods, as in Kubernetes. */
export function spreadConstraints(pod: Pod): SpreadConstraint[] {
  let cs = cache.get(pod);
  if (cs !== undefined) return cs;
  const f = podFacts(pod);
  cs = (pod.spec.topologySpreadConstraints ?? []).map((c) => {
    const extra =
      c.labelSelector === undefined ? [] : labelKeyRequirements(f.labels, c.matchLabelKeys);
    const selector = compilePodSelector(c.labelSelector, extra);
    return {
      maxSkew: c.maxSkew,
      topologyKey: c.topologyKey,
      hard: c.whenUnsatisfiable === 'DoNotSchedule',
      query: podQuery(selector, [f.namespace]),
      minDomains: c.minDomains ?? 1,
      honorAffinity: c.nodeAffinityPolicy !== 'Ignore',
      honorTaints: c.nodeTaintsPolicy === 'Honor',
      selfMatch: !selector.none && matchesRequirements(selector.requirements, f.labels) ? 1 : 0,
    };
  });
  cache.set(pod, cs);
  return cs;
}

/** Whether the node has the topology label of every constraint (kube-scheduler counts no other node). */
export function hasAllKeys(constraints: SpreadConstraint[], info: NodeInfo): boolean {
  for (let i = 0; i < constraints.length; i++)
    if (labelOf(info.labels, constraints[i].topologyKey) === undefined) return false;
  return true;
}

/**
 * Tells, per node, whether its pods count for a constraint under that
 * constraint's policies; each check is made at most once per node (the
 * caller asks about one node's constraints in a row).
 */
export function eligibility(pod: Pod): (info: NodeInfo, c: SpreadConstraint) => boolean {
  const placement = nodePlacement(pod);
  const tolerations = pod.spec.tolerations;
  let last: NodeInfo | undefined;
  let affinityOk: boolean | undefined;
  let taintsOk: boolean | undefined;
  return (info, c) => {
    if (info !== last) {
      last = info;
      affinityOk = taintsOk = undefined;
    }
    if (c.honorAffinity && !placement.anyNode) {
      affinityOk ??= placementAllows(placement, info);
      if (!affinityOk) return false;
    }
    if (c.honorTaints) {
      taintsOk ??= firstUntoleratedTaint(info.node.spec?.taints, tolerations) === undefined;
      if (!taintsOk) return false;
    }
    return true;
  };
}

/** Options for countSelected: spread constraints do not count terminating pods, nor the pod itself. */
export function spreadCountOptions(pod: Pod): CountOptions {
  return { exceptKey: podFacts(pod).key, skipTerminating: true };
}

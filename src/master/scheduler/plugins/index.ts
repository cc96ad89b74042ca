/**
 * The default plugin set, in kube-scheduler's spirit: cheap filters first
 * (most nodes are refused by a field check before an index is read), the
 * scores with kube-scheduler's default weights.
 */
import type { FilterPlugin, ScorePlugin } from '../types';
import { InterPodAffinity } from './inter-pod-affinity';
import { InterPodAffinityScore } from './inter-pod-affinity-score';
import { NodeAffinity, NodeAffinityScore } from './node-affinity';
import { NodePorts } from './node-ports';
import { NodeResourcesFit } from './node-resources-fit';
import { NodeUnschedulable } from './node-unschedulable';
import { PodTopologySpread, PodTopologySpreadScore } from './pod-topology-spread';
import { NodeResourcesBalancedAllocation, NodeResourcesLeastAllocated } from './resource-scores';
import { SelectorSpread } from './selector-spread';
import { TaintToleration, TaintTolerationScore } from './taint-toleration';

export function defaultFilters(): FilterPlugin[] {
  return [
    NodeUnschedulable,
    NodeResourcesFit,
    NodeAffinity,
    TaintToleration,
    NodePorts,
    PodTopologySpread,
    InterPodAffinity,
  ];
}

export function defaultScores(): ScorePlugin[] {
  return [
    NodeResourcesLeastAllocated,
    NodeResourcesBalancedAllocation,
    TaintTolerationScore,
    NodeAffinityScore,
    InterPodAffinityScore,
    PodTopologySpreadScore,
    SelectorSpread,
  ];
}

export {
  InterPodAffinity,
  InterPodAffinityScore,
  NodeAffinity,
  NodeAffinityScore,
  NodePorts,
  NodeResourcesBalancedAllocation,
  NodeResourcesFit,
  NodeResourcesLeastAllocated,
  NodeUnschedulable,
  PodTopologySpread,
  PodTopologySpreadScore,
  SelectorSpread,
  TaintToleration,
  TaintTolerationScore,
};

/**
 * The resource scores. Both count the pod as already placed on the node.
 * LeastAllocated prefers the emptiest nodes (spreading load); it counts a
 * container without cpu/memory requests as kube-scheduler does (100m,
 * 200Mi), or best-effort pods would all land on one node. Balanced
 * allocation prefers nodes whose cpu and memory fill at the same rate, so
 * neither is stranded.
 */
import type { Pod } from '../../../api/schema';
import { podIndex } from '../node-info';
import { podFacts } from './pod-facts';
import type { NodeInfo, ScorePlugin } from '../types';

/** ((allocatable − requested) / allocatable) × 100; 0 when nothing is allocatable or it is overcommitted. */
function leastAllocated(allocatable: number, requested: number): number {
  if (allocatable <= 0 || requested > allocatable) return 0;
  return ((allocatable - requested) * 100) / allocatable;
}

export const NodeResourcesLeastAllocated: ScorePlugin = {
  name: 'NodeResourcesLeastAllocated',
  weight: 1,
  score(pod, info) {
    const f = podFacts(pod);
    const idx = podIndex(info);
    const cpu = leastAllocated(info.allocatable.cpu ?? 0, idx.nonZeroCpu + f.nonZeroCpu);
    const memory = leastAllocated(
      info.allocatable.memory ?? 0,
      idx.nonZeroMemory + f.nonZeroMemory,
    );
    return (cpu + memory) / 2;
  },
};

/** The share of `resource` the node would have given out with the pod there (at most 1); NaN if it has none. */
function fraction(info: NodeInfo, resource: string, pod: Pod): number {
  const allocatable = info.allocatable[resource] ?? 0;
  if (allocatable <= 0) return NaN;
  const used = (info.requested[resource] ?? 0) + (podFacts(pod).requests[resource] ?? 0);
  return Math.min(1, used / allocatable);
}

/** (1 − |cpu fraction − memory fraction| / 2) × 100: kube-scheduler's standard deviation of the two fractions. */
export const NodeResourcesBalancedAllocation: ScorePlugin = {
  name: 'NodeResourcesBalancedAllocation',
  weight: 1,
  score(pod, info) {
    const cpu = fraction(info, 'cpu', pod);
    const memory = fraction(info, 'memory', pod);
    // A resource the node does not report says nothing about balance.
    if (Number.isNaN(cpu) || Number.isNaN(memory)) return 100;
    return (1 - Math.abs(cpu - memory) / 2) * 100;
  },
};

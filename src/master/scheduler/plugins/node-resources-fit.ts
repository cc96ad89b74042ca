/**
 * NodeResourcesFit: every resource the pod requests, and one more pod
 * slot, must fit in what the node has left (allocatable minus the requests
 * of the pods already there). Reasons are kube-scheduler's texts.
 */
import type { Pod } from '../../../api/schema';
import { podFacts } from './pod-facts';
import type { CycleState, FilterPlugin } from '../types';

export const REASON_TOO_MANY_PODS = 'Too many pods';
export const insufficient = (resource: string): string => `Insufficient ${resource}`;

/** The pod's non-zero requests, in the order kube-scheduler checks them, with their reasons. */
interface FitState {
  names: string[];
  amounts: number[];
  reasons: string[];
}

const KEY = 'NodeResourcesFit';
const FIRST = ['cpu', 'memory', 'ephemeral-storage'];

function fitState(pod: Pod): FitState {
  const requests = podFacts(pod).requests;
  const rest = Object.keys(requests)
    .filter((n) => !FIRST.includes(n))
    .sort();
  // A zero request fits even a node that lacks the resource, as in Kubernetes.
  const names = [...FIRST, ...rest].filter((n) => (requests[n] ?? 0) > 0);
  return { names, amounts: names.map((n) => requests[n]), reasons: names.map(insufficient) };
}

function stateOf(pod: Pod, state: CycleState): FitState {
  let s = state.get(KEY) as FitState | undefined;
  if (s === undefined) {
    s = fitState(pod);
    state.set(KEY, s);
  }
  return s;
}

/**
 * Reports the first shortfall only (pods, then cpu, memory, storage, the
 * rest by name): the filter contract has one reason per node, where
 * kube-scheduler would count a node short of cpu and memory under both.
 */
export const NodeResourcesFit: FilterPlugin = {
  name: 'NodeResourcesFit',
  preFilter(pod, _view, state) {
    state.set(KEY, fitState(pod));
  },
  filter(pod, info, _view, state) {
    const { allocatable, requested } = info;
    if ((requested.pods ?? 0) + 1 > (allocatable.pods ?? 0)) return REASON_TOO_MANY_PODS;
    const s = stateOf(pod, state);
    for (let i = 0; i < s.names.length; i++) {
      const name = s.names[i];
      if (s.amounts[i] > (allocatable[name] ?? 0) - (requested[name] ?? 0)) return s.reasons[i];
    }
    return undefined;
  },
};

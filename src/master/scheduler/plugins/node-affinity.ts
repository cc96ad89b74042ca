/**
 * NodeAffinity: the filter keeps the nodes that match spec.nodeSelector and
 * one of the required node affinity terms; the score adds the weights of
 * the preferred terms a node matches.
 */
import { SKIP, type FilterPlugin, type ScorePlugin } from '../types';
import { normalizeToMax } from './normalize';
import {
  nodePlacement,
  placementAllows,
  preferredNodeTerms,
  termMatchesNode,
} from './node-selection';

export const REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector";

/** The placement is compiled once per pod object (node-selection's cache), so there is no per-cycle state. */
export const NodeAffinity: FilterPlugin = {
  name: 'NodeAffinity',
  preFilter(pod) {
    return nodePlacement(pod).anyNode ? SKIP : undefined;
  },
  filter(pod, info) {
    return placementAllows(nodePlacement(pod), info) ? undefined : REASON_NODE_AFFINITY;
  },
};

export const NodeAffinityScore: ScorePlugin = {
  name: 'NodeAffinityScore',
  weight: 2,
  preScore(pod) {
    return preferredNodeTerms(pod).length === 0 ? SKIP : undefined;
  },
  score(pod, info) {
    const preferred = preferredNodeTerms(pod);
    let sum = 0;
    for (let i = 0; i < preferred.length; i++)
      if (termMatchesNode(preferred[i].term, info)) sum += preferred[i].weight;
    return sum;
  },
  normalize(scores) {
    normalizeToMax(scores);
  },
};

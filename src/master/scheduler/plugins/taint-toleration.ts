/**
 * TaintToleration: NoSchedule and NoExecute taints keep off every pod that
 * does not tolerate them; PreferNoSchedule taints only lower the score.
 */
import type { FilterPlugin, ScorePlugin } from '../types';
import { normalizeToMax } from './normalize';
import {
  firstUntoleratedTaint,
  intolerablePreferNoSchedule,
  untoleratedTaintReason,
} from './tolerations';

export const TaintToleration: FilterPlugin = {
  name: 'TaintToleration',
  filter(pod, info) {
    const taint = firstUntoleratedTaint(info.node.spec?.taints, pod.spec.tolerations);
    return taint === undefined ? undefined : untoleratedTaintReason(taint);
  },
};

/** Raw score: intolerable PreferNoSchedule taints; normalized so that fewer is better (none is 100). */
export const TaintTolerationScore: ScorePlugin = {
  name: 'TaintTolerationScore',
  weight: 3,
  score(pod, info) {
    return intolerablePreferNoSchedule(info.node.spec?.taints, pod.spec.tolerations);
  },
  normalize(scores) {
    normalizeToMax(scores, true);
  },
};

/**
 * NodeUnschedulable: a node takes new pods only when it is Ready and not
 * cordoned. Kubernetes expresses both as taints (node.kubernetes.io/not-ready,
 * /unreachable, /unschedulable, all NoSchedule), so a pod that tolerates
 * the taint (a DaemonSet's pods do) may still go there.
 */
import type { Node } from '../../../api/schema';
import type { FilterPlugin } from '../types';
import { isTolerated, type TaintLike } from './tolerations';

export const REASON_NOT_READY = 'node(s) were not ready';
export const REASON_UNREACHABLE = 'node(s) were unreachable';
export const REASON_UNSCHEDULABLE = 'node(s) were unschedulable';

const NOT_READY: TaintLike = { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' };
const UNREACHABLE: TaintLike = { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' };
const UNSCHEDULABLE: TaintLike = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

/** The Ready condition's status; a node that has not reported one is not ready yet. */
function readiness(node: Node): 'True' | 'False' | 'Unknown' {
  const conditions = node.status?.conditions;
  if (conditions !== undefined)
    for (let i = 0; i < conditions.length; i++)
      if (conditions[i].type === 'Ready') return conditions[i].status;
  return 'False';
}

export const NodeUnschedulable: FilterPlugin = {
  name: 'NodeUnschedulable',
  filter(pod, info) {
    const tolerations = pod.spec.tolerations;
    const ready = readiness(info.node);
    // Ready=Unknown is what the node controller sets when the node stopped reporting.
    if (ready === 'False' && !isTolerated(tolerations, NOT_READY)) return REASON_NOT_READY;
    if (ready === 'Unknown' && !isTolerated(tolerations, UNREACHABLE)) return REASON_UNREACHABLE;
    if (info.node.spec?.unschedulable === true && !isTolerated(tolerations, UNSCHEDULABLE))
      return REASON_UNSCHEDULABLE;
    return undefined;
  },
};

/**
 * NodeUnschedulable: a node takes new pods only when it is Ready and not
 * cordoned. Kubernetes expresses both as taints (node.kubernetes.io/not-ready,
 * /unreachable, /unschedulable, all NoSchedule), so a pod that tolerates
 * the taint (a DaemonSet's pods do) may still go there.
 */
import type { FilterPlugin } from '../types';
import { isTolerated, type TaintLike } from './tolerations';

export const REASON_NOT_READY = 'node(s) were not ready';
export const REASON_UNREACHABLE = 'node(s) were unreachable';
export const REASON_UNSCHEDULABLE = 'node(s) were unschedulable';

const NOT_READY: TaintLike = { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' };
const UNREACHABLE: TaintLike = { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' };
const UNSCHEDULABLE: TaintLike = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

export const NodeUnschedulable: FilterPlugin = {
  name: 'NodeUnschedulable',
  filter(pod, info) {
    const tolerations = pod.spec.tolerations;
    const ready = info.ready;
    // Ready=Unknown is what the node controller sets when the node stopped reporting.
    if (ready === 'False' && !isTolerated(tolerations, NOT_READY)) return REASON_NOT_READY;
    if (ready === 'Unknown' && !isTolerated(tolerations, UNREACHABLE)) return REASON_UNREACHABLE;
    if (info.cordoned && !isTolerated(tolerations, UNSCHEDULABLE)) return REASON_UNSCHEDULABLE;
    return undefined;
  },
};

/**
 * The scheduler's view of the cluster, shared by its loop and its plugins
 * (kube-scheduler's framework in miniature): each pod goes through every
 * filter on candidate nodes, then every score on the nodes that passed.
 */
import type { Node, Pod } from '../../api/schema';

/** Resource amounts as integers: cpu in millicores, memory and storage in bytes, others as counts. */
export type Resources = Record<string, number>;

/** One node and what is bound (or assumed bound, pending commit) to it. */
export interface NodeInfo {
  name: string;
  node: Node;
  labels: Record<string, string>;
  /** The Ready condition's status (a node that has not reported one is not ready yet). */
  ready: 'True' | 'False' | 'Unknown';
  /** spec.unschedulable: cordoned. */
  cordoned: boolean;
  /** status.allocatable, with `pods` as a count. */
  allocatable: Resources;
  /** Sum of the requests of `pods` (see podRequests), plus `pods`: their number. */
  requested: Resources;
  /** Pods bound or assumed here, by uid. */
  pods: Map<string, Pod>;
  /** Host ports in use: `${protocol}/${hostIP || '0.0.0.0'}/${port}`. */
  hostPorts: Set<string>;
}

/** Every node the scheduler knows, at the moment of one scheduling cycle. */
export interface ClusterView {
  nodes: NodeInfo[];
  byName: Map<string, NodeInfo>;
  /** Namespace labels, for namespaceSelector in pod affinity terms. */
  namespaceLabels(ns: string): Record<string, string>;
}

/** Per-pod state computed once (preFilter / preScore) and read by every node's filter or score. */
export type CycleState = Map<string, unknown>;

/**
 * What preFilter or preScore returns when the plugin has nothing to say
 * about this pod (no host ports asked, no spread constraints…): the
 * plugin is left out of the cycle, as kube-scheduler's Skip status does.
 */
export const SKIP = 'skip';
export type Skip = typeof SKIP;

export interface FilterPlugin {
  readonly name: string;
  /** Computes per-pod state once before the nodes are filtered. */
  preFilter?(pod: Pod, view: ClusterView, state: CycleState): void | Skip;
  /**
   * Undefined when `node` fits `pod`; otherwise the reason, phrased to be
   * counted in "0/5 nodes are available: 3 Insufficient memory, 2 node(s)
   * had untolerated taint {gpu: true}" (so the same reason text for the same cause).
   */
  filter(pod: Pod, node: NodeInfo, view: ClusterView, state: CycleState): string | undefined;
}

export interface ScorePlugin {
  readonly name: string;
  readonly weight: number;
  /** Computes per-pod state once over the feasible nodes before scoring. */
  preScore?(pod: Pod, nodes: NodeInfo[], view: ClusterView, state: CycleState): void | Skip;
  /** A raw score for `node`; higher is better. */
  score(pod: Pod, node: NodeInfo, view: ClusterView, state: CycleState): number;
  /** Rescales raw scores in place to 0..100 (when raw scores are not already on that scale). */
  normalize?(scores: number[], state: CycleState): void;
}

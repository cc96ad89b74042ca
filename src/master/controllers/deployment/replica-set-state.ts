/**
 * What the rollout arithmetic needs to know of one ReplicaSet, and the one
 * kind of decision it makes: set a ReplicaSet's size. The decision
 * functions (rolling.ts, scaling.ts, recreate.ts) work on these plain
 * values, so they can be tested without objects, stores or clocks.
 */
import type { ReplicaSet } from '../../../api/schema';
import { DESIRED_REPLICAS, intAnnotation, MAX_REPLICAS } from './annotations';

export interface RsState {
  name: string;
  /** `spec.replicas`: the pods it is told to run. */
  replicas: number;
  /** `status.replicas`: the active pods the ReplicaSet controller last counted. */
  current: number;
  /** `status.readyReplicas`. */
  ready: number;
  /** `status.availableReplicas` (ready for the ReplicaSet's minReadySeconds). */
  available: number;
  /** Creation time in ms, for "oldest first" (ties broken by name, as Kubernetes does). */
  created: number;
  /** The Deployment's `spec.replicas` when it last scaled this ReplicaSet. */
  desired?: number;
  /** The Deployment's `spec.replicas + maxSurge` when it last scaled this ReplicaSet. */
  maxReplicas?: number;
}

/** Set ReplicaSet `name` from `from` to `to` replicas (from === to: only its replicas annotations). */
export interface ScaleAction {
  name: string;
  from: number;
  to: number;
}

export function stateOf(rs: ReplicaSet): RsState {
  const s = rs.status ?? {};
  return {
    name: rs.metadata.name,
    replicas: rs.spec.replicas,
    current: s.replicas ?? 0,
    ready: s.readyReplicas ?? 0,
    available: s.availableReplicas ?? 0,
    created: Date.parse(rs.metadata.creationTimestamp ?? '') || 0,
    desired: intAnnotation(rs, DESIRED_REPLICAS),
    maxReplicas: intAnnotation(rs, MAX_REPLICAS),
  };
}

export function sum(
  rss: readonly RsState[],
  field: 'replicas' | 'current' | 'ready' | 'available',
) {
  return rss.reduce((n, rs) => n + rs[field], 0);
}

/** ReplicaSets told to run at least one pod. */
export function active(rss: readonly RsState[]): RsState[] {
  return rss.filter((rs) => rs.replicas > 0);
}

/** Kubernetes' ReplicaSetsByCreationTimestamp: oldest first, ties by name. */
export function byCreation(a: RsState, b: RsState): number {
  if (a.created !== b.created) return a.created - b.created;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

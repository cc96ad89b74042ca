/**
 * Scaling a Deployment whose template did not change (Kubernetes'
 * deployment/sync.go `scale`): a Deployment with one active ReplicaSet just
 * resizes it; one in the middle of a rolling update spreads the change over
 * its ReplicaSets in proportion to their sizes, so that neither the new nor
 * the old revision takes the whole change.
 */
import { active, byCreation, RsState, ScaleAction, sum } from './replica-set-state';

/**
 * A Deployment's `spec.replicas` changed since it last scaled one of its
 * active ReplicaSets (Kubernetes' isScalingEvent): scale, do not roll.
 */
export function isScalingEvent(replicas: number, rss: readonly RsState[]): boolean {
  return active(rss).some((rs) => rs.desired !== undefined && rs.desired !== replicas);
}

/**
 * The only active ReplicaSet; with none active the new one, or else the
 * newest; undefined when several are active (Kubernetes' FindActiveOrLatest).
 */
export function activeOrLatest(
  newRS: RsState | undefined,
  oldRSs: readonly RsState[],
): RsState | undefined {
  const all = [...(newRS ? [newRS] : []), ...oldRSs];
  const running = active(all);
  if (running.length === 1) return running[0];
  if (running.length > 1) return undefined;
  return newRS ?? [...oldRSs].sort(byCreation).at(-1);
}

/** The new ReplicaSet runs every replica, available, for the current size (Kubernetes' IsSaturated). */
export function isSaturated(replicas: number, newRS: RsState | undefined): boolean {
  return (
    newRS !== undefined &&
    newRS.replicas === replicas &&
    newRS.desired === replicas &&
    newRS.available === replicas
  );
}

export interface ScalingInput {
  /** The Deployment's `spec.replicas`. */
  replicas: number;
  maxSurge: number;
  rollingUpdate: boolean;
  /** The Deployment's `status.replicas` (the size base when a ReplicaSet lacks its max-replicas annotation). */
  statusReplicas: number;
  newRS?: RsState;
  oldRSs: RsState[];
}

/**
 * The ReplicaSet sizes after a scaling event. Every action also refreshes
 * the replicas annotations, so an action may keep the size (from === to);
 * without that, the same change would look like a scaling event forever.
 */
export function scalePlan(i: ScalingInput): ScaleAction[] {
  const only = activeOrLatest(i.newRS, i.oldRSs);
  if (only) return [{ name: only.name, from: only.replicas, to: i.replicas }];
  if (isSaturated(i.replicas, i.newRS))
    return active(i.oldRSs).map((rs) => ({ name: rs.name, from: rs.replicas, to: 0 }));
  if (!i.rollingUpdate) return [];
  return proportionalPlan(i);
}

/**
 * Kubernetes' proportional scaling: each active ReplicaSet gets its share of
 * the new replicas + maxSurge, in proportion to its size against the size
 * it was last scaled for; what rounding leaves over goes to the largest.
 */
export function proportionalPlan(i: ScalingInput): ScaleAction[] {
  const all = active([...i.oldRSs, ...(i.newRS ? [i.newRS] : [])]);
  if (all.length === 0) return [];
  const allowed = i.replicas > 0 ? i.replicas + i.maxSurge : 0;
  const toAdd = allowed - sum(all, 'replicas');
  // Growing favours the newer of equal ReplicaSets, shrinking the older.
  all.sort((a, b) =>
    a.replicas !== b.replicas
      ? b.replicas - a.replicas
      : toAdd > 0
        ? byCreation(b, a)
        : byCreation(a, b),
  );
  const size = new Map<string, number>();
  let added = 0;
  for (const rs of all) {
    const p = toAdd === 0 ? 0 : proportion(rs, i, toAdd, added);
    size.set(rs.name, rs.replicas + p);
    added += p;
  }
  if (toAdd !== 0) {
    const largest = all[0].name;
    size.set(largest, Math.max(0, size.get(largest)! + toAdd - added));
  }
  return all.map((rs) => ({ name: rs.name, from: rs.replicas, to: size.get(rs.name)! }));
}

/** Kubernetes' GetReplicaSetProportion: this ReplicaSet's share, within what is left to add. */
function proportion(rs: RsState, i: ScalingInput, toAdd: number, added: number): number {
  if (rs.replicas === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(rs, i);
  const left = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, left) : Math.max(fraction, left);
}

function replicaSetFraction(rs: RsState, i: ScalingInput): number {
  if (i.replicas === 0) return -rs.replicas;
  const maxNow = i.replicas + i.maxSurge;
  const maxBefore = rs.maxReplicas || i.statusReplicas;
  if (maxBefore === 0) return 0;
  return Math.round((rs.replicas * maxNow) / maxBefore) - rs.replicas;
}

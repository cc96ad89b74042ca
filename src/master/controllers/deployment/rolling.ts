/**
 * The RollingUpdate arithmetic (Kubernetes' deployment/rolling.go and the
 * fencepost helpers of deployment/util): how far the new ReplicaSet may
 * grow and how far the old ones may shrink, one step at a time. Every
 * step reads the ReplicaSets' reported availability, so a new revision
 * whose pods never become Ready stops where maxUnavailable says it must.
 */
import type { Deployment } from '../../../api/schema';
import { active, byCreation, RsState, ScaleAction, sum } from './replica-set-state';

export type IntOrPercent = number | string;

/**
 * An absolute count or a percentage of `total` (Kubernetes'
 * GetScaledValueFromIntOrPercent). Percentages round up for surge (more
 * room to create) and down for unavailability (less room to delete).
 */
export function scaledValue(v: IntOrPercent, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9]+)%$/.exec(v);
  if (!m)
    throw new Error(`invalid value for IntOrString: "${v}": must be an integer or a percentage`);
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

export interface Fenceposts {
  maxSurge: number;
  maxUnavailable: number;
}

/**
 * maxSurge and maxUnavailable as counts for `desired` replicas. When both
 * round to 0 (say 25% of 1 unavailable and 0 surge), a rollout could never
 * move, so one pod may be unavailable (Kubernetes' ResolveFenceposts).
 */
export function resolveFenceposts(
  maxSurge: IntOrPercent,
  maxUnavailable: IntOrPercent,
  desired: number,
): Fenceposts {
  const surge = scaledValue(maxSurge, desired, true);
  let unavailable = scaledValue(maxUnavailable, desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { maxSurge: surge, maxUnavailable: unavailable };
}

function fenceposts(d: Deployment): Fenceposts | undefined {
  const ru = d.spec.strategy.rollingUpdate;
  if (d.spec.strategy.type !== 'RollingUpdate') return undefined;
  return resolveFenceposts(ru?.maxSurge ?? '25%', ru?.maxUnavailable ?? '25%', d.spec.replicas);
}

/** Pods a Deployment may run above `spec.replicas` during a rollout (0 for Recreate). */
export function maxSurge(d: Deployment): number {
  return fenceposts(d)?.maxSurge ?? 0;
}

/** Pods a Deployment may have unavailable during a rollout (0 for Recreate or 0 replicas). */
export function maxUnavailable(d: Deployment): number {
  const f = fenceposts(d);
  if (!f || d.spec.replicas === 0) return 0;
  return Math.min(f.maxUnavailable, d.spec.replicas);
}

export interface RollingInput {
  /** The Deployment's `spec.replicas`. */
  replicas: number;
  maxSurge: number;
  maxUnavailable: number;
  newRS: RsState;
  oldRSs: RsState[];
}

export function rollingInput(d: Deployment, newRS: RsState, oldRSs: RsState[]): RollingInput {
  return {
    replicas: d.spec.replicas,
    maxSurge: maxSurge(d),
    maxUnavailable: maxUnavailable(d),
    newRS,
    oldRSs,
  };
}

/**
 * The size the new ReplicaSet may grow to now (Kubernetes'
 * NewRSNewReplicas): total pods stay within replicas + maxSurge.
 *
 * Deviation: Kubernetes counts each ReplicaSet's `spec.replicas`; this counts
 * max(spec.replicas, status.replicas), so pods an old ReplicaSet was told to
 * shed but still runs count against the surge. Kubernetes can briefly run
 * more than replicas + maxSurge pods while its ReplicaSet controller catches
 * up; this never does.
 */
export function newReplicaSetSize(i: RollingInput): number {
  const running = [...i.oldRSs, i.newRS].reduce(
    (n, rs) => n + Math.max(rs.replicas, rs.current),
    0,
  );
  const maxTotal = i.replicas + i.maxSurge;
  if (running >= maxTotal) return i.newRS.replicas;
  const up = Math.min(maxTotal - running, i.replicas - i.newRS.replicas);
  return i.newRS.replicas + Math.max(0, up);
}

/** Kubernetes' reconcileNewReplicaSet: grow the new ReplicaSet as far as the surge allows. */
export function scaleNewStep(i: RollingInput): ScaleAction | undefined {
  const from = i.newRS.replicas;
  if (from === i.replicas) return undefined;
  const to = from > i.replicas ? i.replicas : newReplicaSetSize(i);
  return to === from ? undefined : { name: i.newRS.name, from, to };
}

/**
 * Kubernetes' reconcileOldReplicaSets: shrink old ReplicaSets while at least
 * replicas - maxUnavailable pods stay available. Unavailable old pods go
 * first (cleanupUnhealthyReplicas: they serve nothing, and an old
 * ReplicaSet stuck on a bad image must not block the rollout that fixes
 * it); then available ones, oldest ReplicaSet first.
 */
export function scaleOldStep(i: RollingInput): ScaleAction[] {
  const old = active(i.oldRSs).sort(byCreation);
  if (sum(old, 'replicas') === 0) return [];
  const all = [...i.oldRSs, i.newRS];
  const minAvailable = i.replicas - i.maxUnavailable;
  const newUnavailable = i.newRS.replicas - i.newRS.available;
  const maxScaledDown = sum(all, 'replicas') - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return [];

  const size = new Map(old.map((rs) => [rs.name, rs.replicas]));
  // Unhealthy replicas: told to run but not available.
  let cleaned = 0;
  for (const rs of old) {
    if (cleaned >= maxScaledDown) break;
    const unhealthy = rs.replicas - rs.available;
    if (unhealthy <= 0) continue;
    const n = Math.min(maxScaledDown - cleaned, unhealthy);
    size.set(rs.name, rs.replicas - n);
    cleaned += n;
  }
  // Available replicas, keeping minAvailable (Kubernetes' scaleDownOldReplicaSetsForRollingUpdate).
  const available = sum(all, 'available');
  let scaled = 0;
  const budget = available - minAvailable;
  for (const rs of old) {
    if (scaled >= budget) break;
    const cur = size.get(rs.name)!;
    if (cur === 0) continue;
    const n = Math.min(cur, budget - scaled);
    size.set(rs.name, cur - n);
    scaled += n;
  }
  return old
    .filter((rs) => size.get(rs.name) !== rs.replicas)
    .map((rs) => ({ name: rs.name, from: rs.replicas, to: size.get(rs.name)! }));
}

/** One step of a rolling update: grow the new ReplicaSet if it may, else shrink old ones if they may. */
export function rollingStep(i: RollingInput): ScaleAction[] {
  const up = scaleNewStep(i);
  return up ? [up] : scaleOldStep(i);
}

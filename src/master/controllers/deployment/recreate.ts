/**
 * The Recreate strategy (Kubernetes' deployment/recreate.go): every old pod
 * is gone before a new one starts, for applications that cannot run two
 * versions at once.
 */
import { active, RsState, ScaleAction, sum } from './replica-set-state';

export type RecreateStep =
  /** Scale every old ReplicaSet to 0. */
  | { kind: 'scale-down-old'; actions: ScaleAction[] }
  /** Old ReplicaSets are at 0 but some of their pods still run. */
  | { kind: 'wait-for-old-pods' }
  /** Create the new ReplicaSet if needed, at full size. */
  | { kind: 'scale-up-new' };

/**
 * @param oldPodPhases the phases of the pods the old ReplicaSets still own.
 */
export function recreateStep(
  oldRSs: readonly RsState[],
  oldPodPhases: readonly string[],
): RecreateStep {
  const running = active(oldRSs);
  if (running.length > 0)
    return {
      kind: 'scale-down-old',
      actions: running.map((rs) => ({ name: rs.name, from: rs.replicas, to: 0 })),
    };
  if (oldPodsRunning(oldRSs, oldPodPhases)) return { kind: 'wait-for-old-pods' };
  return { kind: 'scale-up-new' };
}

/**
 * Whether an old pod may still run (Kubernetes' oldPodsRunning): the old
 * ReplicaSets still report pods, or a pod of theirs has not finished. An
 * Unknown phase counts as running: we cannot be sure it stopped.
 */
export function oldPodsRunning(
  oldRSs: readonly RsState[],
  oldPodPhases: readonly string[],
): boolean {
  if (sum(oldRSs, 'current') > 0) return true;
  return oldPodPhases.some((p) => p !== 'Succeeded' && p !== 'Failed');
}

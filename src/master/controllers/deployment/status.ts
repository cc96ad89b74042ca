/**
 * A Deployment's status and conditions, computed from its ReplicaSets
 * (Kubernetes' deployment/sync.go calculateStatus and syncRolloutStatus,
 * deployment/progress.go and the condition helpers of deployment/util).
 * Pure: the time comes in as an argument.
 *
 * Progressing says whether the rollout moves: True with NewReplicaSetCreated,
 * FoundNewReplicaSet or ReplicaSetUpdated while it does (lastUpdateTime
 * bumps on every step forward), True with NewReplicaSetAvailable once it is
 * complete, False with ProgressDeadlineExceeded after progressDeadlineSeconds
 * without a step forward, Unknown with DeploymentPaused / DeploymentResumed.
 * Available says whether at least replicas - maxUnavailable pods are available.
 */
import type { Deployment } from '../../../api/schema';
import { stableStringify } from '../../store/stable-json';
import { RsState, sum } from './replica-set-state';
import { maxUnavailable } from './rolling';

export type DeploymentStatus = NonNullable<Deployment['status']>;
export type DeploymentCondition = NonNullable<DeploymentStatus['conditions']>[number];
export type ConditionStatus = DeploymentCondition['status'];

export const PROGRESSING = 'Progressing';
export const AVAILABLE = 'Available';

/** Kubernetes' condition reasons (deployment/util). */
export const Reason = {
  NewReplicaSetCreated: 'NewReplicaSetCreated',
  FoundNewReplicaSet: 'FoundNewReplicaSet',
  ReplicaSetUpdated: 'ReplicaSetUpdated',
  NewReplicaSetAvailable: 'NewReplicaSetAvailable',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  ReplicaSetCreateError: 'ReplicaSetCreateError',
  DeploymentPaused: 'DeploymentPaused',
  DeploymentResumed: 'DeploymentResumed',
  MinimumReplicasAvailable: 'MinimumReplicasAvailable',
  MinimumReplicasUnavailable: 'MinimumReplicasUnavailable',
} as const;

export function getCondition(
  status: DeploymentStatus | undefined,
  type: string,
): DeploymentCondition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** A condition that changes now (`now`: an RFC 3339 timestamp). */
export function newCondition(
  type: string,
  status: ConditionStatus,
  reason: string,
  message: string,
  now: string,
): DeploymentCondition {
  return { type, status, reason, message, lastUpdateTime: now, lastTransitionTime: now };
}

/**
 * `status` with condition `c` set (Kubernetes' SetDeploymentCondition): an
 * existing condition with the same status and reason is kept as it is (its
 * lastUpdateTime does not move); with the same status only, its
 * lastTransitionTime is kept.
 */
export function setCondition(status: DeploymentStatus, c: DeploymentCondition): DeploymentStatus {
  const cur = getCondition(status, c.type);
  if (cur && cur.status === c.status && cur.reason === c.reason) return status;
  const next =
    cur && cur.status === c.status ? { ...c, lastTransitionTime: cur.lastTransitionTime } : c;
  return {
    ...status,
    conditions: [...(status.conditions ?? []).filter((x) => x.type !== c.type), next],
  };
}

export function removeCondition(status: DeploymentStatus, type: string): DeploymentStatus {
  if (!getCondition(status, type)) return status;
  return { ...status, conditions: status.conditions!.filter((c) => c.type !== type) };
}

/** The Deployment has a progress deadline (Kubernetes' HasProgressDeadline; Baton defaults it to 600). */
export function hasProgressDeadline(d: Deployment): boolean {
  return d.spec.progressDeadlineSeconds !== undefined;
}

/**
 * Counts and the Available condition from the ReplicaSets (Kubernetes'
 * calculateStatus); other conditions are carried over from `d.status`.
 */
export function calculateStatus(
  d: Deployment,
  all: readonly RsState[],
  newRS: RsState | undefined,
  now: string,
): DeploymentStatus {
  const available = sum(all, 'available');
  const status: DeploymentStatus = {
    observedGeneration: d.metadata.generation,
    replicas: sum(all, 'current'),
    updatedReplicas: newRS?.current ?? 0,
    readyReplicas: sum(all, 'ready'),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, sum(all, 'replicas') - available),
    conditions: [...(d.status?.conditions ?? [])],
  };
  if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
  const enough = available >= d.spec.replicas - maxUnavailable(d);
  return setCondition(
    status,
    enough
      ? newCondition(
          AVAILABLE,
          'True',
          Reason.MinimumReplicasAvailable,
          'Deployment has minimum availability.',
          now,
        )
      : newCondition(
          AVAILABLE,
          'False',
          Reason.MinimumReplicasUnavailable,
          'Deployment does not have minimum availability.',
          now,
        ),
  );
}

/** Every replica is updated and available, and the status is about the current spec (Kubernetes' DeploymentComplete). */
export function deploymentComplete(d: Deployment, s: DeploymentStatus | undefined): boolean {
  const n = d.spec.replicas;
  return (
    (s?.updatedReplicas ?? 0) === n &&
    (s?.replicas ?? 0) === n &&
    (s?.availableReplicas ?? 0) === n &&
    (s?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  );
}

/**
 * The rollout moved since `d.status` (Kubernetes' DeploymentProgressing):
 * more updated, ready or available pods, or fewer old ones.
 */
export function deploymentProgressing(d: Deployment, next: DeploymentStatus): boolean {
  const old = d.status ?? {};
  const n = (v: number | undefined) => v ?? 0;
  return (
    n(next.updatedReplicas) > n(old.updatedReplicas) ||
    n(next.replicas) - n(next.updatedReplicas) < n(old.replicas) - n(old.updatedReplicas) ||
    n(next.readyReplicas) > n(old.readyReplicas) ||
    n(next.availableReplicas) > n(old.availableReplicas)
  );
}

/** When (ms) the rollout times out unless it moves, or undefined when no deadline runs. */
export function progressDeadline(d: Deployment, s: DeploymentStatus): number | undefined {
  if (!hasProgressDeadline(d)) return undefined;
  const c = getCondition(s, PROGRESSING);
  if (!c || !c.lastUpdateTime) return undefined;
  if (c.reason === Reason.NewReplicaSetAvailable || c.reason === Reason.ProgressDeadlineExceeded)
    return undefined;
  return Date.parse(c.lastUpdateTime) + d.spec.progressDeadlineSeconds * 1000;
}

/** No progress for progressDeadlineSeconds (Kubernetes' DeploymentTimedOut). */
export function deploymentTimedOut(d: Deployment, s: DeploymentStatus, nowMs: number): boolean {
  const c = getCondition(s, PROGRESSING);
  if (!hasProgressDeadline(d) || !c) return false;
  if (c.reason === Reason.ProgressDeadlineExceeded) return true;
  const deadline = progressDeadline(d, s);
  return deadline !== undefined && deadline < nowMs;
}

/**
 * The status after a rollout step (Kubernetes' syncRolloutStatus): counts,
 * Available, and Progressing moved on by what happened since `d.status`.
 */
export function rolloutStatus(
  d: Deployment,
  all: readonly RsState[],
  newRS: RsState | undefined,
  now: Date,
  stamp: string,
): DeploymentStatus {
  let next = calculateStatus(d, all, newRS, stamp);
  if (!hasProgressDeadline(d)) return removeCondition(next, PROGRESSING);
  const cur = getCondition(d.status, PROGRESSING);
  const complete =
    next.replicas === next.updatedReplicas && cur?.reason === Reason.NewReplicaSetAvailable;
  if (complete) return next;
  const subject = newRS ? `ReplicaSet "${newRS.name}"` : `Deployment "${d.metadata.name}"`;
  if (deploymentComplete(d, next))
    return setCondition(
      next,
      newCondition(
        PROGRESSING,
        'True',
        Reason.NewReplicaSetAvailable,
        `${subject} has successfully progressed.`,
        stamp,
      ),
    );
  if (deploymentProgressing(d, next)) {
    // A step forward: a fresh lastUpdateTime restarts the deadline.
    let c = newCondition(
      PROGRESSING,
      'True',
      Reason.ReplicaSetUpdated,
      `${subject} is progressing.`,
      stamp,
    );
    if (cur?.status === 'True') c = { ...c, lastTransitionTime: cur.lastTransitionTime };
    next = removeCondition(next, PROGRESSING);
    return setCondition(next, c);
  }
  if (deploymentTimedOut(d, next, now.getTime()))
    return setCondition(
      next,
      newCondition(
        PROGRESSING,
        'False',
        Reason.ProgressDeadlineExceeded,
        `${subject} has timed out progressing.`,
        stamp,
      ),
    );
  return next;
}

/**
 * Progressing Unknown when a Deployment is paused or resumed (Kubernetes'
 * checkPausedConditions); undefined when nothing changes. A timed-out
 * rollout keeps saying so.
 */
export function pausedStatus(d: Deployment, stamp: string): DeploymentStatus | undefined {
  if (!hasProgressDeadline(d)) return undefined;
  const cur = getCondition(d.status, PROGRESSING);
  if (cur?.reason === Reason.ProgressDeadlineExceeded) return undefined;
  const pausedShown = cur?.reason === Reason.DeploymentPaused;
  const status = d.status ?? {};
  if (d.spec.paused && !pausedShown)
    return setCondition(
      status,
      newCondition(PROGRESSING, 'Unknown', Reason.DeploymentPaused, 'Deployment is paused', stamp),
    );
  if (!d.spec.paused && pausedShown)
    return setCondition(
      status,
      newCondition(
        PROGRESSING,
        'Unknown',
        Reason.DeploymentResumed,
        'Deployment is resumed',
        stamp,
      ),
    );
  return undefined;
}

/**
 * How long until a rollout that is not moving should be looked at again to
 * notice its deadline (Kubernetes' requeueStuckDeployment), or undefined.
 * One millisecond past the deadline: the deadline itself is not yet late.
 */
export function msUntilStuck(
  d: Deployment,
  s: DeploymentStatus,
  nowMs: number,
): number | undefined {
  if (deploymentComplete(d, s)) return undefined;
  const deadline = progressDeadline(d, s);
  if (deadline === undefined) return undefined;
  return Math.max(0, deadline - nowMs) + 1;
}

export function sameStatus(a: DeploymentStatus | undefined, b: DeploymentStatus): boolean {
  return stableStringify(a ?? {}) === stableStringify(b);
}

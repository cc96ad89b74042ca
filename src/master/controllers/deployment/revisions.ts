/**
 * A Deployment's revisions: every ReplicaSet it ever made is one, numbered
 * by its `deployment.kubernetes.io/revision` annotation. Old ReplicaSets at
 * 0 replicas are the rollout history (`rollout history`, `rollout undo`),
 * kept up to `revisionHistoryLimit`.
 *
 * Kubernetes removed `spec.rollbackTo`: `kubectl rollout undo` copies an
 * old ReplicaSet's template into the Deployment, and the controller then
 * finds that ReplicaSet as the new one and scales it back up (giving it
 * the next revision number). `rollbackTemplate` is that client-side step.
 */
import type { Deployment, PodTemplateSpec, ReplicaSet } from '../../../api/schema';
import { controllerRef } from '../pods';
import { CHANGE_CAUSE, revisionOf } from './annotations';
import { withoutHash } from './replica-sets';

export class RollbackError extends Error {
  constructor(
    readonly code: 'REVISION_NOT_FOUND' | 'NO_HISTORY',
    message: string,
  ) {
    super(message);
    this.name = 'RollbackError';
  }
}

/** Highest revision among `rss`; 0 when none has one. */
export function maxRevision(rss: readonly ReplicaSet[]): number {
  return rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
}

const created = (rs: ReplicaSet) => Date.parse(rs.metadata.creationTimestamp ?? '') || 0;

/** Kubernetes' ReplicaSetsByRevision: lowest revision first, ties by age, then name. */
export function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  const d = revisionOf(a) - revisionOf(b);
  if (d !== 0) return d;
  if (created(a) !== created(b)) return created(a) - created(b);
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/**
 * The old ReplicaSets to delete so that at most `limit` remain (Kubernetes'
 * cleanupDeployment): the lowest revisions, and only those fully scaled down
 * (spec and status at 0, and the scale-down observed by their controller).
 */
export function replicaSetsToPrune(oldRSs: readonly ReplicaSet[], limit: number): ReplicaSet[] {
  const alive = oldRSs.filter((rs) => rs.metadata.deletionTimestamp === undefined);
  const excess = alive.length - limit;
  if (excess <= 0) return [];
  return [...alive]
    .sort(byRevision)
    .slice(0, excess)
    .filter(
      (rs) =>
        rs.spec.replicas === 0 &&
        (rs.status?.replicas ?? 0) === 0 &&
        (rs.metadata.generation ?? 0) <= (rs.status?.observedGeneration ?? 0),
    );
}

/** The ReplicaSets `deployment` controls (a caller may pass every ReplicaSet of the namespace). */
function ownedBy(d: Deployment, rss: readonly ReplicaSet[]): ReplicaSet[] {
  return rss.filter((rs) => controllerRef(rs)?.uid === d.metadata.uid);
}

export interface RevisionEntry {
  revision: number;
  replicaSet: string;
  /** The `kubernetes.io/change-cause` annotation, when set. */
  changeCause?: string;
  template: PodTemplateSpec;
}

/** The Deployment's revisions, oldest first, as `rollout history` lists them. */
export function rolloutHistory(d: Deployment, rss: readonly ReplicaSet[]): RevisionEntry[] {
  return ownedBy(d, rss)
    .filter((rs) => revisionOf(rs) > 0)
    .sort(byRevision)
    .map((rs) => ({
      revision: revisionOf(rs),
      replicaSet: rs.metadata.name,
      ...(rs.metadata.annotations?.[CHANGE_CAUSE] !== undefined
        ? { changeCause: rs.metadata.annotations[CHANGE_CAUSE] }
        : {}),
      template: withoutHash(rs.spec.template),
    }));
}

/**
 * The pod template to put back into `deployment` to roll back to
 * `toRevision` (0 or undefined: the revision before the latest), without
 * the pod-template-hash label (kubectl's DeploymentRollbacker). Applying it
 * makes the controller reuse that revision's ReplicaSet. If it equals the
 * current template, there is nothing to roll back: compare with
 * `sameTemplate` to say so.
 */
export function rollbackTemplate(
  deployment: Deployment,
  replicaSets: readonly ReplicaSet[],
  toRevision?: number,
): PodTemplateSpec {
  const history = rolloutHistory(deployment, replicaSets);
  if (toRevision) {
    const hit = history.find((e) => e.revision === toRevision);
    if (!hit)
      throw new RollbackError(
        'REVISION_NOT_FOUND',
        `unable to find specified revision ${toRevision} in history of deployment "${deployment.metadata.name}"`,
      );
    return hit.template;
  }
  if (history.length < 2)
    throw new RollbackError(
      'NO_HISTORY',
      `no rollout history found for deployment "${deployment.metadata.name}"`,
    );
  return history[history.length - 2].template;
}

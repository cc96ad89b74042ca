/**
 * A Deployment's revisions: every ReplicaSet it ever made is one, numbered
 * by its `deployment.kubernetes.io/revision` annotation. Old ReplicaSets at
 * 0 replicas are the rollout history (`rollout history`, `rollout undo`),
 * kept up to `revisionHistoryLimit`.
 *
 * The history and rollback themselves are in `api/rollout.ts`, shared with
 * the CLI (which copies an old template back into the Deployment, as
 * `kubectl rollout undo` does); what is left here is the controller's side:
 * numbering the next revision and pruning old ones.
 */
import { byRevision, revisionOf } from '../../../api/rollout';
import type { ReplicaSet } from '../../../api/schema';

export { RollbackError, rollbackTemplate, rolloutHistory } from '../../../api/rollout';
export type { RevisionEntry } from '../../../api/rollout';

/** Highest revision among `rss`; 0 when none has one. */
export function maxRevision(rss: readonly ReplicaSet[]): number {
  return rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
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

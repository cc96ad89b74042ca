/**
 * A Deployment's rollout as both the controller and the CLI see it: the
 * annotations that number its ReplicaSets as revisions, the history those
 * revisions make (`rollout history`), the template and annotations that
 * roll it back (`rollout undo`), and how far a rollout has got
 * (`rollout status`, kubectl's DeploymentStatusViewer). Pure functions of
 * the objects; the controller and the CLI share this one implementation.
 *
 * Kubernetes removed `spec.rollbackTo`: `kubectl rollout undo` copies an
 * old ReplicaSet's template into the Deployment, and the controller then
 * finds that ReplicaSet as the new one and scales it back up (giving it
 * the next revision number).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Deployment, PodTemplateSpec, ReplicaSet } from './schema';
import { ApiObject } from './types';

/** Which revision a ReplicaSet is; on a Deployment, the revision it runs. */
export const REVISION = 'deployment.kubernetes.io/revision';
/** Earlier revisions of a ReplicaSet brought back by a rollback, comma-separated. */
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
/** `spec.replicas` of the Deployment when it last scaled this ReplicaSet. */
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
/** `spec.replicas + maxSurge` of the Deployment when it last scaled this ReplicaSet. */
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
/** What `rollout history` shows as CHANGE-CAUSE; copied from the Deployment. */
export const CHANGE_CAUSE = 'kubernetes.io/change-cause';
/** Set on the pod template by `rollout restart`: a new template, so new pods. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
/** The label that keeps one Deployment's ReplicaSets from selecting each other's pods. */
export const POD_TEMPLATE_HASH = 'pod-template-hash';

/**
 * Deployment annotations that belong to the Deployment itself (Kubernetes'
 * annotationsToSkip): not copied to its ReplicaSets, and kept as they are
 * when a rollback copies a ReplicaSet's annotations back.
 */
export const DEPLOYMENT_OWN_ANNOTATIONS: ReadonlySet<string> = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  REVISION_HISTORY,
  DESIRED_REPLICAS,
  MAX_REPLICAS,
  'deprecated.deployment.rollback.to',
]);

/** An annotation holding a non-negative integer, or undefined when absent or not a number. */
export function intAnnotation(o: ApiObject, key: string): number | undefined {
  const v = o.metadata.annotations?.[key];
  if (v === undefined || !/^[0-9]+$/.test(v)) return undefined;
  return Number(v);
}

/** The revision of a ReplicaSet (or Deployment); 0 when it has none. */
export function revisionOf(o: ApiObject): number {
  return intAnnotation(o, REVISION) ?? 0;
}

/** `template` without the pod-template-hash label (an empty label map dropped). */
export function withoutHash(template: PodTemplateSpec): PodTemplateSpec {
  const t = structuredClone(template);
  const labels = t.metadata?.labels;
  if (labels && POD_TEMPLATE_HASH in labels) {
    delete labels[POD_TEMPLATE_HASH];
    if (Object.keys(labels).length === 0) delete t.metadata!.labels;
  }
  return t;
}

/** Equal apart from the pod-template-hash label (Kubernetes' EqualIgnoreHash). */
export function sameTemplate(a: PodTemplateSpec, b: PodTemplateSpec): boolean {
  return isDeepStrictEqual(withoutHash(a), withoutHash(b));
}

const created = (rs: ReplicaSet) => Date.parse(rs.metadata.creationTimestamp ?? '') || 0;

/** Kubernetes' ReplicaSetsByRevision: lowest revision first, ties by age, then name. */
export function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  const d = revisionOf(a) - revisionOf(b);
  if (d !== 0) return d;
  if (created(a) !== created(b)) return created(a) - created(b);
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

export class RollbackError extends Error {
  constructor(
    readonly code: 'REVISION_NOT_FOUND' | 'NO_HISTORY',
    message: string,
  ) {
    super(message);
    this.name = 'RollbackError';
  }
}

export interface RevisionEntry {
  revision: number;
  replicaSet: string;
  /** The `kubernetes.io/change-cause` annotation, when set. */
  changeCause?: string;
  /** The ReplicaSet's annotations (a rollback copies them back to the Deployment). */
  annotations: Record<string, string>;
  template: PodTemplateSpec;
}

/** The ReplicaSets `d` controls (a caller may pass every ReplicaSet of the namespace). */
function ownedBy(d: Deployment, rss: readonly ReplicaSet[]): ReplicaSet[] {
  return rss.filter(
    (rs) => rs.metadata.ownerReferences?.find((r) => r.controller)?.uid === d.metadata.uid,
  );
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
      annotations: { ...rs.metadata.annotations },
      template: withoutHash(rs.spec.template),
    }));
}

/**
 * The revision to roll `deployment` back to: `toRevision`, or with 0 or
 * undefined the one before the latest (kubectl's deploymentRevision).
 */
export function rollbackRevision(
  deployment: Deployment,
  replicaSets: readonly ReplicaSet[],
  toRevision?: number,
): RevisionEntry {
  const history = rolloutHistory(deployment, replicaSets);
  if (toRevision) {
    const hit = history.find((e) => e.revision === toRevision);
    if (!hit)
      throw new RollbackError(
        'REVISION_NOT_FOUND',
        `unable to find specified revision ${toRevision} in history of deployment "${deployment.metadata.name}"`,
      );
    return hit;
  }
  if (history.length < 2)
    throw new RollbackError(
      'NO_HISTORY',
      `no rollout history found for deployment "${deployment.metadata.name}"`,
    );
  return history[history.length - 2];
}

/**
 * The pod template to put back into `deployment` to roll back to
 * `toRevision`, without the pod-template-hash label (kubectl's
 * DeploymentRollbacker). Applying it makes the controller reuse that
 * revision's ReplicaSet. If it equals the current template, there is
 * nothing to roll back: compare with `sameTemplate` to say so.
 */
export function rollbackTemplate(
  deployment: Deployment,
  replicaSets: readonly ReplicaSet[],
  toRevision?: number,
): PodTemplateSpec {
  return rollbackRevision(deployment, replicaSets, toRevision).template;
}

/**
 * The Deployment's annotations after rolling back to `to`: its own
 * (revision bookkeeping, last-applied) kept, the rest replaced by the
 * revision's, so its change-cause comes back with it (kubectl's rollback).
 */
export function rollbackAnnotations(
  deployment: Deployment,
  to: RevisionEntry,
): Record<string, string> {
  const a: Record<string, string> = {};
  for (const [k, v] of Object.entries(deployment.metadata.annotations ?? {}))
    if (DEPLOYMENT_OWN_ANNOTATIONS.has(k)) a[k] = v;
  for (const [k, v] of Object.entries(to.annotations))
    if (!DEPLOYMENT_OWN_ANNOTATIONS.has(k)) a[k] = v;
  return a;
}

export interface RolloutStatus {
  /** progressing: keep waiting; complete: rolled out; failed: it will not finish by itself. */
  state: 'progressing' | 'complete' | 'failed';
  /** The line to show (for failed, the error, without "error: "). */
  message: string;
}

/**
 * How far the Deployment's rollout has got, in kubectl's words (its
 * DeploymentStatusViewer): nothing is judged until the controller has
 * observed the current generation, so a stale status never reads as done.
 * `revision` > 0 insists the Deployment runs that revision.
 */
export function deploymentRolloutStatus(d: Deployment, revision = 0): RolloutStatus {
  const name = d.metadata.name;
  if (revision > 0 && revisionOf(d) !== revision)
    return {
      state: 'failed',
      message: `desired revision (${revision}) is different from the running revision (${revisionOf(d)})`,
    };
  const s = d.status ?? {};
  if ((d.metadata.generation ?? 0) > (s.observedGeneration ?? 0))
    return {
      state: 'progressing',
      message: 'Waiting for deployment spec update to be observed...',
    };
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return { state: 'failed', message: `deployment "${name}" exceeded its progress deadline` };
  const waiting = (what: string): RolloutStatus => ({
    state: 'progressing',
    message: `Waiting for deployment "${name}" rollout to finish: ${what}...`,
  });
  const updated = s.updatedReplicas ?? 0;
  const replicas = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  if (updated < d.spec.replicas)
    return waiting(`${updated} out of ${d.spec.replicas} new replicas have been updated`);
  if (replicas > updated)
    return waiting(`${replicas - updated} old replicas are pending termination`);
  if (available < updated)
    return waiting(`${available} of ${updated} updated replicas are available`);
  return { state: 'complete', message: `deployment "${name}" successfully rolled out` };
}

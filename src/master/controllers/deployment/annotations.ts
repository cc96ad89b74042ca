/**
 * The annotations a Deployment keeps on its ReplicaSets (Kubernetes' names,
 * so `kubectl`-style tooling reads them): which revision a ReplicaSet is,
 * which revisions it was before, and the Deployment size it was last scaled
 * for (proportional scaling reads that back).
 */
import {
  DEPLOYMENT_OWN_ANNOTATIONS,
  DESIRED_REPLICAS,
  MAX_REPLICAS,
  REVISION,
  REVISION_HISTORY,
} from '../../../api/rollout';
import { ApiObject } from '../../../api/types';

// The names and readers live with the rollout logic the CLI shares.
export {
  CHANGE_CAUSE,
  DESIRED_REPLICAS,
  intAnnotation,
  MAX_REPLICAS,
  REVISION,
  REVISION_HISTORY,
  revisionOf,
} from '../../../api/rollout';

/** Kubernetes caps the revision history annotation at this many characters. */
const MAX_HISTORY_CHARS = 2000;

export function replicasAnnotationsNeedUpdate(
  rs: ApiObject,
  desired: number,
  max: number,
): boolean {
  const a = rs.metadata.annotations ?? {};
  return a[DESIRED_REPLICAS] !== String(desired) || a[MAX_REPLICAS] !== String(max);
}

export function withReplicasAnnotations(
  annotations: Record<string, string> | undefined,
  desired: number,
  max: number,
): Record<string, string> {
  return { ...annotations, [DESIRED_REPLICAS]: String(desired), [MAX_REPLICAS]: String(max) };
}

/**
 * The annotations the Deployment's new ReplicaSet should carry (Kubernetes'
 * SetNewReplicaSetAnnotations): the Deployment's own annotations, the
 * revision `newRevision` when the ReplicaSet's is lower (a rollback brings
 * an old ReplicaSet back as the newest revision; its old number goes to the
 * history), and for a ReplicaSet about to be created, the replicas
 * annotations. Undefined when nothing changes.
 */
export function newReplicaSetAnnotations(
  deployment: ApiObject,
  rs: ApiObject,
  newRevision: number,
  create: { desired: number; max: number } | undefined,
): Record<string, string> | undefined {
  const a = { ...rs.metadata.annotations };
  let changed = false;
  for (const [k, v] of Object.entries(deployment.metadata.annotations ?? {})) {
    if (DEPLOYMENT_OWN_ANNOTATIONS.has(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  const old = a[REVISION];
  if (old !== undefined && !/^[0-9]+$/.test(old)) return changed ? a : undefined;
  const oldRevision = old === undefined ? 0 : Number(old);
  if (oldRevision < newRevision) {
    a[REVISION] = String(newRevision);
    changed = true;
    if (old !== undefined) a[REVISION_HISTORY] = appendHistory(a[REVISION_HISTORY], old);
  }
  if (create) {
    Object.assign(a, withReplicasAnnotations(undefined, create.desired, create.max));
    changed = true;
  }
  return changed ? a : undefined;
}

function appendHistory(history: string | undefined, revision: string): string {
  const list = history ? [...history.split(','), revision] : [revision];
  while (list.length > 1 && list.join(',').length > MAX_HISTORY_CHARS) list.shift();
  return list.join(',');
}

/**
 * Which of a Deployment's ReplicaSets runs its current template, and what a
 * new one looks like: named `<deployment>-<hash>`, with the
 * `pod-template-hash` label on itself, its selector and its pods, so that
 * the ReplicaSets of one Deployment never select each other's pods.
 */
import type { Deployment, ReplicaSet } from '../../../api/schema';
import { newControllerRef } from '../pods';
import { POD_TEMPLATE_HASH, sameTemplate, withoutHash } from '../../../api/rollout';

// One implementation, shared with the CLI's rollout verbs.
export { POD_TEMPLATE_HASH, sameTemplate, withoutHash };

const created = (rs: ReplicaSet) => Date.parse(rs.metadata.creationTimestamp ?? '') || 0;

/** Oldest first, ties by name (Kubernetes' ReplicaSetsByCreationTimestamp). */
export function byAge(a: ReplicaSet, b: ReplicaSet): number {
  if (created(a) !== created(b)) return created(a) - created(b);
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** The ReplicaSet running the Deployment's template; the oldest if several do (Kubernetes' FindNewReplicaSet). */
export function findNewReplicaSet(
  d: Deployment,
  rss: readonly ReplicaSet[],
): ReplicaSet | undefined {
  return [...rss].sort(byAge).find((rs) => sameTemplate(rs.spec.template, d.spec.template));
}

/** The ReplicaSet to create for the Deployment's template, whose hash is `hash`. */
export function newReplicaSet(
  d: Deployment,
  hash: string,
  replicas: number,
  annotations: Record<string, string>,
): ReplicaSet {
  const template = structuredClone(d.spec.template);
  const labels = { ...template.metadata?.labels, [POD_TEMPLATE_HASH]: hash };
  template.metadata = { ...template.metadata, labels };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...labels },
      annotations,
      ownerReferences: [newControllerRef(d)],
    },
    spec: {
      replicas,
      minReadySeconds: d.spec.minReadySeconds,
      selector: {
        ...d.spec.selector,
        matchLabels: { ...d.spec.selector.matchLabels, [POD_TEMPLATE_HASH]: hash },
      },
      template,
    },
  };
}

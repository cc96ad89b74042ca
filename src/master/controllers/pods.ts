/**
 * What controllers need to know about pods: readiness, availability,
 * ownership, and making pods from a template.
 */
import { createHash } from 'node:crypto';
import type { Pod, PodTemplateSpec } from '../../api/schema';
import { ApiObject, OwnerReference } from '../../api/types';
import { stableStringify } from '../store/stable-json';

interface Condition {
  type: string;
  status: string;
  lastTransitionTime?: string;
}

function conditions(pod: ApiObject): Condition[] {
  return ((pod.status as { conditions?: Condition[] } | undefined)?.conditions ??
    []) as Condition[];
}

export function phaseOf(pod: ApiObject): string {
  return (pod.status as { phase?: string } | undefined)?.phase ?? 'Pending';
}

/** Succeeded or Failed: the pod's containers will not run again. */
export function isTerminal(pod: ApiObject): boolean {
  const p = phaseOf(pod);
  return p === 'Succeeded' || p === 'Failed';
}

/** Counts toward a controller's replicas: not finished and not being deleted. */
export function isActive(pod: ApiObject): boolean {
  return !isTerminal(pod) && pod.metadata.deletionTimestamp === undefined;
}

export function isReady(pod: ApiObject): boolean {
  return conditions(pod).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Ready for at least `minReadySeconds` (at `now`, in ms). */
export function isAvailable(pod: ApiObject, minReadySeconds: number, now: number): boolean {
  const c = conditions(pod).find((x) => x.type === 'Ready' && x.status === 'True');
  if (!c) return false;
  if (minReadySeconds === 0) return true;
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0;
  return since + minReadySeconds * 1000 <= now;
}

/** Milliseconds until a ready pod becomes available, or undefined when it is not ready. */
export function msUntilAvailable(
  pod: ApiObject,
  minReadySeconds: number,
  now: number,
): number | undefined {
  const c = conditions(pod).find((x) => x.type === 'Ready' && x.status === 'True');
  if (!c) return undefined;
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0;
  return Math.max(0, since + minReadySeconds * 1000 - now);
}

export function controllerRef(o: ApiObject): OwnerReference | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller);
}

export function newControllerRef(owner: ApiObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** A short stable hash of a pod template, as the `pod-template-hash` label (10 characters). */
export function templateHash(template: PodTemplateSpec, collisionCount = 0): string {
  const h = createHash('sha256').update(stableStringify(template));
  if (collisionCount) h.update(String(collisionCount));
  // Kubernetes' alphabet for names: no vowels, so hashes spell no words.
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return Array.from(h.digest().subarray(0, 10), (b) => alphabet[b % alphabet.length]).join('');
}

/** A new pod from `template`, controlled by `owner`, named `generateName` + a random suffix. */
export function podFromTemplate(
  template: PodTemplateSpec,
  owner: ApiObject,
  generateName: string,
  extraLabels: Record<string, string> = {},
): Pod {
  const t = structuredClone(template);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName,
      namespace: owner.metadata.namespace,
      labels: { ...(t.metadata?.labels ?? {}), ...extraLabels },
      ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
      ownerReferences: [newControllerRef(owner)],
    },
    spec: t.spec,
  } as Pod;
}

/** The Ready condition's status and when it last changed, for ordering pods. */
export function readySince(pod: ApiObject): number | undefined {
  const c = conditions(pod).find((x) => x.type === 'Ready' && x.status === 'True');
  return c ? (c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0) : undefined;
}

/** Kubernetes' ordering of pods to delete first: unscheduled, pending, not ready, ready for least time, most restarts, newest. */
export function deletionCost(a: ApiObject, b: ApiObject): number {
  const nodeA = !!(a.spec as { nodeName?: string }).nodeName;
  const nodeB = !!(b.spec as { nodeName?: string }).nodeName;
  if (nodeA !== nodeB) return nodeA ? 1 : -1;
  const rank = (p: ApiObject) => ({ Pending: 0, Unknown: 1, Running: 2 })[phaseOf(p)] ?? 2;
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  const ra = readySince(a);
  const rb = readySince(b);
  if ((ra === undefined) !== (rb === undefined)) return ra === undefined ? -1 : 1;
  if (ra !== undefined && rb !== undefined && ra !== rb) return rb - ra; // ready more recently first
  const restarts = (p: ApiObject) =>
    (
      (p.status as { containerStatuses?: { restartCount: number }[] } | undefined)
        ?.containerStatuses ?? []
    ).reduce((n, c) => n + c.restartCount, 0);
  if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
  const created = (p: ApiObject) => Date.parse(p.metadata.creationTimestamp ?? '') || 0;
  if (created(a) !== created(b)) return created(b) - created(a); // newest first
  return Number(b.metadata.resourceVersion) - Number(a.metadata.resourceVersion);
}

/**
 * The shape every Baton object shares with Kubernetes objects, and the kinds
 * Baton knows. Objects travel as JSON (like Kubernetes' own API); their full
 * per-kind schemas are in `schema/` and are the contract for their fields.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  generateName?: string;
  /** Absent for cluster-scoped kinds (Namespace, Node). */
  namespace?: string;
  uid?: string;
  /** The Raft index of the last write to the object, as a decimal string. */
  resourceVersion?: string;
  /** Bumped on every change of `spec` (never on status or metadata alone). */
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** Any object: the common envelope, with kind-specific fields beside it. */
export interface ApiObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [field: string]: unknown;
}

export interface KindInfo {
  kind: string;
  apiVersion: string;
  namespaced: boolean;
  /** Lower-case plural, as `kubectl get` accepts it. */
  plural: string;
  shortNames: string[];
}

export const KINDS: readonly KindInfo[] = [
  {
    kind: 'Namespace',
    apiVersion: 'v1',
    namespaced: false,
    plural: 'namespaces',
    shortNames: ['ns'],
  },
  { kind: 'Node', apiVersion: 'v1', namespaced: false, plural: 'nodes', shortNames: ['no'] },
  { kind: 'Pod', apiVersion: 'v1', namespaced: true, plural: 'pods', shortNames: ['po'] },
  { kind: 'Service', apiVersion: 'v1', namespaced: true, plural: 'services', shortNames: ['svc'] },
  {
    kind: 'Endpoints',
    apiVersion: 'v1',
    namespaced: true,
    plural: 'endpoints',
    shortNames: ['ep'],
  },
  {
    kind: 'ConfigMap',
    apiVersion: 'v1',
    namespaced: true,
    plural: 'configmaps',
    shortNames: ['cm'],
  },
  { kind: 'Secret', apiVersion: 'v1', namespaced: true, plural: 'secrets', shortNames: [] },
  {
    kind: 'LimitRange',
    apiVersion: 'v1',
    namespaced: true,
    plural: 'limitranges',
    shortNames: ['limits'],
  },
  {
    kind: 'ResourceQuota',
    apiVersion: 'v1',
    namespaced: true,
    plural: 'resourcequotas',
    shortNames: ['quota'],
  },
  { kind: 'Event', apiVersion: 'v1', namespaced: true, plural: 'events', shortNames: ['ev'] },
  {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    namespaced: true,
    plural: 'deployments',
    shortNames: ['deploy'],
  },
  {
    kind: 'ReplicaSet',
    apiVersion: 'apps/v1',
    namespaced: true,
    plural: 'replicasets',
    shortNames: ['rs'],
  },
  { kind: 'Job', apiVersion: 'batch/v1', namespaced: true, plural: 'jobs', shortNames: [] },
  {
    kind: 'CronJob',
    apiVersion: 'batch/v1',
    namespaced: true,
    plural: 'cronjobs',
    shortNames: ['cj'],
  },
];

const byName = new Map<string, KindInfo>();
for (const k of KINDS) {
  for (const n of [k.kind.toLowerCase(), k.plural, ...k.shortNames]) byName.set(n, k);
}

/** Resolves "pods", "po", "pod", "Pod" or "deployments.apps" to a kind, or undefined. */
export function resolveKind(name: string): KindInfo | undefined {
  return byName.get(name.toLowerCase().split('.')[0]);
}

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}

export const DEFAULT_NAMESPACE = 'default';

/** `Kind/namespace/name` (namespace empty for cluster-wide kinds): how a node session keys cluster objects. */
export function sessionObjectKey(o: ApiObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

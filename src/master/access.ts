/**
 * The rules of src/ca/authz.ts that depend on the request, as Kubernetes'
 * Node authorizer and its `view` role draw them:
 * - a node reads its own Node object, and a Secret or ConfigMap only while a
 *   pod bound to it uses that object; it creates Events and nothing else;
 * - the read-only role reads everything but Secrets.
 * A master (forwarding), an admin, or a server without TLS (`who`
 * undefined) is not limited here.
 */
import * as grpc from '@grpc/grpc-js';
import type { Identity } from '../ca/pki';
import { ApiError } from './api-error';
import { ClusterStore } from './store/cluster-store';

type Ref = { name?: string };
interface ContainerRefs {
  env?: { valueFrom?: { secretKeyRef?: Ref; configMapKeyRef?: Ref } }[];
  envFrom?: { secretRef?: Ref; configMapRef?: Ref }[];
}
interface VolumeRefs {
  secret?: { secretName?: string };
  configMap?: Ref;
  projected?: { sources?: { secret?: Ref; configMap?: Ref }[] };
}
interface PodRefs {
  containers?: ContainerRefs[];
  initContainers?: ContainerRefs[];
  volumes?: VolumeRefs[];
  imagePullSecrets?: Ref[];
}

/** The names of the Secrets and ConfigMaps a pod spec uses. */
export function referencedBy(spec: PodRefs): { Secret: Set<string>; ConfigMap: Set<string> } {
  const out = { Secret: new Set<string>(), ConfigMap: new Set<string>() };
  const add = (k: 'Secret' | 'ConfigMap', n: string | undefined) => n && out[k].add(n);
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    for (const e of c.env ?? []) {
      add('Secret', e.valueFrom?.secretKeyRef?.name);
      add('ConfigMap', e.valueFrom?.configMapKeyRef?.name);
    }
    for (const e of c.envFrom ?? []) {
      add('Secret', e.secretRef?.name);
      add('ConfigMap', e.configMapRef?.name);
    }
  }
  for (const v of spec.volumes ?? []) {
    add('Secret', v.secret?.secretName);
    add('ConfigMap', v.configMap?.name);
    for (const s of v.projected?.sources ?? []) {
      add('Secret', s.secret?.name);
      add('ConfigMap', s.configMap?.name);
    }
  }
  for (const s of spec.imagePullSecrets ?? []) add('Secret', s.name);
  return out;
}

const denied = (who: Identity, what: string) =>
  new ApiError(grpc.status.PERMISSION_DENIED, `${who.role} "${who.name}" may not ${what}`);

/** Throws unless `who` may read this one object. */
export function checkGet(
  store: ClusterStore,
  who: Identity | undefined,
  kind: string,
  namespace: string | undefined,
  name: string,
): void {
  if (!who || who.role === 'master' || who.role === 'admin') return;
  if (who.role === 'readonly') {
    if (kind === 'Secret') throw denied(who, 'read Secrets');
    return;
  }
  if (who.role !== 'node') throw denied(who, `read ${kind} objects`);
  if (kind === 'Node' && name === who.name) return;
  if (kind === 'Secret' || kind === 'ConfigMap') {
    const pods = store.list({
      kind: 'Pod',
      namespace,
      fields: { terms: [{ path: 'spec.nodeName', op: '=', value: who.name }] },
    });
    for (const p of pods)
      if (referencedBy((p.object.spec ?? {}) as PodRefs)[kind].has(name)) return;
    throw denied(who, `read ${kind} ${namespace}/${name}: no pod on this node uses it`);
  }
  throw denied(who, `read ${kind} "${name}"`);
}

/** Throws unless `who` may list or watch this kind ('' = every kind). */
export function checkList(who: Identity | undefined, kind: string): void {
  if (!who || who.role === 'master' || who.role === 'admin') return;
  if (who.role === 'readonly' && kind !== 'Secret') return;
  throw denied(who, kind ? `list ${kind} objects` : 'list objects');
}

/** Whether `who` sees objects of `kind` in a list or watch of every kind. */
export function visibleKind(who: Identity | undefined, kind: string): boolean {
  return !(who?.role === 'readonly' && kind === 'Secret');
}

/** Throws unless `who` may create an object of `kind`. */
export function checkCreate(who: Identity | undefined, kind: string): void {
  if (who?.role === 'node' && kind !== 'Event') throw denied(who, `create ${kind} objects`);
}

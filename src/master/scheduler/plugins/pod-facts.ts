/**
 * What the scheduler derives from one pod, once: its resource requests
 * (Kubernetes' rules), host ports, controller, labels as index keys and its
 * affinity terms by meaning. Pods are values (the store replaces them,
 * never mutates them), so the facts are cached by the pod object.
 */
import type { Container, Pod } from '../../../api/schema';
import { parseQuantity } from '../../../api/schema/quantity';
import type { Resources } from '../types';

/**
 * kube-scheduler's stand-ins for a container without a cpu or memory
 * request, used only by the resource scores: without them best-effort pods
 * look free and pile onto one node.
 */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Resource arithmetic

/** A quantity as an integer: cpu in millicores, everything else in its base unit (bytes, counts). */
function amount(resource: string, q: string | number): number {
  const v = parseQuantity(q);
  return Math.round(resource === 'cpu' ? v * 1000 : v);
}

/** A resource list (`{cpu: 500m, memory: 1Gi}`) in scheduler units. */
export function toResources(list: Record<string, string | number> | undefined): Resources {
  const out: Resources = {};
  if (list) for (const name of Object.keys(list)) out[name] = amount(name, list[name]);
  return out;
}

/**
 * A container's requests, with a limit standing in for a missing request as
 * Kubernetes' defaulting does. With `nonZero`, a missing cpu or memory
 * request counts as kube-scheduler's default (see DEFAULT_MILLI_CPU_REQUEST).
 */
function containerRequests(c: Container, nonZero: boolean): Resources {
  const out = toResources(c.resources?.limits);
  Object.assign(out, toResources(c.resources?.requests));
  if (nonZero) {
    if (out.cpu === undefined) out.cpu = DEFAULT_MILLI_CPU_REQUEST;
    if (out.memory === undefined) out.memory = DEFAULT_MEMORY_REQUEST;
  }
  return out;
}

/** Adds `r` into `into`, resource by resource. */
export function addResources(into: Resources, r: Resources): void {
  for (const name of Object.keys(r)) into[name] = (into[name] ?? 0) + r[name];
}

function maxInto(into: Resources, r: Resources): void {
  for (const name of Object.keys(r)) into[name] = Math.max(into[name] ?? 0, r[name]);
}

/**
 * Kubernetes' rule (`resourcehelper.PodRequests`): the app containers run
 * together, so their requests add up; init containers run one at a time
 * before them, so the pod needs the largest of them; sidecars (init
 * containers with restartPolicy Always) keep running, so they add to both.
 * The pod's overhead (its sandbox) comes on top.
 */
export function requestsOf(pod: Pod, nonZero: boolean): Resources {
  const total: Resources = {};
  for (const c of pod.spec.containers) addResources(total, containerRequests(c, nonZero));
  const sidecars: Resources = {};
  const initPeak: Resources = {};
  for (const c of pod.spec.initContainers ?? []) {
    const r = containerRequests(c, nonZero);
    if (c.restartPolicy === 'Always') {
      addResources(sidecars, r);
      maxInto(initPeak, sidecars);
    } else {
      const whileRunning = { ...sidecars };
      addResources(whileRunning, r);
      maxInto(initPeak, whileRunning);
    }
  }
  addResources(total, sidecars);
  maxInto(total, initPeak);
  addResources(total, toResources(pod.spec.overhead));
  return total;
}

export interface PodFacts {
  /** metadata.uid, or namespace/name for a pod not yet stored. */
  key: string;
  namespace: string;
  labels: Record<string, string>;
  requests: Resources;
  /** cpu and memory requests with kube-scheduler's defaults for missing ones (scoring only). */
  nonZeroCpu: number;
  nonZeroMemory: number;
  /** In NodeInfo.hostPorts' form: `${protocol}/${hostIP || '0.0.0.0'}/${port}`. */
  hostPorts: string[];
  /** `key=value` per label, to look up the terms that may select the pod. */
  labelPairs: string[];
  /** labelIndexKey(namespace, key, value) per label. */
  labelIndexKeys: string[];
  /** The uid of the controller owner (ReplicaSet, Job…), if any. */
  controllerUid: string | undefined;
  terminating: boolean;
  /** Has any pod affinity or anti-affinity term, required or preferred. */
  hasPodAffinity: boolean;
  /** Each pod affinity term, with the group of equal terms it joins in a node's PodIndex. */
  termGroups: TermRef[];
}

export type TermKind =
  'requiredAffinity' | 'requiredAntiAffinity' | 'preferredAffinity' | 'preferredAntiAffinity';

/** Term `index` of the pod's terms of `kind`; `group` says what it means, so equal texts mean equal terms. */
export interface TermRef {
  kind: TermKind;
  index: number;
  group: string;
}

const factsCache = new WeakMap<Pod, PodFacts>();

export function podKey(pod: Pod): string {
  return pod.metadata.uid ?? `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}

type PodAffinity = NonNullable<NonNullable<Pod['spec']['affinity']>['podAffinity']>;
type PodAffinityTerm = NonNullable<
  PodAffinity['requiredDuringSchedulingIgnoredDuringExecution']
>[number];

/**
 * The pod's terms with a text that identifies what each means: the term as
 * written plus what parsing takes from the pod (its namespace, the values
 * of its matchLabelKeys). The replicas of one workload share their terms.
 */
function termRefs(pod: Pod, namespace: string, labels: Record<string, string>): TermRef[] {
  const a = pod.spec.affinity;
  const refs: TermRef[] = [];
  const add = (kind: TermKind, terms: { term: PodAffinityTerm; weight: number }[]) =>
    terms.forEach(({ term, weight }, index) => {
      const keys = [...(term.matchLabelKeys ?? []), ...(term.mismatchLabelKeys ?? [])];
      const values = keys.map((k) => (Object.hasOwn(labels, k) ? labels[k] : null));
      const group = JSON.stringify([kind, weight, namespace, values, term]);
      refs.push({ kind, index, group });
    });
  const required = (x: PodAffinity | undefined) =>
    (x?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((term) => ({ term, weight: 1 }));
  const preferred = (x: PodAffinity | undefined) =>
    (x?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => ({
      term: w.podAffinityTerm,
      weight: w.weight,
    }));
  add('requiredAffinity', required(a?.podAffinity));
  add('requiredAntiAffinity', required(a?.podAntiAffinity));
  add('preferredAffinity', preferred(a?.podAffinity));
  add('preferredAntiAffinity', preferred(a?.podAntiAffinity));
  return refs;
}

function hostPortsOf(pod: Pod): string[] {
  const out: string[] = [];
  // Sidecars keep running beside the app containers, so their ports are taken too.
  const running = [
    ...pod.spec.containers,
    ...(pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'),
  ];
  for (const c of running)
    for (const p of c.ports ?? [])
      if (p.hostPort !== undefined && p.hostPort > 0)
        out.push(`${p.protocol ?? 'TCP'}/${p.hostIP || '0.0.0.0'}/${p.hostPort}`);
  return out;
}

/** The last answer: a scheduling cycle asks about one pod once per node and score. */
let lastPod: Pod | undefined;
let lastFacts: PodFacts | undefined;

export function podFacts(pod: Pod): PodFacts {
  if (pod === lastPod) return lastFacts!;
  let f = factsCache.get(pod);
  if (f !== undefined) {
    lastPod = pod;
    lastFacts = f;
    return f;
  }
  const nonZero = requestsOf(pod, true);
  const namespace = pod.metadata.namespace ?? 'default';
  const labels = pod.metadata.labels ?? {};
  const termGroups = termRefs(pod, namespace, labels);
  f = {
    key: podKey(pod),
    namespace,
    labels,
    requests: requestsOf(pod, false),
    nonZeroCpu: nonZero.cpu ?? 0,
    nonZeroMemory: nonZero.memory ?? 0,
    hostPorts: hostPortsOf(pod),
    labelPairs: Object.keys(labels).map((k) => [k, '=', labels[k]].join('')),
    labelIndexKeys: Object.keys(labels).map((k) => labelIndexKey(namespace, k, labels[k])),
    controllerUid: pod.metadata.ownerReferences?.find((o) => o.controller === true)?.uid,
    terminating: pod.metadata.deletionTimestamp !== undefined,
    hasPodAffinity: termGroups.length > 0,
    termGroups,
  };
  factsCache.set(pod, f);
  return f;
}

/** Namespaces are DNS labels (no '/') and label keys have no '=', so this is unambiguous. */
export function labelIndexKey(namespace: string, key: string, value: string): string {
  // join makes one flat string, where a template would make a rope that is
  // slower to hash and compare, and these keys are looked up all the time.
  return [namespace, '/', key, '=', value].join('');
}

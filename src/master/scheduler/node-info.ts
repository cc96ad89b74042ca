/**
 * What the scheduler knows about each node: its allocatable resources, the
 * pods bound (or assumed) there and what they request, their host ports, and
 * an index of those pods that lets plugins answer "which pods on this node
 * match this selector?" without scanning them all (kube-scheduler's
 * `framework.NodeInfo` with its `PodsWithAffinity` lists, in miniature).
 *
 * Pods and nodes are values: the store replaces them, never mutates them, so
 * what is derived from one pod object is computed once and cached by identity.
 */
import type { Container, Node, Pod } from '../../api/schema';
import { parseQuantity } from '../../api/schema/quantity';
import type { ClusterView, NodeInfo, Resources } from './types';

/** Every Kubernetes node carries it (the kubelet sets it); Baton fills it in when a node does not. */
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';
/** Every Kubernetes namespace carries it (the API server sets it), so namespaceSelector can name a namespace. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * kube-scheduler's stand-ins for a container without a cpu or memory
 * request, used only by the resource scores: without them best-effort pods
 * look free and pile onto one node.
 */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

/** The kubelet's default --max-pods, for a node that does not report `pods`. */
const DEFAULT_MAX_PODS = 110;

// ---------------------------------------------------------------------------
// Resource arithmetic

/** A quantity as an integer: cpu in millicores, everything else in its base unit (bytes, counts). */
function amount(resource: string, q: string | number): number {
  const v = parseQuantity(q);
  return Math.round(resource === 'cpu' ? v * 1000 : v);
}

function toResources(list: Record<string, string | number> | undefined): Resources {
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

function addInto(into: Resources, r: Resources): void {
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
function requestsOf(pod: Pod, nonZero: boolean): Resources {
  const total: Resources = {};
  for (const c of pod.spec.containers) addInto(total, containerRequests(c, nonZero));
  const sidecars: Resources = {};
  const initPeak: Resources = {};
  for (const c of pod.spec.initContainers ?? []) {
    const r = containerRequests(c, nonZero);
    if (c.restartPolicy === 'Always') {
      addInto(sidecars, r);
      maxInto(initPeak, sidecars);
    } else {
      const whileRunning = { ...sidecars };
      addInto(whileRunning, r);
      maxInto(initPeak, whileRunning);
    }
  }
  addInto(total, sidecars);
  maxInto(total, initPeak);
  addInto(total, toResources(pod.spec.overhead));
  return total;
}

/** What `pod` needs from a node: cpu in millicores, memory and storage in bytes, others as counts. */
export function podRequests(pod: Pod): Resources {
  return { ...podFacts(pod).requests };
}

/** A node's allocatable resources (its capacity when it reports no allocatable, as Kubernetes defaults it), with `pods`. */
export function nodeAllocatable(node: Node): Resources {
  const status = node.status;
  const out = toResources(status?.allocatable ?? status?.capacity);
  if (out.pods === undefined) out.pods = DEFAULT_MAX_PODS;
  return out;
}

// ---------------------------------------------------------------------------
// What is derived from one pod, once

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
  /** The uid of the controller owner (ReplicaSet, Job…), if any. */
  controllerUid: string | undefined;
  terminating: boolean;
  /** Has any pod affinity or anti-affinity term, required or preferred. */
  hasPodAffinity: boolean;
  /** Each pod affinity term, by the group of identical terms it belongs to (see PodIndex.termGroups). */
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

export function podFacts(pod: Pod): PodFacts {
  let f = factsCache.get(pod);
  if (f !== undefined) return f;
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
    labelPairs: Object.keys(labels).map((k) => `${k}=${labels[k]}`),
    controllerUid: pod.metadata.ownerReferences?.find((o) => o.controller === true)?.uid,
    terminating: pod.metadata.deletionTimestamp !== undefined,
    hasPodAffinity: termGroups.length > 0,
    termGroups,
  };
  factsCache.set(pod, f);
  return f;
}

// ---------------------------------------------------------------------------
// The index of a node's pods

/**
 * A node's pods arranged for the plugins' questions. It belongs to the
 * `pods` map it indexes (a copied NodeInfo with a new map gets its own), is
 * kept in step by addPod/removePod, and is rebuilt if the map was changed
 * behind their back.
 */
export interface PodIndex {
  /** pods.size when the index was last in step. */
  size: number;
  /** Bumped on every change, so cluster-wide totals know which nodes to recount. */
  version: number;
  byNamespace: Map<string, Set<Pod>>;
  /** By labelIndexKey(namespace, key, value). */
  byLabel: Map<string, Set<Pod>>;
  /** Non-terminating pods per controller uid. */
  byController: Map<string, number>;
  /** Terminating pods (spread constraints do not count them). */
  terminating: Set<Pod>;
  /**
   * The pods' required anti-affinity terms, grouped by meaning: the
   * filter checks each distinct term once per node, not once per replica.
   */
  antiAffinityGroups: Map<string, TermGroup>;
  /** Likewise their other affinity terms (required affinity, preferred both ways), which scoring reads. */
  affinityGroups: Map<string, TermGroup>;
  /** How many pods use each host port (NodeInfo.hostPorts is the set of those above 0). */
  hostPortUsers: Map<string, number>;
  nonZeroCpu: number;
  nonZeroMemory: number;
}

/** Pods whose term `kind`[`index`] means the same; `pod` is one of them, to read the term from. */
export interface TermGroup {
  kind: TermKind;
  index: number;
  pod: Pod;
  pods: Set<Pod>;
}

const indexes = new WeakMap<Map<string, Pod>, PodIndex>();

/** Namespaces are DNS labels (no '/') and label keys have no '=', so this is unambiguous. */
export function labelIndexKey(namespace: string, key: string, value: string): string {
  return `${namespace}/${key}=${value}`;
}

function emptyIndex(): PodIndex {
  return {
    size: 0,
    version: 0,
    byNamespace: new Map(),
    byLabel: new Map(),
    byController: new Map(),
    terminating: new Set(),
    antiAffinityGroups: new Map(),
    affinityGroups: new Map(),
    hostPortUsers: new Map(),
    nonZeroCpu: 0,
    nonZeroMemory: 0,
  };
}

function setAdd<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s === undefined) m.set(k, new Set([v]));
  else s.add(v);
}

function setDelete<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

function bump(m: Map<string, number>, k: string, by: number): number {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
  return n;
}

function joinGroup(groups: Map<string, TermGroup>, ref: TermRef, pod: Pod): void {
  const g = groups.get(ref.group);
  if (g === undefined)
    groups.set(ref.group, { kind: ref.kind, index: ref.index, pod, pods: new Set([pod]) });
  else g.pods.add(pod);
}

function leaveGroup(groups: Map<string, TermGroup>, ref: TermRef, pod: Pod): void {
  const g = groups.get(ref.group);
  if (g === undefined) return;
  g.pods.delete(pod);
  if (g.pods.size === 0) groups.delete(ref.group);
  else if (g.pod === pod) {
    // Read the term from a pod still there; its term index may differ, its meaning does not.
    g.pod = g.pods.values().next().value as Pod;
    g.index = podFacts(g.pod).termGroups.find((r) => r.group === ref.group)?.index ?? g.index;
  }
}

/** Adds (sign 1) or removes (sign -1) one pod's entries. */
function indexPod(idx: PodIndex, pod: Pod, sign: 1 | -1): void {
  const f = podFacts(pod);
  idx.version++;
  const put = sign === 1 ? setAdd : setDelete;
  put(idx.byNamespace, f.namespace, pod);
  for (const k of Object.keys(f.labels))
    put(idx.byLabel, labelIndexKey(f.namespace, k, f.labels[k]), pod);
  if (f.controllerUid !== undefined && !f.terminating)
    bump(idx.byController, f.controllerUid, sign);
  if (f.terminating) {
    if (sign === 1) idx.terminating.add(pod);
    else idx.terminating.delete(pod);
  }
  for (const ref of f.termGroups) {
    const groups =
      ref.kind === 'requiredAntiAffinity' ? idx.antiAffinityGroups : idx.affinityGroups;
    if (sign === 1) joinGroup(groups, ref, pod);
    else leaveGroup(groups, ref, pod);
  }
  for (const hp of f.hostPorts) bump(idx.hostPortUsers, hp, sign);
  idx.nonZeroCpu += sign * f.nonZeroCpu;
  idx.nonZeroMemory += sign * f.nonZeroMemory;
}

/** The index of `info`'s pods (built on first use). */
export function podIndex(info: NodeInfo): PodIndex {
  let idx = indexes.get(info.pods);
  if (idx === undefined || idx.size !== info.pods.size) {
    idx = emptyIndex();
    for (const pod of info.pods.values()) indexPod(idx, pod, 1);
    idx.size = info.pods.size;
    indexes.set(info.pods, idx);
    journalChange(info.pods);
  }
  return idx;
}

// ---------------------------------------------------------------------------
// The change journal

/**
 * Which nodes' pods changed lately, in order (by their `pods` map), so
 * that cluster-wide totals recount those nodes rather than look at all of
 * them every cycle. A ring of the last JOURNAL_SIZE changes: a reader that
 * fell further behind is told so, and rescans every node.
 */
const JOURNAL_SIZE = 4096;
const journal: Map<string, Pod>[] = [];
let journalEnd = 0;

function journalChange(pods: Map<string, Pod>): void {
  journal[journalEnd % JOURNAL_SIZE] = pods;
  journalEnd++;
}

/** How many changes were ever recorded: the position to read from next time. */
export function podChangeClock(): number {
  return journalEnd;
}

/** Calls `visit` with the `pods` map of each change from position `since` on; false if some are forgotten. */
export function podChangesSince(since: number, visit: (pods: Map<string, Pod>) => void): boolean {
  const end = journalEnd;
  if (end - since > JOURNAL_SIZE) return false;
  for (let i = since; i < end; i++) visit(journal[i % JOURNAL_SIZE]);
  return true;
}

// ---------------------------------------------------------------------------
// NodeInfo

/** The node's labels, with kubernetes.io/hostname defaulted to its name (topologyKey: hostname must work). */
function nodeLabels(node: Node): Record<string, string> {
  const labels = node.metadata.labels ?? {};
  return labels[HOSTNAME_LABEL] !== undefined
    ? { ...labels }
    : { ...labels, [HOSTNAME_LABEL]: node.metadata.name };
}

export function newNodeInfo(node: Node): NodeInfo {
  const info: NodeInfo = {
    name: node.metadata.name,
    node,
    labels: nodeLabels(node),
    allocatable: nodeAllocatable(node),
    requested: { cpu: 0, memory: 0, pods: 0 },
    pods: new Map(),
    hostPorts: new Set(),
  };
  indexes.set(info.pods, emptyIndex());
  return info;
}

/** A new version of the node (labels, taints, allocatable…); its pods stay. */
export function updateNode(info: NodeInfo, node: Node): void {
  info.name = node.metadata.name;
  info.node = node;
  info.labels = nodeLabels(node);
  info.allocatable = nodeAllocatable(node);
}

/** Binds (or assumes) `pod` on the node; a pod already there under the same uid is replaced. */
export function addPod(info: NodeInfo, pod: Pod): void {
  const f = podFacts(pod);
  if (info.pods.has(f.key)) removePod(info, pod);
  const idx = podIndex(info);
  info.pods.set(f.key, pod);
  addInto(info.requested, f.requests);
  info.requested.pods = (info.requested.pods ?? 0) + 1;
  for (const hp of f.hostPorts) info.hostPorts.add(hp);
  indexPod(idx, pod, 1);
  idx.size = info.pods.size;
  journalChange(info.pods);
}

/**
 * Unbinds the pod with `pod`'s uid. What is subtracted is what was added
 * (the stored version's requests), so a pod changed since does not skew
 * the sums. Unknown pods are ignored.
 */
export function removePod(info: NodeInfo, pod: Pod): void {
  const key = podKey(pod);
  const stored = info.pods.get(key);
  if (stored === undefined) return;
  const idx = podIndex(info);
  const f = podFacts(stored);
  info.pods.delete(key);
  for (const name of Object.keys(f.requests))
    info.requested[name] = (info.requested[name] ?? 0) - f.requests[name];
  info.requested.pods = (info.requested.pods ?? 0) - 1;
  indexPod(idx, stored, -1);
  // Two pods may hold one port (bound by nodeName, past the scheduler): free it with the last.
  for (const hp of f.hostPorts) if (!idx.hostPortUsers.has(hp)) info.hostPorts.delete(hp);
  idx.size = info.pods.size;
  journalChange(info.pods);
}

// ---------------------------------------------------------------------------
// ClusterView

export type NamespaceLabels =
  Map<string, Record<string, string>> | ((namespace: string) => Record<string, string> | undefined);

/**
 * The view of one scheduling cycle. Namespace labels get
 * kubernetes.io/metadata.name as Kubernetes gives every namespace; they are
 * read once per namespace per view.
 */
export function buildView(nodes: NodeInfo[], namespaceLabels?: NamespaceLabels): ClusterView {
  const lookup =
    namespaceLabels === undefined
      ? () => undefined
      : namespaceLabels instanceof Map
        ? (ns: string) => namespaceLabels.get(ns)
        : namespaceLabels;
  const seen = new Map<string, Record<string, string>>();
  let byName: Map<string, NodeInfo> | undefined;
  return {
    nodes,
    // Made on first use: a view is made per pod, and the plugins do not need it.
    get byName(): Map<string, NodeInfo> {
      byName ??= new Map(nodes.map((n) => [n.name, n]));
      return byName;
    },
    namespaceLabels(ns: string): Record<string, string> {
      let labels = seen.get(ns);
      if (labels === undefined) {
        labels = { ...lookup(ns), [NAMESPACE_NAME_LABEL]: ns };
        seen.set(ns, labels);
      }
      return labels;
    },
  };
}

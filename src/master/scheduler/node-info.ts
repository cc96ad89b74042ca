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
import type { Node, Pod } from '../../api/schema';
import {
  addResources,
  podFacts,
  podKey,
  toResources,
  type TermKind,
  type TermRef,
} from './plugins/pod-facts';
import type { ClusterView, NodeInfo, Resources } from './types';

export {
  DEFAULT_MEMORY_REQUEST,
  DEFAULT_MILLI_CPU_REQUEST,
  labelIndexKey,
  podFacts,
  podKey,
  type PodFacts,
  type TermKind,
  type TermRef,
} from './plugins/pod-facts';

/** Every Kubernetes node carries it (the kubelet sets it); Baton fills it in when a node does not. */
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';
/** Every Kubernetes namespace carries it (the API server sets it), so namespaceSelector can name a namespace. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** The kubelet's default --max-pods, for a node that does not report `pods`. */
const DEFAULT_MAX_PODS = 110;

// ---------------------------------------------------------------------------
// Requests and allocatable

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

function emptyIndex(): PodIndex {
  return {
    size: 0,
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
  const put = sign === 1 ? setAdd : setDelete;
  put(idx.byNamespace, f.namespace, pod);
  for (const k of f.labelIndexKeys) put(idx.byLabel, k, pod);
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
    journalChange(info.pods, undefined, 0);
  }
  return idx;
}

// ---------------------------------------------------------------------------
// The change journal

/**
 * One change to a node's pods: `pod` added (1) or removed (-1) on the node
 * whose `pods` map this is, or (0) its index rebuilt because the map was
 * changed behind addPod's back, so what changed is unknown.
 */
export interface PodChange {
  pods: Map<string, Pod>;
  pod: Pod | undefined;
  sign: 1 | -1 | 0;
}

/**
 * The last changes to any node's pods, in order, so that cluster-wide
 * totals apply those rather than recount every node each cycle. A ring:
 * a reader that fell more than JOURNAL_SIZE changes behind is told so,
 * and recounts.
 */
const JOURNAL_SIZE = 4096;
const journal: PodChange[] = [];
let journalEnd = 0;

function journalChange(pods: Map<string, Pod>, pod: Pod | undefined, sign: 1 | -1 | 0): void {
  journal[journalEnd % JOURNAL_SIZE] = { pods, pod, sign };
  journalEnd++;
}

/** How many changes were ever recorded: the position to read from next time. */
export function podChangeClock(): number {
  return journalEnd;
}

/** Calls `visit` with each change from position `since` on; false (and no call) if some are forgotten. */
export function podChangesSince(since: number, visit: (change: PodChange) => void): boolean {
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

/** The Ready condition's status; a node that has not reported one is not ready yet. */
function readiness(node: Node): NodeInfo['ready'] {
  for (const c of node.status?.conditions ?? []) if (c.type === 'Ready') return c.status;
  return 'False';
}

export function newNodeInfo(node: Node): NodeInfo {
  const info: NodeInfo = {
    name: node.metadata.name,
    node,
    labels: nodeLabels(node),
    ready: readiness(node),
    cordoned: node.spec?.unschedulable === true,
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
  info.ready = readiness(node);
  info.cordoned = node.spec?.unschedulable === true;
  info.allocatable = nodeAllocatable(node);
}

/** Binds (or assumes) `pod` on the node; a pod already there under the same uid is replaced. */
export function addPod(info: NodeInfo, pod: Pod): void {
  const f = podFacts(pod);
  if (info.pods.has(f.key)) removePod(info, pod);
  const idx = podIndex(info);
  info.pods.set(f.key, pod);
  addResources(info.requested, f.requests);
  info.requested.pods = (info.requested.pods ?? 0) + 1;
  for (const hp of f.hostPorts) info.hostPorts.add(hp);
  indexPod(idx, pod, 1);
  idx.size = info.pods.size;
  journalChange(info.pods, pod, 1);
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
  journalChange(info.pods, stored, -1);
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

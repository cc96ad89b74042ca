/**
 * Cluster-wide totals of the nodes' pod indexes: for a label, a namespace,
 * a controller or a distinct affinity term, which nodes hold such pods and
 * how many. With them a plugin visits the few nodes that matter to a pod
 * (the nodes with its siblings, the nodes whose pods' terms select it)
 * instead of every pod's terms on every node.
 *
 * The totals belong to one node list (the scheduler keeps its list until a
 * node comes or goes) and are brought up to date once per cycle by
 * recounting only the nodes whose pod index changed since: usually the one
 * node the previous pod went to.
 */
import type { Pod } from '../../../api/schema';
import type { PodChange, TermGroup } from '../node-info';
import { podChangeClock, podChangesSince, podIndex } from '../node-info';
import { labelIndexKey, podFacts, type PodFacts, type TermKind } from './pod-facts';
import type { ClusterView, CycleState, NodeInfo } from '../types';
import { matchesRequirements } from './label-match';
import { groupTerm, querySelects, type AffinityTerm, type PodQuery } from './pod-query';

/** Node → how many of its pods have the property. */
export type NodeCounts = Map<NodeInfo, number>;

/** The pods of the cluster sharing one affinity term. */
export interface ClusterTermGroup {
  kind: TermKind;
  term: AffinityTerm;
  nodes: NodeCounts;
}

/** Term groups by meaning, and by the `key=value` a pod needs for the term to select it. */
export interface TermGroups {
  byKey: Map<string, ClusterTermGroup>;
  /** The groups whose selector has a `key=value` requirement, by that requirement. */
  byLabel: Map<string, Set<ClusterTermGroup>>;
  /** The groups whose selector has none (it may select a pod with any labels). */
  unlabelled: Set<ClusterTermGroup>;
}

export interface ClusterIndex {
  /** By labelIndexKey(namespace, key, value). */
  nodesByLabel: Map<string, NodeCounts>;
  nodesByNamespace: Map<string, NodeCounts>;
  nodesByController: Map<string, NodeCounts>;
  /** Required anti-affinity terms of the pods, by meaning (see TermGroup). */
  antiAffinityGroups: TermGroups;
  /** Their other affinity terms: required affinity, preferred affinity and anti-affinity. */
  affinityGroups: TermGroups;
}

interface Totals extends ClusterIndex {
  /** The nodes, by their `pods` map (what the change journal names). */
  byPods: Map<Map<string, Pod>, NodeInfo>;
  /** Journal position up to which the totals are in step. */
  clock: number;
}

const totals = new WeakMap<readonly NodeInfo[], Totals>();
const KEY = 'ClusterIndex';

const noGroups = (): TermGroups => ({
  byKey: new Map(),
  byLabel: new Map(),
  unlabelled: new Set(),
});

function empty(): Totals {
  return {
    nodesByLabel: new Map(),
    nodesByNamespace: new Map(),
    nodesByController: new Map(),
    antiAffinityGroups: noGroups(),
    affinityGroups: noGroups(),
    byPods: new Map(),
    clock: 0,
  };
}

function lookupOf(g: ClusterTermGroup): string | undefined {
  const l = g.term.selector.lookup;
  return l === undefined ? undefined : `${l.key}=${l.value}`;
}

function addGroup(groups: TermGroups, key: string, g: ClusterTermGroup): void {
  groups.byKey.set(key, g);
  const l = lookupOf(g);
  if (l === undefined) groups.unlabelled.add(g);
  else {
    const set = groups.byLabel.get(l);
    if (set === undefined) groups.byLabel.set(l, new Set([g]));
    else set.add(g);
  }
}

function deleteGroup(groups: TermGroups, key: string, g: ClusterTermGroup): void {
  groups.byKey.delete(key);
  const l = lookupOf(g);
  if (l === undefined) groups.unlabelled.delete(g);
  else {
    const set = groups.byLabel.get(l);
    set?.delete(g);
    if (set?.size === 0) groups.byLabel.delete(l);
  }
}

/**
 * Calls `visit` for each group whose term selects the pod: only the groups
 * keyed by one of its labels, and those keyed by none, are looked at.
 */
export function forEachGroupSelecting(
  groups: TermGroups,
  f: PodFacts,
  view: ClusterView,
  visit: (g: ClusterTermGroup) => void,
): void {
  const check = (g: ClusterTermGroup) => {
    if (querySelects(g.term, f.namespace, f.labels, view)) visit(g);
  };
  for (const pair of f.labelPairs) groups.byLabel.get(pair)?.forEach(check);
  groups.unlabelled.forEach(check);
}

function bump(m: Map<string, NodeCounts>, key: string, info: NodeInfo, by: number): void {
  let counts = m.get(key);
  if (counts === undefined) {
    if (by <= 0) return;
    counts = new Map();
    m.set(key, counts);
  }
  const n = (counts.get(info) ?? 0) + by;
  if (n > 0) counts.set(info, n);
  else {
    counts.delete(info);
    if (counts.size === 0) m.delete(key);
  }
}

/** Sets how many of the node's pods hold the term of group `key` (`live`: the node's own group, if any). */
function setGroup(
  groups: TermGroups,
  key: string,
  live: TermGroup | undefined,
  info: NodeInfo,
): void {
  let cg = groups.byKey.get(key);
  if (live !== undefined && live.pods.size > 0) {
    if (cg === undefined) {
      cg = { kind: live.kind, term: groupTerm(live), nodes: new Map() };
      addGroup(groups, key, cg);
    }
    cg.nodes.set(info, live.pods.size);
  } else if (cg !== undefined) {
    cg.nodes.delete(info);
    if (cg.nodes.size === 0) deleteGroup(groups, key, cg);
  }
}

/** Counts every node from scratch. */
function build(nodes: readonly NodeInfo[]): Totals {
  const t = empty();
  for (const info of nodes) {
    t.byPods.set(info.pods, info);
    const idx = podIndex(info);
    for (const [k, pods] of idx.byLabel) bump(t.nodesByLabel, k, info, pods.size);
    for (const [k, pods] of idx.byNamespace) bump(t.nodesByNamespace, k, info, pods.size);
    for (const [k, n] of idx.byController) bump(t.nodesByController, k, info, n);
    for (const [k, g] of idx.antiAffinityGroups) setGroup(t.antiAffinityGroups, k, g, info);
    for (const [k, g] of idx.affinityGroups) setGroup(t.affinityGroups, k, g, info);
  }
  // After the loop: podIndex may have rebuilt (and journaled) an index, which is counted already.
  t.clock = podChangeClock();
  return t;
}

/** Applies one journaled change; false when it cannot be (an index was rebuilt: recount). */
function applyChange(t: Totals, c: PodChange): boolean {
  const info = t.byPods.get(c.pods);
  if (info === undefined) return true; // another node list's node
  if (c.sign === 0 || c.pod === undefined) return false;
  const f = podFacts(c.pod);
  const sign = c.sign;
  bump(t.nodesByNamespace, f.namespace, info, sign);
  for (const k of f.labelIndexKeys) bump(t.nodesByLabel, k, info, sign);
  if (f.controllerUid !== undefined && !f.terminating)
    bump(t.nodesByController, f.controllerUid, info, sign);
  if (f.termGroups.length > 0) {
    const idx = podIndex(info);
    for (const ref of f.termGroups) {
      const anti = ref.kind === 'requiredAntiAffinity';
      const live = (anti ? idx.antiAffinityGroups : idx.affinityGroups).get(ref.group);
      setGroup(anti ? t.antiAffinityGroups : t.affinityGroups, ref.group, live, info);
    }
  }
  return true;
}

/**
 * Brings the totals in step by applying the journaled changes since last
 * time; counts afresh when the journal has forgotten some, an index was
 * rebuilt, or the list's length changed (a list is replaced, not edited,
 * when nodes come and go; nor is a node's `pods` map ever replaced).
 */
function refresh(t: Totals | undefined, nodes: readonly NodeInfo[]): Totals {
  if (t === undefined || t.byPods.size !== nodes.length) return build(nodes);
  let applied = true;
  const known = podChangesSince(t.clock, (c) => {
    if (applied) applied = applyChange(t, c);
  });
  if (!known || !applied) return build(nodes);
  t.clock = podChangeClock();
  return t;
}

/** The totals for the view's nodes, up to date (once per cycle: later calls read them from `state`). */
export function clusterIndex(view: ClusterView, state: CycleState): ClusterIndex {
  const cached = state.get(KEY) as ClusterIndex | undefined;
  if (cached !== undefined) return cached;
  const t = refresh(totals.get(view.nodes), view.nodes);
  totals.set(view.nodes, t);
  state.set(KEY, t);
  return t;
}

/**
 * The nodes that may hold pods the query selects: those with a pod in one
 * of its namespaces carrying its `key=value` label (or any pod there, for
 * a selector without one). A superset: countSelected still decides.
 */
export function candidateNodes(
  ci: ClusterIndex,
  q: PodQuery,
  view: ClusterView,
): Iterable<NodeInfo> {
  if (q.selector.none) return [];
  const lookup = q.selector.lookup;
  const sources: NodeCounts[] = [];
  const add = (ns: string, key?: string) => {
    const m = lookup
      ? ci.nodesByLabel.get(key ?? labelIndexKey(ns, lookup.key, lookup.value))
      : ci.nodesByNamespace.get(ns);
    if (m !== undefined) sources.push(m);
  };
  q.namespaces.forEach((ns, i) => add(ns, q.indexKeys[i]));
  if (q.namespaceSelector !== undefined)
    for (const ns of ci.nodesByNamespace.keys())
      if (
        !q.namespaceSet.has(ns) &&
        matchesRequirements(q.namespaceSelector, view.namespaceLabels(ns))
      )
        add(ns);
  if (sources.length === 0) return [];
  if (sources.length === 1) return sources[0].keys();
  const nodes = new Set<NodeInfo>();
  for (const m of sources) for (const info of m.keys()) nodes.add(info);
  return nodes;
}

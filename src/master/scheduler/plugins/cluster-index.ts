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
import type { PodFacts, PodIndex, TermGroup, TermKind } from '../node-info';
import { labelIndexKey, podChangeClock, podChangesSince, podIndex } from '../node-info';
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

/** What one node added to the totals, to take it back out when the node changes. */
interface Contribution {
  idx: PodIndex;
  version: number;
  labels: [string, number][];
  namespaces: [string, number][];
  controllers: [string, number][];
  groups: [string, TermGroup][];
}

interface Totals extends ClusterIndex {
  seen: Map<NodeInfo, Contribution>;
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
    seen: new Map(),
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

function sizes(m: Map<string, Set<unknown>>): [string, number][] {
  const out: [string, number][] = [];
  for (const [k, s] of m) out.push([k, s.size]);
  return out;
}

function contribution(idx: PodIndex): Contribution {
  const groups: [string, TermGroup][] = [];
  for (const [k, g] of idx.antiAffinityGroups) groups.push([k, g]);
  for (const [k, g] of idx.affinityGroups) groups.push([k, g]);
  return {
    idx,
    version: idx.version,
    labels: sizes(idx.byLabel),
    namespaces: sizes(idx.byNamespace),
    controllers: [...idx.byController],
    groups,
  };
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

function apply(t: Totals, info: NodeInfo, c: Contribution, sign: 1 | -1): void {
  for (const [k, n] of c.labels) bump(t.nodesByLabel, k, info, sign * n);
  for (const [k, n] of c.namespaces) bump(t.nodesByNamespace, k, info, sign * n);
  for (const [k, n] of c.controllers) bump(t.nodesByController, k, info, sign * n);
  for (const [k, g] of c.groups) {
    const groups = g.kind === 'requiredAntiAffinity' ? t.antiAffinityGroups : t.affinityGroups;
    let cg = groups.byKey.get(k);
    if (cg === undefined) {
      if (sign < 0) continue;
      cg = { kind: g.kind, term: groupTerm(g), nodes: new Map() };
      addGroup(groups, k, cg);
    }
    // The group's size now, not when recorded: TermGroups are live. Removal
    // takes out the node's whole entry, so the two never disagree.
    const n = sign > 0 ? g.pods.size : 0;
    if (n > 0) cg.nodes.set(info, n);
    else {
      cg.nodes.delete(info);
      if (cg.nodes.size === 0) deleteGroup(groups, k, cg);
    }
  }
}

/** Recounts the node if its pods changed since it was counted. */
function recount(t: Totals, info: NodeInfo): void {
  const idx = podIndex(info);
  const had = t.seen.get(info);
  if (had !== undefined && had.idx === idx && had.version === idx.version) return;
  if (had !== undefined) apply(t, info, had, -1);
  const now = contribution(idx);
  apply(t, info, now, 1);
  t.seen.set(info, now);
}

/**
 * Brings the totals in step: the nodes the change journal names since the
 * last time, or every node when the journal has forgotten some changes or
 * the list's length changed (a list is replaced, not edited, when nodes
 * come and go; so is a node's `pods` map never replaced).
 */
function refresh(t: Totals, nodes: readonly NodeInfo[]): Totals {
  const clock = podChangeClock();
  if (t.seen.size === nodes.length) {
    const known = podChangesSince(t.clock, (pods) => {
      const info = t.byPods.get(pods);
      if (info !== undefined) recount(t, info);
    });
    if (known) {
      t.clock = clock;
      return t;
    }
  }
  const fresh = t.seen.size > nodes.length ? empty() : t;
  for (const info of nodes) {
    recount(fresh, info);
    fresh.byPods.set(info.pods, info);
  }
  fresh.clock = clock;
  return fresh;
}

/** The totals for the view's nodes, up to date (once per cycle: later calls read them from `state`). */
export function clusterIndex(view: ClusterView, state: CycleState): ClusterIndex {
  const cached = state.get(KEY) as ClusterIndex | undefined;
  if (cached !== undefined) return cached;
  const t = refresh(totals.get(view.nodes) ?? empty(), view.nodes);
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

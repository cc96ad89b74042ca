/**
 * "Which pods on this node does this term select?": pod affinity terms and
 * spread constraints both ask it, for every node, once per scheduling
 * cycle. The answer comes from the node's pod index (by namespace and by
 * label) rather than a scan of its pods, and terms are parsed once per pod.
 */
import type { Pod } from '../../../api/schema';
import type { Requirement } from '../../../api/selectors';
import { podIndex, type PodIndex, type TermGroup } from '../node-info';
import type { ClusterView, NodeInfo } from '../types';
import {
  compileNamespaceSelector,
  compilePodSelector,
  labelKeyRequirements,
  matchesRequirements,
  type PodSelector,
} from './label-match';
import { labelIndexKey, podFacts, type PodFacts } from './pod-facts';

/** Pods selected by labels within some namespaces. */
export interface PodQuery {
  selector: PodSelector;
  /** Namespaces named outright. */
  namespaces: string[];
  namespaceSet: ReadonlySet<string>;
  /** Also the namespaces whose labels match these; undefined: none ([] is all). */
  namespaceSelector: Requirement[] | undefined;
  /** Per entry of `namespaces`, its key in the node's pod index. */
  indexKeys: string[];
}

export function podQuery(
  selector: PodSelector,
  namespaces: string[],
  namespaceSelector?: Requirement[],
): PodQuery {
  const { lookup } = selector;
  return {
    selector,
    namespaces,
    namespaceSet: new Set(namespaces),
    namespaceSelector,
    indexKeys: namespaces.map((ns) => (lookup ? labelIndexKey(ns, lookup.key, lookup.value) : ns)),
  };
}

/** Whether the query selects a pod with these labels in `namespace`. */
export function querySelects(
  q: PodQuery,
  namespace: string,
  labels: Record<string, string>,
  view: ClusterView,
): boolean {
  if (q.selector.none) return false;
  const inNamespace =
    q.namespaceSet.has(namespace) ||
    (q.namespaceSelector !== undefined &&
      matchesRequirements(q.namespaceSelector, view.namespaceLabels(namespace)));
  return inNamespace && matchesRequirements(q.selector.requirements, labels);
}

/** Accepts or refuses a pod the query selected. */
export type PodFilter = (pod: Pod, facts: PodFacts) => boolean;

export interface CountOptions {
  /** Leave out the pod with this key: the pod being scheduled, should the cache hold it already. */
  exceptKey?: string;
  /** Leave out terminating pods (spread constraints do). */
  skipTerminating?: boolean;
  /** Count only the pods this accepts. */
  accept?: PodFilter;
  /** Stop counting here ("is there any?" is limit 1). */
  limit?: number;
}

const NO_OPTIONS: CountOptions = {};

/**
 * Counts the selected pods among `candidates`. When the candidates are
 * exactly the selected pods (the selector is one `key=value`, or empty),
 * their number is the answer, less the pods left out: replicas of one
 * workload, hundreds to a node, are counted without being looked at.
 */
function countIn(
  candidates: Set<Pod> | undefined,
  q: PodQuery,
  idx: PodIndex,
  except: Pod | undefined,
  opts: CountOptions,
  n: number,
): number {
  if (candidates === undefined) return n;
  const reqs = q.selector.requirements;
  const exact =
    opts.accept === undefined &&
    (reqs.length === 0 || (reqs.length === 1 && q.selector.lookup !== undefined));
  if (exact) {
    n += candidates.size;
    if (except !== undefined && candidates.has(except)) n--;
    if (opts.skipTerminating === true)
      for (const t of idx.terminating) if (t !== except && candidates.has(t)) n--;
    return n;
  }
  const limit = opts.limit ?? Infinity;
  for (const pod of candidates) {
    if (pod === except) continue;
    const f = podFacts(pod);
    if (opts.skipTerminating === true && f.terminating) continue;
    if (!matchesRequirements(reqs, f.labels)) continue;
    if (opts.accept !== undefined && !opts.accept(pod, f)) continue;
    if (++n >= limit) return n;
  }
  return n;
}

/** How many pods on the node the query selects (no more than opts.limit). */
export function countSelected(
  info: NodeInfo,
  q: PodQuery,
  view: ClusterView,
  opts: CountOptions = NO_OPTIONS,
): number {
  if (q.selector.none || info.pods.size === 0) return 0;
  const idx = podIndex(info);
  const except = opts.exceptKey === undefined ? undefined : info.pods.get(opts.exceptKey);
  const lookup = q.selector.lookup;
  const limit = opts.limit ?? Infinity;
  let n = 0;
  for (let i = 0; i < q.namespaces.length && n < limit; i++) {
    const candidates = lookup
      ? idx.byLabel.get(q.indexKeys[i])
      : idx.byNamespace.get(q.namespaces[i]);
    n = countIn(candidates, q, idx, except, opts, n);
  }
  if (q.namespaceSelector !== undefined && n < limit)
    for (const ns of idx.byNamespace.keys()) {
      if (q.namespaceSet.has(ns)) continue;
      if (!matchesRequirements(q.namespaceSelector, view.namespaceLabels(ns))) continue;
      const candidates = lookup
        ? idx.byLabel.get(labelIndexKey(ns, lookup.key, lookup.value))
        : idx.byNamespace.get(ns);
      n = countIn(candidates, q, idx, except, opts, n);
      if (n >= limit) break;
    }
  return Math.min(n, limit);
}

// ---------------------------------------------------------------------------
// Pod affinity terms

export interface AffinityTerm extends PodQuery {
  topologyKey: string;
  /** A preferred term's weight; 1 for a required term. */
  weight: number;
}

export interface PodAffinityTerms {
  requiredAffinity: AffinityTerm[];
  requiredAntiAffinity: AffinityTerm[];
  preferredAffinity: AffinityTerm[];
  preferredAntiAffinity: AffinityTerm[];
}

type Affinity = NonNullable<Pod['spec']['affinity']>;
type K8sPodAffinity = NonNullable<Affinity['podAffinity']>;
type K8sTerm = NonNullable<
  K8sPodAffinity['requiredDuringSchedulingIgnoredDuringExecution']
>[number];

const NO_TERMS: PodAffinityTerms = {
  requiredAffinity: [],
  requiredAntiAffinity: [],
  preferredAffinity: [],
  preferredAntiAffinity: [],
};

const termsCache = new WeakMap<Pod, PodAffinityTerms>();

/**
 * A term as Kubernetes reads it: namespaces default to the pod's own when
 * neither `namespaces` nor `namespaceSelector` is given; matchLabelKeys and
 * mismatchLabelKeys add `key in/notin (the pod's value)` to the selector.
 */
function parseTerm(t: K8sTerm, weight: number, f: PodFacts): AffinityTerm {
  const extra =
    t.labelSelector === undefined
      ? []
      : labelKeyRequirements(f.labels, t.matchLabelKeys, t.mismatchLabelKeys);
  const namespaceSelector = compileNamespaceSelector(t.namespaceSelector);
  const namespaces =
    (t.namespaces?.length ?? 0) > 0
      ? [...new Set(t.namespaces)]
      : t.namespaceSelector === undefined
        ? [f.namespace]
        : [];
  return {
    ...podQuery(compilePodSelector(t.labelSelector, extra), namespaces, namespaceSelector),
    topologyKey: t.topologyKey,
    weight,
  };
}

/** The pod's affinity and anti-affinity terms, parsed (once per pod object). */
export function podAffinityTerms(pod: Pod): PodAffinityTerms {
  const f = podFacts(pod);
  if (!f.hasPodAffinity) return NO_TERMS;
  let terms = termsCache.get(pod);
  if (terms !== undefined) return terms;
  const a = pod.spec.affinity;
  const required = (x: K8sPodAffinity | undefined) =>
    (x?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => parseTerm(t, 1, f));
  const preferred = (x: K8sPodAffinity | undefined) =>
    (x?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) =>
      parseTerm(w.podAffinityTerm, w.weight, f),
    );
  terms = {
    requiredAffinity: required(a?.podAffinity),
    requiredAntiAffinity: required(a?.podAntiAffinity),
    preferredAffinity: preferred(a?.podAffinity),
    preferredAntiAffinity: preferred(a?.podAntiAffinity),
  };
  termsCache.set(pod, terms);
  return terms;
}

/** The term a group of existing pods shares. */
export function groupTerm(g: TermGroup): AffinityTerm {
  return podAffinityTerms(g.pod)[g.kind][g.index];
}

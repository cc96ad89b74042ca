/**
 * Which nodes a pod asks for: spec.nodeSelector and node affinity terms
 * (Kubernetes' `nodeaffinity.RequiredNodeAffinity` and preferred terms),
 * compiled once per pod. NodeAffinity filters and scores with it;
 * PodTopologySpread uses it to decide which nodes' domains count.
 */
import type { Pod } from '../../../api/schema';
import type { NodeInfo } from '../types';
import { labelOf } from './label-match';

type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';

interface NodeRequirement {
  key: string;
  op: Operator;
  values: string[];
  /** values[0] as an integer, for Gt and Lt (NaN when it is not one). */
  bound: number;
}

/** Expressions on labels and on fields, ANDed. A term with neither matches no node, as in Kubernetes. */
export interface NodeTerm {
  expressions: NodeRequirement[];
  fields: NodeRequirement[];
}

export interface NodePlacement {
  /** spec.nodeSelector, as pairs. */
  selector: [string, string][];
  /** Required node affinity terms, ORed; undefined when there are none. */
  terms: NodeTerm[] | undefined;
  /** Nothing to check: every node is acceptable. */
  anyNode: boolean;
}

export interface PreferredNodeTerm {
  weight: number;
  term: NodeTerm;
}

type NodeAffinity = NonNullable<NonNullable<Pod['spec']['affinity']>['nodeAffinity']>;
type K8sTerm = NonNullable<
  NodeAffinity['requiredDuringSchedulingIgnoredDuringExecution']
>['nodeSelectorTerms'][number];
type K8sRequirement = NonNullable<K8sTerm['matchExpressions']>[number];

const INTEGER = /^-?\d+$/;

function requirement(r: K8sRequirement): NodeRequirement {
  const values = r.values ?? [];
  const bound = values.length === 1 && INTEGER.test(values[0]) ? Number(values[0]) : NaN;
  return { key: r.key, op: r.operator, values, bound };
}

function term(t: K8sTerm): NodeTerm {
  return {
    expressions: (t.matchExpressions ?? []).map(requirement),
    fields: (t.matchFields ?? []).map(requirement),
  };
}

/** Kubernetes' rule: a missing label fails In, Exists, Gt and Lt, and passes NotIn and DoesNotExist. */
function requirementHolds(r: NodeRequirement, value: string | undefined): boolean {
  switch (r.op) {
    case 'In':
      return value !== undefined && r.values.includes(value);
    case 'NotIn':
      return value === undefined || !r.values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || !INTEGER.test(value)) return false;
      const n = Number(value);
      return r.op === 'Gt' ? n > r.bound : n < r.bound;
    }
  }
}

/** The only field a node selector may name is metadata.name. */
function fieldOf(info: NodeInfo, field: string): string | undefined {
  return field === 'metadata.name' ? info.name : undefined;
}

export function termMatchesNode(t: NodeTerm, info: NodeInfo): boolean {
  if (t.expressions.length === 0 && t.fields.length === 0) return false;
  for (let i = 0; i < t.expressions.length; i++)
    if (!requirementHolds(t.expressions[i], labelOf(info.labels, t.expressions[i].key)))
      return false;
  for (let i = 0; i < t.fields.length; i++)
    if (!requirementHolds(t.fields[i], fieldOf(info, t.fields[i].key))) return false;
  return true;
}

const placements = new WeakMap<Pod, NodePlacement>();

/** The pod's nodeSelector and required node affinity, compiled once per pod object. */
export function nodePlacement(pod: Pod): NodePlacement {
  let p = placements.get(pod);
  if (p !== undefined) return p;
  const selector = Object.entries(pod.spec.nodeSelector ?? {});
  const required = pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms = required?.nodeSelectorTerms.map(term);
  p = { selector, terms, anyNode: selector.length === 0 && terms === undefined };
  placements.set(pod, p);
  return p;
}

/** Whether the node has every nodeSelector label and matches one of the required terms. */
export function placementAllows(p: NodePlacement, info: NodeInfo): boolean {
  if (p.anyNode) return true;
  for (let i = 0; i < p.selector.length; i++)
    if (labelOf(info.labels, p.selector[i][0]) !== p.selector[i][1]) return false;
  if (p.terms === undefined) return true;
  for (let i = 0; i < p.terms.length; i++) if (termMatchesNode(p.terms[i], info)) return true;
  return false;
}

const preferences = new WeakMap<Pod, PreferredNodeTerm[]>();

/** The pod's preferred node affinity terms, compiled once per pod object. */
export function preferredNodeTerms(pod: Pod): PreferredNodeTerm[] {
  let p = preferences.get(pod);
  if (p !== undefined) return p;
  const preferred =
    pod.spec.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
  p = (preferred ?? []).map((w) => ({ weight: w.weight, term: term(w.preference) }));
  preferences.set(pod, p);
  return p;
}

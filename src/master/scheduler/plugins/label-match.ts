/**
 * Label selectors over pods, compiled once per pod and matched in a plain
 * loop (the scheduler matches them millions of times a second).
 */
import type { LabelSelector as K8sLabelSelector } from '../../../api/schema';
import { labelSelectorFromK8s, type Requirement } from '../../../api/selectors';

/** A label's value, or undefined; own properties only, so a label named `constructor` is just a label. */
export function labelOf(labels: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/** Same meaning as `matchesLabels` in api/selectors, without a closure per call. */
export function matchesRequirements(
  requirements: readonly Requirement[],
  labels: Record<string, string>,
): boolean {
  for (let i = 0; i < requirements.length; i++) {
    const r = requirements[i];
    const v = labelOf(labels, r.key);
    switch (r.op) {
      case 'Exists':
        if (v === undefined) return false;
        break;
      case 'DoesNotExist':
        if (v !== undefined) return false;
        break;
      case 'In':
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case 'NotIn':
        if (v !== undefined && r.values.includes(v)) return false;
        break;
    }
  }
  return true;
}

/** A selector over pods; `none` selects nothing. */
export interface PodSelector {
  none: boolean;
  requirements: Requirement[];
  /** A `key=value` requirement, to find candidates in a node's label index instead of scanning. */
  lookup: { key: string; value: string } | undefined;
}

export const SELECTS_NOTHING: PodSelector = { none: true, requirements: [], lookup: undefined };

/**
 * Compiles the selector of an affinity term or spread constraint. An absent
 * selector selects nothing there, as `metav1.LabelSelectorAsSelector(nil)`
 * does in Kubernetes (labelSelectorFromK8s would select everything). A
 * selector admission should have refused also selects nothing: a typo must
 * not turn anti-affinity against every pod. `extra` are the requirements
 * matchLabelKeys / mismatchLabelKeys add.
 */
export function compilePodSelector(
  sel: K8sLabelSelector | undefined,
  extra: readonly Requirement[] = [],
): PodSelector {
  if (sel === undefined) return SELECTS_NOTHING;
  let requirements: Requirement[];
  try {
    requirements = [...labelSelectorFromK8s(sel).requirements, ...extra];
  } catch {
    return SELECTS_NOTHING;
  }
  const eq = requirements.find((r) => r.op === 'In' && r.values.length === 1);
  return {
    none: false,
    requirements,
    lookup: eq?.op === 'In' ? { key: eq.key, value: eq.values[0] } : undefined,
  };
}

/** A namespaceSelector's requirements ({} selects every namespace); undefined when absent or invalid. */
export function compileNamespaceSelector(
  sel: K8sLabelSelector | undefined,
): Requirement[] | undefined {
  if (sel === undefined) return undefined;
  try {
    return labelSelectorFromK8s(sel).requirements;
  } catch {
    return undefined;
  }
}

/** `key In (value)` for each matchLabelKeys key the pod has, `key NotIn (value)` for mismatchLabelKeys. */
export function labelKeyRequirements(
  labels: Record<string, string>,
  matchLabelKeys: readonly string[] | undefined,
  mismatchLabelKeys?: readonly string[],
): Requirement[] {
  const out: Requirement[] = [];
  for (const key of matchLabelKeys ?? []) {
    const v = labelOf(labels, key);
    if (v !== undefined) out.push({ key, op: 'In', values: [v] });
  }
  for (const key of mismatchLabelKeys ?? []) {
    const v = labelOf(labels, key);
    if (v !== undefined) out.push({ key, op: 'NotIn', values: [v] });
  }
  return out;
}

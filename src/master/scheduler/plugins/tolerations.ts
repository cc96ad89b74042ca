/**
 * Taints and tolerations, with Kubernetes' matching rule
 * (`v1.Toleration.ToleratesTaint`).
 */
import type { Node, Pod } from '../../../api/schema';

export type Toleration = NonNullable<Pod['spec']['tolerations']>[number];
export type Taint = NonNullable<NonNullable<Node['spec']>['taints']>[number];
export type TaintLike = Pick<Taint, 'key' | 'value' | 'effect'>;

/**
 * An empty effect matches every effect; an empty key (with Exists) matches
 * every key; Equal (the default operator) compares values, Exists does not.
 */
export function toleratesTaint(t: Toleration, taint: TaintLike): boolean {
  if (t.effect !== undefined && t.effect !== taint.effect) return false;
  if ((t.key ?? '') !== '' && t.key !== taint.key) return false;
  switch (t.operator) {
    case undefined:
    case 'Equal':
      return (t.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
  }
}

export function isTolerated(
  tolerations: readonly Toleration[] | undefined,
  taint: TaintLike,
): boolean {
  if (tolerations === undefined) return false;
  for (let i = 0; i < tolerations.length; i++)
    if (toleratesTaint(tolerations[i], taint)) return true;
  return false;
}

/** The first NoSchedule or NoExecute taint no toleration tolerates: the ones that keep new pods off. */
export function firstUntoleratedTaint(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[] | undefined,
): Taint | undefined {
  if (taints === undefined) return undefined;
  for (let i = 0; i < taints.length; i++) {
    const taint = taints[i];
    if (taint.effect === 'PreferNoSchedule') continue;
    if (!isTolerated(tolerations, taint)) return taint;
  }
  return undefined;
}

const reasons = new WeakMap<Taint, string>();

/** kube-scheduler's text, made once per taint object (filters must not allocate per node). */
export function untoleratedTaintReason(taint: Taint): string {
  let r = reasons.get(taint);
  if (r === undefined) {
    r = `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
    reasons.set(taint, r);
  }
  return r;
}

/** How many PreferNoSchedule taints the pod does not tolerate (only tolerations with that effect, or none, count). */
export function intolerablePreferNoSchedule(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[] | undefined,
): number {
  if (taints === undefined) return 0;
  let n = 0;
  for (let i = 0; i < taints.length; i++) {
    const taint = taints[i];
    if (taint.effect !== 'PreferNoSchedule') continue;
    let tolerated = false;
    for (const t of tolerations ?? [])
      if ((t.effect === undefined || t.effect === 'PreferNoSchedule') && toleratesTaint(t, taint)) {
        tolerated = true;
        break;
      }
    if (!tolerated) n++;
  }
  return n;
}

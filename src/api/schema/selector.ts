/**
 * Label selectors (`matchLabels` + `matchExpressions`) and how they match a
 * label set. Workload selectors must match their pod template's labels, so
 * the matching lives here, next to the schema that admits selectors.
 */
import { z } from 'zod';
import { labelMap } from './fields';
import { labelValue, qualifiedName } from './names';

export const labelSelectorRequirement = () =>
  z
    .strictObject({
      key: z.string(),
      operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
      values: z.array(z.string()).optional(),
    })
    .superRefine((r, ctx) => {
      const bad = qualifiedName(r.key);
      if (bad)
        ctx.addIssue({
          code: 'custom',
          path: ['key'],
          message: `invalid label key "${r.key}": ${bad}`,
        });
      const n = r.values?.length ?? 0;
      if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['values'],
          message: `must be specified when \`operator\` is '${r.operator}'`,
        });
      if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0)
        ctx.addIssue({
          code: 'custom',
          path: ['values'],
          message: `may not be specified when \`operator\` is '${r.operator}'`,
        });
      (r.values ?? []).forEach((v, i) => {
        const badValue = labelValue(v);
        if (badValue)
          ctx.addIssue({
            code: 'custom',
            path: ['values', i],
            message: `invalid label value "${v}": ${badValue}`,
          });
      });
    });

export const labelSelector = () =>
  z.strictObject({
    matchLabels: labelMap().optional(),
    matchExpressions: z.array(labelSelectorRequirement()).optional(),
  });

export type LabelSelector = z.output<ReturnType<typeof labelSelector>>;

/** True when the selector has no terms (it would select everything). */
export function isEmptySelector(s: LabelSelector): boolean {
  return Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0;
}

/** Whether `labels` satisfy every term of the selector (Kubernetes semantics). */
export function selectorMatches(
  s: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of s.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const inValues = has && (r.values ?? []).includes(labels[r.key]);
    const ok =
      r.operator === 'In'
        ? inValues
        : r.operator === 'NotIn'
          ? !inValues
          : r.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

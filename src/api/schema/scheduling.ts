/**
 * Where a pod may run: node affinity, inter-pod affinity, tolerations (and
 * the node taints they tolerate), topology spread. Only the shapes are
 * checked here; the scheduler decides what they mean.
 */
import { z } from 'zod';
import { positiveInt, nonNegInt, timestamp } from './fields';
import { qualifiedName } from './names';
import { labelSelector } from './selector';

const nodeSelectorRequirement = () =>
  z
    .strictObject({
      key: z.string(),
      operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']),
      values: z.array(z.string()).optional(),
    })
    .superRefine((r, ctx) => {
      const n = r.values?.length ?? 0;
      const needs =
        r.operator === 'In' || r.operator === 'NotIn'
          ? 'some'
          : r.operator === 'Gt' || r.operator === 'Lt'
            ? 'one'
            : 'none';
      if (needs === 'some' && n === 0)
        ctx.addIssue({
          code: 'custom',
          path: ['values'],
          message: `must be specified when \`operator\` is '${r.operator}'`,
        });
      if (needs === 'none' && n > 0)
        ctx.addIssue({
          code: 'custom',
          path: ['values'],
          message: `may not be specified when \`operator\` is '${r.operator}'`,
        });
      if (needs === 'one' && (n !== 1 || !/^-?\d+$/.test(r.values?.[0] ?? '')))
        ctx.addIssue({
          code: 'custom',
          path: ['values'],
          message: `must be a single integer when \`operator\` is '${r.operator}'`,
        });
    });

const nodeSelectorTerm = () =>
  z.strictObject({
    matchExpressions: z.array(nodeSelectorRequirement()).optional(),
    matchFields: z.array(nodeSelectorRequirement()).optional(),
  });

const weight = () => z.int().refine((w) => w >= 1 && w <= 100, 'must be in the range 1-100');

const nodeAffinity = () =>
  z.strictObject({
    requiredDuringSchedulingIgnoredDuringExecution: z
      .strictObject({ nodeSelectorTerms: z.array(nodeSelectorTerm()).min(1) })
      .optional(),
    preferredDuringSchedulingIgnoredDuringExecution: z
      .array(z.strictObject({ weight: weight(), preference: nodeSelectorTerm() }))
      .optional(),
  });

const podAffinityTerm = () =>
  z.strictObject({
    labelSelector: labelSelector().optional(),
    namespaceSelector: labelSelector().optional(),
    namespaces: z.array(z.string()).optional(),
    topologyKey: z.string().min(1),
    matchLabelKeys: z.array(z.string()).optional(),
    mismatchLabelKeys: z.array(z.string()).optional(),
  });

const podAffinity = () =>
  z.strictObject({
    requiredDuringSchedulingIgnoredDuringExecution: z.array(podAffinityTerm()).optional(),
    preferredDuringSchedulingIgnoredDuringExecution: z
      .array(z.strictObject({ weight: weight(), podAffinityTerm: podAffinityTerm() }))
      .optional(),
  });

export const affinity = () =>
  z.strictObject({
    nodeAffinity: nodeAffinity().optional(),
    podAffinity: podAffinity().optional(),
    podAntiAffinity: podAffinity().optional(),
  });

export const taintEffect = () => z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']);

export const toleration = () =>
  z
    .strictObject({
      key: z.string().optional(),
      operator: z.enum(['Exists', 'Equal']).optional(),
      value: z.string().optional(),
      effect: taintEffect().optional(),
      tolerationSeconds: z.int().optional(),
    })
    .superRefine((t, ctx) => {
      if (t.key !== undefined && t.key !== '' && qualifiedName(t.key))
        ctx.addIssue({
          code: 'custom',
          path: ['key'],
          message: `invalid key "${t.key}": ${qualifiedName(t.key)}`,
        });
      if ((t.key ?? '') === '' && t.operator !== 'Exists')
        ctx.addIssue({
          code: 'custom',
          path: ['operator'],
          message:
            'must be Exists when `key` is empty, which means "match all values and all keys"',
        });
      if (t.operator === 'Exists' && (t.value ?? '') !== '')
        ctx.addIssue({
          code: 'custom',
          path: ['value'],
          message: "must be empty when `operator` is 'Exists'",
        });
      if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute')
        ctx.addIssue({
          code: 'custom',
          path: ['effect'],
          message: "must be 'NoExecute' when `tolerationSeconds` is set",
        });
    });

export const taint = () =>
  z
    .strictObject({
      key: z.string(),
      value: z.string().optional(),
      effect: taintEffect(),
      timeAdded: timestamp().optional(),
    })
    .superRefine((t, ctx) => {
      const bad = qualifiedName(t.key);
      if (bad)
        ctx.addIssue({ code: 'custom', path: ['key'], message: `invalid key "${t.key}": ${bad}` });
    });

export const topologySpreadConstraint = () =>
  z.strictObject({
    maxSkew: positiveInt(),
    topologyKey: z.string().min(1),
    whenUnsatisfiable: z.enum(['DoNotSchedule', 'ScheduleAnyway']),
    labelSelector: labelSelector().optional(),
    minDomains: nonNegInt().optional(),
    nodeAffinityPolicy: z.enum(['Honor', 'Ignore']).optional(),
    nodeTaintsPolicy: z.enum(['Honor', 'Ignore']).optional(),
    matchLabelKeys: z.array(z.string()).optional(),
  });

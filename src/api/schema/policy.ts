/**
 * LimitRange (per-namespace defaults and bounds for container resources,
 * applied at admission) and ResourceQuota (per-namespace totals).
 */
import { z } from 'zod';
import { quantityValue, resourceList } from './fields';
import { objectMeta } from './meta';

type Resources = Record<string, string | number>;

const limitRangeItem = () =>
  z
    .strictObject({
      type: z.enum(['Container', 'Pod', 'PersistentVolumeClaim']),
      max: resourceList().optional(),
      min: resourceList().optional(),
      default: resourceList().optional(),
      defaultRequest: resourceList().optional(),
      maxLimitRequestRatio: resourceList().optional(),
    })
    .superRefine((l, ctx) => {
      if (l.type !== 'Container')
        for (const f of ['default', 'defaultRequest'] as const)
          if (l[f] !== undefined)
            ctx.addIssue({
              code: 'custom',
              path: [f],
              message: `may not be specified when \`type\` is '${l.type}'`,
            });
      // min <= defaultRequest <= default <= max, resource by resource.
      const order: [keyof typeof l & string, Resources | undefined][] = [
        ['min', l.min],
        ['defaultRequest', l.defaultRequest],
        ['default', l.default],
        ['max', l.max],
      ];
      for (let i = 0; i < order.length; i++)
        for (let j = i + 1; j < order.length; j++) {
          const [lo, loRes] = order[i];
          const [hi, hiRes] = order[j];
          for (const [r, q] of Object.entries(loRes ?? {})) {
            const h = hiRes?.[r];
            if (h !== undefined && quantityValue(q) > quantityValue(h))
              ctx.addIssue({
                code: 'custom',
                path: [lo, r],
                message: `${lo} value ${q} must be less than or equal to ${hi} value ${h}`,
              });
          }
        }
      for (const [r, q] of Object.entries(l.maxLimitRequestRatio ?? {}))
        if (quantityValue(q) < 1)
          ctx.addIssue({
            code: 'custom',
            path: ['maxLimitRequestRatio', r],
            message: 'must be greater than or equal to 1',
          });
    });

export const limitRangeSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('LimitRange'),
  metadata: objectMeta('LimitRange', 'subdomain', true),
  spec: z.strictObject({ limits: z.array(limitRangeItem()) }),
});

const QUOTA_SCOPES = [
  'Terminating',
  'NotTerminating',
  'BestEffort',
  'NotBestEffort',
  'PriorityClass',
  'CrossNamespacePodAffinity',
] as const;

export const resourceQuotaSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('ResourceQuota'),
  metadata: objectMeta('ResourceQuota', 'subdomain', true),
  spec: z
    .strictObject({
      hard: resourceList().optional(),
      scopes: z.array(z.enum(QUOTA_SCOPES)).optional(),
      scopeSelector: z
        .strictObject({
          matchExpressions: z.array(
            z.strictObject({
              scopeName: z.enum(QUOTA_SCOPES),
              operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
              values: z.array(z.string()).optional(),
            }),
          ),
        })
        .optional(),
    })
    .optional(),
  status: z
    .strictObject({ hard: resourceList().optional(), used: resourceList().optional() })
    .optional(),
});

export type LimitRange = z.output<typeof limitRangeSchema>;
export type LimitRangeItem = LimitRange['spec']['limits'][number];
export type ResourceQuota = z.output<typeof resourceQuotaSchema>;

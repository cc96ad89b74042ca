/**
 * Deployment, ReplicaSet and Job: a pod template, a selector that must
 * select it, and how many copies to run and how to replace them.
 */
import { z } from 'zod';
import { condition, intOrString, nonNegInt, positiveInt, timestamp } from './fields';
import { objectMeta } from './meta';
import { podTemplateSpec, PodTemplateSpec } from './pod';
import { isEmptySelector, LabelSelector, labelSelector, selectorMatches } from './selector';

type Ctx<T> = z.RefinementCtx<T>;

/** The selector must select the pods the template makes, or the controller would orphan them. */
function checkSelector<T>(
  kind: string,
  selector: LabelSelector,
  template: PodTemplateSpec,
  ctx: Ctx<T>,
): void {
  if (isEmptySelector(selector)) {
    ctx.addIssue({
      code: 'custom',
      path: ['selector'],
      message: `empty selector is invalid for ${kind}`,
    });
    return;
  }
  if (!selectorMatches(selector, template.metadata?.labels ?? {}))
    ctx.addIssue({ code: 'custom', path: ['selector'], message: 'does not match template labels' });
}

function checkRestartPolicy<T>(
  template: PodTemplateSpec,
  allowed: string[],
  kind: string,
  ctx: Ctx<T>,
) {
  const p = template.spec.restartPolicy;
  if (!allowed.includes(p))
    ctx.addIssue({
      code: 'custom',
      path: ['template', 'spec', 'restartPolicy'],
      message: `unsupported value "${p}": a ${kind} supports only ${allowed.map((a) => `"${a}"`).join(' or ')}`,
    });
}

// ---- Deployment ----------------------------------------------------------

/** maxSurge / maxUnavailable: a count or a percentage of the desired replicas. */
const countOrPercent = () =>
  intOrString().superRefine((v, ctx) => {
    if (typeof v === 'number' ? v < 0 : !/^[0-9]+%$/.test(v))
      ctx.addIssue({
        code: 'custom',
        message: `must be a non-negative integer or percentage (e.g. "25%"), got ${JSON.stringify(v)}`,
      });
  });

const isZero = (v: number | string) => v === 0 || v === '0%';

const deploymentStrategy = () =>
  z
    .strictObject({
      type: z.enum(['RollingUpdate', 'Recreate']).default('RollingUpdate'),
      rollingUpdate: z
        .strictObject({
          maxSurge: countOrPercent().default('25%'),
          maxUnavailable: countOrPercent().default('25%'),
        })
        .optional(),
    })
    .superRefine((s, ctx) => {
      if (s.type === 'Recreate' && s.rollingUpdate !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['rollingUpdate'],
          message: "may not be specified when strategy `type` is 'Recreate'",
        });
      const ru = s.rollingUpdate;
      if (ru && isZero(ru.maxSurge) && isZero(ru.maxUnavailable))
        ctx.addIssue({
          code: 'custom',
          path: ['rollingUpdate', 'maxUnavailable'],
          message: 'may not be 0 when `maxSurge` is 0',
        });
      if (ru && typeof ru.maxUnavailable === 'string' && parseInt(ru.maxUnavailable, 10) > 100)
        ctx.addIssue({
          code: 'custom',
          path: ['rollingUpdate', 'maxUnavailable'],
          message: 'must not be greater than 100%',
        });
    })
    .transform((s) =>
      s.type === 'RollingUpdate' && s.rollingUpdate === undefined
        ? { ...s, rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } }
        : s,
    );

const deploymentSpec = () =>
  z
    .strictObject({
      replicas: nonNegInt().default(1),
      selector: labelSelector(),
      template: podTemplateSpec(),
      strategy: deploymentStrategy().prefault({}),
      minReadySeconds: nonNegInt().default(0),
      revisionHistoryLimit: nonNegInt().default(10),
      progressDeadlineSeconds: positiveInt().default(600),
      paused: z.boolean().optional(),
    })
    .superRefine((s, ctx) => {
      checkSelector('Deployment', s.selector, s.template, ctx);
      checkRestartPolicy(s.template, ['Always'], 'Deployment', ctx);
      if (s.progressDeadlineSeconds <= s.minReadySeconds)
        ctx.addIssue({
          code: 'custom',
          path: ['progressDeadlineSeconds'],
          message: 'must be greater than minReadySeconds',
        });
    });

const deploymentStatus = () =>
  z.strictObject({
    observedGeneration: nonNegInt().optional(),
    replicas: nonNegInt().optional(),
    updatedReplicas: nonNegInt().optional(),
    readyReplicas: nonNegInt().optional(),
    availableReplicas: nonNegInt().optional(),
    unavailableReplicas: nonNegInt().optional(),
    terminatingReplicas: nonNegInt().optional(),
    conditions: z.array(condition()).optional(),
    collisionCount: nonNegInt().optional(),
  });

export const deploymentSchema = z.strictObject({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('Deployment'),
  metadata: objectMeta('Deployment', 'subdomain', true),
  spec: deploymentSpec(),
  status: deploymentStatus().optional(),
});

// ---- ReplicaSet ------------------------------------------------------------

const replicaSetSpec = () =>
  z
    .strictObject({
      replicas: nonNegInt().default(1),
      minReadySeconds: nonNegInt().default(0),
      selector: labelSelector(),
      template: podTemplateSpec(),
    })
    .superRefine((s, ctx) => {
      checkSelector('ReplicaSet', s.selector, s.template, ctx);
      checkRestartPolicy(s.template, ['Always'], 'ReplicaSet', ctx);
    });

const replicaSetStatus = () =>
  z.strictObject({
    replicas: nonNegInt().optional(),
    fullyLabeledReplicas: nonNegInt().optional(),
    readyReplicas: nonNegInt().optional(),
    availableReplicas: nonNegInt().optional(),
    terminatingReplicas: nonNegInt().optional(),
    observedGeneration: nonNegInt().optional(),
    conditions: z.array(condition()).optional(),
  });

export const replicaSetSchema = z.strictObject({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('ReplicaSet'),
  metadata: objectMeta('ReplicaSet', 'subdomain', true),
  spec: replicaSetSpec(),
  status: replicaSetStatus().optional(),
});

// ---- Job -------------------------------------------------------------------

const podFailurePolicyRule = () =>
  z.strictObject({
    action: z.enum(['FailJob', 'FailIndex', 'Ignore', 'Count']),
    onExitCodes: z
      .strictObject({
        containerName: z.string().optional(),
        operator: z.enum(['In', 'NotIn']),
        values: z.array(z.int()),
      })
      .optional(),
    onPodConditions: z
      .array(
        z.strictObject({
          type: z.string(),
          status: z.enum(['True', 'False', 'Unknown']).optional(),
        }),
      )
      .optional(),
  });

/** A Job's spec, defaulted as Kubernetes defaults it (also a CronJob's `jobTemplate.spec`). */
export const jobSpec = () =>
  z
    .strictObject({
      parallelism: nonNegInt().optional(),
      completions: nonNegInt().optional(),
      activeDeadlineSeconds: positiveInt().optional(),
      backoffLimit: nonNegInt().default(6),
      backoffLimitPerIndex: nonNegInt().optional(),
      maxFailedIndexes: nonNegInt().optional(),
      podFailurePolicy: z.strictObject({ rules: z.array(podFailurePolicyRule()) }).optional(),
      successPolicy: z
        .strictObject({
          rules: z.array(
            z.strictObject({
              succeededIndexes: z.string().optional(),
              succeededCount: nonNegInt().optional(),
            }),
          ),
        })
        .optional(),
      selector: labelSelector().optional(),
      manualSelector: z.boolean().optional(),
      template: podTemplateSpec(),
      ttlSecondsAfterFinished: nonNegInt().optional(),
      completionMode: z.enum(['NonIndexed', 'Indexed']).default('NonIndexed'),
      suspend: z.boolean().default(false),
      podReplacementPolicy: z.enum(['TerminatingOrFailed', 'Failed']).optional(),
      managedBy: z.string().optional(),
    })
    .superRefine((s, ctx) => {
      // The server generates a selector when none is given; one given must still select the pods.
      if (s.selector !== undefined) checkSelector('Job', s.selector, s.template, ctx);
      checkRestartPolicy(s.template, ['Never', 'OnFailure'], 'Job', ctx);
      if (s.completionMode === 'Indexed' && s.completions === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['completions'],
          message: "must be specified when `completionMode` is 'Indexed'",
        });
    })
    // Kubernetes: neither given means one pod once; parallelism alone means a
    // work queue, where completions stays unset.
    .transform((s) => ({
      ...s,
      parallelism: s.parallelism ?? 1,
      ...(s.completions === undefined && s.parallelism === undefined ? { completions: 1 } : {}),
    }));

const jobStatus = () =>
  z.strictObject({
    conditions: z.array(condition()).optional(),
    startTime: timestamp().optional(),
    completionTime: timestamp().optional(),
    active: nonNegInt().optional(),
    succeeded: nonNegInt().optional(),
    failed: nonNegInt().optional(),
    terminating: nonNegInt().optional(),
    ready: nonNegInt().optional(),
    completedIndexes: z.string().optional(),
    failedIndexes: z.string().optional(),
    uncountedTerminatedPods: z
      .strictObject({
        succeeded: z.array(z.string()).optional(),
        failed: z.array(z.string()).optional(),
      })
      .optional(),
    observedGeneration: nonNegInt().optional(),
  });

export const jobSchema = z.strictObject({
  apiVersion: z.literal('batch/v1'),
  kind: z.literal('Job'),
  metadata: objectMeta('Job', 'subdomain', true),
  spec: jobSpec(),
  status: jobStatus().optional(),
});

export type Deployment = z.output<typeof deploymentSchema>;
export type DeploymentSpec = Deployment['spec'];
export type ReplicaSet = z.output<typeof replicaSetSchema>;
export type Job = z.output<typeof jobSchema>;
export type JobSpec = Job['spec'];

/**
 * Validation of Kubernetes-style manifests: the per-kind schemas, defaults
 * filled in as Kubernetes fills them, every problem reported as
 * `path: reason`, and warnings for fields Baton accepts but ignores.
 */
import { z } from 'zod';
import { ApiObject, KINDS, kindInfo } from '../types';
import { eventSchema, namespaceSchema, nodeSchema } from './cluster';
import { configMapSchema, secretSchema } from './config';
import { cronJobSchema } from './cron-job';
import { jsonType } from './fields';
import { errorMap, formatIssues, toValidationIssues, ValidationIssue } from './issues';
import { podSchema } from './pod';
import { limitRangeSchema, resourceQuotaSchema } from './policy';
import { endpointsSchema, serviceSchema } from './service';
import { unimplementedFields } from './unimplemented';
import { deploymentSchema, jobSchema, replicaSetSchema } from './workloads';

export type { ValidationIssue } from './issues';
export { formatIssues };
export type { Container, Pod, PodSpec, PodStatus, PodTemplateSpec } from './pod';
export type { Deployment, DeploymentSpec, Job, JobSpec, ReplicaSet } from './workloads';
export type { CronJob, CronJobSpec } from './cron-job';
export type { Endpoints, Service, ServicePort, ServiceSpec } from './service';
export type { ConfigMap, Secret } from './config';
export type { LimitRange, LimitRangeItem, ResourceQuota } from './policy';
export type { Event, Namespace, Node, NodeSpec, NodeStatus } from './cluster';
export type { LabelSelector } from './selector';

export type ValidationResult =
  | { ok: true; object: ApiObject; warnings: string[] }
  | { ok: false; errors: ValidationIssue[]; warnings: string[] };

const SCHEMAS: Record<string, z.ZodType> = {
  Namespace: namespaceSchema,
  Node: nodeSchema,
  Pod: podSchema,
  Service: serviceSchema,
  Endpoints: endpointsSchema,
  ConfigMap: configMapSchema,
  Secret: secretSchema,
  LimitRange: limitRangeSchema,
  ResourceQuota: resourceQuotaSchema,
  Event: eventSchema,
  Deployment: deploymentSchema,
  ReplicaSet: replicaSetSchema,
  Job: jobSchema,
  CronJob: cronJobSchema,
};

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A deep copy in which `null` object fields are absent: Kubernetes decodes
 * null as "not set", and generated manifests are full of
 * `creationTimestamp: null` and `status: {}`-style placeholders.
 */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (!isObject(v)) return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
  return out;
}

/** apiVersion and kind first: without them there is no schema to check the rest against. */
function checkType(o: Json): ValidationIssue[] {
  const errors: ValidationIssue[] = [];
  const { apiVersion, kind } = o;
  for (const [field, v] of [
    ['apiVersion', apiVersion],
    ['kind', kind],
  ] as const) {
    if (v === undefined || v === '') errors.push({ path: field, message: 'required' });
    else if (typeof v !== 'string')
      errors.push({ path: field, message: `expected string, got ${jsonType(v)}` });
  }
  if (typeof kind !== 'string' || kind === '') return errors;
  const info = kindInfo(kind);
  if (!info) {
    const known = KINDS.map((k) => k.kind).join(', ');
    errors.push({ path: 'kind', message: `unknown kind "${kind}"; known kinds: ${known}` });
  } else if (
    typeof apiVersion === 'string' &&
    apiVersion !== '' &&
    apiVersion !== info.apiVersion
  ) {
    errors.push({
      path: 'apiVersion',
      message: `expected "${info.apiVersion}" for ${kind}, got "${apiVersion}"`,
    });
  }
  return errors;
}

/** Validates a decoded manifest (any JSON value), fills defaults, returns a NEW object (never mutates input). */
export function validateObject(raw: unknown): ValidationResult {
  if (!isObject(raw))
    return {
      ok: false,
      errors: [{ path: '(root)', message: `expected object, got ${jsonType(raw)}` }],
      warnings: [],
    };
  const input = withoutNulls(raw) as Json;
  const typeErrors = checkType(input);
  if (typeErrors.length > 0) return { ok: false, errors: typeErrors, warnings: [] };
  const kind = input.kind as string;
  const schema = SCHEMAS[kind];
  if (!schema)
    return {
      ok: false,
      errors: [{ path: 'kind', message: `no schema for kind "${kind}"` }],
      warnings: [],
    };
  const r = schema.safeParse(input, { reportInput: true, error: errorMap });
  if (!r.success) {
    return {
      ok: false,
      errors: toValidationIssues(r.error.issues),
      warnings: unimplementedFields(kind, input),
    };
  }
  return { ok: true, object: r.data as ApiObject, warnings: unimplementedFields(kind, r.data) };
}

import { status } from '@grpc/grpc-js';
import { formatIssues, validateObject } from '../api/schema';
import { parseQuantity } from '../api/schema/quantity';
import { ApiObject, DEFAULT_NAMESPACE, kindInfo } from '../api/types';
import { ApiError } from './api-error';
import { Command } from './store/commands';
import { ClusterStore, describe } from './store/cluster-store';
import { quotaViolation } from './store/quota';
import { stableStringify } from './store/stable-json';

/** What admission needs from the world: the time and fresh identifiers (injected for tests). */
export interface AdmissionEnv {
  now(): Date;
  uid(): string;
  /** Random suffix for generateName (5 characters, as Kubernetes does). */
  suffix(): string;
}

export interface Admitted {
  command: Command;
  object: ApiObject;
  warnings: string[];
}

/**
 * What JSON.parse said, without the excerpt of the input V8 quotes
 * (`Unexpected token 'x', "…" is not valid JSON`): the input may be a Secret.
 */
export function jsonSyntaxError(err: Error): string {
  return err.message.replace(/^Unexpected token .*, ".*" is not valid JSON$/s, 'unexpected token');
}

/** Parses and validates one object; INVALID_ARGUMENT naming every bad field otherwise. */
export function validateJson(json: string): { object: ApiObject; warnings: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ApiError(
      status.INVALID_ARGUMENT,
      `object_json: not valid JSON: ${jsonSyntaxError(err as Error)}`,
    );
  }
  const r = validateObject(raw);
  if (!r.ok) {
    const meta = (raw as { kind?: unknown; metadata?: { name?: unknown } } | null) ?? {};
    const what =
      typeof meta.kind === 'string' && typeof meta.metadata?.name === 'string'
        ? `${meta.kind} "${meta.metadata.name}" is invalid`
        : 'invalid object';
    throw new ApiError(status.INVALID_ARGUMENT, `${what}:\n${formatIssues(r.errors)}`);
  }
  const object = r.object;
  const info = kindInfo(object.kind)!;
  if (info.namespaced) object.metadata.namespace ??= DEFAULT_NAMESPACE;
  return { object, warnings: r.warnings };
}

/** An RFC 3339 timestamp at second precision, as Kubernetes writes them. */
export function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Admission for a new object: names, system fields, LimitRange defaults and limits, quota. */
export function admitCreate(store: ClusterStore, o: ApiObject, env: AdmissionEnv): ApiObject {
  // `o` is this call's own copy (fresh from validation): filled in place.
  const m = o.metadata;
  if (!m.name) {
    if (!m.generateName)
      throw new ApiError(
        status.INVALID_ARGUMENT,
        'metadata.name: required (or set metadata.generateName)',
      );
    m.name = m.generateName + env.suffix();
  }
  m.uid = env.uid();
  m.creationTimestamp = timestamp(env.now());
  delete m.resourceVersion;
  delete m.generation;
  delete m.deletionTimestamp;
  if (store.get(o.kind, m.namespace, m.name))
    throw new ApiError(status.ALREADY_EXISTS, `${describe(o)} already exists`);
  if (m.namespace !== undefined && !store.namespaceExists(m.namespace))
    throw new ApiError(
      status.NOT_FOUND,
      `namespace "${m.namespace}" not found (create it first, or pick another)`,
    );
  if (o.kind === 'Pod') applyLimitRanges(store, o);
  const quota = quotaViolation(store.objects, o);
  if (quota)
    throw new ApiError(status.FAILED_PRECONDITION, `${describe(o)} is forbidden: ${quota}`);
  return o;
}

type Res = Record<string, string | number>;
interface ContainerShape {
  name: string;
  resources?: { requests?: Res; limits?: Res };
}
interface LimitItem {
  type: string;
  default?: Res;
  defaultRequest?: Res;
  max?: Res;
  min?: Res;
  maxLimitRequestRatio?: Res;
}

/**
 * The LimitRanger admission plugin: containers without requests or limits
 * get the namespace's defaults, then every container must fit min and max.
 */
export function applyLimitRanges(store: ClusterStore, pod: ApiObject): void {
  const ranges = store.list({ kind: 'LimitRange', namespace: pod.metadata.namespace });
  if (ranges.length === 0) return;
  const spec = pod.spec as { containers?: ContainerShape[]; initContainers?: ContainerShape[] };
  for (const lr of ranges) {
    const limits = ((lr.object.spec as { limits?: LimitItem[] } | undefined)?.limits ?? []).filter(
      (l) => l.type === 'Container',
    );
    for (const l of limits) {
      for (const [field, cs] of [
        ['containers', spec.containers ?? []],
        ['initContainers', spec.initContainers ?? []],
      ] as const) {
        cs.forEach((c, i) => {
          const res = (c.resources ??= {});
          for (const [r, q] of Object.entries(l.default ?? {})) {
            res.limits ??= {};
            res.limits[r] ??= q;
          }
          for (const [r, q] of Object.entries(l.defaultRequest ?? l.default ?? {})) {
            res.requests ??= {};
            res.requests[r] ??=
              res.limits?.[r] !== undefined && l.defaultRequest === undefined ? res.limits[r] : q;
          }
          const where = `spec.${field}[${i}] (${c.name})`;
          const rule = `LimitRange "${lr.object.metadata.name}"`;
          for (const [r, max] of Object.entries(l.max ?? {})) {
            const v = res.limits?.[r];
            if (v === undefined)
              throw new ApiError(
                status.FAILED_PRECONDITION,
                `${where}: ${rule} requires a ${r} limit (max ${max})`,
              );
            if (parseQuantity(v) > parseQuantity(max))
              throw new ApiError(
                status.FAILED_PRECONDITION,
                `${where}: maximum ${r} usage per Container is ${max} (${rule}), but limit is ${v}`,
              );
          }
          for (const [r, min] of Object.entries(l.min ?? {})) {
            const v = res.requests?.[r];
            if (v === undefined || parseQuantity(v) < parseQuantity(min))
              throw new ApiError(
                status.FAILED_PRECONDITION,
                `${where}: minimum ${r} usage per Container is ${min} (${rule}), but request is ${v ?? 'not set'}`,
              );
          }
        });
      }
    }
  }
}

/** Where apply keeps the manifest it was last given, as kubectl does. */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

type Json = Record<string, unknown>;
const isMap = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Records a manifest as given (before defaults are filled in) in its own
 * last-applied annotation, so the next apply knows which fields the user
 * set. Returns the JSON unchanged when it is not an object with metadata:
 * validation then says what is wrong.
 */
export function recordLastApplied(json: string): string {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return json;
  }
  if (!isMap(raw) || !isMap(raw.metadata)) return json;
  const annotations = isMap(raw.metadata.annotations) ? { ...raw.metadata.annotations } : {};
  delete annotations[LAST_APPLIED];
  const metadata: Json = { ...raw.metadata, annotations };
  if (Object.keys(annotations).length === 0) delete metadata.annotations;
  const manifest = { ...raw, metadata };
  annotations[LAST_APPLIED] = JSON.stringify(manifest);
  return JSON.stringify({ ...raw, metadata: { ...raw.metadata, annotations } });
}

/**
 * A three-way merge like kubectl's client-side apply: fields the manifest
 * sets replace the live ones, fields the previous manifest set and this one
 * drops are removed, and fields nobody applied (a controller's annotations,
 * a `baton scale` of a manifest without replicas) are kept. Maps merge key
 * by key; lists are replaced whole.
 */
function merge3(last: unknown, next: unknown, live: unknown): unknown {
  if (!isMap(next) || !isMap(live)) return structuredClone(next);
  const out: Json = { ...live };
  const prev = isMap(last) ? last : {};
  for (const k of Object.keys(prev)) if (!(k in next)) delete out[k];
  for (const [k, v] of Object.entries(next)) out[k] = merge3(prev[k], v, live[k]);
  return out;
}

function parseManifest(json: string | undefined): Json {
  if (json === undefined) return {};
  try {
    const v: unknown = JSON.parse(json);
    return isMap(v) ? v : {};
  } catch {
    return {};
  }
}

/**
 * Apply to an existing object: the manifest recorded in `desired` (see
 * recordLastApplied) merged three ways with the previous one and the live
 * object, then validated and defaulted again. System fields and status stay
 * as stored. Returns undefined when nothing would change.
 */
export function mergeForApply(cur: ApiObject, desired: ApiObject): ApiObject | undefined {
  const applied = desired.metadata.annotations?.[LAST_APPLIED];
  const live = structuredClone(cur) as unknown as Json;
  delete live.status;
  const next = parseManifest(applied);
  const merged = merge3(parseManifest(cur.metadata.annotations?.[LAST_APPLIED]), next, live) as {
    metadata: Json & { annotations?: Record<string, string> };
  };
  if (applied !== undefined)
    merged.metadata.annotations = { ...merged.metadata.annotations, [LAST_APPLIED]: applied };
  const r = validateObject(merged);
  if (!r.ok)
    throw new ApiError(
      status.INVALID_ARGUMENT,
      `${describe(cur)} is invalid once merged with the applied manifest:\n${formatIssues(r.errors)}`,
    );
  const o = r.object;
  const m = o.metadata;
  m.uid = cur.metadata.uid;
  m.namespace = cur.metadata.namespace;
  m.name = cur.metadata.name;
  m.creationTimestamp = cur.metadata.creationTimestamp;
  m.generation = cur.metadata.generation;
  m.resourceVersion = cur.metadata.resourceVersion;
  delete m.generateName;
  if (cur.metadata.generateName) m.generateName = cur.metadata.generateName;
  if (cur.status !== undefined) o.status = cur.status;
  else delete o.status;
  return stableStringify(o) === stableStringify(cur) ? undefined : o;
}

/** The command for a validated update of an existing object. */
export function updateCommand(
  cur: ApiObject,
  o: ApiObject,
  subresource: 'status' | undefined,
  expectedRevision: number | undefined,
): Command {
  return { op: 'update', object: o, uid: cur.metadata.uid!, expectedRevision, subresource };
}

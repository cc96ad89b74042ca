/**
 * Field schemas shared by several kinds: integers, ports, quantities,
 * timestamps, label maps, conditions. Messages are written for people:
 * `must be between 1 and 65535, inclusive`, not zod's defaults.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { labelValue, qualifiedName } from './names';
import { parseQuantity } from './quantity';

/** "string", "integer", "array", "null"…: the JSON type of a value, for messages. */
export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export const int = () => z.int();
export const nonNegInt = () => z.int().min(0);
export const positiveInt = () => z.int().min(1);

export const port = () =>
  z.int().refine((p) => p >= 1 && p <= 65535, 'must be between 1 and 65535, inclusive');

/** An integer or a string, like Kubernetes' IntOrString (targetPort, maxSurge). */
export const intOrString = () =>
  z.custom<number | string>(
    (v) => (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'string',
    {
      error: (iss) =>
        iss.input === undefined
          ? 'required'
          : `expected integer or string, got ${jsonType(iss.input)}`,
    },
  );

/** A quantity as written in YAML: "100m", "128Mi", 0.5, 2. Kept as written. */
export const quantity = () =>
  z
    .custom<number | string>((v) => typeof v === 'number' || typeof v === 'string', {
      error: (iss) =>
        iss.input === undefined
          ? 'required'
          : `expected quantity (string or number), got ${jsonType(iss.input)}`,
    })
    .superRefine((v, ctx) => {
      try {
        parseQuantity(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    });

/**
 * A quantity's value, or NaN when it does not parse. Object-level checks
 * run even when a field-level check failed, so they must not throw; NaN
 * compares false with everything, so no second error is reported.
 */
export function quantityValue(q: string | number): number {
  try {
    return parseQuantity(q);
  } catch {
    return NaN;
  }
}

/** Resource name → quantity: `{cpu: 500m, memory: 1Gi, nvidia.com/gpu: 1}`; never negative. */
export const resourceList = () =>
  z.record(z.string(), quantity()).superRefine((m, ctx) => {
    for (const [name, q] of Object.entries(m)) {
      const bad = qualifiedName(name);
      if (bad)
        ctx.addIssue({ code: 'custom', path: [name], message: `invalid resource name: ${bad}` });
      else if (quantityValue(q) < 0)
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'must be greater than or equal to 0',
        });
    }
  });

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 time, e.g. "2024-05-01T12:00:00Z" (Event.eventTime has microseconds). */
export const timestamp = () =>
  z.string().refine((s) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)), {
    message: 'must be an RFC 3339 time, e.g. "2024-05-01T12:00:00Z"',
  });

export const ipAddress = () =>
  z.string().refine((s) => isIP(s) !== 0, { message: 'must be a valid IP address, e.g. 10.1.2.3' });

/** `metadata.labels`, a Service selector or a nodeSelector: qualified keys, label values. */
export const labelMap = () =>
  z.record(z.string(), z.string()).superRefine((m, ctx) => {
    for (const [k, v] of Object.entries(m)) {
      const badKey = qualifiedName(k);
      if (badKey)
        ctx.addIssue({ code: 'custom', path: [k], message: `invalid label key "${k}": ${badKey}` });
      const badValue = labelValue(v);
      if (badValue)
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: `invalid label value "${v}": ${badValue}`,
        });
    }
  });

const ANNOTATIONS_MAX_BYTES = 256 * 1024;

export const annotationMap = () =>
  z.record(z.string(), z.string()).superRefine((m, ctx) => {
    let size = 0;
    for (const [k, v] of Object.entries(m)) {
      size += Buffer.byteLength(k) + Buffer.byteLength(v);
      const bad = qualifiedName(k.toLowerCase());
      if (bad)
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: `invalid annotation key "${k}": ${bad}`,
        });
    }
    if (size > ANNOTATIONS_MAX_BYTES)
      ctx.addIssue({
        code: 'custom',
        message: `may not be more than ${ANNOTATIONS_MAX_BYTES} bytes in total`,
      });
  });

export const conditionStatus = () => z.enum(['True', 'False', 'Unknown']);

/** A status condition, in the union of the shapes the built-in kinds use. */
export const condition = () =>
  z.strictObject({
    type: z.string().min(1),
    status: conditionStatus(),
    observedGeneration: nonNegInt().optional(),
    lastProbeTime: timestamp().optional(),
    lastHeartbeatTime: timestamp().optional(),
    lastUpdateTime: timestamp().optional(),
    lastTransitionTime: timestamp().optional(),
    reason: z.string().optional(),
    message: z.string().optional(),
  });

/** Adds `path: duplicate <what> "k"` for each item whose key an earlier item already had. */
export function checkUnique<T, C>(
  ctx: z.RefinementCtx<C>,
  items: readonly T[],
  key: (t: T) => string | undefined,
  path: (i: number) => (string | number)[],
  what: string,
): void {
  const seen = new Set<string>();
  items.forEach((t, i) => {
    const k = key(t);
    if (k === undefined) return;
    if (seen.has(k))
      ctx.addIssue({ code: 'custom', path: path(i), message: `duplicate ${what} "${k}"` });
    seen.add(k);
  });
}

/** A reference to any object (Endpoints' targetRef, an Event's involvedObject). */
export const objectReference = () =>
  z.strictObject({
    kind: z.string().optional(),
    namespace: z.string().optional(),
    name: z.string().optional(),
    uid: z.string().optional(),
    apiVersion: z.string().optional(),
    resourceVersion: z.string().optional(),
    fieldPath: z.string().optional(),
  });

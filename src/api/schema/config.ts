/**
 * ConfigMap and Secret: named bags of keys that pods read as environment
 * variables or files. Secret `data` is base64, as in Kubernetes' JSON;
 * `stringData` is merged into `data` and dropped, as the Kubernetes API
 * server does, so readers only ever look at `data`.
 */
import { z } from 'zod';
import { objectMeta } from './meta';
import { configKey } from './names';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Kubernetes' limit on the total size of a ConfigMap's or Secret's values. */
const MAX_BYTES = 1024 * 1024;

type Ctx<T> = z.RefinementCtx<T>;

function checkKeys<T>(field: string, m: Record<string, string> | undefined, ctx: Ctx<T>) {
  for (const k of Object.keys(m ?? {})) {
    const bad = configKey(k);
    if (bad)
      ctx.addIssue({ code: 'custom', path: [field, k], message: `invalid key "${k}": ${bad}` });
  }
}

function checkBase64<T>(field: string, m: Record<string, string> | undefined, ctx: Ctx<T>) {
  for (const [k, v] of Object.entries(m ?? {}))
    if (!BASE64.test(v))
      ctx.addIssue({ code: 'custom', path: [field, k], message: 'invalid base64 value' });
}

function checkSize<T>(bytes: number, ctx: Ctx<T>) {
  if (bytes > MAX_BYTES)
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `data may not be more than ${MAX_BYTES} bytes in total, got ${bytes}`,
    });
}

const decodedSize = (b64: string) => Buffer.from(b64, 'base64').length;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export const configMapSchema = z
  .strictObject({
    apiVersion: z.literal('v1'),
    kind: z.literal('ConfigMap'),
    metadata: objectMeta('ConfigMap', 'subdomain', true),
    data: z.record(z.string(), z.string()).optional(),
    binaryData: z.record(z.string(), z.string()).optional(),
    immutable: z.boolean().optional(),
  })
  .superRefine((cm, ctx) => {
    checkKeys('data', cm.data, ctx);
    checkKeys('binaryData', cm.binaryData, ctx);
    checkBase64('binaryData', cm.binaryData, ctx);
    for (const k of Object.keys(cm.binaryData ?? {}))
      if (cm.data && Object.prototype.hasOwnProperty.call(cm.data, k))
        ctx.addIssue({
          code: 'custom',
          path: ['binaryData', k],
          message: `duplicate of key "${k}" in data`,
        });
    checkSize(
      sum(Object.values(cm.data ?? {}).map((v) => Buffer.byteLength(v))) +
        sum(Object.values(cm.binaryData ?? {}).map(decodedSize)),
      ctx,
    );
  });

/** Keys that Kubernetes requires for the well-known secret types. */
const REQUIRED_KEYS: Record<string, string[]> = {
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
};

export const secretSchema = z
  .strictObject({
    apiVersion: z.literal('v1'),
    kind: z.literal('Secret'),
    metadata: objectMeta('Secret', 'subdomain', true),
    type: z.string().min(1).default('Opaque'),
    data: z.record(z.string(), z.string()).optional(),
    stringData: z.record(z.string(), z.string()).optional(),
    immutable: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    checkKeys('data', s.data, ctx);
    checkKeys('stringData', s.stringData, ctx);
    checkBase64('data', s.data, ctx);
    const keys = new Set([...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})]);
    for (const k of REQUIRED_KEYS[s.type] ?? [])
      if (!keys.has(k))
        ctx.addIssue({
          code: 'custom',
          path: ['data', k],
          message: `required for a secret of type "${s.type}"`,
        });
    if (s.type === 'kubernetes.io/basic-auth' && !keys.has('username') && !keys.has('password'))
      ctx.addIssue({
        code: 'custom',
        path: ['data'],
        message:
          'must have "username" or "password" for a secret of type "kubernetes.io/basic-auth"',
      });
    checkSize(
      sum(Object.values(s.data ?? {}).map(decodedSize)) +
        sum(Object.values(s.stringData ?? {}).map((v) => Buffer.byteLength(v))),
      ctx,
    );
  })
  .transform(({ stringData, ...s }) => {
    if (stringData === undefined) return s;
    const data = { ...s.data };
    for (const [k, v] of Object.entries(stringData))
      data[k] = Buffer.from(v, 'utf8').toString('base64');
    return { ...s, data };
  });

export type ConfigMap = z.output<typeof configMapSchema>;
export type Secret = z.output<typeof secretSchema>;

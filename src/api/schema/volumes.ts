/**
 * Pod volumes. Baton implements emptyDir, hostPath, configMap and secret;
 * persistentVolumeClaim, projected and downwardAPI are accepted (kubectl
 * output has a projected token volume in every pod) and reported as
 * warnings by `unimplemented.ts`.
 */
import { z } from 'zod';
import { nonNegInt, quantity } from './fields';
import { configKey, dns1123Label } from './names';
import { objectFieldSelector, resourceFieldSelector } from './container';

const mode = () =>
  z
    .int()
    .refine(
      (m) => m >= 0 && m <= 0o777,
      'must be a file mode between 0 and 0777 (octal), both inclusive',
    );

const keyToPath = () =>
  z
    .strictObject({ key: z.string(), path: z.string().min(1), mode: mode().optional() })
    .superRefine((k, ctx) => {
      const bad = configKey(k.key);
      if (bad)
        ctx.addIssue({ code: 'custom', path: ['key'], message: `invalid key "${k.key}": ${bad}` });
      if (k.path.startsWith('/') || k.path.split('/').includes('..'))
        ctx.addIssue({
          code: 'custom',
          path: ['path'],
          message: "must be a relative path without '..'",
        });
    });

const configMapSource = () =>
  z.strictObject({
    name: z.string(),
    items: z.array(keyToPath()).optional(),
    defaultMode: mode().optional(),
    optional: z.boolean().optional(),
  });

const secretSource = () =>
  z.strictObject({
    secretName: z.string(),
    items: z.array(keyToPath()).optional(),
    defaultMode: mode().optional(),
    optional: z.boolean().optional(),
  });

const downwardAPIFile = () =>
  z.strictObject({
    path: z.string().min(1),
    fieldRef: objectFieldSelector().optional(),
    resourceFieldRef: resourceFieldSelector().optional(),
    mode: mode().optional(),
  });

const projection = () =>
  z.strictObject({
    serviceAccountToken: z
      .strictObject({
        audience: z.string().optional(),
        expirationSeconds: nonNegInt().optional(),
        path: z.string(),
      })
      .optional(),
    configMap: z
      .strictObject({
        name: z.string(),
        items: z.array(keyToPath()).optional(),
        optional: z.boolean().optional(),
      })
      .optional(),
    secret: z
      .strictObject({
        name: z.string(),
        items: z.array(keyToPath()).optional(),
        optional: z.boolean().optional(),
      })
      .optional(),
    downwardAPI: z.strictObject({ items: z.array(downwardAPIFile()).optional() }).optional(),
  });

const HOST_PATH_TYPES = [
  '',
  'DirectoryOrCreate',
  'Directory',
  'FileOrCreate',
  'File',
  'Socket',
  'CharDevice',
  'BlockDevice',
] as const;

const SOURCES = [
  'emptyDir',
  'hostPath',
  'configMap',
  'secret',
  'persistentVolumeClaim',
  'projected',
  'downwardAPI',
] as const;

export const volume = () =>
  z
    .strictObject({
      name: z.string(),
      emptyDir: z
        .strictObject({
          medium: z.enum(['', 'Memory']).optional(),
          sizeLimit: quantity().optional(),
        })
        .optional(),
      hostPath: z
        .strictObject({ path: z.string().min(1), type: z.enum(HOST_PATH_TYPES).optional() })
        .optional(),
      configMap: configMapSource().optional(),
      secret: secretSource().optional(),
      persistentVolumeClaim: z
        .strictObject({ claimName: z.string().min(1), readOnly: z.boolean().optional() })
        .optional(),
      projected: z
        .strictObject({ sources: z.array(projection()).optional(), defaultMode: mode().optional() })
        .optional(),
      downwardAPI: z
        .strictObject({
          items: z.array(downwardAPIFile()).optional(),
          defaultMode: mode().optional(),
        })
        .optional(),
    })
    .superRefine((v, ctx) => {
      const bad = dns1123Label(v.name);
      if (bad)
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          message: `invalid volume name "${v.name}": ${bad}`,
        });
      const set = SOURCES.filter((s) => v[s] !== undefined);
      if (set.length === 0)
        ctx.addIssue({
          code: 'custom',
          message: `must specify one volume type: ${SOURCES.join(', ')}`,
        });
      if (set.length > 1)
        ctx.addIssue({
          code: 'custom',
          path: [set[1]],
          message: `may not specify more than one volume type (${set.join(' and ')} given)`,
        });
    });

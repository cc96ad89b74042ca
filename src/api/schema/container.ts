/**
 * A container: image, command, environment, ports, resources, mounts,
 * probes. Defaults follow Kubernetes: imagePullPolicy from the image tag,
 * port protocol TCP, probe timing 10s period / 1s timeout / 1 success /
 * 3 failures.
 */
import { z } from 'zod';
import {
  checkUnique,
  intOrString,
  nonNegInt,
  port,
  positiveInt,
  quantity,
  quantityValue,
  resourceList,
} from './fields';
import { configKey, dns1123Label, dns1123Subdomain, envVarName, ianaSvcName } from './names';
import { securityContext } from './security';

type Ctx<T> = z.RefinementCtx<T>;

function exactlyOne<T extends object>(v: T, keys: (keyof T & string)[], ctx: Ctx<T>, what: string) {
  const set = keys.filter((k) => v[k] !== undefined);
  if (set.length === 0)
    ctx.addIssue({ code: 'custom', message: `must specify one ${what}: ${keys.join(', ')}` });
  if (set.length > 1)
    ctx.addIssue({
      code: 'custom',
      path: [set[1]],
      message: `may not specify more than one ${what} (${set.join(' and ')} given)`,
    });
}

// ---- environment --------------------------------------------------------

const keySelector = () =>
  z.strictObject({
    name: z.string().optional(),
    key: z.string(),
    optional: z.boolean().optional(),
  });

/** The downward-API fields an env var may read (Kubernetes' list for env, not volumes). */
const ENV_FIELD_PATHS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'metadata.labels',
  'metadata.annotations',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
];

export const objectFieldSelector = () =>
  z.strictObject({ apiVersion: z.string().optional(), fieldPath: z.string() });

export const resourceFieldSelector = () =>
  z.strictObject({
    containerName: z.string().optional(),
    resource: z.string(),
    divisor: quantity().optional(),
  });

const envVarSource = () =>
  z
    .strictObject({
      configMapKeyRef: keySelector().optional(),
      secretKeyRef: keySelector().optional(),
      fieldRef: objectFieldSelector().optional(),
      resourceFieldRef: resourceFieldSelector().optional(),
    })
    .superRefine((s, ctx) => {
      exactlyOne(
        s,
        ['configMapKeyRef', 'secretKeyRef', 'fieldRef', 'resourceFieldRef'],
        ctx,
        'source',
      );
      const f = s.fieldRef?.fieldPath;
      if (f !== undefined) {
        const base = f.replace(/\['[^']*'\]$/, '');
        const subscripted = base !== f;
        const ok = subscripted
          ? base === 'metadata.labels' || base === 'metadata.annotations'
          : ENV_FIELD_PATHS.includes(f) && f !== 'metadata.labels' && f !== 'metadata.annotations';
        if (!ok)
          ctx.addIssue({
            code: 'custom',
            path: ['fieldRef', 'fieldPath'],
            message: `unsupported value "${f}": supported values: ${ENV_FIELD_PATHS.map((p) => `"${p}"`).join(', ')} (labels and annotations as metadata.labels['key'])`,
          });
      }
    });

const envVar = () =>
  z
    .strictObject({
      name: z.string(),
      value: z.string().optional(),
      valueFrom: envVarSource().optional(),
    })
    .superRefine((e, ctx) => {
      const bad = envVarName(e.name);
      if (bad)
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          message: `invalid environment variable name "${e.name}": ${bad}`,
        });
      if (e.value !== undefined && e.value !== '' && e.valueFrom !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['valueFrom'],
          message: 'may not be specified when `value` is not empty',
        });
    });

const envFromSource = () =>
  z
    .strictObject({
      prefix: z.string().optional(),
      configMapRef: z
        .strictObject({ name: z.string(), optional: z.boolean().optional() })
        .optional(),
      secretRef: z.strictObject({ name: z.string(), optional: z.boolean().optional() }).optional(),
    })
    .superRefine((s, ctx) => exactlyOne(s, ['configMapRef', 'secretRef'], ctx, 'source'));

// ---- ports, resources, mounts -------------------------------------------

export const protocol = () => z.enum(['TCP', 'UDP', 'SCTP']);

const containerPort = () =>
  z
    .strictObject({
      name: z.string().optional(),
      containerPort: port(),
      hostPort: port().optional(),
      hostIP: z.string().optional(),
      protocol: protocol().default('TCP'),
    })
    .superRefine((p, ctx) => {
      const bad = p.name === undefined ? undefined : ianaSvcName(p.name);
      if (bad)
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          message: `invalid port name "${p.name}": ${bad}`,
        });
    });

const resourceRequirements = () =>
  z
    .strictObject({
      requests: resourceList().optional(),
      limits: resourceList().optional(),
      claims: z
        .array(z.strictObject({ name: z.string(), request: z.string().optional() }))
        .optional(),
    })
    .superRefine((r, ctx) => {
      for (const [name, req] of Object.entries(r.requests ?? {})) {
        const lim = r.limits?.[name];
        if (lim !== undefined && quantityValue(req) > quantityValue(lim))
          ctx.addIssue({
            code: 'custom',
            path: ['requests', name],
            message: `must be less than or equal to ${name} limit of ${lim}`,
          });
      }
    });

const volumeMount = () =>
  z.strictObject({
    name: z.string(),
    mountPath: z.string().min(1),
    readOnly: z.boolean().optional(),
    recursiveReadOnly: z.enum(['Disabled', 'IfPossible', 'Enabled']).optional(),
    subPath: z.string().optional(),
    subPathExpr: z.string().optional(),
    mountPropagation: z.enum(['None', 'HostToContainer', 'Bidirectional']).optional(),
  });

// ---- probes and lifecycle -----------------------------------------------

const httpGet = () =>
  z.strictObject({
    path: z.string().optional(),
    port: intOrString(),
    host: z.string().optional(),
    scheme: z.enum(['HTTP', 'HTTPS']).default('HTTP'),
    httpHeaders: z.array(z.strictObject({ name: z.string(), value: z.string() })).optional(),
  });
const tcpSocket = () => z.strictObject({ port: intOrString(), host: z.string().optional() });
const execAction = () => z.strictObject({ command: z.array(z.string()).optional() });

const probe = () =>
  z
    .strictObject({
      httpGet: httpGet().optional(),
      tcpSocket: tcpSocket().optional(),
      exec: execAction().optional(),
      grpc: z.strictObject({ port: port(), service: z.string().optional() }).optional(),
      initialDelaySeconds: nonNegInt().optional(),
      periodSeconds: positiveInt().default(10),
      timeoutSeconds: positiveInt().default(1),
      successThreshold: positiveInt().default(1),
      failureThreshold: positiveInt().default(3),
      terminationGracePeriodSeconds: positiveInt().optional(),
    })
    .superRefine((p, ctx) => {
      exactlyOne(p, ['httpGet', 'tcpSocket', 'exec', 'grpc'], ctx, 'handler');
      for (const h of ['httpGet', 'tcpSocket'] as const)
        checkNamedPort(p[h]?.port, [h, 'port'], ctx);
    });

function checkNamedPort<T>(p: number | string | undefined, path: string[], ctx: Ctx<T>): void {
  if (p === undefined) return;
  const bad =
    typeof p === 'number'
      ? p >= 1 && p <= 65535
        ? undefined
        : 'must be between 1 and 65535, inclusive'
      : ianaSvcName(p);
  if (bad) ctx.addIssue({ code: 'custom', path, message: bad });
}

const lifecycleHandler = () =>
  z
    .strictObject({
      exec: execAction().optional(),
      httpGet: httpGet().optional(),
      tcpSocket: tcpSocket().optional(),
      sleep: z.strictObject({ seconds: nonNegInt() }).optional(),
    })
    .superRefine((h, ctx) =>
      exactlyOne(h, ['exec', 'httpGet', 'tcpSocket', 'sleep'], ctx, 'handler'),
    );

const lifecycle = () =>
  z.strictObject({
    postStart: lifecycleHandler().optional(),
    preStop: lifecycleHandler().optional(),
    stopSignal: z.string().optional(),
  });

// ---- the container --------------------------------------------------------

/**
 * Kubernetes' rule: `Always` when the tag is `latest` or there is neither a
 * tag nor a digest, `IfNotPresent` otherwise.
 */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  const at = image.indexOf('@');
  if (at >= 0) return 'IfNotPresent';
  const lastSlash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  const tag = colon > lastSlash ? image.slice(colon + 1) : 'latest';
  return tag === 'latest' ? 'Always' : 'IfNotPresent';
}

export const container = () =>
  z
    .strictObject({
      name: z.string(),
      image: z.string().min(1),
      imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
      command: z.array(z.string()).optional(),
      args: z.array(z.string()).optional(),
      workingDir: z.string().optional(),
      ports: z.array(containerPort()).optional(),
      env: z.array(envVar()).optional(),
      envFrom: z.array(envFromSource()).optional(),
      resources: resourceRequirements().optional(),
      resizePolicy: z
        .array(
          z.strictObject({
            resourceName: z.string(),
            restartPolicy: z.enum(['NotRequired', 'RestartContainer']),
          }),
        )
        .optional(),
      restartPolicy: z.enum(['Always']).optional(),
      volumeMounts: z.array(volumeMount()).optional(),
      volumeDevices: z
        .array(z.strictObject({ name: z.string(), devicePath: z.string() }))
        .optional(),
      livenessProbe: probe().optional(),
      readinessProbe: probe().optional(),
      startupProbe: probe().optional(),
      lifecycle: lifecycle().optional(),
      terminationMessagePath: z.string().optional(),
      terminationMessagePolicy: z.enum(['File', 'FallbackToLogsOnError']).optional(),
      securityContext: securityContext().optional(),
      stdin: z.boolean().optional(),
      stdinOnce: z.boolean().optional(),
      tty: z.boolean().optional(),
    })
    .superRefine((c, ctx) => {
      const bad = dns1123Label(c.name);
      if (bad)
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          message: `invalid container name "${c.name}": ${bad}`,
        });
      const ports = c.ports ?? [];
      checkUnique(
        ctx,
        ports,
        (p) => p.name,
        (i) => ['ports', i, 'name'],
        'port name',
      );
      checkUnique(
        ctx,
        ports,
        (p) => `${p.containerPort}/${p.protocol}`,
        (i) => ['ports', i, 'containerPort'],
        'port',
      );
      checkUnique(
        ctx,
        c.volumeMounts ?? [],
        (m) => m.mountPath,
        (i) => ['volumeMounts', i, 'mountPath'],
        'mountPath',
      );
      (c.volumeMounts ?? []).forEach((m, i) => {
        const badName = dns1123Label(m.name);
        if (badName)
          ctx.addIssue({
            code: 'custom',
            path: ['volumeMounts', i, 'name'],
            message: `invalid volume name "${m.name}": ${badName}`,
          });
      });
      for (const p of ['livenessProbe', 'startupProbe'] as const) {
        const t = c[p]?.successThreshold;
        if (t !== undefined && t !== 1)
          ctx.addIssue({ code: 'custom', path: [p, 'successThreshold'], message: 'must be 1' });
      }
      (c.envFrom ?? []).forEach((e, i) => {
        const prefix = e.prefix ?? '';
        if (prefix !== '' && envVarName(prefix))
          ctx.addIssue({
            code: 'custom',
            path: ['envFrom', i, 'prefix'],
            message: `invalid prefix: ${envVarName(prefix)}`,
          });
      });
      (c.env ?? []).forEach((e, i) => {
        const ref = e.valueFrom?.configMapKeyRef ?? e.valueFrom?.secretKeyRef;
        const what = e.valueFrom?.configMapKeyRef ? 'configMapKeyRef' : 'secretKeyRef';
        if (ref?.name !== undefined && dns1123Subdomain(ref.name))
          ctx.addIssue({
            code: 'custom',
            path: ['env', i, 'valueFrom', what, 'name'],
            message: `invalid name "${ref.name}": ${dns1123Subdomain(ref.name)}`,
          });
        if (ref !== undefined && configKey(ref.key))
          ctx.addIssue({
            code: 'custom',
            path: ['env', i, 'valueFrom', what, 'key'],
            message: `invalid key "${ref.key}": ${configKey(ref.key)}`,
          });
      });
    })
    .transform((c) => ({ ...c, imagePullPolicy: c.imagePullPolicy ?? defaultPullPolicy(c.image) }));

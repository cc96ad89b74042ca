/**
 * Pods: the spec (containers, volumes, placement) with Kubernetes'
 * defaults, the pod template workloads embed, and the status the node
 * agent reports.
 */
import { z } from 'zod';
import { container } from './container';
import {
  checkUnique,
  condition,
  ipAddress,
  labelMap,
  nonNegInt,
  positiveInt,
  resourceList,
  timestamp,
} from './fields';
import { objectMeta, templateMeta } from './meta';
import { dns1123Label, dns1123Subdomain } from './names';
import { affinity, toleration, topologySpreadConstraint } from './scheduling';
import { podSecurityContext } from './security';
import { volume } from './volumes';

const dnsConfig = () =>
  z.strictObject({
    nameservers: z.array(ipAddress()).optional(),
    searches: z.array(z.string()).optional(),
    options: z.array(z.strictObject({ name: z.string(), value: z.string().optional() })).optional(),
  });

const localObjectReference = () => z.strictObject({ name: z.string() });

export const restartPolicy = () => z.enum(['Always', 'OnFailure', 'Never']);

export const podSpec = () =>
  z
    .strictObject({
      containers: z.array(container()).min(1, 'must have at least one container'),
      initContainers: z.array(container()).optional(),
      volumes: z.array(volume()).optional(),
      restartPolicy: restartPolicy().default('Always'),
      terminationGracePeriodSeconds: nonNegInt().default(30),
      activeDeadlineSeconds: positiveInt().optional(),
      dnsPolicy: z
        .enum(['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'])
        .default('ClusterFirst'),
      dnsConfig: dnsConfig().optional(),
      nodeSelector: labelMap().optional(),
      nodeName: z.string().optional(),
      affinity: affinity().optional(),
      tolerations: z.array(toleration()).optional(),
      topologySpreadConstraints: z.array(topologySpreadConstraint()).optional(),
      schedulerName: z.string().optional(),
      priorityClassName: z.string().optional(),
      priority: z.int().optional(),
      preemptionPolicy: z.enum(['PreemptLowerPriority', 'Never']).optional(),
      schedulingGates: z.array(localObjectReference()).optional(),
      hostNetwork: z.boolean().optional(),
      hostPID: z.boolean().optional(),
      hostIPC: z.boolean().optional(),
      hostUsers: z.boolean().optional(),
      shareProcessNamespace: z.boolean().optional(),
      hostname: z.string().optional(),
      subdomain: z.string().optional(),
      setHostnameAsFQDN: z.boolean().optional(),
      hostAliases: z
        .array(z.strictObject({ ip: ipAddress(), hostnames: z.array(z.string()).optional() }))
        .optional(),
      serviceAccountName: z.string().optional(),
      serviceAccount: z.string().optional(),
      automountServiceAccountToken: z.boolean().optional(),
      securityContext: podSecurityContext().optional(),
      imagePullSecrets: z.array(localObjectReference()).optional(),
      enableServiceLinks: z.boolean().optional(),
      runtimeClassName: z.string().optional(),
      overhead: resourceList().optional(),
      readinessGates: z.array(z.strictObject({ conditionType: z.string() })).optional(),
      os: z.strictObject({ name: z.enum(['linux', 'windows']) }).optional(),
    })
    .superRefine((s, ctx) => {
      const all = [
        ...s.containers.map((c, i) => ({ c, path: ['containers', i, 'name'] })),
        ...(s.initContainers ?? []).map((c, i) => ({ c, path: ['initContainers', i, 'name'] })),
      ];
      checkUnique(
        ctx,
        all,
        (x) => x.c.name,
        (i) => all[i].path,
        'container name',
      );
      const volumes = s.volumes ?? [];
      checkUnique(
        ctx,
        volumes,
        (v) => v.name,
        (i) => ['volumes', i, 'name'],
        'volume name',
      );
      const volumeNames = new Set(volumes.map((v) => v.name));
      for (const field of ['containers', 'initContainers'] as const) {
        (s[field] ?? []).forEach((c, i) => {
          (c.volumeMounts ?? []).forEach((m, j) => {
            if (!volumeNames.has(m.name))
              ctx.addIssue({
                code: 'custom',
                path: [field, i, 'volumeMounts', j, 'name'],
                message: `volume "${m.name}" not found in spec.volumes`,
              });
          });
          if (s.hostNetwork)
            (c.ports ?? []).forEach((p, j) => {
              if (p.hostPort !== undefined && p.hostPort !== p.containerPort)
                ctx.addIssue({
                  code: 'custom',
                  path: [field, i, 'ports', j, 'hostPort'],
                  message: 'must match `containerPort` when `hostNetwork` is true',
                });
            });
        });
      }
      for (const f of ['hostname', 'subdomain'] as const) {
        const v = s[f];
        const bad = v === undefined ? undefined : dns1123Label(v);
        if (bad)
          ctx.addIssue({ code: 'custom', path: [f], message: `invalid ${f} "${v}": ${bad}` });
      }
      if (s.nodeName !== undefined && dns1123Subdomain(s.nodeName))
        ctx.addIssue({
          code: 'custom',
          path: ['nodeName'],
          message: `invalid node name "${s.nodeName}": ${dns1123Subdomain(s.nodeName)}`,
        });
      if (s.dnsPolicy === 'None' && s.dnsConfig === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['dnsConfig'],
          message: "must be provided when `dnsPolicy` is 'None'",
        });
    });

export const podTemplateSpec = () =>
  z.strictObject({ metadata: templateMeta().optional(), spec: podSpec() });

// ---- status --------------------------------------------------------------

const containerState = () =>
  z
    .strictObject({
      waiting: z
        .strictObject({ reason: z.string().optional(), message: z.string().optional() })
        .optional(),
      running: z.strictObject({ startedAt: timestamp().optional() }).optional(),
      terminated: z
        .strictObject({
          exitCode: z.int(),
          signal: z.int().optional(),
          reason: z.string().optional(),
          message: z.string().optional(),
          startedAt: timestamp().optional(),
          finishedAt: timestamp().optional(),
          containerID: z.string().optional(),
        })
        .optional(),
    })
    .superRefine((s, ctx) => {
      const set = (['waiting', 'running', 'terminated'] as const).filter((k) => s[k] !== undefined);
      if (set.length > 1)
        ctx.addIssue({
          code: 'custom',
          path: [set[1]],
          message: `may not be set together with ${set[0]}`,
        });
    });

const containerStatus = () =>
  z.strictObject({
    name: z.string(),
    state: containerState().optional(),
    lastState: containerState().optional(),
    ready: z.boolean(),
    started: z.boolean().optional(),
    restartCount: nonNegInt(),
    image: z.string(),
    imageID: z.string().optional(),
    containerID: z.string().optional(),
    message: z.string().optional(),
    reason: z.string().optional(),
    allocatedResources: resourceList().optional(),
    resources: z
      .strictObject({ requests: resourceList().optional(), limits: resourceList().optional() })
      .optional(),
    volumeMounts: z
      .array(
        z.strictObject({
          name: z.string(),
          mountPath: z.string(),
          readOnly: z.boolean().optional(),
          recursiveReadOnly: z.string().optional(),
        }),
      )
      .optional(),
    stopSignal: z.string().optional(),
  });

const podIP = () => z.strictObject({ ip: ipAddress() });

export const podStatus = () =>
  z.strictObject({
    phase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']).optional(),
    conditions: z.array(condition()).optional(),
    message: z.string().optional(),
    reason: z.string().optional(),
    nominatedNodeName: z.string().optional(),
    hostIP: ipAddress().optional(),
    hostIPs: z.array(podIP()).optional(),
    podIP: ipAddress().optional(),
    podIPs: z.array(podIP()).optional(),
    startTime: timestamp().optional(),
    initContainerStatuses: z.array(containerStatus()).optional(),
    containerStatuses: z.array(containerStatus()).optional(),
    qosClass: z.enum(['Guaranteed', 'Burstable', 'BestEffort']).optional(),
    observedGeneration: nonNegInt().optional(),
  });

export const podSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Pod'),
  metadata: objectMeta('Pod', 'subdomain', true),
  spec: podSpec(),
  status: podStatus().optional(),
});

export type Container = z.output<ReturnType<typeof container>>;
export type PodSpec = z.output<ReturnType<typeof podSpec>>;
export type PodTemplateSpec = z.output<ReturnType<typeof podTemplateSpec>>;
export type PodStatus = z.output<ReturnType<typeof podStatus>>;
export type Pod = z.output<typeof podSchema>;

/**
 * Service (a stable virtual IP and name for a set of pods) and Endpoints
 * (the pod addresses behind it, written by the endpoints controller).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { protocol } from './container';
import {
  checkUnique,
  condition,
  intOrString,
  ipAddress,
  labelMap,
  objectReference,
  port,
} from './fields';
import { objectMeta } from './meta';
import { dns1123Label, dns1123Subdomain, ianaSvcName } from './names';

const servicePort = () =>
  z
    .strictObject({
      name: z.string().optional(),
      protocol: protocol().default('TCP'),
      appProtocol: z.string().optional(),
      port: port(),
      targetPort: intOrString().optional(),
      nodePort: port().optional(),
    })
    .superRefine((p, ctx) => {
      const bad = p.name === undefined ? undefined : dns1123Label(p.name);
      if (bad)
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          message: `invalid port name "${p.name}": ${bad}`,
        });
      const t = p.targetPort;
      const badTarget =
        t === undefined
          ? undefined
          : typeof t === 'number'
            ? t >= 1 && t <= 65535
              ? undefined
              : 'must be between 1 and 65535, inclusive'
            : ianaSvcName(t);
      if (badTarget) ctx.addIssue({ code: 'custom', path: ['targetPort'], message: badTarget });
    })
    .transform((p) => ({ ...p, targetPort: p.targetPort ?? p.port }));

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
const trafficPolicy = () => z.enum(['Cluster', 'Local']);

const serviceSpec = () =>
  z
    .strictObject({
      type: z.enum(SERVICE_TYPES).default('ClusterIP'),
      selector: labelMap().optional(),
      ports: z.array(servicePort()).optional(),
      clusterIP: z.string().optional(),
      clusterIPs: z.array(z.string()).optional(),
      externalName: z.string().optional(),
      externalIPs: z.array(ipAddress()).optional(),
      sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
      sessionAffinityConfig: z
        .strictObject({
          clientIP: z
            .strictObject({
              timeoutSeconds: z
                .int()
                .refine((t) => t >= 1 && t <= 86400, 'must be between 1 and 86400, inclusive')
                .optional(),
            })
            .optional(),
        })
        .optional(),
      externalTrafficPolicy: trafficPolicy().optional(),
      internalTrafficPolicy: trafficPolicy().optional(),
      healthCheckNodePort: port().optional(),
      publishNotReadyAddresses: z.boolean().optional(),
      ipFamilies: z
        .array(z.enum(['IPv4', 'IPv6']))
        .max(2)
        .optional(),
      ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
      loadBalancerIP: z.string().optional(),
      loadBalancerSourceRanges: z.array(z.string()).optional(),
      loadBalancerClass: z.string().optional(),
      allocateLoadBalancerNodePorts: z.boolean().optional(),
      trafficDistribution: z.string().optional(),
    })
    .superRefine((s, ctx) => {
      const ports = s.ports ?? [];
      const headless = s.clusterIP === 'None';
      for (const [i, ip] of [s.clusterIP, ...(s.clusterIPs ?? [])].entries()) {
        if (ip === undefined || ip === '' || ip === 'None') continue;
        if (isIP(ip) === 0)
          ctx.addIssue({
            code: 'custom',
            path: i === 0 ? ['clusterIP'] : ['clusterIPs', i - 1],
            message: `must be a valid IP address or "None", got "${ip}"`,
          });
      }
      if (s.clusterIP !== undefined && s.clusterIPs?.length && s.clusterIPs[0] !== s.clusterIP)
        ctx.addIssue({
          code: 'custom',
          path: ['clusterIPs'],
          message: 'element [0] must match clusterIP',
        });
      if (s.type === 'ExternalName') {
        if (s.externalName === undefined || s.externalName === '')
          ctx.addIssue({
            code: 'custom',
            path: ['externalName'],
            message: "required when `type` is 'ExternalName'",
          });
        else if (dns1123Subdomain(s.externalName.replace(/\.$/, '')))
          ctx.addIssue({
            code: 'custom',
            path: ['externalName'],
            message: `must be a DNS name: ${dns1123Subdomain(s.externalName.replace(/\.$/, ''))}`,
          });
        if (s.clusterIP !== undefined && s.clusterIP !== '')
          ctx.addIssue({
            code: 'custom',
            path: ['clusterIP'],
            message: "may not be set when `type` is 'ExternalName'",
          });
      } else if (ports.length === 0 && !headless) {
        ctx.addIssue({ code: 'custom', path: ['ports'], message: 'required (at least one port)' });
      }
      if (ports.length > 1)
        ports.forEach((p, i) => {
          if (p.name === undefined || p.name === '')
            ctx.addIssue({
              code: 'custom',
              path: ['ports', i, 'name'],
              message: 'required when there is more than one port',
            });
        });
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
        (p) => `${p.port}/${p.protocol}`,
        (i) => ['ports', i, 'port'],
        'port',
      );
      if (s.type === 'ClusterIP' || s.type === 'ExternalName')
        ports.forEach((p, i) => {
          if (p.nodePort !== undefined)
            ctx.addIssue({
              code: 'custom',
              path: ['ports', i, 'nodePort'],
              message: `may not be used when \`type\` is '${s.type}'`,
            });
        });
      checkUnique(
        ctx,
        ports,
        (p) => (p.nodePort === undefined ? undefined : `${p.nodePort}/${p.protocol}`),
        (i) => ['ports', i, 'nodePort'],
        'nodePort',
      );
      if (s.sessionAffinityConfig !== undefined && s.sessionAffinity !== 'ClientIP')
        ctx.addIssue({
          code: 'custom',
          path: ['sessionAffinityConfig'],
          message: "may only be set when `sessionAffinity` is 'ClientIP'",
        });
      if (
        s.externalTrafficPolicy !== undefined &&
        s.type !== 'NodePort' &&
        s.type !== 'LoadBalancer'
      )
        ctx.addIssue({
          code: 'custom',
          path: ['externalTrafficPolicy'],
          message: "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
        });
    });

const serviceStatus = () =>
  z.strictObject({
    loadBalancer: z
      .strictObject({
        ingress: z
          .array(
            z.strictObject({
              ip: z.string().optional(),
              hostname: z.string().optional(),
              ipMode: z.enum(['VIP', 'Proxy']).optional(),
              ports: z
                .array(
                  z.strictObject({
                    port: port(),
                    protocol: protocol(),
                    error: z.string().optional(),
                  }),
                )
                .optional(),
            }),
          )
          .optional(),
      })
      .optional(),
    conditions: z.array(condition()).optional(),
  });

export const serviceSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata: objectMeta('Service', 'label', true),
  spec: serviceSpec(),
  status: serviceStatus().optional(),
});

// ---- Endpoints ---------------------------------------------------------------

const endpointAddress = () =>
  z.strictObject({
    ip: ipAddress(),
    hostname: z.string().optional(),
    nodeName: z.string().optional(),
    targetRef: objectReference().optional(),
  });

const endpointPort = () =>
  z.strictObject({
    name: z.string().optional(),
    port: port(),
    protocol: protocol().default('TCP'),
    appProtocol: z.string().optional(),
  });

export const endpointsSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Endpoints'),
  metadata: objectMeta('Endpoints', 'subdomain', true),
  subsets: z
    .array(
      z.strictObject({
        addresses: z.array(endpointAddress()).optional(),
        notReadyAddresses: z.array(endpointAddress()).optional(),
        ports: z.array(endpointPort()).optional(),
      }),
    )
    .optional(),
});

export type Service = z.output<typeof serviceSchema>;
export type ServiceSpec = Service['spec'];
export type ServicePort = z.output<ReturnType<typeof servicePort>>;
export type Endpoints = z.output<typeof endpointsSchema>;

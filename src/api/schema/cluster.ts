/**
 * Namespace, Node and Event: the cluster's own bookkeeping. Nodes are
 * written by node agents, Events by every component; both are validated
 * like user objects so a buggy component cannot store garbage.
 */
import { z } from 'zod';
import {
  condition,
  int,
  nonNegInt,
  objectReference,
  port,
  resourceList,
  timestamp,
} from './fields';
import { objectMeta } from './meta';
import { taint } from './scheduling';

export const namespaceSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Namespace'),
  metadata: objectMeta('Namespace', 'label', false),
  spec: z.strictObject({ finalizers: z.array(z.string()).optional() }).optional(),
  status: z
    .strictObject({
      phase: z.enum(['Active', 'Terminating']).optional(),
      conditions: z.array(condition()).optional(),
    })
    .optional(),
});

const nodeSpec = () =>
  z.strictObject({
    podCIDR: z.string().optional(),
    podCIDRs: z.array(z.string()).optional(),
    providerID: z.string().optional(),
    unschedulable: z.boolean().optional(),
    taints: z.array(taint()).optional(),
    externalID: z.string().optional(),
  });

const nodeStatus = () =>
  z.strictObject({
    capacity: resourceList().optional(),
    allocatable: resourceList().optional(),
    phase: z.enum(['Pending', 'Running', 'Terminated']).optional(),
    conditions: z.array(condition()).optional(),
    addresses: z
      .array(
        z.strictObject({
          type: z.enum(['Hostname', 'InternalIP', 'ExternalIP', 'InternalDNS', 'ExternalDNS']),
          address: z.string(),
        }),
      )
      .optional(),
    daemonEndpoints: z
      .strictObject({ kubeletEndpoint: z.strictObject({ Port: port() }).optional() })
      .optional(),
    nodeInfo: z
      .strictObject({
        machineID: z.string(),
        systemUUID: z.string(),
        bootID: z.string(),
        kernelVersion: z.string(),
        osImage: z.string(),
        containerRuntimeVersion: z.string(),
        kubeletVersion: z.string(),
        kubeProxyVersion: z.string().optional(),
        operatingSystem: z.string(),
        architecture: z.string(),
        swap: z.strictObject({ capacity: nonNegInt().optional() }).optional(),
      })
      .optional(),
    images: z
      .array(
        z.strictObject({
          names: z.array(z.string()).optional(),
          sizeBytes: nonNegInt().optional(),
        }),
      )
      .optional(),
    volumesInUse: z.array(z.string()).optional(),
    volumesAttached: z
      .array(z.strictObject({ name: z.string(), devicePath: z.string() }))
      .optional(),
    runtimeHandlers: z
      .array(
        z.strictObject({
          name: z.string().optional(),
          features: z
            .strictObject({
              recursiveReadOnlyMounts: z.boolean().optional(),
              userNamespaces: z.boolean().optional(),
            })
            .optional(),
        }),
      )
      .optional(),
    features: z.strictObject({ supplementalGroupsPolicy: z.boolean().optional() }).optional(),
  });

export const nodeSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Node'),
  metadata: objectMeta('Node', 'subdomain', false),
  spec: nodeSpec().optional(),
  status: nodeStatus().optional(),
});

export const eventSchema = z
  .strictObject({
    apiVersion: z.literal('v1'),
    kind: z.literal('Event'),
    metadata: objectMeta('Event', 'subdomain', true),
    involvedObject: objectReference(),
    reason: z.string().optional(),
    message: z.string().optional(),
    type: z.enum(['Normal', 'Warning']).optional(),
    count: int().optional(),
    firstTimestamp: timestamp().optional(),
    lastTimestamp: timestamp().optional(),
    eventTime: timestamp().optional(),
    source: z
      .strictObject({ component: z.string().optional(), host: z.string().optional() })
      .optional(),
    reportingComponent: z.string().optional(),
    reportingInstance: z.string().optional(),
    action: z.string().optional(),
    related: objectReference().optional(),
    series: z
      .strictObject({ count: int().optional(), lastObservedTime: timestamp().optional() })
      .optional(),
  })
  .superRefine((e, ctx) => {
    const ns = e.involvedObject.namespace;
    if (
      ns !== undefined &&
      ns !== '' &&
      e.metadata.namespace !== undefined &&
      ns !== e.metadata.namespace
    )
      ctx.addIssue({
        code: 'custom',
        path: ['involvedObject', 'namespace'],
        message: `does not match event namespace "${e.metadata.namespace}"`,
      });
  });

export type Namespace = z.output<typeof namespaceSchema>;
export type Node = z.output<typeof nodeSchema>;
export type NodeSpec = NonNullable<Node['spec']>;
export type NodeStatus = NonNullable<Node['status']>;
export type Event = z.output<typeof eventSchema>;

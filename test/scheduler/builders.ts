/**
 * Nodes, pods and small clusters for the scheduler's tests. Fixtures go
 * through the real schema (validateObject), so they are manifests
 * admission would accept, with its defaults filled in.
 */
import assert from 'node:assert/strict';
import { validateObject, type Node, type Pod } from '../../src/api/schema';
import {
  addPod,
  buildView,
  newNodeInfo,
  type NamespaceLabels,
} from '../../src/master/scheduler/node-info';
import type {
  ClusterView,
  CycleState,
  FilterPlugin,
  NodeInfo,
  ScorePlugin,
} from '../../src/master/scheduler/types';

type Json = Record<string, unknown>;

function valid<T>(manifest: Json): T {
  const r = validateObject(manifest);
  assert.ok(r.ok, `invalid fixture: ${r.ok ? '' : JSON.stringify(r.errors)}`);
  return r.object as unknown as T;
}

export interface NodeOptions {
  cpu?: string | number;
  memory?: string | number;
  pods?: number;
  /** More allocatable resources (`nvidia.com/gpu: 2`). */
  extra?: Record<string, string | number>;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: string }[];
  unschedulable?: boolean;
  /** The Ready condition's status; null for no condition at all. */
  ready?: 'True' | 'False' | 'Unknown' | null;
}

export function node(name: string, o: NodeOptions = {}): Node {
  const ready = o.ready === undefined ? 'True' : o.ready;
  return valid<Node>({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: o.labels },
    spec: { taints: o.taints, unschedulable: o.unschedulable },
    status: {
      allocatable: {
        cpu: o.cpu ?? '4',
        memory: o.memory ?? '8Gi',
        pods: o.pods ?? 110,
        ...o.extra,
      },
      conditions: ready === null ? [] : [{ type: 'Ready', status: ready }],
    },
  });
}

export interface ContainerOptions {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
  /** Host ports: a number, or {hostPort, hostIP, protocol}. */
  hostPorts?: (number | { hostPort: number; hostIP?: string; protocol?: string })[];
  sidecar?: boolean;
}

function container(name: string, o: ContainerOptions): Json {
  const ports = (o.hostPorts ?? []).map((p, i) =>
    typeof p === 'number'
      ? { containerPort: 8000 + i, hostPort: p }
      : { containerPort: 8000 + i, ...p },
  );
  return {
    name,
    image: 'nginx:1.27',
    resources: o.requests || o.limits ? { requests: o.requests, limits: o.limits } : undefined,
    ports: ports.length > 0 ? ports : undefined,
    restartPolicy: o.sidecar ? 'Always' : undefined,
  };
}

export interface PodOptions extends ContainerOptions {
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  /** More app containers, beside the first (which takes the ContainerOptions above). */
  containers?: ContainerOptions[];
  initContainers?: ContainerOptions[];
  overhead?: Record<string, string | number>;
  nodeSelector?: Record<string, string>;
  affinity?: object;
  tolerations?: object[];
  topologySpreadConstraints?: object[];
  /** The uid of a controlling ReplicaSet. */
  owner?: string;
  terminating?: boolean;
}

let uids = 0;

export function pod(name: string, o: PodOptions = {}): Pod {
  return valid<Pod>({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.namespace ?? 'default',
      uid: o.uid ?? `uid-${name}-${++uids}`,
      labels: o.labels,
      ownerReferences: o.owner
        ? [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: 'rs',
              uid: o.owner,
              controller: true,
            },
          ]
        : undefined,
      deletionTimestamp: o.terminating ? '2024-01-01T00:00:00Z' : undefined,
    },
    spec: {
      containers: [
        container('main', o),
        ...(o.containers ?? []).map((c, i) => container(`c${i}`, c)),
      ],
      initContainers: o.initContainers?.map((c, i) => container(`init${i}`, c)),
      overhead: o.overhead,
      nodeSelector: o.nodeSelector,
      affinity: o.affinity,
      tolerations: o.tolerations,
      topologySpreadConstraints: o.topologySpreadConstraints,
    },
  });
}

export interface Cluster {
  infos: NodeInfo[];
  view: ClusterView;
  info(name: string): NodeInfo;
}

/** Nodes with pods bound: `placed` maps a node name to its pods. */
export function cluster(
  nodes: Node[],
  placed: Record<string, Pod[]> = {},
  namespaceLabels?: NamespaceLabels,
): Cluster {
  const infos = nodes.map(newNodeInfo);
  for (const info of infos) for (const p of placed[info.name] ?? []) addPod(info, p);
  const view = buildView(infos, namespaceLabels);
  return {
    infos,
    view,
    info: (name) => {
      const i = view.byName.get(name);
      assert.ok(i, `no node ${name}`);
      return i;
    },
  };
}

/** Each node's verdict, as the scheduler loop would get it: preFilter once, then filter per node. */
export function filterAll(
  plugin: FilterPlugin,
  p: Pod,
  c: Cluster,
): Record<string, string | undefined> {
  const state: CycleState = new Map();
  plugin.preFilter?.(p, c.view, state);
  const out: Record<string, string | undefined> = {};
  for (const info of c.infos) out[info.name] = plugin.filter(p, info, c.view, state);
  return out;
}

/** The nodes a filter lets through. */
export function passing(plugin: FilterPlugin, p: Pod, c: Cluster): string[] {
  return Object.entries(filterAll(plugin, p, c))
    .filter(([, reason]) => reason === undefined)
    .map(([name]) => name);
}

/** Normalized scores of the given nodes (default: all), as the scheduler loop computes them. */
export function scoreAll(
  plugin: ScorePlugin,
  p: Pod,
  c: Cluster,
  names?: string[],
): Record<string, number> {
  const nodes = names ? names.map(c.info) : c.infos;
  const state: CycleState = new Map();
  plugin.preScore?.(p, nodes, c.view, state);
  const scores = nodes.map((n) => plugin.score(p, n, c.view, state));
  plugin.normalize?.(scores, state);
  for (const s of scores) assert.ok(s >= 0 && s <= 100, `${plugin.name}: score ${s} out of 0..100`);
  return Object.fromEntries(nodes.map((n, i) => [n.name, Math.round(scores[i] * 100) / 100]));
}

/** Node names from best to worst score (ties by name). */
export function ranking(scores: Record<string, number>): string[] {
  return Object.keys(scores).sort((a, b) => scores[b] - scores[a] || (a < b ? -1 : 1));
}

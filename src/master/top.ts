/**
 * `baton top` on a master: which nodes to ask comes from this master's
 * store (any master serves it, followers too); what they use comes from
 * each node's own API (NodeApi.Stats), all asked at once. A node that does
 * not answer within `topAnswerMs` is reported as unavailable, saying why,
 * rather than failing the call: the rest are still shown.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { parseLabelSelector } from '../api/selectors';
import { ApiObject, DEFAULT_NAMESPACE } from '../api/types';
import { parseQuantity } from '../api/schema/quantity';
import {
  ContainerMetrics,
  NodeMetrics,
  PodMetrics,
  TopKind,
  TopRequest,
  TopResponse,
} from '../gen/api';
import { NodeApiClient, StatsRequest, StatsResponse } from '../gen/node';
import { RaftNode } from '../raft/raft-node';
import { ApiError } from './api-error';
import { nodeEndpoint } from './pod-streams';
import { ClusterStore } from './store/cluster-store';

/**
 * How long a node may take to answer. Sampling takes it about a second
 * (two samples a window apart) when it has no recent sample to compare with.
 */
const NODE_ANSWER_MS = 5000;

export interface TopDeps {
  node: RaftNode;
  store: ClusterStore;
  log: Logger;
  /** A client for a node's API, by address (cached by the caller). */
  nodeClient(address: string): NodeApiClient;
  topAnswerMs?: number;
}

/** What one node said, or why it said nothing. */
export type NodeAnswer = { stats: StatsResponse } | { unavailable: string };

interface PodShape {
  spec?: {
    nodeName?: string;
    containers?: { name: string }[];
    initContainers?: { name: string }[];
  };
  status?: { phase?: string };
}

interface NodeShape {
  status?: {
    allocatable?: Record<string, string | number>;
    capacity?: Record<string, string | number>;
  };
}

/** CPU (millicores) and memory (bytes) the node offers pods, from status.allocatable (else capacity). */
export function allocatable(node: ApiObject): { cpuMillicores?: number; memoryBytes?: number } {
  const s = (node as NodeShape).status ?? {};
  const read = (r: string, scale: number) => {
    const v = s.allocatable?.[r] ?? s.capacity?.[r];
    try {
      return v === undefined ? undefined : Math.round(parseQuantity(v) * scale);
    } catch {
      return undefined;
    }
  };
  return { cpuMillicores: read('cpu', 1000), memoryBytes: read('memory', 1) };
}

/** A node's row: its usage, and what percentages are shares of. */
export function nodeMetrics(node: ApiObject, answer: NodeAnswer): NodeMetrics {
  const m: NodeMetrics = {
    name: node.metadata.name,
    unavailable: '',
    timestampMs: 0,
    windowMs: 0,
    cpuNanoCores: 0,
    memoryWorkingSetBytes: 0,
    cpuAllocatableMillicores: 0,
    memoryAllocatableBytes: 0,
  };
  if ('unavailable' in answer) return { ...m, unavailable: answer.unavailable };
  const n = answer.stats.node;
  if (!n?.usage) return { ...m, unavailable: `node ${m.name} has no usage measured yet` };
  const offered = allocatable(node);
  return {
    ...m,
    timestampMs: answer.stats.timestampMs,
    windowMs: n.usage.windowMs,
    cpuNanoCores: n.usage.cpuUsageNanoCores,
    memoryWorkingSetBytes: n.usage.memoryWorkingSetBytes,
    cpuAllocatableMillicores: offered.cpuMillicores ?? n.cpuCapacityMillicores,
    memoryAllocatableBytes: offered.memoryBytes ?? n.memoryCapacityBytes,
  };
}

/** A pod's row from its node's answer (undefined: not running, nothing asked). */
export function podMetrics(pod: ApiObject, answer: NodeAnswer | undefined): PodMetrics {
  const spec = (pod as PodShape).spec ?? {};
  const m: PodMetrics = {
    namespace: pod.metadata.namespace ?? '',
    name: pod.metadata.name,
    nodeName: spec.nodeName ?? '',
    unavailable: '',
    timestampMs: 0,
    windowMs: 0,
    containers: [],
  };
  if (!answer) {
    const phase = (pod as PodShape).status?.phase ?? 'Pending';
    return { ...m, unavailable: `pod ${m.name} is ${phase}, not running: nothing to measure` };
  }
  if ('unavailable' in answer) return { ...m, unavailable: answer.unavailable };
  const found = answer.stats.pods.find((p) => p.uid === pod.metadata.uid);
  if (!found || found.containers.length === 0)
    return {
      ...m,
      unavailable: `pod ${m.name} has no usage measured yet on node ${m.nodeName} (its containers are starting, or have just started)`,
    };
  // In the order of the spec: init containers, then app containers.
  const order = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].map((c) => c.name);
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  const containers: ContainerMetrics[] = found.containers
    .map((c) => ({
      name: c.name,
      cpuNanoCores: c.usage?.cpuUsageNanoCores ?? 0,
      memoryWorkingSetBytes: c.usage?.memoryWorkingSetBytes ?? 0,
    }))
    .sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
  return {
    ...m,
    timestampMs: answer.stats.timestampMs,
    windowMs: Math.max(...found.containers.map((c) => c.usage?.windowMs ?? 0)),
    containers,
  };
}

/** Asks one node, within the deadline; a failure becomes the reason it is unavailable. */
function ask(
  deps: TopDeps,
  nodeName: string,
  node: ApiObject | undefined,
  req: StatsRequest,
): Promise<NodeAnswer> {
  if (!node) return Promise.resolve({ unavailable: `node ${nodeName} not found` });
  const address = nodeEndpoint(node);
  if (!address)
    return Promise.resolve({
      unavailable: `node ${nodeName} publishes no address for its API; is its node daemon running?`,
    });
  const ms = deps.topAnswerMs ?? NODE_ANSWER_MS;
  return new Promise((resolve) =>
    deps
      .nodeClient(address)
      .stats(req, new grpc.Metadata(), { deadline: Date.now() + ms }, (err, stats) => {
        if (!err) return resolve({ stats });
        deps.log.debug({ err, node: nodeName }, 'top: node did not answer');
        const why =
          err.code === grpc.status.DEADLINE_EXCEEDED
            ? `did not answer within ${ms / 1000} s`
            : err.code === grpc.status.UNAVAILABLE
              ? `is unreachable: ${err.details || err.message}`
              : `answered: ${err.details || err.message}`;
        resolve({ unavailable: `node ${nodeName} (${address}) ${why}` });
      }),
  );
}

/** Runs `lookup`; on NOT_FOUND catches up with the leader (a pod just made) and runs it once more. */
async function withCatchUp<T>(deps: TopDeps, lookup: () => T): Promise<T> {
  try {
    return lookup();
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== grpc.status.NOT_FOUND) throw err;
    try {
      await deps.node.readIndex();
    } catch {
      throw err;
    }
    return lookup();
  }
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

async function topNodes(deps: TopDeps, req: TopRequest): Promise<TopResponse> {
  const nodes = await withCatchUp(deps, () => {
    if (req.name) {
      const n = deps.store.get('Node', undefined, req.name)?.object;
      if (!n) throw new ApiError(grpc.status.NOT_FOUND, `nodes "${req.name}" not found`);
      return [n];
    }
    const labels = req.labelSelector ? parseLabelSelector(req.labelSelector) : undefined;
    return deps.store.list({ kind: 'Node', labels }).map((s) => s.object);
  });
  const answers = await Promise.all(
    nodes.map((n) => ask(deps, n.metadata.name, n, { podUids: [], nodeOnly: true })),
  );
  return { nodes: nodes.map((n, i) => nodeMetrics(n, answers[i])).sort(byName), pods: [] };
}

async function topPods(deps: TopDeps, req: TopRequest): Promise<TopResponse> {
  const running = (p: ApiObject) => {
    const s = p as PodShape;
    return s.spec?.nodeName !== undefined && s.status?.phase === 'Running';
  };
  const pods = await withCatchUp(deps, () => {
    if (req.name) {
      const ns = req.namespace || DEFAULT_NAMESPACE;
      const p = deps.store.get('Pod', ns, req.name)?.object;
      if (!p)
        throw new ApiError(
          grpc.status.NOT_FOUND,
          `pods "${req.name}" not found in namespace "${ns}"`,
        );
      return [p];
    }
    const labels = req.labelSelector ? parseLabelSelector(req.labelSelector) : undefined;
    return deps.store
      .list({ kind: 'Pod', namespace: req.namespace || undefined, labels })
      .map((s) => s.object)
      .filter(running);
  });
  const onNode = new Map<string, ApiObject[]>();
  for (const p of pods.filter(running)) {
    const n = (p as PodShape).spec!.nodeName!;
    onNode.set(n, [...(onNode.get(n) ?? []), p]);
  }
  const answers = new Map(
    await Promise.all(
      [...onNode].map(
        async ([nodeName, ps]) =>
          [
            nodeName,
            await ask(deps, nodeName, deps.store.get('Node', undefined, nodeName)?.object, {
              podUids: ps.map((p) => p.metadata.uid!),
              nodeOnly: false,
            }),
          ] as const,
      ),
    ),
  );
  const rows = pods.map((p) =>
    podMetrics(p, running(p) ? answers.get((p as PodShape).spec!.nodeName!) : undefined),
  );
  rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || byName(a, b));
  return { nodes: [], pods: rows };
}

export async function top(deps: TopDeps, req: TopRequest): Promise<TopResponse> {
  switch (req.kind) {
    case TopKind.TOP_NODES:
      return topNodes(deps, req);
    case TopKind.TOP_PODS:
      return topPods(deps, req);
    default:
      throw new ApiError(grpc.status.INVALID_ARGUMENT, `kind: must be nodes or pods`);
  }
}

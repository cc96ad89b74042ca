/**
 * `baton logs` and `baton exec` on a master: find the pod's node in the
 * local store, then proxy the stream to that node's NodeApi. Any master
 * can do this (followers too): it needs no write, only the pod and the
 * Node object.
 *
 * A master answers with headers at once, before it looks anything up, so a
 * client knows this master took the stream and does not try another.
 */
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { ApiObject, DEFAULT_NAMESPACE } from '../api/types';
import { PodExecInput, PodExecOutput, PodExecStart, PodLogChunk, PodLogsRequest } from '../gen/api';
import { ExecInput, ExecOutput, NodeApiClient } from '../gen/node';
import { RaftNode } from '../raft/raft-node';
import { ApiError } from './api-error';
import { ClusterStore } from './store/cluster-store';

/** kubectl's annotation naming the container `logs` and `exec` pick when none is given. */
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/**
 * How long a node may take to open the stream (it answers with headers
 * once the runtime's stream is open): a black-holed node address would
 * otherwise hold the call until TCP gives up.
 */
const NODE_ANSWER_MS = 10_000;

export interface PodStreamDeps {
  node: RaftNode;
  store: ClusterStore;
  log: Logger;
  /** A client for a node's API, by address (cached by the caller). */
  nodeClient(address: string): NodeApiClient;
  nodeAnswerMs?: number;
}

interface PodSpecShape {
  nodeName?: string;
  containers?: { name: string }[];
  initContainers?: { name: string }[];
}

interface NodeStatusShape {
  addresses?: { type: string; address: string }[];
  daemonEndpoints?: { kubeletEndpoint?: { Port?: number } };
}

/**
 * Which container of `pod` a request means: the one named (an app or an
 * init container), else kubectl's choice: the default-container annotation
 * when it names one, else the first app container.
 */
export function chooseContainer(pod: ApiObject, requested: string): string {
  const spec = (pod.spec ?? {}) as PodSpecShape;
  const app = (spec.containers ?? []).map((c) => c.name);
  const init = (spec.initContainers ?? []).map((c) => c.name);
  if (requested) {
    if (app.includes(requested) || init.includes(requested)) return requested;
    throw new ApiError(
      grpc.status.INVALID_ARGUMENT,
      `container "${requested}" is not valid for pod "${pod.metadata.name}": choose one of: [${app.join(' ')}]` +
        (init.length > 0 ? ` or one of the init containers: [${init.join(' ')}]` : ''),
    );
  }
  const annotated = pod.metadata.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  if (annotated && app.includes(annotated)) return annotated;
  if (app.length === 0)
    throw new ApiError(
      grpc.status.FAILED_PRECONDITION,
      `pod "${pod.metadata.name}" has no containers`,
    );
  return app[0];
}

/** host:port of a node's API, as the node daemon publishes it, or undefined. */
export function nodeEndpoint(node: ApiObject): string | undefined {
  const s = (node.status ?? {}) as NodeStatusShape;
  const port = s.daemonEndpoints?.kubeletEndpoint?.Port;
  const byType = (t: string) => s.addresses?.find((a) => a.type === t)?.address;
  const host = byType('InternalIP') ?? byType('ExternalIP') ?? byType('Hostname');
  if (!host || !port) return undefined;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

interface Target {
  podUid: string;
  podName: string;
  container: string;
  nodeName: string;
  address: string;
}

/** Where the stream goes, from this master's store; a miss is checked again after a read barrier. */
async function resolveTarget(
  deps: PodStreamDeps,
  namespace: string,
  name: string,
  container: string,
): Promise<Target> {
  const ns = namespace || DEFAULT_NAMESPACE;
  const lookup = (): Target => {
    const pod = deps.store.get('Pod', ns, name)?.object;
    if (!pod) throw new ApiError(grpc.status.NOT_FOUND, `pods "${name}" not found`);
    const chosen = chooseContainer(pod, container);
    const nodeName = (pod.spec as PodSpecShape | undefined)?.nodeName;
    if (!nodeName)
      throw new ApiError(
        grpc.status.FAILED_PRECONDITION,
        `pod ${name} is not scheduled to a node yet`,
      );
    const node = deps.store.get('Node', undefined, nodeName)?.object;
    if (!node)
      throw new ApiError(
        grpc.status.NOT_FOUND,
        `node ${nodeName} of pod ${name} not found (was it removed from the cluster?)`,
      );
    const address = nodeEndpoint(node);
    if (!address)
      throw new ApiError(
        grpc.status.FAILED_PRECONDITION,
        `node ${nodeName} publishes no address for logs and exec (status.addresses InternalIP and status.daemonEndpoints.kubeletEndpoint.Port); is its node daemon running?`,
      );
    return { podUid: pod.metadata.uid!, podName: name, container: chosen, nodeName, address };
  };
  try {
    return lookup();
  } catch (err) {
    // This master may not have applied a recent write yet (a pod just
    // created or bound): catch up with the leader, then look once more.
    if (!(err instanceof ApiError) || err.code === grpc.status.INVALID_ARGUMENT) throw err;
    try {
      await deps.node.readIndex();
    } catch {
      throw err;
    }
    return lookup();
  }
}

/** A node's failure as the caller sees it: the node named when it cannot be reached. */
function fromNode(t: Target, err: grpc.ServiceError): ApiError {
  if (err.code === grpc.status.UNAVAILABLE)
    return new ApiError(
      grpc.status.UNAVAILABLE,
      `node ${t.nodeName} (${t.address}) is unreachable: ${err.details || err.message}`,
    );
  return new ApiError(err.code, err.details || err.message);
}

type ServerStream<T> = grpc.ServerWritableStream<unknown, T> | grpc.ServerDuplexStream<unknown, T>;
type NodeStream<T> = grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>;

function failWith(call: ServerStream<unknown>, err: unknown, log: Logger): void {
  let e: ApiError;
  if (err instanceof ApiError) e = err;
  else {
    log.error({ err }, 'pod stream failed');
    e = new ApiError(grpc.status.INTERNAL, String((err as Error | undefined)?.message ?? err));
  }
  // grpc-js ends a server stream with this status (destroy() would not send it).
  call.emit('error', { code: e.code, details: e.message });
}

/**
 * Copies the node's stream to the caller's: data with backpressure, then
 * the end or the node's error (named after the node when it is unreachable).
 */
function relay<T>(
  deps: PodStreamDeps,
  t: Target,
  up: NodeStream<T>,
  call: ServerStream<T>,
  isDone: () => boolean,
): void {
  const answerMs = deps.nodeAnswerMs ?? NODE_ANSWER_MS;
  let answered = false;
  const timer = setTimeout(() => {
    if (answered) return;
    answered = true;
    up.cancel();
    failWith(
      call,
      new ApiError(
        grpc.status.UNAVAILABLE,
        `node ${t.nodeName} (${t.address}) is unreachable: no answer within ${answerMs / 1000} s`,
      ),
      deps.log,
    );
  }, answerMs);
  up.on('metadata', () => {
    answered = true;
    clearTimeout(timer);
  });
  up.on('data', (m: T) => {
    if (!call.write(m)) {
      up.pause();
      call.once('drain', () => up.resume());
    }
  });
  // The status comes as 'error' (not OK) right after the end of the data,
  // before 'end' is emitted: whichever comes first settles the call.
  up.on('error', (err: grpc.ServiceError) => {
    clearTimeout(timer);
    if (isDone()) return;
    answered = true;
    failWith(call, fromNode(t, err), deps.log);
  });
  up.on('end', () => {
    clearTimeout(timer);
    if (!isDone()) call.end();
  });
}

export function proxyLogs(
  deps: PodStreamDeps,
  call: grpc.ServerWritableStream<PodLogsRequest, PodLogChunk>,
): void {
  call.sendMetadata(new grpc.Metadata());
  let up: grpc.ClientReadableStream<PodLogChunk> | undefined;
  let done = false;
  call.on('cancelled', () => {
    done = true;
    up?.cancel();
  });
  call.on('error', () => (done = true));
  const req = call.request;
  resolveTarget(deps, req.namespace, req.name, req.container).then(
    (t) => {
      if (done) return;
      deps.log.debug({ pod: t.podName, node: t.nodeName, container: t.container }, 'logs');
      up = deps.nodeClient(t.address).logs({
        podUid: t.podUid,
        container: t.container,
        follow: req.follow,
        tailLines: req.tailLines,
        previous: req.previous,
      });
      relay(deps, t, up, call, () => done);
    },
    (err) => done || failWith(call, err, deps.log),
  );
}

export function proxyExec(
  deps: PodStreamDeps,
  call: grpc.ServerDuplexStream<PodExecInput, PodExecOutput>,
): void {
  call.sendMetadata(new grpc.Metadata());
  let up: grpc.ClientDuplexStream<ExecInput, ExecOutput> | undefined;
  let done = false;
  call.on('cancelled', () => {
    done = true;
    up?.cancel();
  });
  call.on('error', () => (done = true));
  const run = async () => {
    // Not destroyed when the caller's side ends: our side still has output to send.
    const input = call.iterator({ destroyOnReturn: false }) as AsyncIterator<PodExecInput>;
    const first = await input.next();
    const start: PodExecStart | undefined =
      !first.done && first.value.msg?.$case === 'start' ? first.value.msg.value : undefined;
    if (!start)
      throw new ApiError(
        grpc.status.INVALID_ARGUMENT,
        'the first message of an exec stream must be "start"',
      );
    if (start.command.length === 0)
      throw new ApiError(
        grpc.status.INVALID_ARGUMENT,
        'command: required (baton exec POD -- COMMAND [ARGS...])',
      );
    const t = await resolveTarget(deps, start.namespace, start.name, start.container);
    if (done) return;
    deps.log.debug({ pod: t.podName, node: t.nodeName, container: t.container }, 'exec');
    const stream = (up = deps.nodeClient(t.address).exec());
    relay(deps, t, stream, call, () => done);
    stream.write({
      msg: {
        $case: 'start',
        value: {
          podUid: t.podUid,
          container: t.container,
          command: start.command,
          stdin: start.stdin,
        },
      },
    });
    for (;;) {
      const next = await input.next();
      if (next.done || done) break;
      const m = next.value.msg;
      // A second "start" means nothing; stdin and close_stdin go on as they are.
      if (m?.$case !== 'stdin' && m?.$case !== 'closeStdin') continue;
      if (!stream.write({ msg: m })) await once(stream, 'drain');
    }
    stream.end();
  };
  run().catch((err) => {
    if (done) return;
    up?.cancel();
    failWith(call, err, deps.log);
  });
}

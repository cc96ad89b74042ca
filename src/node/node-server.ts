/**
 * The node's own API (`NodeApi` in proto/node.proto): what a master calls
 * to stream a container's logs or run a command in it, for `baton logs`
 * and `baton exec`, and to read what the node and its pods use, for
 * `baton top`. The master has already checked the pod and the
 * container name against the pod's spec; this side finds the runtime's
 * container and streams.
 *
 * Headers go out as soon as the runtime's stream is open, before any data:
 * the master waits for them to tell a slow node from a dead one.
 */
import * as grpc from '@grpc/grpc-js';
import { authorizationInterceptor } from '../ca/authz';
import { TlsIdentity } from '../ca/tls';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { silentLogger } from '../common/log';
import {
  ExecInput,
  ExecOutput,
  ExecStart,
  LogChunk,
  LogsRequest,
  NodeApiServer,
  NodeApiService,
} from '../gen/node';
import { readHostSample } from './proc-stats';
import { ExecSession, INFRA, Runtime, RuntimeContainer } from './runtime';
import { UsageSampler } from './usage-sampler';

/** A "no" from the node API, with the status code it answers with. */
export class NodeApiError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'NodeApiError';
  }
}

/**
 * The runtime container `name` of pod `podUid`: the current attempt (most
 * restarts), or with `previous` the attempt before it, as the kubelet
 * answers `kubectl logs --previous`.
 */
export function findContainer(
  all: RuntimeContainer[],
  podUid: string,
  name: string,
  previous: boolean,
): RuntimeContainer {
  const ofPod = all.filter((c) => c.podUid === podUid);
  const pod = ofPod[0] ? `"${ofPod[0].podName}"` : `with uid ${podUid}`;
  const attempts = ofPod
    .filter((c) => c.name === name && c.name !== INFRA)
    .sort((a, b) => b.restarts - a.restarts);
  if (attempts.length === 0)
    throw new NodeApiError(
      grpc.status.NOT_FOUND,
      `container "${name}" in pod ${pod} has not been created on this node (yet)`,
    );
  const c = attempts[previous ? 1 : 0];
  if (!c)
    throw new NodeApiError(
      grpc.status.NOT_FOUND,
      `previous terminated container "${name}" in pod ${pod} not found`,
    );
  return c;
}

function statusOf(err: unknown): grpc.StatusObject {
  if (err instanceof NodeApiError)
    return { code: err.code, details: err.message, metadata: new grpc.Metadata() };
  return {
    code: grpc.status.UNKNOWN,
    details: `container runtime: ${(err as Error | undefined)?.message ?? String(err)}`,
    metadata: new grpc.Metadata(),
  };
}

type ServerStream<T> = grpc.ServerWritableStream<unknown, T> | grpc.ServerDuplexStream<unknown, T>;

/** Ends a server stream with the error's status (grpc-js sends it on 'error'; destroy() would not). */
function fail(call: ServerStream<unknown>, err: unknown): void {
  call.emit('error', statusOf(err));
}

/** Writes `msg`, waiting while the caller reads slower than we produce; rejects once `signal` aborts. */
async function send<T>(call: ServerStream<T>, msg: T, signal: AbortSignal): Promise<void> {
  if (!call.write(msg)) await once(call, 'drain', { signal });
}

/** What the Stats rpc measures with: the host's /proc and the runtime's own stats. */
export function runtimeUsageSampler(runtime: Runtime): UsageSampler {
  const stats = runtime.stats?.bind(runtime);
  return new UsageSampler({
    host: readHostSample,
    ...(stats ? { containers: (uids?: string[]) => stats(uids) } : {}),
  });
}

export function nodeApiService(
  runtime: Runtime,
  log: Logger,
  usage: UsageSampler = runtimeUsageSampler(runtime),
): NodeApiServer {
  async function streamLogs(
    call: grpc.ServerWritableStream<LogsRequest, LogChunk>,
    signal: AbortSignal,
  ): Promise<void> {
    const req = call.request;
    const c = findContainer(await runtime.list(), req.podUid, req.container, req.previous);
    const out: Readable = await runtime.logs(c.id, {
      follow: req.follow,
      tail: req.tailLines < 0 ? undefined : req.tailLines,
      signal,
    });
    const stop = () => out.destroy();
    signal.addEventListener('abort', stop);
    try {
      if (signal.aborted) return;
      call.sendMetadata(new grpc.Metadata());
      for await (const chunk of out as AsyncIterable<Buffer | string>)
        await send(call, { data: Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk) }, signal);
      call.end();
    } finally {
      signal.removeEventListener('abort', stop);
      out.destroy();
    }
  }

  async function runExec(
    call: grpc.ServerDuplexStream<ExecInput, ExecOutput>,
    signal: AbortSignal,
    started: (s: ExecSession) => void,
  ): Promise<void> {
    // Not destroyed when the caller's side ends: our side still has output to send.
    const input = call.iterator({ destroyOnReturn: false }) as AsyncIterator<ExecInput>;
    const first = await input.next();
    const start: ExecStart | undefined =
      !first.done && first.value.msg?.$case === 'start' ? first.value.msg.value : undefined;
    if (!start)
      throw new NodeApiError(
        grpc.status.INVALID_ARGUMENT,
        'the first message of an exec stream must be "start"',
      );
    if (start.command.length === 0)
      throw new NodeApiError(grpc.status.INVALID_ARGUMENT, 'command: required');
    const c = findContainer(await runtime.list(), start.podUid, start.container, false);
    if (!c.running)
      throw new NodeApiError(
        grpc.status.FAILED_PRECONDITION,
        `container "${c.name}" in pod "${c.podName}" is not running`,
      );
    const session = await runtime.exec(c.id, start.command, { stdin: start.stdin });
    started(session);
    if (signal.aborted) return session.kill();
    log.debug({ pod: c.podName, container: c.name, command: start.command }, 'exec');
    call.sendMetadata(new grpc.Metadata());
    pumpStdin(input, session, signal).catch(() => {
      // The caller went away or the command stopped reading: its stdin just ends.
    });
    const forward = async (from: Readable, kind: 'stdout' | 'stderr') => {
      for await (const chunk of from as AsyncIterable<Buffer | string>)
        await send(
          call,
          { msg: { $case: kind, value: Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk) } },
          signal,
        );
    };
    // Every byte of output before the exit code, which is the last message.
    await Promise.all([forward(session.stdout, 'stdout'), forward(session.stderr, 'stderr')]);
    const exitCode = await session.exitCode;
    call.write({ msg: { $case: 'exitCode', value: exitCode } });
    call.end();
  }

  return {
    logs(call) {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      streamLogs(call, ac.signal).catch((err) => {
        if (ac.signal.aborted) return;
        log.debug({ err, pod: call.request.podUid }, 'logs failed');
        fail(call, err);
      });
    },

    exec(call) {
      const ac = new AbortController();
      let session: ExecSession | undefined;
      call.on('cancelled', () => {
        ac.abort();
        session?.kill();
      });
      runExec(call, ac.signal, (s) => (session = s)).then(
        () => ac.abort(),
        (err) => {
          session?.kill();
          if (ac.signal.aborted) return;
          ac.abort();
          log.debug({ err }, 'exec failed');
          fail(call, err);
        },
      );
    },

    stats(call, cb) {
      const req = call.request;
      if (!req.nodeOnly && !usage.measuresContainers) {
        cb(
          statusOf(
            new NodeApiError(
              grpc.status.UNIMPLEMENTED,
              `the ${runtime.name} runtime of this node does not measure its containers`,
            ),
          ),
        );
        return;
      }
      usage.stats(req).then(
        (res) => cb(null, res),
        (err) => {
          log.debug({ err }, 'stats failed');
          cb(statusOf(err));
        },
      );
    },
  };
}

/** The caller's stdin messages into the command's stdin, until "close_stdin" or the end of the input. */
async function pumpStdin(
  input: AsyncIterator<ExecInput>,
  session: ExecSession,
  signal: AbortSignal,
): Promise<void> {
  const stdin = session.stdin;
  // A command that exits without reading all its input makes writes fail (EPIPE).
  stdin?.on('error', () => {});
  try {
    for (;;) {
      const next = await input.next();
      if (next.done || signal.aborted) return;
      const m = next.value.msg;
      if (m?.$case === 'closeStdin') return;
      if (m?.$case === 'stdin' && stdin && !stdin.write(m.value))
        await once(stdin, 'drain', { signal });
    }
  } finally {
    stdin?.end();
  }
}

export interface NodeServerOptions {
  runtime: Runtime;
  /** host:port; port 0 picks a free one. */
  listen: string;
  log?: Logger;
  /** Mutual TLS: only masters of this cluster may call; plaintext when absent. */
  tls?: TlsIdentity;
}

export interface NodeServer {
  port: number;
  close(): Promise<void>;
}

/** Serves NodeApi on `listen`. */
export async function startNodeServer(opts: NodeServerOptions): Promise<NodeServer> {
  const log = (opts.log ?? silentLogger()).child({ component: 'node-api' });
  // No SO_REUSEPORT (grpc-js's default): a port already in use is an error, not a shared port.
  const server = new grpc.Server({
    'grpc.max_send_message_length': -1,
    'grpc.so_reuseport': 0,
    interceptors: opts.tls ? [authorizationInterceptor(opts.tls.cluster)] : [],
  });
  server.addService(NodeApiService, nodeApiService(opts.runtime, log));
  const creds = opts.tls ? opts.tls.serverCredentials() : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  log.info({ port }, 'node API listening');
  return {
    port,
    async close() {
      // Followed logs and exec sessions never end by themselves: give unary
      // work a moment, then cut the streams (cancelling them kills the sessions).
      await Promise.race([
        new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        new Promise<void>((resolve) => setTimeout(resolve, 500).unref()),
      ]);
      server.forceShutdown();
    },
  };
}

import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { ANSWERED_BY } from '../api/answered-by';
import { IDEMPOTENCY_KEY } from '../api/idempotency';
import { TLS_CHANNEL_OPTIONS } from '../ca/tls';
import {
  ClusterClient,
  ClusterStatusResponse,
  DeleteRequest,
  DeleteResponse,
  EnrollResponse,
  EventType,
  GetResponse,
  ListRequest,
  ListResponse,
  PodExecStart,
  PodLogChunk,
  PodLogsRequest,
  PropagationPolicy,
  TopRequest,
  TopResponse,
  WatchEvent,
  WatchRequest,
  WriteResponse,
} from '../gen/api';
import { ClientError } from './client-error';
import { ExecIo, ExecTarget, execAttempt, noAnswer } from './exec-stream';

export type { ExecIo, ExecTarget };

export { ClientError };

export interface ClientOptions {
  /** How long one call may take, over every retry. */
  timeoutMs?: number;
  /** Mutual TLS (see TlsIdentity.channelCredentials); plaintext when absent. */
  credentials?: grpc.ChannelCredentials;
}

type Unary<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

/** Errors that mean "this master cannot answer now; another may". */
function retriable(code: grpc.status): boolean {
  return code === grpc.status.UNAVAILABLE;
}

/**
 * A failure to reach the master at all (as opposed to an answer from it). A
 * master's answer may quote a connection error of its own (the leader it
 * forwards to is down): its ANSWERED_BY trailer tells.
 */
function unreachable(e: grpc.ServiceError): boolean {
  return (
    e.code === grpc.status.UNAVAILABLE &&
    (e.metadata?.get(ANSWERED_BY).length ?? 0) === 0 &&
    /No connection established|ECONNREFUSED|connect|Connection dropped|LB pick/i.test(
      e.details ?? '',
    )
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A client of the Cluster API given several master addresses: it sticks to
 * one that answers and moves on to the next when a master is down or has no
 * leader, until the call's time runs out. Watches resume from their last
 * revision on another master after a failure, without gaps or duplicates.
 */
export class BatonClient {
  private readonly clients: ClusterClient[];
  private current = 0;
  private readonly timeoutMs: number;

  constructor(
    readonly servers: string[],
    opts: ClientOptions = {},
  ) {
    if (servers.length === 0) throw new Error('no master address given (use --server host:port)');
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.clients = servers.map(
      (s) =>
        new ClusterClient(s, opts.credentials ?? grpc.credentials.createInsecure(), {
          ...TLS_CHANNEL_OPTIONS,
          'grpc.max_receive_message_length': -1,
          'grpc.max_send_message_length': -1,
          'grpc.initial_reconnect_backoff_ms': 100,
          'grpc.max_reconnect_backoff_ms': 1000,
        }),
    );
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  /**
   * One call, retried on the next master while masters answer UNAVAILABLE
   * (down, no leader, or the leader changed under the call). A write is
   * keyed: every attempt carries the same idempotency key, so a retry of a
   * write whose answer was lost is applied once.
   */
  private async call<Req, Res>(
    method: keyof ClusterClient & string,
    req: Req,
    write = false,
  ): Promise<Res> {
    const key = write ? randomBytes(16).toString('base64url') : undefined;
    const deadline = Date.now() + this.timeoutMs;
    const tried = new Map<string, string>();
    let anyAnswered = false;
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const i = this.current;
      const client = this.clients[i] as unknown as Record<string, Unary<Req, Res>>;
      const md = new grpc.Metadata();
      if (key !== undefined) md.set(IDEMPOTENCY_KEY, key);
      try {
        return await new Promise<Res>((resolve, reject) =>
          client[method].call(
            this.clients[i],
            req,
            md,
            { deadline: Math.min(deadline, Date.now() + Math.max(2000, this.timeoutMs / 2)) },
            (err, res) => (err ? reject(err) : resolve(res)),
          ),
        );
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (!unreachable(e)) anyAnswered = true;
        // Nobody is listening at any address (three rounds, two seconds): say so now
        // rather than at the deadline. A master that answers "no leader yet"
        // keeps us trying: an election is under way.
        const hopeless =
          !anyAnswered && attempt + 1 >= 3 * this.clients.length && Date.now() - started > 2000;
        if (!retriable(e.code) || Date.now() >= deadline || hopeless) {
          if (retriable(e.code) || e.code === grpc.status.DEADLINE_EXCEEDED) {
            // Keep the first reason a master gave: "connection refused" says more than a deadline.
            if (!tried.has(this.servers[i])) tried.set(this.servers[i], e.details || e.message);
            const list = [...tried].map(([s, why]) => `${s} (${why})`).join(', ');
            throw new ClientError(e.code, `no master answered: tried ${list}`);
          }
          throw new ClientError(e.code, e.details || e.message);
        }
        tried.set(this.servers[i], e.details || e.message);
        this.current = (i + 1) % this.clients.length;
        // A full round over every master failed: give an election time to finish.
        if ((attempt + 1) % this.clients.length === 0)
          await sleep(Math.min(1000, 100 * (attempt + 1)));
      }
    }
  }

  /**
   * After a stream failed before its master answered (masters send headers
   * at once): moves on to the next master, waiting after each full round,
   * or throws once out of time or of rounds. Streams are never retried
   * after that: the output so far cannot be taken back.
   */
  private async nextMaster(
    i: number,
    e: grpc.ServiceError,
    attempt: number,
    deadline: number,
    tried: Map<string, string>,
  ): Promise<void> {
    if (!retriable(e.code)) throw new ClientError(e.code, e.details || e.message);
    if (!tried.has(this.servers[i])) tried.set(this.servers[i], e.details || e.message);
    if (Date.now() >= deadline || attempt + 1 >= 3 * this.clients.length) {
      const list = [...tried].map(([s, why]) => `${s} (${why})`).join(', ');
      throw new ClientError(e.code, `no master answered: tried ${list}`);
    }
    this.current = (i + 1) % this.clients.length;
    if ((attempt + 1) % this.clients.length === 0) await sleep(Math.min(1000, 100 * (attempt + 1)));
  }

  /** How long a master may take to answer a stream with its headers before the next one is tried. */
  private answerMs(deadline: number): number {
    return Math.max(1, Math.min(deadline - Date.now(), Math.max(2000, this.timeoutMs / 2)));
  }

  /**
   * A container's output (`baton logs`), as the node's runtime gives it.
   * `tailLines` defaults to all (-1). With `follow`, it runs until `signal`
   * aborts (or the consumer stops iterating), which also stops the stream
   * on the node.
   */
  async *logs(
    req: Partial<PodLogsRequest> & { name: string },
    signal?: AbortSignal,
  ): AsyncGenerator<Buffer> {
    const full: PodLogsRequest = {
      namespace: '',
      container: '',
      follow: false,
      tailLines: -1,
      previous: false,
      ...req,
    };
    const deadline = Date.now() + this.timeoutMs;
    const tried = new Map<string, string>();
    for (let attempt = 0; !signal?.aborted; attempt++) {
      const i = this.current;
      const stream = this.clients[i].logs(full);
      let started = false;
      let silent = false;
      stream.on('metadata', () => (started = true));
      const timer = setTimeout(() => {
        if (started) return;
        silent = true;
        stream.cancel();
      }, this.answerMs(deadline));
      const onAbort = () => stream.cancel();
      signal?.addEventListener('abort', onAbort);
      try {
        for await (const chunk of stream as AsyncIterable<PodLogChunk>) {
          started = true;
          yield chunk.data;
        }
        return;
      } catch (err) {
        if (signal?.aborted) return;
        const e = err as grpc.ServiceError;
        if (started) throw new ClientError(e.code, e.details || e.message);
        const why = silent ? noAnswer() : e;
        await this.nextMaster(i, why, attempt, deadline, tried);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        stream.cancel();
      }
    }
  }

  /**
   * Runs a command in a pod's container (`baton exec`): its stdout and
   * stderr are written to `io`, `io.stdin` (if any) is forwarded, and the
   * result is the command's exit code.
   */
  async exec(target: ExecTarget, io: ExecIo): Promise<number> {
    const start: PodExecStart = {
      namespace: '',
      container: '',
      ...target,
      stdin: io.stdin !== undefined,
    };
    const deadline = Date.now() + this.timeoutMs;
    const tried = new Map<string, string>();
    for (let attempt = 0; ; attempt++) {
      const i = this.current;
      const r = await execAttempt(this.clients[i], start, io, this.answerMs(deadline));
      if ('exitCode' in r) return r.exitCode;
      await this.nextMaster(i, r.unreachable, attempt, deadline, tried);
    }
  }

  apply(objectJson: string, dryRun = false): Promise<WriteResponse> {
    return this.call('apply', { objectJson, dryRun }, true);
  }

  create(objectJson: string, dryRun = false): Promise<WriteResponse> {
    return this.call('create', { objectJson, dryRun }, true);
  }

  update(
    objectJson: string,
    subresource: '' | 'status' = '',
    dryRun = false,
  ): Promise<WriteResponse> {
    return this.call('update', { objectJson, subresource, dryRun }, true);
  }

  delete(req: Partial<DeleteRequest> & { kind: string; name: string }): Promise<DeleteResponse> {
    return this.call(
      'delete',
      {
        namespace: '',
        uid: '',
        resourceVersion: '',
        propagation: PropagationPolicy.BACKGROUND,
        dryRun: false,
        ...req,
      },
      true,
    );
  }

  get(kind: string, namespace: string, name: string, local = false): Promise<GetResponse> {
    return this.call('get', { kind, namespace, name, local });
  }

  list(req: Partial<ListRequest> & { kind: string }): Promise<ListResponse> {
    return this.call('list', {
      namespace: '',
      labelSelector: '',
      fieldSelector: '',
      local: false,
      ...req,
    });
  }

  status(): Promise<ClusterStatusResponse> {
    return this.call('status', {});
  }

  /** Removes a master from the cluster (the leader hands leadership over first); answers with the new status. */
  removeMember(id: number): Promise<ClusterStatusResponse> {
    return this.call('removeMember', { id });
  }

  /** CPU and memory in use (`baton top`), as the nodes measure it; nodes that do not answer come back unavailable. */
  /** A fresh certificate for the caller's own identity and this public key. */
  renewCertificate(publicKeyPem: string): Promise<EnrollResponse> {
    return this.call('renewCertificate', { publicKeyPem });
  }

  top(req: Partial<TopRequest> & Pick<TopRequest, 'kind'>): Promise<TopResponse> {
    return this.call('top', { namespace: '', labelSelector: '', name: '', ...req });
  }

  /**
   * Follows changes. On a broken stream it reconnects (to the next master)
   * and resumes after the last revision it delivered; a revision too old to
   * resume from ends the iteration with an OUT_OF_RANGE ClientError.
   */
  async *watch(req: Partial<WatchRequest>, signal?: AbortSignal): AsyncGenerator<WatchEvent> {
    let from = Number(req.fromRevision ?? 0);
    let failures = 0;
    let internals = 0;
    while (!signal?.aborted) {
      const i = this.current;
      const stream = this.clients[i].watch({
        kind: '',
        namespace: '',
        labelSelector: '',
        fieldSelector: '',
        bookmarkMs: 0,
        ...req,
        fromRevision: from,
      });
      const onAbort = () => stream.cancel();
      signal?.addEventListener('abort', onAbort);
      // With from = 0 the server sends the current objects, all at one
      // revision, then a BOOKMARK: resume from that revision only once the
      // whole initial state is in, or a reconnect would skip part of it.
      let initial = from === 0;
      try {
        for await (const ev of stream as AsyncIterable<WatchEvent>) {
          failures = 0;
          internals = 0;
          if (initial && ev.type === EventType.BOOKMARK) initial = false;
          if (!initial) from = Math.max(from, ev.revision);
          yield ev;
        }
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (signal?.aborted || e.code === grpc.status.CANCELLED) return;
        // A master killed mid-stream can surface as INTERNAL (a reset
        // stream): resume elsewhere, but not forever.
        internals = e.code === grpc.status.INTERNAL ? internals + 1 : 0;
        const resumable =
          e.code === grpc.status.UNAVAILABLE ||
          e.code === grpc.status.RESOURCE_EXHAUSTED ||
          (e.code === grpc.status.INTERNAL && internals < 3);
        if (!resumable) throw new ClientError(e.code, e.details || e.message);
      } finally {
        signal?.removeEventListener('abort', onAbort);
        // The caller may stop reading early (a `break` or `return` in its loop): the
        // call must end too, or it stays open and keeps the process alive.
        stream.cancel();
      }
      if (signal?.aborted) return;
      this.current = (i + 1) % this.clients.length;
      if (++failures % this.clients.length === 0) await sleep(Math.min(1000, 100 * failures));
    }
  }
}

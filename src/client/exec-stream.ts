/**
 * One attempt at `Cluster.Exec` on one master: the start message, stdin
 * forwarded once the master has answered, stdout and stderr written out
 * with backpressure, and the exit code as the result.
 */
import * as grpc from '@grpc/grpc-js';
import type { Readable, Writable } from 'node:stream';
import { ClusterClient, PodExecInput, PodExecOutput, PodExecStart } from '../gen/api';
import { ClientError } from './client-error';

/** Which pod's container to run a command in (namespace "default" and the default container when empty). */
export type ExecTarget = Pick<PodExecStart, 'name' | 'command'> &
  Partial<Pick<PodExecStart, 'namespace' | 'container'>>;

export interface ExecIo {
  /** Forwarded to the command until it ends; absent: the command gets no stdin. */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Aborting ends the command (the node kills it). */
  signal?: AbortSignal;
}

/** The exit code, or why this master could not be reached (another may be). */
export type ExecAttempt = { exitCode: number } | { unreachable: grpc.ServiceError };

/** A master that sent no headers in time: as good as unreachable. */
export function noAnswer(): grpc.ServiceError {
  return Object.assign(new Error('no answer in time'), {
    code: grpc.status.UNAVAILABLE,
    details: 'no answer in time',
    metadata: new grpc.Metadata(),
  });
}

export function execAttempt(
  client: ClusterClient,
  start: PodExecStart,
  io: ExecIo,
  answerMs: number,
): Promise<ExecAttempt> {
  return new Promise<ExecAttempt>((resolve, reject) => {
    const call: grpc.ClientDuplexStream<PodExecInput, PodExecOutput> = client.exec();
    let started = false;
    let exitCode: number | undefined;
    let settled = false;
    let forwarding = false;
    const stdin = io.stdin;
    const onStdin = (d: Buffer | string) => {
      const value = Buffer.isBuffer(d) ? d : Buffer.from(d);
      if (!call.write({ msg: { $case: 'stdin', value } })) {
        stdin!.pause();
        call.once('drain', () => stdin!.resume());
      }
    };
    const onStdinEnd = () => {
      call.write({ msg: { $case: 'closeStdin', value: true } });
      call.end();
    };
    const onAbort = () => call.cancel();
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      io.signal?.removeEventListener('abort', onAbort);
      if (stdin && forwarding) {
        stdin.off('data', onStdin);
        stdin.off('end', onStdinEnd);
        stdin.pause();
      }
      fn();
    };
    const timer = setTimeout(() => {
      if (started) return;
      settle(() => resolve({ unreachable: noAnswer() }));
      call.cancel();
    }, answerMs);
    call.on('metadata', () => {
      started = true;
      clearTimeout(timer);
      // Only now: stdin read before this master took the call would be lost on a retry.
      if (stdin && !settled) {
        forwarding = true;
        stdin.on('data', onStdin);
        stdin.once('end', onStdinEnd);
        stdin.resume();
      }
    });
    let blocked = 0;
    const put = (to: Writable, data: Buffer) => {
      if (to.write(data)) return;
      if (blocked++ === 0) call.pause();
      to.once('drain', () => {
        if (--blocked === 0) call.resume();
      });
    };
    call.on('data', (m: PodExecOutput) => {
      if (m.msg?.$case === 'stdout') put(io.stdout, m.msg.value);
      else if (m.msg?.$case === 'stderr') put(io.stderr, m.msg.value);
      else if (m.msg?.$case === 'exitCode') exitCode = m.msg.value;
    });
    call.on('error', (e: grpc.ServiceError) =>
      settle(() => {
        if (io.signal?.aborted) reject(new ClientError(grpc.status.CANCELLED, 'exec cancelled'));
        else if (!started && e.code === grpc.status.UNAVAILABLE) resolve({ unreachable: e });
        else reject(new ClientError(e.code, e.details || e.message));
      }),
    );
    call.on('end', () =>
      settle(() =>
        exitCode === undefined
          ? reject(
              new ClientError(grpc.status.INTERNAL, 'the exec stream ended without an exit code'),
            )
          : resolve({ exitCode }),
      ),
    );
    io.signal?.addEventListener('abort', onAbort);
    if (io.signal?.aborted) onAbort();
    call.write({ msg: { $case: 'start', value: start } });
    if (!stdin) call.end();
  });
}

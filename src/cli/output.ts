/**
 * What every CLI verb shares: how it writes, how it fails, and how it gets
 * a client. Errors end up as one line: `error: …` for a mistake in the
 * command or an unreachable cluster, `Error from server: …` for a master's
 * answer (kubectl's wording), then exit 1 unless said otherwise.
 */
import { Command } from 'commander';
import { KindInfo, resolveKind } from '../api/types';
import { BatonClient, ClientError } from '../client/cluster-client';
import { connect, GlobalFlags } from './client-config';

/** A failure already reported to the user: the command ends with `exitCode` (1 unless said otherwise). */
export class ReportedError extends Error {
  constructor(
    message = 'failed',
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'ReportedError';
  }
}

/** A mistake in how the command was called or what it was asked to do: reported as `error: <message>`. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
export const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);

/** The one line a failure is reported with. */
export function errorLine(e: unknown): string {
  if (e instanceof ClientError)
    return e.message.startsWith('no master answered')
      ? `error: ${e.message}`
      : `Error from server: ${e.message}`;
  return `error: ${(e as Error).message}`;
}

/** A kind as kubectl names it (`pods`, `deploy`, `Deployment`), or a CliError. */
export function kindOf(type: string): KindInfo {
  const k = resolveKind(type);
  if (!k) throw new CliError(`the server doesn't have a resource type "${type}"`);
  return k;
}

/** Runs `fn` with a client for the masters the global flags or config name, closed after. */
export async function withClient<T>(
  cmd: Command,
  fn: (c: BatonClient, ns: string) => Promise<T>,
): Promise<T> {
  const { client, namespace } = connect(cmd.optsWithGlobals() as GlobalFlags);
  try {
    return await fn(client, namespace);
  } finally {
    client.close();
  }
}

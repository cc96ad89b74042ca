/**
 * Idempotent writes: a client sends one random key with a write
 * (`idempotency-key` metadata) and the same key with every retry of it.
 * The master scopes the key to the caller (so nobody can read another's
 * answer by guessing a key), proposes the write as a keyed `once` command,
 * and the store applies a key once (see store/request-log.ts). BatonClient
 * keys every write, which makes its retries after a lost answer safe.
 */
import * as grpc from '@grpc/grpc-js';
import { IDEMPOTENCY_KEY } from '../api/idempotency';
import { ApiObject, kindInfo } from '../api/types';
import { callerOf } from '../ca/authz';
import { ApiError } from './api-error';
import { Command } from './store/commands';

/** The caller-scoped key, as a master forwarding a write passes it to the leader (masters only). */
const SCOPED_KEY = 'baton-idempotency-key';
/** What a master sets on a call it forwards (only kept on calls from masters: see ca/authz). */
export const FORWARDED = 'baton-forwarded';

const KEY_SYNTAX = /^[A-Za-z0-9_-]{8,64}$/;

type Call = Parameters<typeof callerOf>[0] & { metadata: grpc.Metadata };

/**
 * The caller-scoped key of a write, or undefined when the client sent none.
 * A malformed key is refused before anything is done.
 */
export function requestKey(call: Call): string | undefined {
  const forwarded = call.metadata.get(SCOPED_KEY);
  if (forwarded.length > 0 && call.metadata.get(FORWARDED).length > 0) return String(forwarded[0]);
  const given = call.metadata.get(IDEMPOTENCY_KEY);
  if (given.length === 0) return undefined;
  const key = String(given[0]);
  if (!KEY_SYNTAX.test(key))
    throw new ApiError(
      grpc.status.INVALID_ARGUMENT,
      `metadata ${IDEMPOTENCY_KEY}: must be 8 to 64 letters, digits, "-" or "_" (got ${JSON.stringify(key.slice(0, 80))})`,
    );
  const who = callerOf(call);
  return `${who ? `${who.role}:${who.name}` : '-'}/${key}`;
}

/** Adds a write's scoped key to the metadata of the call forwarding it. */
export function forwardKey(md: grpc.Metadata, key: string | undefined): void {
  if (key !== undefined) md.set(SCOPED_KEY, key);
}

/** A command with its key, ready to propose (a command without a key is proposed as it is). */
export function keyed(cmd: Command, key: string | undefined, now: number): Command {
  return key === undefined ? cmd : { op: 'once', key, at: now, command: cmd };
}

/** What a write command names: the object a retried write's answer shows when the original's is gone. */
export function targetOf(
  cmd: Command,
): { kind: string; namespace?: string; name: string } | undefined {
  switch (cmd.op) {
    case 'create':
    case 'update':
      return {
        kind: cmd.object.kind,
        namespace: cmd.object.metadata.namespace,
        name: cmd.object.metadata.name ?? '',
      };
    case 'delete':
      return cmd;
    case 'once':
    case 'fenced':
      return targetOf(cmd.command);
    default:
      return undefined;
  }
}

/** The object a deleted-again answer shows: what was deleted, by name. */
export function deletedStub(t: { kind: string; namespace?: string; name: string }): ApiObject {
  return {
    apiVersion: kindInfo(t.kind)?.apiVersion ?? 'v1',
    kind: t.kind,
    metadata: { name: t.name, ...(t.namespace === undefined ? {} : { namespace: t.namespace }) },
  };
}

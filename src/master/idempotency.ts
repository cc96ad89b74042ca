/**
 * Idempotent writes: a client sends one random key with a write
 * (`idempotency-key` metadata) and the same key with every retry of it.
 * The master scopes the key to the caller (so nobody can read another's
 * answer by guessing a key), proposes the write as a keyed `once` command,
 * and the store applies a key once (see store/request-log.ts). BatonClient
 * keys every write, which makes its retries after a lost answer safe.
 */
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { IDEMPOTENCY_KEY } from '../api/idempotency';
import { ApiObject, kindInfo } from '../api/types';
import { callerOf } from '../ca/authz';
import { ApiError } from './api-error';
import { Command } from './store/commands';

/** The caller-scoped key, as a master forwarding a write passes it to the leader (masters only). */
const SCOPED_KEY = 'baton-idempotency-key';
/** The digest of the client's request, passed on with the key (the forwarded request may be rewritten). */
const SCOPED_DIGEST = 'baton-idempotency-digest';
/** What a master sets on a call it forwards (only kept on calls from masters: see ca/authz). */
export const FORWARDED = 'baton-forwarded';

const KEY_SYNTAX = /^[A-Za-z0-9_-]{8,64}$/;

type Call = Parameters<typeof callerOf>[0] & { metadata: grpc.Metadata; request: unknown };

/**
 * A write's key, scoped to its caller, and the digest of the request it came
 * with: a key sent again with another request is refused, not answered with
 * the first one's result.
 */
export interface WriteKey {
  key: string;
  /** Absent only on a forwarded write that came without one: then it is not compared. */
  digest?: string;
}

/**
 * The key of a write (`method` is the API method), or undefined when the
 * client sent none. A malformed key is refused before anything is done.
 */
export function writeKey(call: Call, method: string): WriteKey | undefined {
  const forwarded = call.metadata.get(SCOPED_KEY);
  if (forwarded.length > 0 && call.metadata.get(FORWARDED).length > 0) {
    // The digest of the client's own request: the forwarded one may be rewritten.
    const digest = call.metadata.get(SCOPED_DIGEST);
    return { key: String(forwarded[0]), digest: digest.length > 0 ? String(digest[0]) : undefined };
  }
  const given = call.metadata.get(IDEMPOTENCY_KEY);
  if (given.length === 0) return undefined;
  const key = String(given[0]);
  if (!KEY_SYNTAX.test(key))
    throw new ApiError(
      grpc.status.INVALID_ARGUMENT,
      `metadata ${IDEMPOTENCY_KEY}: must be 8 to 64 letters, digits, "-" or "_" (got ${JSON.stringify(key.slice(0, 80))})`,
    );
  const who = callerOf(call);
  return {
    key: `${who ? `${who.role}:${who.name}` : '-'}/${key}`,
    digest: digestOf(method, call.request),
  };
}

/**
 * What identifies a request: its method and its fields as the client sent
 * them (decoded messages list their fields in one order, so a retry of the
 * same request has the same digest on any master).
 */
export function digestOf(method: string, request: unknown): string {
  return createHash('sha256')
    .update(`${method}\0${JSON.stringify(request)}`)
    .digest('base64url')
    .slice(0, 22);
}

/** Adds a write's key and digest to the metadata of the call forwarding it. */
export function forwardKey(md: grpc.Metadata, k: WriteKey | undefined): void {
  if (k === undefined) return;
  md.set(SCOPED_KEY, k.key);
  if (k.digest !== undefined) md.set(SCOPED_DIGEST, k.digest);
}

/** A command with its key, ready to propose (a command without a key is proposed as it is). */
export function keyed(cmd: Command, k: WriteKey | undefined, now: number): Command {
  return k === undefined
    ? cmd
    : { op: 'once', key: k.key, digest: k.digest, at: now, command: cmd };
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

/**
 * Join tokens, in the spirit of Docker Swarm's: `BTN-1-<ca digest>-<id>.<secret>`.
 *
 * - The CA digest lets a newcomer check, before it sends the secret, that the
 *   master it reached really holds this cluster's CA (no trust on first use).
 * - The id names the token's record; the secret proves the holder got it from
 *   an admin. Records store only the secret's SHA-256.
 * - A token carries a role (master, node, admin, readonly), a number of uses
 *   (1 by default) and an expiry. A used, expired or rotated token is refused,
 *   saying which of the three it is.
 *
 * Records are Secrets in the `baton-system` namespace (as Kubernetes keeps
 * bootstrap tokens in kube-system), so they are replicated by Raft, encrypted
 * at rest with the other Secrets, and consumed by an update guarded by the
 * record's resourceVersion: two newcomers racing for the last use cannot
 * both win.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiObject } from '../api/types';
import { caDigest, isRole, Role, ROLES } from './pki';

export const SYSTEM_NAMESPACE = 'baton-system';
export const TOKEN_TYPE = 'baton.io/join-token';
export const TOKEN_LABEL = 'baton.io/join-token-role';

export interface JoinToken {
  caDigest: string;
  id: string;
  secret: string;
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

const FORMAT = /^BTN-1-([a-z2-7]{52})-([a-z0-9]{6})\.([a-z0-9]{24})$/;

export function formatToken(t: JoinToken): string {
  return `BTN-1-${t.caDigest}-${t.id}.${t.secret}`;
}

export function parseToken(s: string): JoinToken {
  const m = FORMAT.exec(s.trim());
  if (!m)
    throw new TokenError(
      'token: not a Baton join token (expected BTN-1-<ca digest>-<id>.<secret>, as printed by "baton master --init" or "baton token create")',
    );
  return { caDigest: m[1], id: m[2], secret: m[3] };
}

function randomChars(n: number): string {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
  // 252 is the largest multiple of 36 below 256: no bias.
  let s = '';
  while (s.length < n)
    for (const b of randomBytes(n)) if (b < 252 && s.length < n) s += chars[b % 36];
  return s;
}

export function newToken(caCertPem: string): JoinToken {
  return { caDigest: caDigest(caCertPem), id: randomChars(6), secret: randomChars(24) };
}

export function recordName(id: string): string {
  return `join-token-${id}`;
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

export interface TokenRecord {
  id: string;
  role: Role;
  usesLeft: number;
  uses: number;
  expires?: Date;
  revoked?: Date;
  created?: string;
  description?: string;
}

/** The Secret holding a token's record. */
export function tokenSecret(
  t: JoinToken,
  opts: { role: Role; uses: number; expires?: Date; description?: string },
): ApiObject {
  if (!isRole(opts.role))
    throw new TokenError(`role "${opts.role}": must be one of ${ROLES.join(', ')}`);
  if (!Number.isInteger(opts.uses) || opts.uses < 1)
    throw new TokenError(`uses: must be a positive integer, got ${opts.uses}`);
  const data: Record<string, string> = {
    role: b64(opts.role),
    'secret-sha256': b64(hash(t.secret)),
    uses: b64(String(opts.uses)),
    'uses-left': b64(String(opts.uses)),
  };
  if (opts.expires) data.expires = b64(opts.expires.toISOString());
  if (opts.description) data.description = b64(opts.description);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: recordName(t.id),
      namespace: SYSTEM_NAMESPACE,
      labels: { [TOKEN_LABEL]: opts.role },
    },
    type: TOKEN_TYPE,
    data,
  } as ApiObject;
}

type SecretShape = ApiObject & { data?: Record<string, string>; type?: string };

export function readRecord(o: ApiObject): TokenRecord {
  const s = o as SecretShape;
  const d = s.data ?? {};
  const role = unb64(d.role);
  if (!isRole(role)) throw new TokenError(`${o.metadata.name}: not a join token record`);
  const expires = unb64(d.expires);
  const revoked = unb64(d.revoked);
  return {
    id: o.metadata.name.replace(/^join-token-/, ''),
    role,
    uses: Number(unb64(d.uses)),
    usesLeft: Number(unb64(d['uses-left'])),
    expires: expires ? new Date(expires) : undefined,
    revoked: revoked ? new Date(revoked) : undefined,
    created: o.metadata.creationTimestamp as string | undefined,
    description: unb64(d.description) || undefined,
  };
}

/**
 * Checks a presented token against its record at `now`: the record after
 * one use, or an error a person can act on.
 */
export function useToken(o: ApiObject, t: JoinToken, now: Date): { role: Role; next: ApiObject } {
  const r = readRecord(o);
  const d = (o as SecretShape).data ?? {};
  const want = Buffer.from(unb64(d['secret-sha256']), 'hex');
  const got = Buffer.from(hash(t.secret), 'hex');
  if (want.length !== got.length || !timingSafeEqual(want, got))
    throw new TokenError(`token ${t.id}: the secret does not match`);
  if (r.revoked)
    throw new TokenError(
      `token ${t.id}: it was rotated at ${r.revoked.toISOString()}; ask an admin for a new one ("baton token create --role ${r.role}")`,
    );
  if (r.usesLeft < 1)
    throw new TokenError(
      `token ${t.id}: already used (${r.uses} use${r.uses === 1 ? '' : 's'}); ask an admin for a new one ("baton token create --role ${r.role}")`,
    );
  if (r.expires && now.getTime() > r.expires.getTime())
    throw new TokenError(`token ${t.id}: expired at ${r.expires.toISOString()}`);
  const next = structuredClone(o) as SecretShape;
  next.data = { ...d, 'uses-left': b64(String(r.usesLeft - 1)) };
  return { role: r.role, next };
}

/** The record of a rotated token: kept, so its holder is told why it is refused. */
export function revokedSecret(o: ApiObject, now: Date): ApiObject {
  const next = structuredClone(o) as SecretShape;
  next.data = { ...(next.data ?? {}), revoked: b64(now.toISOString()) };
  return next;
}

/** "24h", "30m", "7d", "90s" → milliseconds. */
export function parseDuration(s: string, what: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s.trim());
  if (!m) throw new TokenError(`${what}: expected a duration such as 30m, 24h or 7d, got "${s}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * unit;
}

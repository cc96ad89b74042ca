/**
 * The newcomer's side of the secure bootstrap (a master joining, a node, or
 * `baton login`), as Docker Swarm does it:
 *
 * 1. Fetch the CA certificate over TLS without trusting the server yet, and
 *    compare its digest with the one in the join token. A mismatch stops
 *    here, before the token's secret is sent anywhere.
 * 2. Make a key pair, connect again trusting only that CA (the server must
 *    show a master certificate of this cluster) and trade the token and the
 *    public key for a certificate. The private key never leaves this host.
 */
import * as grpc from '@grpc/grpc-js';
import { ClusterClient, EnrollResponse, GetCaResponse } from '../gen/api';
import { caDigest, generateKeyPair, identityOf, KeyPairPem, Role } from './pki';
import {
  anonymousChannelCredentials,
  TLS_CHANNEL_OPTIONS,
  unverifiedChannelCredentials,
} from './tls';
import { parseToken } from './tokens';

export class EnrollError extends Error {
  constructor(
    message: string,
    /** Whether another attempt (or another master) may succeed. */
    readonly retriable: boolean,
  ) {
    super(message);
    this.name = 'EnrollError';
  }
}

function unaryCall<Res>(
  client: ClusterClient,
  method: 'getCa' | 'enroll',
  req: object,
  timeoutMs: number,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) =>
    (client[method] as unknown as (...a: unknown[]) => void).call(
      client,
      req,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)),
    ),
  );
}

const CHANNEL = { ...TLS_CHANNEL_OPTIONS, 'grpc.max_reconnect_backoff_ms': 1000 };

/** Step 1: the cluster CA from `address`, checked against the token's digest. */
export async function fetchCa(address: string, token: string, timeoutMs = 10_000): Promise<string> {
  const t = parseToken(token);
  const client = new ClusterClient(address, unverifiedChannelCredentials(), CHANNEL);
  let res: GetCaResponse;
  try {
    res = await unaryCall<GetCaResponse>(client, 'getCa', {}, timeoutMs);
  } catch (err) {
    const e = err as grpc.ServiceError;
    throw new EnrollError(
      `fetching the cluster CA from ${address}: ${e.details || e.message}`,
      e.code !== grpc.status.FAILED_PRECONDITION,
    );
  } finally {
    client.close();
  }
  if (caDigest(res.caCertPem) !== t.caDigest)
    throw new EnrollError(
      `the master at ${address} holds another CA than the token names (digest ${caDigest(res.caCertPem).slice(0, 12)}…, token ${t.caDigest.slice(0, 12)}…): wrong address, wrong token, or someone in between; nothing was sent`,
      false,
    );
  return res.caCertPem;
}

export interface Enrolled {
  caCertPem: string;
  certPem: string;
  key: KeyPairPem;
  role: string;
  caKeyPem?: string;
  secretsKey?: Buffer;
}

/** Steps 1 and 2 against one master. */
export async function enroll(
  address: string,
  token: string,
  name: string,
  expectedRole: Role | Role[],
  timeoutMs = 15_000,
): Promise<Enrolled> {
  const caCertPem = await fetchCa(address, token, timeoutMs);
  const key = generateKeyPair();
  const client = new ClusterClient(
    address,
    anonymousChannelCredentials(caCertPem, ['master']),
    CHANNEL,
  );
  let res: EnrollResponse;
  try {
    res = await unaryCall<EnrollResponse>(
      client,
      'enroll',
      {
        token,
        name,
        publicKeyPem: key.publicKeyPem,
        expectedRole: [expectedRole].flat().join(','),
      },
      timeoutMs,
    );
  } catch (err) {
    const e = err as grpc.ServiceError;
    throw new EnrollError(
      `enrolling "${name}" through ${address}: ${e.details || e.message}`,
      e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED,
    );
  } finally {
    client.close();
  }
  const role = identityOf(res.certPem).role; // a certificate we can use, or a clear error
  const allowed = Array.isArray(expectedRole) ? expectedRole : [expectedRole];
  if (!allowed.includes(role))
    throw new EnrollError(`the token was for a ${role}; expected ${allowed.join(' or ')}`, false);
  return {
    caCertPem: res.caCertPem,
    certPem: res.certPem,
    key,
    role: res.role,
    caKeyPem: res.caKeyPem || undefined,
    secretsKey: res.secretsKey.length > 0 ? Buffer.from(res.secretsKey) : undefined,
  };
}

/** Tries each master in turn (and again, while they may be starting) until one enrolls us. */
export async function enrollAny(
  addresses: string[],
  token: string,
  name: string,
  expectedRole: Role | Role[],
  opts: { attempts?: number; onRetry?: (err: Error) => void } = {},
): Promise<Enrolled> {
  const attempts = opts.attempts ?? 10;
  let last: Error | undefined;
  for (let i = 0; i < attempts; i++) {
    for (const a of addresses) {
      try {
        return await enroll(a, token, name, expectedRole);
      } catch (err) {
        last = err as Error;
        if (err instanceof EnrollError && !err.retriable) throw err;
        opts.onRetry?.(last);
      }
    }
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * (i + 1))));
  }
  throw last ?? new Error('no master address given');
}

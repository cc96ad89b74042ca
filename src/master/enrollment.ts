/**
 * The master's side of the secure bootstrap: hand out the CA certificate,
 * trade a join token for a certificate, renew a certificate. Token records
 * are consumed on the leader through the Raft log (an update guarded by the
 * record's resourceVersion), so a single-use token works exactly once even
 * when two newcomers present it to two masters at the same moment.
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { callerOf } from '../ca/authz';
import {
  caDigest,
  certTtlFor,
  DEFAULT_CERT_TTL_MS,
  issueCertificate,
  PkiError,
  Role,
} from '../ca/pki';
import { TlsIdentity } from '../ca/tls';
import { parseToken, recordName, SYSTEM_NAMESPACE, TokenError, useToken } from '../ca/tokens';
import {
  ClusterClient,
  EnrollRequest,
  EnrollResponse,
  GetCaResponse,
  RenewCertificateRequest,
} from '../gen/api';
import { ApiError } from './api-error';
import { Command, CommandResult } from './store/commands';
import { ClusterStore } from './store/cluster-store';

export interface SecurityOptions {
  tls: TlsIdentity;
  /** The file holding the key ring that seals Secrets (sent to joining masters). */
  secretsKeyFile?: string;
  /** How long the certificates this master issues live. */
  certTtlMs?: number;
}

export interface EnrollmentDeps {
  security?: SecurityOptions;
  store: ClusterStore;
  log: Logger;
  now(): Date;
  forward<Req, Res>(
    method: keyof ClusterClient & string,
    req: Req,
    call: grpc.ServerUnaryCall<Req, Res>,
  ): Promise<Res | undefined>;
  propose(cmd: Command): Promise<{ index: number; result: CommandResult }>;
}

type Handler<Req, Res> = (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

export function enrollmentHandlers(d: EnrollmentDeps): {
  getCa: Handler<object, GetCaResponse>;
  enroll: Handler<EnrollRequest, EnrollResponse>;
  renewCertificate: Handler<RenewCertificateRequest, EnrollResponse>;
} {
  const secure = (): SecurityOptions => {
    if (!d.security)
      throw new ApiError(
        grpc.status.FAILED_PRECONDITION,
        'this master runs without TLS (--insecure): it has no CA and issues no certificates',
      );
    return d.security;
  };
  const sign = async (s: SecurityOptions, name: string, role: string, publicKeyPem: string) => {
    try {
      return await issueCertificate(s.tls.ca!, {
        name,
        role: role as never,
        publicKeyPem,
        ttlMs: certTtlFor(role as Role, s.certTtlMs ?? DEFAULT_CERT_TTL_MS),
        now: d.now(),
      });
    } catch (err) {
      if (err instanceof PkiError) throw new ApiError(grpc.status.INVALID_ARGUMENT, err.message);
      throw err;
    }
  };

  return {
    async getCa() {
      return { caCertPem: secure().tls.caCertPem };
    },

    async enroll(req, call) {
      const s = secure();
      let token;
      try {
        token = parseToken(req.token);
      } catch (err) {
        throw new ApiError(grpc.status.INVALID_ARGUMENT, (err as Error).message);
      }
      if (token.caDigest !== caDigest(s.tls.caCertPem))
        throw new ApiError(
          grpc.status.UNAUTHENTICATED,
          `token ${token.id}: made for another cluster (its CA digest differs from this cluster's)`,
        );
      // Only the leader consumes tokens: its reads are current and its writes go first.
      const fwd = await d.forward('enroll', req, call);
      if (fwd) return fwd;
      for (let attempt = 0; ; attempt++) {
        const rec = d.store.get('Secret', SYSTEM_NAMESPACE, recordName(token.id));
        if (!rec)
          throw new ApiError(
            grpc.status.UNAUTHENTICATED,
            `token ${token.id}: unknown (never issued by this cluster, or deleted)`,
          );
        let used;
        try {
          used = useToken(rec.object, token, d.now());
        } catch (err) {
          if (err instanceof TokenError)
            throw new ApiError(grpc.status.UNAUTHENTICATED, err.message);
          throw err;
        }
        const wanted = req.expectedRole ? req.expectedRole.split(',') : [];
        if (wanted.length > 0 && !wanted.includes(used.role))
          throw new ApiError(
            grpc.status.PERMISSION_DENIED,
            `token ${token.id}: it is a ${used.role} token, and a ${wanted.join(' or ')} token is needed here (the token was not used)`,
          );
        // Checked before the token is spent: a bad name must not cost a use.
        const certPem = await sign(s, req.name, used.role, req.publicKeyPem);
        const res: EnrollResponse = {
          certPem,
          caCertPem: s.tls.caCertPem,
          role: used.role,
          caKeyPem: '',
          secretsKey: Buffer.alloc(0),
        };
        // Everything that can fail comes before the token is spent.
        if (used.role === 'master') {
          res.caKeyPem = s.tls.caKeyPem!;
          if (s.secretsKeyFile) res.secretsKey = readFileSync(s.secretsKeyFile);
        }
        try {
          await d.propose({
            op: 'update',
            object: used.next,
            uid: rec.object.metadata.uid!,
            expectedRevision: rec.revision,
          });
        } catch (err) {
          // Someone else used it in between: look again (it may be spent now).
          if ((err as ApiError).code === grpc.status.ABORTED && attempt < 5) continue;
          throw err;
        }
        d.log.info(
          { name: req.name, role: used.role, token: token.id },
          'certificate issued for a join token',
        );
        return res;
      }
    },

    async renewCertificate(req, call) {
      const s = secure();
      const who = callerOf(call);
      if (!who)
        throw new ApiError(grpc.status.UNAUTHENTICATED, 'renewing needs the current certificate');
      const certPem = await sign(s, who.name, who.role, req.publicKeyPem);
      d.log.info({ name: who.name, role: who.role }, 'certificate renewed');
      return {
        certPem,
        caCertPem: s.tls.caCertPem,
        role: who.role,
        caKeyPem: '',
        secretsKey: Buffer.alloc(0),
      };
    },
  };
}

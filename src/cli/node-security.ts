/**
 * How `baton node` gets its certificate: `<pki-dir>/tls.pem` when it has
 * one, else a node join token (`--token`) traded through any master, else
 * plaintext only when asked for (`--insecure`). The certificate names the
 * node, so it can open a session for itself and no other node.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { enrollAny } from '../ca/enroll';
import { hasPki, loadPki, savePki, TlsIdentity } from '../ca/tls';
import { ConfigError } from '../common/config';

export async function prepareNodeSecurity(
  s: {
    name: string;
    masters: string[];
    dataDir: string;
    pkiDir?: string;
    token?: string;
    insecure?: boolean;
  },
  log: Logger,
): Promise<{ tls?: TlsIdentity; pkiDir: string }> {
  const pkiDir = s.pkiDir ?? join(s.dataDir, 'pki');
  if (s.insecure) {
    if (s.token) throw new ConfigError('setting "insecure": cannot be combined with "token"');
    log.warn('running WITHOUT TLS (--insecure)');
    return { pkiDir };
  }
  if (hasPki(pkiDir)) {
    const tls = loadPki(pkiDir);
    if (tls.identity.name !== s.name)
      throw new ConfigError(
        `setting "name": ${pkiDir} holds the certificate of node "${tls.identity.name}", not "${s.name}"`,
      );
    return { tls, pkiDir };
  }
  if (!s.token)
    throw new ConfigError(
      `no certificate in ${pkiDir}: pass a node join token (--token, from "baton master --init" or "baton token create --role node"), or --insecure for a plaintext test cluster`,
    );
  const got = await enrollAny(s.masters, s.token, s.name, 'node', {
    onRetry: (err) => log.warn({ err: err.message }, 'enrolling: retrying'),
  });
  savePki(pkiDir, {
    caCertPem: got.caCertPem,
    certPem: got.certPem,
    keyPem: got.key.privateKeyPem,
  });
  log.info({ pkiDir }, 'enrolled with a join token');
  return { tls: loadPki(pkiDir), pkiDir };
}

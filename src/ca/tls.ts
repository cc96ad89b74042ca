/**
 * A member's TLS identity (CA certificate, its own certificate and key) and
 * the gRPC credentials made from it. Credentials read the identity through
 * certificate providers, so a renewed certificate is used by every new
 * connection at once, with no restart and without dropping the streams that
 * are already open (a TLS session stays valid after its certificate expires).
 */
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CaMaterial,
  certInfo,
  clusterOf,
  Identity,
  identityOf,
  identityOfSubject,
  keyMatches,
  PkiError,
  Role,
  verifyIssuedBy,
} from './pki';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * One provider serves both the CA and the identity: grpc-js swaps the two
 * provider arguments of its server credentials internally, which does not
 * matter when they are the same object.
 */
class IdentityProvider implements grpc.experimental.CertificateProvider {
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();

  constructor(private readonly owner: TlsIdentity) {}

  // grpc-js registers its own watcher only after adding these listeners:
  // an answer given at once would be lost, so it comes a microtask later.
  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    queueMicrotask(() => l({ caCertificate: Buffer.from(this.owner.caCertPem) }));
  }
  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: IdListener): void {
    this.idListeners.add(l);
    queueMicrotask(() => l(this.owner.identityUpdate()));
  }
  removeIdentityCertificateListener(l: IdListener): void {
    this.idListeners.delete(l);
  }
  changed(): void {
    for (const l of this.idListeners) l(this.owner.identityUpdate());
  }
}

export class TlsIdentity {
  readonly cluster: string;
  private cert: string;
  private key: string;
  private readonly provider = new IdentityProvider(this);
  private serverCreds?: grpc.ServerCredentials;
  private readonly channelCreds = new Map<string, grpc.ChannelCredentials>();

  constructor(
    readonly caCertPem: string,
    certPem: string,
    keyPem: string,
    /** Present on masters: they sign certificates. */
    readonly caKeyPem?: string,
  ) {
    this.cluster = clusterOf(caCertPem);
    this.check(certPem, keyPem);
    this.cert = certPem;
    this.key = keyPem;
  }

  private check(certPem: string, keyPem: string): void {
    verifyIssuedBy(certPem, this.caCertPem);
    if (!keyMatches(certPem, keyPem))
      throw new PkiError('the private key does not belong to the certificate');
    if (identityOf(certPem).cluster !== this.cluster)
      throw new PkiError('the certificate was issued for another cluster');
  }

  get certPem(): string {
    return this.cert;
  }
  get keyPem(): string {
    return this.key;
  }
  get identity(): Identity {
    return identityOf(this.cert);
  }
  get ca(): CaMaterial | undefined {
    return this.caKeyPem ? { certPem: this.caCertPem, keyPem: this.caKeyPem } : undefined;
  }
  get notAfter(): Date {
    return certInfo(this.cert).notAfter;
  }

  identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.cert), privateKey: Buffer.from(this.key) };
  }

  /** Switches to a renewed certificate (same CA) for every new connection. */
  update(certPem: string, keyPem: string): void {
    this.check(certPem, keyPem);
    this.cert = certPem;
    this.key = keyPem;
    this.provider.changed();
  }

  /**
   * Server side: clients must show a certificate for every RPC but the two
   * bootstrap ones (GetCa, Enroll), so the TLS layer asks for one without
   * requiring it, and the authorization interceptor refuses calls whose
   * caller has none or an invalid one (grpc-js reports only verified peers).
   */
  serverCredentials(): grpc.ServerCredentials {
    return (this.serverCreds ??= grpc.experimental.createCertificateProviderServerCredentials(
      this.provider,
      this.provider,
      false,
    ));
  }

  /** Client side: our certificate, and a server that must be `expect` of our cluster. */
  channelCredentials(expect: Role[]): grpc.ChannelCredentials {
    const k = expect.join(',');
    let c = this.channelCreds.get(k);
    if (!c)
      this.channelCreds.set(
        k,
        (c = grpc.experimental.createCertificateProviderChannelCredentials(
          this.provider,
          this.provider,
          { checkServerIdentity: peerCheck(this.cluster, expect) },
        )),
      );
    return c;
  }
}

/**
 * Channel options for TLS to Baton members: peers are checked by identity
 * (peerCheck), so the SNI name is a constant rather than an IP address
 * (which TLS forbids as a server name, and Node warns about).
 */
export const TLS_CHANNEL_OPTIONS = { 'grpc.ssl_target_name_override': 'baton' } as const;

/** Replaces host-name checks: the peer must hold a certificate of our cluster with one of these roles. */
export function peerCheck(cluster: string, expect: Role[]) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const id = identityOfSubject(cert.subject as unknown as Record<string, unknown>);
    if (!id) return new Error('the server certificate is not a Baton identity');
    if (id.cluster !== cluster)
      return new Error(`the server belongs to cluster ${id.cluster}, not ${cluster}`);
    if (!expect.includes(id.role))
      return new Error(`the server is a ${id.role} (${id.name}), expected ${expect.join(' or ')}`);
    return undefined;
  };
}

/** Credentials for the first contact: TLS without checking the server, to fetch the CA and compare its digest. */
export function unverifiedChannelCredentials(): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false });
}

/** Credentials that trust the cluster CA but show no certificate (enrolling with a token). */
export function anonymousChannelCredentials(
  caCertPem: string,
  expect: Role[],
): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(caCertPem), null, null, {
    checkServerIdentity: peerCheck(clusterOf(caCertPem), expect),
  });
}

/**
 * A member's certificates on disk (`<data-dir>/pki/`):
 *   ca.crt   the cluster CA
 *   ca.key   its private key, on masters only (0600)
 *   tls.pem  this member's certificate and private key in one file (0600),
 *            so a renewal replaces both at once (write, then rename)
 */
export const PKI_FILES = { caCert: 'ca.crt', caKey: 'ca.key', identity: 'tls.pem' };

export function hasPki(dir: string): boolean {
  return existsSync(join(dir, PKI_FILES.identity));
}

export function loadPki(dir: string): TlsIdentity {
  const read = (f: string, required = true) => {
    const p = join(dir, f);
    if (!existsSync(p)) {
      if (required) throw new PkiError(`${p}: missing`);
      return undefined;
    }
    return readFileSync(p, 'utf8');
  };
  try {
    const both = read(PKI_FILES.identity)!;
    const cert = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/.exec(both)?.[0];
    const key = /-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----\n?/.exec(both)?.[0];
    if (!cert || !key)
      throw new PkiError(`${PKI_FILES.identity}: expected a certificate and a private key (PEM)`);
    return new TlsIdentity(read(PKI_FILES.caCert)!, cert, key, read(PKI_FILES.caKey, false));
  } catch (err) {
    throw new PkiError(`${dir}: ${(err as Error).message}`);
  }
}

/** Writes each file whole (temporary file, then rename) so a crash never leaves half a key. */
export function savePki(
  dir: string,
  files: { caCertPem?: string; caKeyPem?: string; certPem?: string; keyPem?: string },
): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const put = (name: string, content: string | undefined, mode: number) => {
    if (content === undefined) return;
    const p = join(dir, name);
    writeFileSync(`${p}.tmp`, content, { mode });
    renameSync(`${p}.tmp`, p);
  };
  put(PKI_FILES.caCert, files.caCertPem, 0o644);
  put(PKI_FILES.caKey, files.caKeyPem, 0o600);
  if (files.certPem !== undefined && files.keyPem !== undefined)
    put(PKI_FILES.identity, files.certPem.trimEnd() + '\n' + files.keyPem, 0o600);
}

/**
 * The cluster's certificate authority, in the spirit of swarmkit's `ca/`:
 * one self-signed root per cluster, ECDSA P-256 keys, and leaf certificates
 * whose subject says who the holder is and what it may do:
 *
 *   CN = node name, "master-<id>" or a user name
 *   OU = role (master | node | admin | readonly)
 *   O  = the cluster id (a random name made with the CA)
 *
 * Peers are checked by that identity, not by host name: a VM's address may
 * change, be NATed or be a namespace in the lab, while "signed by our CA,
 * cluster X, role master" is what a master really needs to know.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';

type CryptoKey = webcrypto.CryptoKey;

x509.cryptoProvider.set(webcrypto as never);

export const ROLES = ['master', 'node', 'admin', 'readonly'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

export interface Identity {
  name: string;
  role: Role;
  cluster: string;
}

export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

const DAY = 86_400_000;
export const CA_TTL_MS = 10 * 365 * DAY;
/** Leaf certificates live 90 days by default and are renewed after two thirds of that. */
export const DEFAULT_CERT_TTL_MS = 90 * DAY;
/** The shortest life of a person's certificate (admin, readonly): nothing renews it but a new login. */
export const CLIENT_CERT_TTL_MS = 365 * DAY;

/** How long a certificate for `role` lives: the cluster's TTL, and a person's at least a year. */
export function certTtlFor(role: Role, clusterTtlMs: number): number {
  return role === 'admin' || role === 'readonly'
    ? Math.max(clusterTtlMs, CLIENT_CERT_TTL_MS)
    : clusterTtlMs;
}
/**
 * Clocks on VMs drift: a certificate is valid from a little before it was
 * made (5 minutes, or a tenth of a short lifetime, so renewal at two thirds
 * of the lifetime still comes after the certificate was made).
 */
const backdate = (ttlMs: number) => Math.min(5 * 60_000, ttlMs / 10);

export class PkiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PkiError';
  }
}

export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function serial(): string {
  // Positive 128-bit serial numbers (RFC 5280 §4.1.2.2 allows up to 20 octets).
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function importPrivate(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

async function importPublic(pem: string): Promise<CryptoKey> {
  let key;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new PkiError(`public key: not a PEM public key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new PkiError('public key: expected an ECDSA P-256 key');
  const der = key.export({ type: 'spki', format: 'der' });
  return webcrypto.subtle.importKey('spki', der, ALG, true, ['verify']);
}

/** A new cluster CA with a fresh cluster id. */
export async function createCa(now = new Date()): Promise<CaMaterial & { cluster: string }> {
  const cluster = `baton-${randomBytes(6).toString('hex')}`;
  const pair = generateKeyPair();
  const keys = {
    privateKey: (await importPrivate(pair.privateKeyPem)) as never,
    publicKey: (await importPublic(pair.publicKeyPem)) as never,
  };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Baton cluster CA, O=${cluster}`,
    notBefore: new Date(now.getTime() - backdate(CA_TTL_MS)),
    notAfter: new Date(now.getTime() + CA_TTL_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: pair.privateKeyPem, cluster };
}

export interface IssueRequest {
  name: string;
  role: Role;
  publicKeyPem: string;
  ttlMs?: number;
  /** Host names and IPs the holder serves on (informational: peers check the identity). */
  hosts?: string[];
  now?: Date;
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

/** Signs a leaf certificate for `req` with the CA. */
export async function issueCertificate(ca: CaMaterial, req: IssueRequest): Promise<string> {
  if (!NAME.test(req.name))
    throw new PkiError(
      `name "${req.name}": must be lowercase letters, digits, '-' or '.', at most 63 characters, starting and ending with a letter or digit`,
    );
  if (!isRole(req.role))
    throw new PkiError(`role "${req.role}": must be one of ${ROLES.join(', ')}`);
  const caCert = new x509.X509Certificate(ca.certPem);
  const cluster = clusterOf(ca.certPem);
  const now = req.now ?? new Date();
  const ttl = req.ttlMs ?? DEFAULT_CERT_TTL_MS;
  const publicKey = await importPublic(req.publicKeyPem);
  const hosts = [...new Set(req.hosts ?? [])].filter((h) => h.length > 0);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
      true,
    ),
    // Every member is both a server and a client (masters dial masters and
    // nodes; nodes dial masters and serve logs/exec).
    new x509.ExtendedKeyUsageExtension(
      [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (hosts.length > 0)
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => ({ type: isIP(h) ? 'ip' : 'dns', value: h })),
      ),
    );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${req.name}, OU=${req.role}, O=${cluster}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - backdate(ttl)),
    notAfter: new Date(Math.min(now.getTime() + ttl, caCert.notAfter.getTime())),
    signingKey: await importPrivate(ca.keyPem),
    publicKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return cert.toString('pem');
}

function subjectField(subject: string, field: string): string | undefined {
  // Node prints the subject one "KEY=value" per line.
  for (const line of subject.split('\n'))
    if (line.startsWith(`${field}=`)) return line.slice(field.length + 1);
  return undefined;
}

/** The cluster id a CA certificate was made for. */
export function clusterOf(caCertPem: string): string {
  const o = subjectField(new X509Certificate(caCertPem).subject, 'O');
  if (!o) throw new PkiError('CA certificate: no organization (O) in its subject');
  return o;
}

/** Who a certificate belongs to; undefined when its subject is not a Baton identity. */
export function identityOfSubject(subject: Record<string, unknown> | string): Identity | undefined {
  const get = (k: string) =>
    typeof subject === 'string' ? subjectField(subject, k) : (subject[k] as string | undefined);
  const name = get('CN');
  const role = get('OU');
  const cluster = get('O');
  if (!name || !role || !cluster || !isRole(role)) return undefined;
  return { name, role, cluster };
}

export function identityOf(certPem: string): Identity {
  const id = identityOfSubject(new X509Certificate(certPem).subject);
  if (!id)
    throw new PkiError('certificate: its subject is not a Baton identity (CN, OU=role, O=cluster)');
  return id;
}

/** SHA-256 of the CA certificate (DER), base32: what join tokens pin. */
export function caDigest(caCertPem: string): string {
  return base32(createHash('sha256').update(new X509Certificate(caCertPem).raw).digest());
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
export function base32(buf: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export interface CertInfo {
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

export function certInfo(certPem: string): CertInfo {
  const c = new X509Certificate(certPem);
  return {
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    serial: c.serialNumber,
  };
}

/** Throws unless `certPem` was signed by the CA and is valid at `now`. */
export function verifyIssuedBy(certPem: string, caCertPem: string, now = new Date()): void {
  const c = new X509Certificate(certPem);
  const ca = new X509Certificate(caCertPem);
  if (!c.checkIssued(ca) || !c.verify(ca.publicKey))
    throw new PkiError('certificate: not signed by the cluster CA');
  const t = now.getTime();
  if (t < new Date(c.validFrom).getTime() || t > new Date(c.validTo).getTime())
    throw new PkiError(`certificate: not valid now (valid ${c.validFrom} to ${c.validTo})`);
}

/** The private key belongs to the certificate (a mismatched pair would fail every handshake). */
export function keyMatches(certPem: string, keyPem: string): boolean {
  const pub = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  return Buffer.compare(pub as Buffer, fromKey as Buffer) === 0;
}

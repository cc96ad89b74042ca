/**
 * How `baton master` gets its certificates, in order:
 * 1. `<pki-dir>/tls.pem` exists: use it (every restart after the first).
 * 2. `--init`: make the cluster CA and this master's certificate; once the
 *    master leads its one-member cluster, write an admin client config and
 *    print join tokens for masters and nodes.
 * 3. `--join ADDR --token T`: enroll through an existing master (CA
 *    checked against the token), which also hands over the CA key and the
 *    key that seals Secrets, as every master needs them.
 * 4. `--insecure`: plaintext, no checks — for throwaway test clusters only.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { enrollAny } from '../ca/enroll';
import {
  certTtlFor,
  createCa,
  DEFAULT_CERT_TTL_MS,
  generateKeyPair,
  issueCertificate,
} from '../ca/pki';
import { hasPki, loadPki, savePki, TlsIdentity } from '../ca/tls';
import { parseDuration } from '../ca/tokens';
import { BatonClient } from '../client/cluster-client';
import { ConfigError } from '../common/config';
import { clientConfigText } from './client-config';
import { createJoinToken } from './commands/token';

export interface MasterSecuritySettings {
  id: number;
  dataDir: string;
  pkiDir?: string;
  advertise: string;
  init?: boolean;
  join?: string;
  token?: string;
  insecure?: boolean;
  certTtl?: string;
  secretsKeyFile?: string;
}

export interface PreparedSecurity {
  tls?: TlsIdentity;
  pkiDir: string;
  secretsKeyFile: string;
  certTtlMs: number;
  /** Set by --init on the first start: what to do once the master serves. */
  afterStart?: (listening: string) => Promise<void>;
}

export function secretsKeyPath(pkiDir: string): string {
  return join(pkiDir, 'secrets.key');
}

const hostOf = (addr: string) => addr.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');

export async function prepareMasterSecurity(
  s: MasterSecuritySettings,
  log: Logger,
): Promise<PreparedSecurity> {
  const pkiDir = s.pkiDir ?? join(s.dataDir, 'pki');
  const certTtlMs = s.certTtl ? parseDurationSetting(s.certTtl) : DEFAULT_CERT_TTL_MS;
  const base = { pkiDir, secretsKeyFile: s.secretsKeyFile ?? secretsKeyPath(pkiDir), certTtlMs };
  if (s.insecure) {
    if (s.init || s.token)
      throw new ConfigError('setting "insecure": cannot be combined with "init" or "token"');
    log.warn('running WITHOUT TLS (--insecure): anyone who reaches this port controls the cluster');
    return base;
  }
  if (hasPki(pkiDir)) return { ...base, tls: loadPki(pkiDir) };
  const name = `master-${s.id}`;
  if (s.init) {
    if (s.join) throw new ConfigError('setting "init": a new cluster is not joined ("join" given)');
    if (existsSync(join(s.dataDir, 'raft')))
      throw new ConfigError(
        `setting "init": ${s.dataDir} already holds cluster data made without certificates; use an empty data directory`,
      );
    const ca = await createCa();
    const key = generateKeyPair();
    const certPem = await issueCertificate(ca, {
      name,
      role: 'master',
      publicKeyPem: key.publicKeyPem,
      ttlMs: certTtlMs,
      hosts: [hostOf(s.advertise)],
    });
    savePki(pkiDir, {
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      certPem,
      keyPem: key.privateKeyPem,
    });
    const tls = loadPki(pkiDir);
    log.info({ cluster: ca.cluster }, 'created the cluster CA');
    return { ...base, tls, afterStart: () => announce(s, tls, certTtlMs) };
  }
  if (s.join && s.token) {
    const got = await enrollAny([s.join], s.token, name, 'master', {
      onRetry: (err) => log.warn({ err: err.message }, 'enrolling: retrying'),
    });
    if (got.role !== 'master')
      throw new ConfigError(
        `setting "token": it is a ${got.role} token; a master needs a master token`,
      );
    if (!got.caKeyPem || !got.secretsKey)
      throw new ConfigError('enrolling: the cluster sent no CA key or Secrets key for this master');
    savePki(pkiDir, {
      caCertPem: got.caCertPem,
      caKeyPem: got.caKeyPem,
      certPem: got.certPem,
      keyPem: got.key.privateKeyPem,
    });
    writeFileSync(base.secretsKeyFile, got.secretsKey, { mode: 0o600 });
    log.info({ via: s.join }, 'enrolled with a join token');
    return { ...base, tls: loadPki(pkiDir) };
  }
  throw new ConfigError(
    `no certificate in ${pkiDir}: start the first master with --init, join more with --join ADDR --token TOKEN, or pass --insecure for a plaintext test cluster`,
  );
}

function parseDurationSetting(v: string): number {
  try {
    return parseDuration(v, 'setting "cert-ttl"');
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** --init, first start: an admin config in the data dir, and tokens for the next members. */
async function announce(
  s: MasterSecuritySettings,
  tls: TlsIdentity,
  certTtlMs: number,
): Promise<void> {
  const key = generateKeyPair();
  const adminCert = await issueCertificate(tls.ca!, {
    name: 'admin',
    role: 'admin',
    publicKeyPem: key.publicKeyPem,
    ttlMs: certTtlFor('admin', certTtlMs),
  });
  const adminConf = join(s.dataDir, 'admin.conf');
  mkdirSync(dirname(adminConf), { recursive: true });
  writeFileSync(
    adminConf,
    clientConfigText(
      { server: [s.advertise], ca: tls.caCertPem, cert: adminCert, key: key.privateKeyPem },
      'admin credentials written by "baton master --init"; keep them secret',
    ),
    { mode: 0o600 },
  );
  chmodSync(adminConf, 0o600);
  const admin = new TlsIdentity(tls.caCertPem, adminCert, key.privateKeyPem);
  const client = new BatonClient([s.advertise], {
    timeoutMs: 30_000,
    credentials: admin.channelCredentials(['master']),
  });
  try {
    const masterToken = await createJoinToken(client, tls.caCertPem, { role: 'master' });
    const nodeToken = await createJoinToken(client, tls.caCertPem, { role: 'node' });
    process.stdout.write(
      [
        '',
        `Baton cluster ${tls.cluster} initialized; this master (id ${s.id}) is its first member.`,
        '',
        'Add a master (on its own VM; the token works once, for 24 hours):',
        `  baton master --id 2 --listen 0.0.0.0:7001 --advertise <ITS-IP>:7001 --data-dir /var/lib/baton/master \\`,
        `    --join ${s.advertise} --token ${masterToken}`,
        '',
        'Add a worker node (once, for 24 hours; more with "baton token create --role node --uses N"):',
        `  baton node --masters ${s.advertise} --token ${nodeToken}`,
        '',
        `Admin credentials: ${adminConf}`,
        `  export BATON_CONFIG=${adminConf}    (or copy it to ~/.baton/config)`,
        '',
      ].join('\n'),
    );
  } finally {
    client.close();
  }
}

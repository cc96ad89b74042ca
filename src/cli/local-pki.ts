/**
 * Certificates for a `baton up` cluster. Its masters start together from a
 * static member list, so there is no first master to run --init and hand out
 * tokens: `up` plays the cluster CA itself, once, and gives every master, every
 * node and the local admin a certificate, as kubeadm's certificate phase does.
 * Everything lives in the cluster directory; a process that already has its
 * certificate keeps it (its own renewals included).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, generateKeyPair, issueCertificate, Role } from '../ca/pki';
import { hasPki, loadPki, savePki, TlsIdentity } from '../ca/tls';

export interface LocalMember {
  name: string;
  role: 'master' | 'node';
  args: string[];
}

function dataDirOf(p: LocalMember): string {
  const i = p.args.indexOf('--data-dir');
  if (i < 0) throw new Error(`${p.name}: no --data-dir in its arguments`);
  return p.args[i + 1];
}

export function memberPkiDir(p: LocalMember): string {
  return join(dataDirOf(p), 'pki');
}

/** The CA, every member's certificate, and the admin's; returns the admin's identity. */
export async function ensureLocalPki(dir: string, members: LocalMember[]): Promise<TlsIdentity> {
  const caDir = join(dir, 'ca');
  const caCert = join(caDir, 'ca.crt');
  if (!existsSync(caCert)) {
    const ca = await createCa();
    savePki(caDir, { caCertPem: ca.certPem, caKeyPem: ca.keyPem });
  }
  const ca = {
    certPem: readFileSync(caCert, 'utf8'),
    keyPem: readFileSync(join(caDir, 'ca.key'), 'utf8'),
  };
  const give = async (pkiDir: string, name: string, role: Role, withCaKey: boolean) => {
    if (hasPki(pkiDir)) return;
    const key = generateKeyPair();
    const certPem = await issueCertificate(ca, {
      name,
      role,
      publicKeyPem: key.publicKeyPem,
      hosts: ['127.0.0.1', 'localhost'],
    });
    savePki(pkiDir, {
      caCertPem: ca.certPem,
      caKeyPem: withCaKey ? ca.keyPem : undefined,
      certPem,
      keyPem: key.privateKeyPem,
    });
  };
  for (const p of members) {
    const id = p.role === 'master' ? `master-${p.args[p.args.indexOf('--id') + 1]}` : p.name;
    await give(memberPkiDir(p), id, p.role, p.role === 'master');
  }
  const adminDir = join(dir, 'admin');
  await give(adminDir, 'admin', 'admin', false);
  return loadPki(adminDir);
}

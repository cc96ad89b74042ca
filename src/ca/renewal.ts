/**
 * Keeps a member's certificate fresh: after two thirds of its lifetime it
 * makes a new key pair, gets a certificate for the same identity (a master
 * signs its own with the CA key; a node asks a master), writes it to the
 * PKI directory and switches the live credentials to it. Pods and open
 * streams are untouched; only new connections use the new certificate.
 */
import type { Logger } from 'pino';
import { certInfo, generateKeyPair } from './pki';
import { savePki, TlsIdentity } from './tls';

/** When a certificate valid from `notBefore` to `notAfter` should be replaced. */
export function renewalTime(notBefore: Date, notAfter: Date): Date {
  const a = notBefore.getTime();
  return new Date(a + ((notAfter.getTime() - a) * 2) / 3);
}

export interface RenewerOptions {
  tls: TlsIdentity;
  /** Where the renewed certificate is written (none: memory only). */
  pkiDir?: string;
  /** A certificate for this member's identity and the given public key. */
  renew(publicKeyPem: string): Promise<string>;
  log: Logger;
  now?: () => number;
}

export class CertRenewer {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly opts: RenewerOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(delayMs?: number): void {
    if (this.stopped) return;
    const info = certInfo(this.opts.tls.certPem);
    const at = renewalTime(info.notBefore, info.notAfter).getTime();
    // setTimeout caps at 2^31-1 ms (~24.8 days); re-check then.
    const wait = Math.min(delayMs ?? Math.max(0, at - this.now()), 2 ** 31 - 1);
    this.timer = setTimeout(() => void this.run(), wait);
    this.timer.unref();
  }

  /** Renews now (also what the timer calls). */
  async run(): Promise<void> {
    const { tls, log } = this.opts;
    const info = certInfo(tls.certPem);
    if (this.now() < renewalTime(info.notBefore, info.notAfter).getTime()) return this.schedule();
    try {
      const pair = generateKeyPair();
      const certPem = await this.opts.renew(pair.publicKeyPem);
      if (this.stopped) return;
      tls.update(certPem, pair.privateKeyPem);
      if (this.opts.pkiDir) savePki(this.opts.pkiDir, { certPem, keyPem: pair.privateKeyPem });
      const next = certInfo(certPem);
      log.info(
        { serial: next.serial, notAfter: next.notAfter.toISOString() },
        'certificate renewed',
      );
      this.schedule();
    } catch (err) {
      // Keep trying while the old certificate still works; say when it will not.
      const left = info.notAfter.getTime() - this.now();
      const retry = Math.min(30_000, Math.max(1000, left / 10));
      log.warn(
        { err: (err as Error).message, expires: info.notAfter.toISOString(), retryMs: retry },
        'certificate renewal failed; retrying',
      );
      this.schedule(retry);
    }
  }
}

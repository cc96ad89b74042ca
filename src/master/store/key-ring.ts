/**
 * The keys that encrypt Secrets at rest (in the Raft log and in snapshots):
 * AES-256-GCM with a random 96-bit nonce per seal, no envelope. Sealed bytes
 * name their key, as Kubernetes' `k8s:enc:aesgcm:v1:KEYNAME:` does:
 *
 *   baton:enc:aesgcm:v1:<key name>: | nonce (12) | ciphertext | tag (16)
 *
 * The prefix is also the GCM additional data, so bytes cannot be relabelled
 * with another key's name. The first key of a ring seals; every key opens.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';

export const SEALED_PREFIX = 'baton:enc:aesgcm:v1:';
const PREFIX_BYTES = Buffer.from(SEALED_PREFIX);
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Key names end at the prefix's next colon: no colons, nothing to escape. */
const KEY_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export class KeyRingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyRingError';
  }
}

export interface NamedKey {
  name: string;
  key: Buffer;
}

export class KeyRing {
  private readonly byName = new Map<string, Buffer>();

  /** `keys[0]` seals new data; all of them open. */
  constructor(readonly keys: readonly NamedKey[]) {
    if (keys.length === 0) throw new KeyRingError('a key ring needs at least one key');
    for (const k of keys) {
      if (!KEY_NAME.test(k.name))
        throw new KeyRingError(`key name "${k.name}": expected 1-64 of A-Z a-z 0-9 . _ -`);
      if (k.key.length !== KEY_BYTES)
        throw new KeyRingError(`key "${k.name}": expected ${KEY_BYTES} bytes, got ${k.key.length}`);
      if (this.byName.has(k.name)) throw new KeyRingError(`key "${k.name}" is listed twice`);
      this.byName.set(k.name, k.key);
    }
  }

  /** The name of the key new data is sealed with. */
  get primary(): string {
    return this.keys[0].name;
  }

  seal(plaintext: Uint8Array): Buffer {
    const { name, key } = this.keys[0];
    const prefix = Buffer.from(`${SEALED_PREFIX}${name}:`);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(prefix);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([prefix, nonce, body, cipher.getAuthTag()]);
  }

  /** Opens bytes sealed with any key of the ring; KeyRingError naming the key otherwise. */
  open(sealed: Uint8Array): Buffer {
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const name = sealedKeyName(buf);
    if (name === undefined) throw new KeyRingError('not sealed data (no baton:enc prefix)');
    const key = this.byName.get(name);
    if (!key)
      throw new KeyRingError(
        `sealed with key "${name}", which is not in the key ring (it has ${this.keys.map((k) => `"${k.name}"`).join(', ')})`,
      );
    const start = PREFIX_BYTES.length + name.length + 1;
    if (buf.length < start + NONCE_BYTES + TAG_BYTES)
      throw new KeyRingError(`sealed with key "${name}", but truncated`);
    const nonce = buf.subarray(start, start + NONCE_BYTES);
    const tag = buf.subarray(buf.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(buf.subarray(0, start));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([
        decipher.update(buf.subarray(start + NONCE_BYTES, buf.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new KeyRingError(
        `sealed with key "${name}", but it does not authenticate with this ring's key "${name}" (a different key under the same name, or damaged data)`,
      );
    }
  }
}

/** Whether bytes carry the sealed prefix. */
export function isSealed(data: Uint8Array): boolean {
  if (data.length < PREFIX_BYTES.length) return false;
  return Buffer.from(data.buffer, data.byteOffset, PREFIX_BYTES.length).equals(PREFIX_BYTES);
}

/** The key name in sealed bytes' prefix, or undefined when they are not sealed. */
export function sealedKeyName(data: Buffer): string | undefined {
  if (!isSealed(data)) return undefined;
  const end = data.indexOf(0x3a /* : */, PREFIX_BYTES.length);
  if (end < 0 || end - PREFIX_BYTES.length > 64) return undefined;
  return data.subarray(PREFIX_BYTES.length, end).toString('latin1');
}

// ---- the key file -----------------------------------------------------------

const HEADER = `# Keys that encrypt Secrets in this master's Raft log and snapshots.
# Every master of a cluster needs the same keys. The first key encrypts new
# writes; the others only decrypt. To rotate: add a new key at the top on
# every master, restart them one by one, and keep the old key until every
# master has taken a snapshot since and its log was compacted past the old
# writes. Losing every copy of a key loses the Secrets it encrypted.
`;

/** Where `baton master` keeps its key file, next to the TLS material. */
export function secretsKeyPath(dataDir: string): string {
  return join(dataDir, 'pki', 'secrets.key');
}

/**
 * A master's key ring: the key file given, else `<data-dir>/pki/secrets.key`,
 * created with one random key (mode 0600) when absent.
 */
export function masterKeyRing(dataDir: string, keyFile?: string): KeyRing {
  return loadOrCreateKeyRing(keyFile ?? secretsKeyPath(dataDir));
}

export function parseKeyFile(text: string, path: string): KeyRing {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new KeyRingError(`${path}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0)
    throw new KeyRingError(`${path}: expected "keys:", a list of {name, secret}`);
  const out: NamedKey[] = keys.map((k: unknown, i) => {
    const { name, secret } = (k ?? {}) as { name?: unknown; secret?: unknown };
    if (typeof name !== 'string' || typeof secret !== 'string')
      throw new KeyRingError(`${path}: keys[${i}]: expected name and secret (base64) strings`);
    const key = Buffer.from(secret, 'base64');
    if (key.length !== KEY_BYTES || key.toString('base64') !== secret.replace(/\s/g, ''))
      throw new KeyRingError(
        `${path}: keys[${i}] ("${name}"): secret must be ${KEY_BYTES} bytes in base64`,
      );
    return { name, key };
  });
  try {
    return new KeyRing(out);
  } catch (err) {
    throw new KeyRingError(`${path}: ${(err as Error).message}`);
  }
}

export function formatKeyFile(ring: KeyRing): string {
  return (
    HEADER +
    stringify({ keys: ring.keys.map((k) => ({ name: k.name, secret: k.key.toString('base64') })) })
  );
}

/** A ring of one new random key. */
export function newKeyRing(name = `key-${randomBytes(4).toString('hex')}`): KeyRing {
  return new KeyRing([{ name, key: randomBytes(KEY_BYTES) }]);
}

/**
 * Reads the key file, or creates it with one random key when absent. The
 * file appears whole or not at all (written aside, then linked into place),
 * and two masters racing on one path end up with the same key.
 */
export function loadOrCreateKeyRing(path: string): KeyRing {
  try {
    return parseKeyFile(readFileSync(path, 'utf8'), path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, formatKeyFile(newKeyRing()));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return parseKeyFile(readFileSync(path, 'utf8'), path);
}

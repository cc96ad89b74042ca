/**
 * The one place that turns commands into Raft log bytes and stored objects
 * into snapshot bytes, and back. With a key ring, nothing of a Secret is
 * ever written in the clear: a command that carries a Secret is sealed
 * whole before it is proposed (so the log, the proposal forwarded to the
 * leader and the entries replicated to followers hold ciphertext), and a
 * snapshot holds each Secret sealed. Opening is deterministic, so apply
 * stays a pure function of the log; sealing draws a random nonce and so
 * happens only before proposing and while capturing a snapshot, never in
 * apply. Without a key ring everything is plain JSON, as before.
 *
 * Plain entries and snapshot objects are always accepted: a cluster that
 * turns encryption on keeps reading what it wrote before, and its next
 * snapshots seal those Secrets.
 */
import { ApiObject } from '../../api/types';
import { ApplyHaltError } from '../../raft/types';
import { Command } from './commands';
import { isSealed, KeyRing, KeyRingError, sealedKeyName } from './key-ring';
import { StoredObject } from './object-index';

/** A kind whose objects are sealed at rest. */
export const SEALED_KINDS: ReadonlySet<string> = new Set(['Secret']);

/** What a snapshot holds in place of a sealed object. */
interface SealedObject {
  sealed: string;
}

/** Whether a command writes an object of a sealed kind, at any depth. */
export function carriesSealedKind(c: Command): boolean {
  switch (c.op) {
    case 'create':
    case 'update':
      return SEALED_KINDS.has(c.object.kind);
    case 'batch':
    case 'each':
      return c.commands.some(carriesSealedKind);
    case 'fenced':
    case 'once':
      return carriesSealedKind(c.command);
    default:
      return false;
  }
}

export class CommandCodec {
  constructor(private readonly keys?: KeyRing) {}

  /** Whether Secrets are sealed at rest. */
  get sealing(): boolean {
    return this.keys !== undefined;
  }

  /** The bytes of a Raft proposal. */
  encode(c: Command): Buffer {
    const json = Buffer.from(JSON.stringify(c));
    return this.keys && carriesSealedKind(c) ? this.keys.seal(json) : json;
  }

  /** A command from a log entry; ApplyHaltError when it is sealed and cannot be opened here. */
  decode(data: Uint8Array): Command {
    const bytes = isSealed(data) ? this.open(data, 'a log entry') : data;
    return JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
    ) as Command;
  }

  /** A stored object as a snapshot holds it. */
  snapshotJson(s: StoredObject): string {
    if (!this.keys || !SEALED_KINDS.has(s.object.kind)) return s.json;
    const sealed: SealedObject = { sealed: this.keys.seal(Buffer.from(s.json)).toString('base64') };
    return JSON.stringify(sealed);
  }

  /** An object from a snapshot (see snapshotJson). */
  restoreObject(o: ApiObject | SealedObject): ApiObject {
    const sealed = (o as Partial<SealedObject>).sealed;
    if (typeof sealed !== 'string') return o as ApiObject;
    const text = this.open(Buffer.from(sealed, 'base64'), 'an object in a snapshot');
    return JSON.parse(text.toString('utf8')) as ApiObject;
  }

  private open(data: Uint8Array, what: string): Buffer {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (!this.keys)
      throw new ApplyHaltError(
        `${what} holds a Secret sealed with key "${sealedKeyName(buf) ?? '?'}", but this master has no secrets key file; give it the cluster's key file`,
      );
    try {
      return this.keys.open(buf);
    } catch (err) {
      if (!(err instanceof KeyRingError)) throw err;
      throw new ApplyHaltError(
        `cannot read ${what}: ${err.message}; this master needs the cluster's secrets key file`,
      );
    }
  }
}

/** Commands and snapshots as plain JSON: a master without a key ring. */
export const PLAIN_CODEC = new CommandCodec();

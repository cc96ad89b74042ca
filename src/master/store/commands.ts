import { ApiObject } from '../../api/types';

/**
 * The writes that go through the Raft log. The leader fills in everything
 * that needs a clock or randomness (uid, timestamps) before proposing, so
 * applying a command is a pure function of the store and the command.
 */
export type Command =
  | { op: 'create'; object: ApiObject }
  | {
      op: 'update';
      object: ApiObject;
      /** The uid the writer saw: a deleted and recreated object is a conflict. */
      uid: string;
      /** Fail unless the stored resourceVersion is still this one. */
      expectedRevision?: number;
      /** 'status' replaces only the status; otherwise everything but the status. */
      subresource?: 'status';
    }
  | {
      op: 'delete';
      kind: string;
      namespace?: string;
      name: string;
      uid?: string;
      expectedRevision?: number;
      propagation: 'Background' | 'Foreground' | 'Orphan';
    }
  /** All or nothing, at one revision. */
  | { op: 'batch'; commands: Command[] }
  /** Independent commands in one entry: each succeeds or fails alone (results in order). */
  | { op: 'each'; commands: Command[] }
  /** Assigns an unbound pod to a node (the scheduler's binding). */
  | { op: 'bind'; namespace: string; name: string; uid: string; node: string }
  /**
   * A write by the leader's controllers: applied only when the entry was
   * appended in `term`, so a deposed leader's late writes never land.
   */
  | { op: 'fenced'; term: number; command: Command };

export type ErrorCode =
  'NOT_FOUND' | 'ALREADY_EXISTS' | 'CONFLICT' | 'FORBIDDEN' | 'QUOTA' | 'INVALID' | 'FENCED';

export type CommandResult =
  | { ok: true; object?: ApiObject; alsoDeleted: string[]; results?: CommandResult[] }
  | { ok: false; code: ErrorCode; message: string };

/** A store error with a code the API maps to a gRPC status. */
export class StoreError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export function encodeCommand(c: Command): Buffer {
  return Buffer.from(JSON.stringify(c));
}

export function decodeCommand(data: Uint8Array): Command {
  return JSON.parse(
    Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'),
  ) as Command;
}

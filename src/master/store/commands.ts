import { ApiObject } from '../../api/types';

/**
 * The writes that go through the Raft log (as bytes: see CommandCodec). The leader fills in everything
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
  | { op: 'fenced'; term: number; command: Command }
  /**
   * A client's write with its idempotency key (scoped to the caller): applied
   * once, however often it is retried (see RequestLog). `at` is the proposing
   * master's clock, which ages the key; `digest` identifies the request, so
   * the key sent again with another request is refused.
   */
  | { op: 'once'; key: string; digest?: string; at: number; command: Command }
  /**
   * Turns a log feature on (see master/features.ts), once every member can
   * apply it: a master of an older release refuses the op as unknown and
   * changes nothing, as it did before.
   */
  | { op: 'feature'; name: string };

export type ErrorCode =
  'NOT_FOUND' | 'ALREADY_EXISTS' | 'CONFLICT' | 'FORBIDDEN' | 'QUOTA' | 'INVALID' | 'FENCED';

export type CommandResult =
  | {
      ok: true;
      object?: ApiObject;
      alsoDeleted: string[];
      results?: CommandResult[];
      /** A retried write: the index of the entry that applied it (nothing was applied again). */
      duplicateOf?: number;
    }
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

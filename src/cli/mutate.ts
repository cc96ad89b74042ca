/**
 * Read-modify-write of one object, the way every CLI verb that edits an
 * object in place (cordon, scale, set image, rollout pause, label, ...)
 * must do it: the write carries the resourceVersion that was read, so a
 * concurrent writer makes the server answer ABORTED and we redo the change
 * on the fresh object instead of overwriting theirs.
 */
import { status } from '@grpc/grpc-js';
import { ApiObject } from '../api/types';
import { BatonClient, ClientError } from '../client/cluster-client';

/** How often a write that lost a race is redone before the conflict is reported. */
const MAX_ATTEMPTS = 6;

export interface MutateResult {
  /** The object as stored after the write, or as read when nothing changed. */
  object: ApiObject;
  changed: boolean;
}

/**
 * Reads `kind` `namespace`/`name`, passes a private copy to `change` and
 * writes what it returns. `change` may edit its argument in place and
 * return it; returning undefined means "nothing to do" and skips the write.
 * It may throw to refuse (the error reaches the caller unchanged), and may
 * run more than once, so it must not have side effects.
 */
export async function mutate(
  client: BatonClient,
  kind: string,
  namespace: string,
  name: string,
  change: (o: ApiObject) => ApiObject | undefined,
): Promise<MutateResult> {
  for (let attempt = 1; ; attempt++) {
    const current = JSON.parse((await client.get(kind, namespace, name)).objectJson) as ApiObject;
    const next = change(structuredClone(current));
    if (next === undefined) return { object: current, changed: false };
    next.metadata = { ...next.metadata, resourceVersion: current.metadata.resourceVersion };
    try {
      const r = await client.update(JSON.stringify(next));
      return { object: JSON.parse(r.objectJson) as ApiObject, changed: true };
    } catch (e) {
      if (!(e instanceof ClientError) || e.code !== status.ABORTED || attempt >= MAX_ATTEMPTS)
        throw e;
    }
  }
}

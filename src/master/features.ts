/**
 * Log features: kinds of Raft entries a later release writes that an earlier
 * one cannot apply. A master of the earlier release refuses an unknown op
 * and changes nothing, so if newer masters wrote such entries during a
 * rolling upgrade the masters would hold different states. A feature is
 * therefore written only once it is on, and it is turned on by an entry of
 * its own, proposed by the leader once every member says (Version) that it
 * has the feature. A master without it may not join afterwards.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ClusterClient, VersionResponse } from '../gen/api';
import { RaftNode } from '../raft/raft-node';
import { ClusterStore } from './store/cluster-store';

/** Writes carry their idempotency key into the log (`once` entries). */
export const KEYED_WRITES = 'keyed-writes';

/** The log features this release can apply. */
export const MASTER_FEATURES: readonly string[] = [KEYED_WRITES];

/** How often a leader looks again at members that lack a feature or do not answer. */
const RECHECK_MS = 2000;

/** The features of the master at `address`; empty when it is of a release that has none. */
export function featuresOf(client: ClusterClient, timeoutMs = 3000): Promise<string[]> {
  return new Promise((resolve, reject) =>
    client.version(
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, res: VersionResponse) =>
        err ? reject(err) : resolve(res.features ?? []),
    ),
  );
}

/**
 * While this master leads: turns on every feature of this release that is
 * not on yet, once every other member (voters and learners) has it.
 * Returns a function that stops it.
 */
export function enableFeatures(d: {
  node: RaftNode;
  store: ClusterStore;
  peerClient(address: string): ClusterClient;
  log: Logger;
}): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const missing = () => MASTER_FEATURES.filter((f) => !d.store.features.has(f));
  const check = async (): Promise<void> => {
    if (stopped || !d.node.isLeader() || missing().length === 0) return;
    const st = d.node.status();
    const others = [...st.confState.voters, ...st.confState.learners].filter(
      (id) => id !== d.node.id,
    );
    const answers = await Promise.all(
      others.map((id) => {
        const address = st.peers[id];
        return address ? featuresOf(d.peerClient(address)).catch(() => undefined) : undefined;
      }),
    );
    if (answers.some((a) => a === undefined)) return; // someone is down: ask again later
    for (const f of missing()) {
      if (!answers.every((a) => a!.includes(f))) continue;
      await d.node.propose(d.store.codec.encode({ op: 'feature', name: f }));
      d.log.info({ feature: f }, 'every master has it: log feature on');
    }
  };
  // Soon after start, then every RECHECK_MS until everything is on (features are never turned off).
  const tick = (ms: number) => {
    timer = setTimeout(() => {
      check()
        .catch((err: Error) => d.log.debug({ err: err.message }, 'log features: will retry'))
        .finally(() => {
          if (!stopped && missing().length > 0) tick(RECHECK_MS);
        });
    }, ms);
    timer.unref();
  };
  tick(100);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * Why a master at `address` may not join: the log holds features it cannot
 * apply. Undefined when it may.
 */
export async function joinRefusal(
  store: ClusterStore,
  client: ClusterClient,
  id: number,
): Promise<string | undefined> {
  if (store.features.size === 0) return undefined;
  let has: string[];
  try {
    has = await featuresOf(client);
  } catch (err) {
    return `master ${id} does not answer Version (${(err as grpc.ServiceError).details ?? (err as Error).message}); retry`;
  }
  const lacking = [...store.features].filter((f) => !has.includes(f));
  return lacking.length === 0
    ? undefined
    : `master ${id} runs a release without the log feature(s) ${lacking.join(', ')} this cluster uses: upgrade it first`;
}

/**
 * Which ReplicaSets a Deployment controls (Kubernetes' ClaimReplicaSets,
 * the same rules the ReplicaSet controller applies to pods): its own that
 * its selector still matches; matching orphans, which it adopts; and its
 * own that stopped matching, which it releases.
 */
import type { Deployment, ReplicaSet } from '../../../api/schema';
import { labelSelectorFromK8s, matchesLabels } from '../../../api/selectors';
import { controllerRef, newControllerRef } from '../pods';
import { ControllerContext } from '../runtime/controller';
import { WriteError } from '../runtime/writer';

export interface Claims {
  mine: ReplicaSet[];
  adopt: ReplicaSet[];
  release: ReplicaSet[];
}

/** Pure: sorts `candidates` (ReplicaSets matching the selector or owned by `d`) into the three groups. */
export function claimDecisions(d: Deployment, candidates: readonly ReplicaSet[]): Claims {
  const selector = labelSelectorFromK8s(d.spec.selector);
  const uid = d.metadata.uid;
  const out: Claims = { mine: [], adopt: [], release: [] };
  for (const rs of candidates) {
    const ref = controllerRef(rs);
    const matches = matchesLabels(selector, rs.metadata.labels);
    if (ref && ref.uid !== uid) continue; // someone else's
    if (ref && matches) out.mine.push(rs);
    else if (ref) out.release.push(rs);
    else if (
      matches &&
      rs.metadata.deletionTimestamp === undefined &&
      d.metadata.deletionTimestamp === undefined
    )
      out.adopt.push(rs);
  }
  return out;
}

/** The ReplicaSets `d` controls, after adopting and releasing (writes the owner references). */
export async function claimReplicaSets(
  ctx: ControllerContext,
  d: Deployment,
): Promise<ReplicaSet[]> {
  const candidates = new Map<string, ReplicaSet>();
  for (const s of ctx.store.list({
    kind: 'ReplicaSet',
    namespace: d.metadata.namespace,
    labels: labelSelectorFromK8s(d.spec.selector),
  }))
    candidates.set(s.key, s.object as ReplicaSet);
  for (const k of ctx.store.objects.dependents(d.metadata.uid!)) {
    const o = ctx.store.objects.get(k)?.object;
    if (o?.kind === 'ReplicaSet') candidates.set(k, o as ReplicaSet);
  }
  const claims = claimDecisions(d, [...candidates.values()]);
  const adopted = await Promise.all(claims.adopt.map((rs) => setOwner(ctx, rs, d, true)));
  await Promise.all(claims.release.map((rs) => setOwner(ctx, rs, d, false)));
  return [...claims.mine, ...adopted.filter((rs): rs is ReplicaSet => rs !== undefined)];
}

/** Adds or removes `d`'s controller reference; undefined when `rs` changed or went meanwhile. */
async function setOwner(
  ctx: ControllerContext,
  rs: ReplicaSet,
  d: Deployment,
  adopt: boolean,
): Promise<ReplicaSet | undefined> {
  const refs = (rs.metadata.ownerReferences ?? []).filter((r) => r.uid !== d.metadata.uid);
  if (adopt) refs.push(newControllerRef(d));
  const metadata = { ...rs.metadata, ownerReferences: refs };
  if (refs.length === 0) delete (metadata as Partial<typeof metadata>).ownerReferences;
  try {
    return await ctx.writer.update({ ...rs, metadata });
  } catch (err) {
    // The next reconcile sees what it is now.
    if (err instanceof WriteError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND'))
      return undefined;
    throw err;
  }
}

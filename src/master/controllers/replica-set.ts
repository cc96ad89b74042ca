/**
 * The ReplicaSet controller: exactly `replicas` active pods matching the
 * selector. It adopts matching orphans and releases pods that stopped
 * matching (owner references), creates missing pods in slow-start batches
 * (1, 2, 4, …: a quota or admission failure stops after one pod, not a
 * thousand), and deletes the least valuable pods first when scaling down.
 */
import type { Pod, ReplicaSet } from '../../api/schema';
import { labelSelectorFromK8s, matchesLabels } from '../../api/selectors';
import { ApiObject } from '../../api/types';
import {
  controllerRef,
  deletionCost,
  isActive,
  isAvailable,
  isReady,
  isTerminal,
  msUntilAvailable,
  newControllerRef,
  podFromTemplate,
} from './pods';
import { Controller, splitKey } from './runtime/controller';
import { WriteError } from './runtime/writer';

const COMPONENT = 'replicaset-controller';

/** Most pods created or deleted in one reconcile (Kubernetes' burstReplicas). */
const BURST = 500;

export interface ReplicaSetCounts {
  replicas: number;
  fullyLabeledReplicas: number;
  readyReplicas: number;
  availableReplicas: number;
}

export class ReplicaSetController extends Controller {
  readonly name = 'replicaset';
  protected readonly kind = 'ReplicaSet';

  protected override watchOthers(): void {
    this.watch('Pod', (c) => {
      const ref = controllerRef(c.object);
      if (ref) {
        if (ref.kind === 'ReplicaSet') this.queue.add(`${c.object.metadata.namespace}/${ref.name}`);
        return;
      }
      // An orphan: any ReplicaSet whose selector matches may adopt it.
      if (c.type === 'DELETED') return;
      for (const rs of this.ctx.store.list({
        kind: 'ReplicaSet',
        namespace: c.object.metadata.namespace,
      })) {
        const sel = (rs.object as ReplicaSet).spec.selector;
        if (matchesLabels(labelSelectorFromK8s(sel), c.object.metadata.labels))
          this.queue.add(`${rs.object.metadata.namespace}/${rs.object.metadata.name}`);
      }
    });
  }

  protected async reconcile(key: string): Promise<number | void> {
    const { namespace, name } = splitKey(key);
    const stored = this.ctx.store.get('ReplicaSet', namespace, name);
    if (!stored) return; // its pods went with it (cascading delete)
    const rs = stored.object as ReplicaSet;
    const pods = await this.claimPods(rs);
    const now = this.ctx.env.now().getTime();

    // Finished pods of a ReplicaSet never run again: make room for replacements.
    const finished = pods.filter(isTerminal);
    await Promise.all(finished.map((p) => this.deletePod(rs, p, 'finished')));

    const active = pods.filter(isActive);
    const diff = active.length - rs.spec.replicas;
    if (diff < 0) await this.createPods(rs, Math.min(-diff, BURST));
    else if (diff > 0) {
      const victims = [...active].sort(deletionCost).slice(0, Math.min(diff, BURST));
      await Promise.all(victims.map((p) => this.deletePod(rs, p, 'scale down')));
    }

    const after = this.ownedActivePods(rs);
    const counts = countReplicas(rs, after, now);
    await this.writeStatus(rs, counts);
    // A ready pod becomes available after minReadySeconds: look again then.
    const waits = after
      .map((p) => msUntilAvailable(p, rs.spec.minReadySeconds, now))
      .filter((ms): ms is number => ms !== undefined && ms > 0);
    if (waits.length > 0) return Math.min(...waits) + 10;
    if (Math.abs(diff) > BURST) return 0;
  }

  private ownedActivePods(rs: ReplicaSet): Pod[] {
    return this.ctx.store.objects
      .dependents(rs.metadata.uid!)
      .map((k) => this.ctx.store.objects.get(k)?.object)
      .filter((o): o is ApiObject => o?.kind === 'Pod' && isActive(o)) as Pod[];
  }

  /** The pods this ReplicaSet controls, after adopting matching orphans and releasing non-matching pods. */
  private async claimPods(rs: ReplicaSet): Promise<Pod[]> {
    const selector = labelSelectorFromK8s(rs.spec.selector);
    const uid = rs.metadata.uid!;
    const mine: Pod[] = [];
    const candidates = new Map<string, ApiObject>();
    for (const s of this.ctx.store.list({
      kind: 'Pod',
      namespace: rs.metadata.namespace,
      labels: selector,
    }))
      candidates.set(s.key, s.object);
    for (const k of this.ctx.store.objects.dependents(uid)) {
      const o = this.ctx.store.objects.get(k)?.object;
      if (o?.kind === 'Pod') candidates.set(k, o);
    }
    const writes: Promise<void>[] = [];
    for (const pod of candidates.values()) {
      const ref = controllerRef(pod);
      const matches = matchesLabels(selector, pod.metadata.labels);
      if (ref && ref.uid !== uid) continue; // someone else's
      if (ref && matches) mine.push(pod as Pod);
      else if (ref && !matches) writes.push(this.setOwner(pod, rs, false));
      else if (!ref && matches && isActive(pod))
        writes.push(
          this.setOwner(pod, rs, true).then(() => {
            const adopted = this.ctx.store.get('Pod', pod.metadata.namespace, pod.metadata.name);
            if (adopted && controllerRef(adopted.object)?.uid === uid)
              mine.push(adopted.object as Pod);
          }),
        );
    }
    await Promise.all(writes);
    return mine;
  }

  private async setOwner(pod: ApiObject, rs: ReplicaSet, adopt: boolean): Promise<void> {
    const refs = (pod.metadata.ownerReferences ?? []).filter((r) => r.uid !== rs.metadata.uid);
    if (adopt) refs.push(newControllerRef(rs));
    const metadata = { ...pod.metadata, ownerReferences: refs.length > 0 ? refs : undefined };
    if (!metadata.ownerReferences) delete metadata.ownerReferences;
    const next = { ...pod, metadata };
    try {
      await this.ctx.writer.update(next);
    } catch (err) {
      // Changed or gone meanwhile: the next reconcile sees what it is now.
      if (!(err instanceof WriteError) || (err.code !== 'CONFLICT' && err.code !== 'NOT_FOUND'))
        throw err;
    }
  }

  private async createPods(rs: ReplicaSet, count: number): Promise<void> {
    let left = count;
    for (let batch = 1; left > 0; batch *= 2) {
      const n = Math.min(batch, left);
      left -= n;
      const results = await Promise.allSettled(
        Array.from({ length: n }, () =>
          this.ctx.writer.create(podFromTemplate(rs.spec.template, rs, `${rs.metadata.name}-`)),
        ),
      );
      let failed: Error | undefined;
      for (const r of results) {
        if (r.status === 'fulfilled')
          this.ctx.events.record(
            rs,
            COMPONENT,
            'Normal',
            'SuccessfulCreate',
            `Created pod: ${r.value.metadata.name}`,
          );
        else failed ??= r.reason as Error;
      }
      if (failed) {
        this.ctx.events.record(
          rs,
          COMPONENT,
          'Warning',
          'FailedCreate',
          `Error creating: ${failed.message}`,
        );
        throw failed;
      }
    }
  }

  private async deletePod(rs: ReplicaSet, pod: ApiObject, why: string): Promise<void> {
    try {
      await this.ctx.writer.delete(pod);
      this.ctx.events.record(
        rs,
        COMPONENT,
        'Normal',
        'SuccessfulDelete',
        `Deleted pod: ${pod.metadata.name} (${why})`,
      );
    } catch (err) {
      if (!(err instanceof WriteError) || err.code !== 'NOT_FOUND') throw err;
    }
  }

  private async writeStatus(rs: ReplicaSet, counts: ReplicaSetCounts): Promise<void> {
    const cur = rs.status ?? {};
    const next = { ...cur, ...counts, observedGeneration: rs.metadata.generation };
    if (
      cur.replicas === next.replicas &&
      cur.fullyLabeledReplicas === next.fullyLabeledReplicas &&
      cur.readyReplicas === next.readyReplicas &&
      cur.availableReplicas === next.availableReplicas &&
      cur.observedGeneration === next.observedGeneration
    )
      return;
    const latest = this.ctx.store.get('ReplicaSet', rs.metadata.namespace, rs.metadata.name);
    if (!latest || latest.object.metadata.uid !== rs.metadata.uid) return;
    await this.ctx.writer.updateStatus({ ...latest.object, status: next });
  }
}

/** The status counts of a ReplicaSet over its active pods. */
export function countReplicas(rs: ReplicaSet, pods: ApiObject[], now: number): ReplicaSetCounts {
  const templateLabels = rs.spec.template.metadata?.labels ?? {};
  return {
    replicas: pods.length,
    fullyLabeledReplicas: pods.filter((p) =>
      Object.entries(templateLabels).every(([k, v]) => p.metadata.labels?.[k] === v),
    ).length,
    readyReplicas: pods.filter(isReady).length,
    availableReplicas: pods.filter((p) => isAvailable(p, rs.spec.minReadySeconds, now)).length,
  };
}

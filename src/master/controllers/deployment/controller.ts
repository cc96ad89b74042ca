/**
 * The Deployment controller (Kubernetes' pkg/controller/deployment): a
 * Deployment declares a pod template and a size; the controller keeps one
 * ReplicaSet per template it has run, and moves pods from the old ones to
 * the new one by the Deployment's strategy, one step per reconcile, each
 * step decided from the ReplicaSets' reported availability.
 *
 * One reconcile, in Kubernetes' order:
 *  1. claim ReplicaSets (adopt matching orphans, release the non-matching);
 *  2. Progressing says Paused / Resumed when `spec.paused` flipped;
 *  3. paused, or `spec.replicas` changed since the ReplicaSets were last
 *     scaled: only resize (proportionally mid-rollout), no rollout progress;
 *  4. otherwise one step of the strategy (rolling.ts, recreate.ts), old
 *     revisions pruned once the rollout is complete, and the status written
 *     if it changed; a rollout that is not moving is looked at again when
 *     its progress deadline passes.
 */
import type { Deployment, ReplicaSet } from '../../../api/schema';
import { labelSelectorFromK8s, matchesLabels } from '../../../api/selectors';
import { ApiObject } from '../../../api/types';
import { timestamp } from '../../admission';
import { controllerRef } from '../pods';
import { Controller, keyFor, splitKey } from '../runtime/controller';
import { claimReplicaSets } from './claim';
import { recreateStep } from './recreate';
import { stateOf } from './replica-set-state';
import { maxSurge, rollingInput, rollingStep } from './rolling';
import { isScalingEvent, scalePlan } from './scaling';
import { deploymentComplete, pausedStatus } from './status';
import { DeploymentSync } from './sync';

export class DeploymentController extends Controller {
  readonly name = 'deployment';
  protected readonly kind = 'Deployment';

  protected override watchOthers(): void {
    this.watch('ReplicaSet', (c) => {
      const ref = controllerRef(c.object);
      if (ref) {
        if (ref.kind === 'Deployment') this.queue.add(`${c.object.metadata.namespace}/${ref.name}`);
        return;
      }
      // An orphan: any Deployment whose selector matches may adopt it.
      if (c.type === 'DELETED') return;
      for (const d of this.selecting(c.object)) this.queue.add(keyFor(d));
    });
    // Recreate waits for the old pods to be gone.
    this.watch('Pod', (c) => {
      if (c.type !== 'DELETED') return;
      const ref = controllerRef(c.object);
      if (ref?.kind !== 'ReplicaSet') return;
      const rs = this.ctx.store.get('ReplicaSet', c.object.metadata.namespace, ref.name)?.object;
      if (rs?.metadata.uid === ref.uid) this.enqueueOwner(rs);
    });
  }

  private selecting(rs: ApiObject): ApiObject[] {
    return this.ctx.store
      .list({ kind: 'Deployment', namespace: rs.metadata.namespace })
      .map((s) => s.object)
      .filter((d) =>
        matchesLabels(labelSelectorFromK8s((d as Deployment).spec.selector), rs.metadata.labels),
      );
  }

  protected async reconcile(key: string): Promise<number | void> {
    const { namespace, name } = splitKey(key);
    const stored = this.ctx.store.get('Deployment', namespace, name);
    if (!stored) return; // its ReplicaSets went with it (cascading delete)
    const d = stored.object as Deployment;
    const s = new DeploymentSync(this.ctx, d, await claimReplicaSets(this.ctx, d));
    if (d.metadata.deletionTimestamp !== undefined) return s.syncStatus();

    const paused = pausedStatus(s.d, timestamp(this.ctx.env.now()));
    if (paused) await s.writeStatus(paused);
    if (d.spec.paused) return this.scale(s);
    await s.syncNewReplicaSet(false);
    if (isScalingEvent(d.spec.replicas, s.states(s.all))) return this.scale(s);
    return d.spec.strategy.type === 'Recreate' ? this.recreate(s) : this.rollingUpdate(s);
  }

  /** Resize without rolling (Kubernetes' `sync`): scaling events and paused Deployments. */
  private async scale(s: DeploymentSync): Promise<void> {
    const d = s.d;
    const newRS = await s.syncNewReplicaSet(false);
    await s.apply(
      scalePlan({
        replicas: d.spec.replicas,
        maxSurge: maxSurge(d),
        rollingUpdate: d.spec.strategy.type === 'RollingUpdate',
        statusReplicas: d.status?.replicas ?? 0,
        newRS: newRS && stateOf(newRS),
        oldRSs: s.states(s.oldRSs()),
      }),
    );
    if (d.spec.paused) await s.pruneHistory();
    await s.syncStatus();
  }

  private async rollingUpdate(s: DeploymentSync): Promise<number | undefined> {
    await s.syncNewReplicaSet(true);
    const newRS = s.newRS()!;
    const step = rollingStep(rollingInput(s.d, stateOf(newRS), s.states(s.oldRSs())));
    if (step.length > 0) await s.apply(step);
    else if (deploymentComplete(s.d, s.d.status)) await s.pruneHistory();
    return s.syncRolloutStatus();
  }

  private async recreate(s: DeploymentSync): Promise<number | undefined> {
    await s.syncNewReplicaSet(false);
    const step = recreateStep(s.states(s.oldRSs()), s.oldPodPhases());
    if (step.kind === 'scale-down-old') await s.apply(step.actions);
    if (step.kind !== 'scale-up-new') return s.syncRolloutStatus();
    const newRS: ReplicaSet = s.newRS() ?? (await s.syncNewReplicaSet(true))!;
    await s.scale({ name: newRS.metadata.name, from: newRS.spec.replicas, to: s.d.spec.replicas });
    if (deploymentComplete(s.d, s.d.status)) await s.pruneHistory();
    return s.syncRolloutStatus();
  }
}

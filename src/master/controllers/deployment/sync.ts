/**
 * One reconcile of one Deployment: the objects as last read or written, and
 * the writes that move them (the imperative shell around the decision
 * functions). Every write is a modified copy of what was read, so a
 * concurrent change fails it with CONFLICT and the reconcile starts over.
 */
import type { Deployment, ReplicaSet } from '../../../api/schema';
import { timestamp } from '../../admission';
import { phaseOf, templateHash } from '../pods';
import { ControllerContext } from '../runtime/controller';
import { WriteError } from '../runtime/writer';
import {
  newReplicaSetAnnotations,
  replicasAnnotationsNeedUpdate,
  REVISION,
  revisionOf,
  withReplicasAnnotations,
} from './annotations';
import { findNewReplicaSet, newReplicaSet, sameTemplate } from './replica-sets';
import { RsState, ScaleAction, stateOf } from './replica-set-state';
import { replicaSetsToPrune, maxRevision } from './revisions';
import { maxSurge, newReplicaSetSize, rollingInput } from './rolling';
import {
  calculateStatus,
  DeploymentStatus,
  getCondition,
  hasProgressDeadline,
  msUntilStuck,
  newCondition,
  PROGRESSING,
  Reason,
  rolloutStatus,
  sameStatus,
  setCondition,
} from './status';

export const COMPONENT = 'deployment-controller';

export class DeploymentSync {
  private readonly rss = new Map<string, ReplicaSet>();

  constructor(
    private readonly ctx: ControllerContext,
    /** The Deployment as last read or written. */
    public d: Deployment,
    claimed: readonly ReplicaSet[],
  ) {
    for (const rs of claimed) this.rss.set(rs.metadata.name, rs);
  }

  get all(): ReplicaSet[] {
    return [...this.rss.values()];
  }

  newRS(): ReplicaSet | undefined {
    return findNewReplicaSet(this.d, this.all);
  }

  oldRSs(): ReplicaSet[] {
    const n = this.newRS();
    return this.all.filter((rs) => rs !== n);
  }

  states(rss: readonly ReplicaSet[]): RsState[] {
    return rss.map(stateOf);
  }

  private stamp(): string {
    return timestamp(this.ctx.env.now());
  }

  /** Phases of the pods the old ReplicaSets still own (Recreate waits for them). */
  oldPodPhases(): string[] {
    const { objects } = this.ctx.store;
    return this.oldRSs().flatMap((rs) =>
      objects
        .dependents(rs.metadata.uid!)
        .map((k) => objects.get(k)?.object)
        .filter((o) => o?.kind === 'Pod')
        .map((o) => phaseOf(o!)),
    );
  }

  /**
   * The ReplicaSet of the current template, its annotations (revision) and
   * minReadySeconds brought up to date; created when `create` and missing
   * (Kubernetes' getNewReplicaSet).
   */
  async syncNewReplicaSet(create: boolean): Promise<ReplicaSet | undefined> {
    const existing = this.newRS();
    const newRevision = maxRevision(this.all.filter((rs) => rs !== existing)) + 1;
    if (existing) return this.syncExisting(existing, newRevision);
    if (!create) return undefined;
    return this.createNew(newRevision);
  }

  private async syncExisting(rs: ReplicaSet, newRevision: number): Promise<ReplicaSet> {
    const annotations = newReplicaSetAnnotations(this.d, rs, newRevision, undefined);
    if (annotations || rs.spec.minReadySeconds !== this.d.spec.minReadySeconds) {
      return this.put(
        await this.ctx.writer.update({
          ...rs,
          metadata: { ...rs.metadata, annotations: annotations ?? rs.metadata.annotations },
          spec: { ...rs.spec, minReadySeconds: this.d.spec.minReadySeconds },
        }),
      );
    }
    await this.setRevision(revisionOf(rs));
    if (hasProgressDeadline(this.d) && !getCondition(this.d.status, PROGRESSING))
      await this.writeStatus(
        setCondition(
          this.d.status ?? {},
          newCondition(
            PROGRESSING,
            'True',
            Reason.FoundNewReplicaSet,
            `Found new replica set "${rs.metadata.name}"`,
            this.stamp(),
          ),
        ),
      );
    return rs;
  }

  private async createNew(newRevision: number): Promise<ReplicaSet> {
    const d = this.d;
    const hash = templateHash(d.spec.template, d.status?.collisionCount ?? 0);
    const draft = newReplicaSet(d, hash, 0, {});
    const replicas =
      d.spec.strategy.type === 'Recreate'
        ? d.spec.replicas
        : newReplicaSetSize(rollingInput(d, stateOf(draft), this.states(this.all)));
    draft.spec.replicas = replicas;
    draft.metadata.annotations = newReplicaSetAnnotations(d, draft, newRevision, {
      desired: d.spec.replicas,
      max: d.spec.replicas + maxSurge(d),
    });
    let created: ReplicaSet;
    let found = false;
    try {
      created = await this.ctx.writer.create(draft);
    } catch (err) {
      if (!(err instanceof WriteError)) throw err;
      if (err.code !== 'ALREADY_EXISTS') return this.failCreate(draft, err);
      const cur = this.ctx.store.get('ReplicaSet', d.metadata.namespace, draft.metadata.name)
        ?.object as ReplicaSet | undefined;
      const ours =
        cur &&
        cur.metadata.ownerReferences?.some((r) => r.controller && r.uid === d.metadata.uid) &&
        sameTemplate(cur.spec.template, d.spec.template);
      if (!ours) return this.collision(draft.metadata.name);
      created = cur;
      found = true;
    }
    this.put(created);
    if (!found && replicas > 0) this.scaled(created, 'up', 0, replicas);
    await this.setRevision(newRevision);
    if (!found && hasProgressDeadline(d))
      await this.writeStatus(
        setCondition(
          this.d.status ?? {},
          newCondition(
            PROGRESSING,
            'True',
            Reason.NewReplicaSetCreated,
            `Created new replica set "${created.metadata.name}"`,
            this.stamp(),
          ),
        ),
      );
    return created;
  }

  /** Another template already has this name: hash again with the next collision count. */
  private async collision(name: string): Promise<never> {
    const status = this.d.status ?? {};
    await this.writeStatus({ ...status, collisionCount: (status.collisionCount ?? 0) + 1 });
    this.ctx.log.debug({ deployment: this.d.metadata.name, replicaSet: name }, 'hash collision');
    // CONFLICT: the reconcile runs again (soon and quietly) and hashes with the new count.
    throw new WriteError('CONFLICT', `replica set "${name}" exists with another template`);
  }

  private async failCreate(draft: ReplicaSet, err: WriteError): Promise<never> {
    const message = `Failed to create new replica set "${draft.metadata.name}": ${err.message}`;
    if (hasProgressDeadline(this.d))
      await this.writeStatus(
        setCondition(
          this.d.status ?? {},
          newCondition(PROGRESSING, 'False', Reason.ReplicaSetCreateError, message, this.stamp()),
        ),
      );
    this.ctx.events.record(this.d, COMPONENT, 'Warning', Reason.ReplicaSetCreateError, message);
    throw err;
  }

  /** Sets a ReplicaSet's size and its replicas annotations; writes only what changed. */
  async scale(action: ScaleAction): Promise<void> {
    const rs = this.rss.get(action.name);
    if (!rs) return;
    const desired = this.d.spec.replicas;
    const max = desired + maxSurge(this.d);
    const resize = rs.spec.replicas !== action.to;
    if (!resize && !replicasAnnotationsNeedUpdate(rs, desired, max)) return;
    const written = await this.ctx.writer.update({
      ...rs,
      metadata: {
        ...rs.metadata,
        annotations: withReplicasAnnotations(rs.metadata.annotations, desired, max),
      },
      spec: { ...rs.spec, replicas: action.to },
    });
    this.put(written);
    if (resize)
      this.scaled(
        written,
        action.to > rs.spec.replicas ? 'up' : 'down',
        rs.spec.replicas,
        action.to,
      );
  }

  /** Applies the actions in order; true when a ReplicaSet changed size. */
  async apply(actions: readonly ScaleAction[]): Promise<boolean> {
    let resized = false;
    for (const a of actions) {
      const before = this.rss.get(a.name)?.spec.replicas;
      await this.scale(a);
      if (before !== undefined && before !== this.rss.get(a.name)?.spec.replicas) resized = true;
    }
    return resized;
  }

  private scaled(rs: ReplicaSet, way: 'up' | 'down', from: number, to: number): void {
    this.ctx.events.record(
      this.d,
      COMPONENT,
      'Normal',
      'ScalingReplicaSet',
      `Scaled ${way} replica set ${rs.metadata.name} from ${from} to ${to}`,
    );
  }

  /** Deletes old ReplicaSets beyond revisionHistoryLimit (oldest revisions, scaled down only). */
  async pruneHistory(): Promise<void> {
    for (const rs of replicaSetsToPrune(this.oldRSs(), this.d.spec.revisionHistoryLimit)) {
      try {
        await this.ctx.writer.delete(rs, { exact: true });
      } catch (err) {
        if (!(err instanceof WriteError) || err.code !== 'NOT_FOUND') throw err;
      }
      this.rss.delete(rs.metadata.name);
    }
  }

  /** Counts and Available only (scaling and paused Deployments: no rollout to judge). */
  async syncStatus(): Promise<void> {
    const newRS = this.newRS();
    await this.writeStatus(
      calculateStatus(this.d, this.states(this.all), newRS && stateOf(newRS), this.stamp()),
    );
  }

  /** Status with Progressing judged; returns when to look again for the progress deadline. */
  async syncRolloutStatus(): Promise<number | undefined> {
    const newRS = this.newRS();
    const now = this.ctx.env.now();
    const next = rolloutStatus(
      this.d,
      this.states(this.all),
      newRS && stateOf(newRS),
      now,
      timestamp(now),
    );
    await this.writeStatus(next);
    return msUntilStuck(this.d, next, now.getTime());
  }

  /** Writes `next` unless it is what the Deployment already says. */
  async writeStatus(next: DeploymentStatus): Promise<void> {
    if (sameStatus(this.d.status, next)) return;
    this.d = await this.ctx.writer.updateStatus({ ...this.d, status: next });
  }

  /** The Deployment's own revision annotation follows its new ReplicaSet's. */
  private async setRevision(revision: number): Promise<void> {
    const value = String(revision);
    if (this.d.metadata.annotations?.[REVISION] === value) return;
    this.d = await this.ctx.writer.update({
      ...this.d,
      metadata: {
        ...this.d.metadata,
        annotations: { ...this.d.metadata.annotations, [REVISION]: value },
      },
    });
  }

  private put(rs: ReplicaSet): ReplicaSet {
    this.rss.set(rs.metadata.name, rs);
    return rs;
  }
}

import { strict as assert } from 'node:assert';
import type { Deployment, ReplicaSet } from '../../src/api/schema';
import { ApiObject } from '../../src/api/types';
import { DeploymentController } from '../../src/master/controllers/deployment/controller';
import { rollbackTemplate, RollbackError } from '../../src/master/controllers/deployment/revisions';
import { isActive, isReady } from '../../src/master/controllers/pods';
import { ReplicaSetController } from '../../src/master/controllers/replica-set';
import { DEFAULT_SETTINGS } from '../../src/master/controllers/runtime/controller';
import { ControllerBed } from '../support/controller-bed';

const REVISION = 'deployment.kubernetes.io/revision';

function deployment(
  name: string,
  replicas: number,
  image: string,
  spec: Record<string, unknown> = {},
): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'c', image }] },
      },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      ...spec,
    },
  } as unknown as Deployment;
}

const imageOf = (o: { spec?: unknown }) =>
  (o.spec as { containers: { image: string }[] }).containers[0].image;

describe('Deployment controller', function () {
  this.timeout(15_000);
  let bed: ControllerBed;

  function start(b = new ControllerBed()) {
    bed = b;
    bed.start(new DeploymentController(bed.ctx));
    bed.start(new ReplicaSetController(bed.ctx));
  }
  afterEach(() => bed.stop());

  const getD = (name = 'web') => bed.get('Deployment', 'default', name)!.object as Deployment;
  const status = (name = 'web') => getD(name).status ?? {};
  const condition = (type: string, name = 'web') =>
    status(name).conditions?.find((c) => c.type === type);
  /** The Deployment's ReplicaSets, oldest revision first. */
  const replicaSets = (name = 'web') =>
    (bed.list('ReplicaSet') as ReplicaSet[])
      .filter((rs) => rs.metadata.ownerReferences?.some((r) => r.uid === getD(name).metadata.uid))
      .sort(
        (a, b) =>
          Number(a.metadata.annotations?.[REVISION]) - Number(b.metadata.annotations?.[REVISION]),
      );
  /** The ReplicaSet whose pods run `image`. */
  const rsWith = (image: string, name = 'web') =>
    replicaSets(name).find((rs) => imageOf(rs.spec.template) === image);
  const activePods = (rs: ApiObject | undefined) => (rs ? bed.podsOf(rs).filter(isActive) : []);
  const readyPods = (rs: ApiObject | undefined) => activePods(rs).filter(isReady);

  /** Plays the node agent: every pod of `rs` not yet Ready becomes Running and Ready. */
  function markReady(rs: ApiObject | undefined): void {
    for (const p of activePods(rs)) if (!isReady(p)) bed.markRunning(p, true);
  }
  /** Every pod of `rs` is Running and not Ready (a new version that fails its readiness probe). */
  function markUnready(rs: ApiObject | undefined): void {
    for (const p of activePods(rs))
      if ((p.status as { phase?: string } | undefined)?.phase !== 'Running')
        bed.markRunning(p, false);
  }
  const events = (reason: string) =>
    bed
      .list('Event')
      .filter((e) => e.reason === reason)
      .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
      .map((e) => String(e.message));

  /** Waits until `image` runs on `replicas` ready pods, playing the node agent, and the rollout is complete. */
  async function rolledOut(image: string, replicas: number, name = 'web'): Promise<void> {
    await bed.until(`${name} rolled out to ${image}`, () => {
      const rs = rsWith(image, name);
      markReady(rs);
      const s = status(name);
      return (
        readyPods(rs).length === replicas &&
        s.updatedReplicas === replicas &&
        s.availableReplicas === replicas &&
        s.replicas === replicas &&
        condition('Progressing', name)?.reason === 'NewReplicaSetAvailable'
      );
    });
  }

  /** Calls `check` after every committed change to pods, for invariants that must hold at every step. */
  function everyPodChange(check: () => void): () => void {
    return bed.store.watch.subscribe({ query: { kind: 'Pod' }, deliver: () => check() });
  }

  it('creates a ReplicaSet for the template and reports 3 ready pods as Available', async () => {
    start();
    bed.create(deployment('web', 3, 'app:v1'));
    await rolledOut('app:v1', 3);
    const [rs] = replicaSets();
    assert.equal(replicaSets().length, 1);
    const hash = rs.metadata.labels?.['pod-template-hash'];
    assert.match(hash ?? '', /^[a-z0-9]{10}$/);
    assert.equal(rs.metadata.name, `web-${hash}`);
    assert.equal(rs.spec.selector.matchLabels?.['pod-template-hash'], hash);
    assert.equal(rs.spec.template.metadata?.labels?.['pod-template-hash'], hash);
    assert.equal(rs.metadata.annotations?.[REVISION], '1');
    assert.equal(rs.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '3');
    assert.equal(rs.metadata.annotations?.['deployment.kubernetes.io/max-replicas'], '4');
    assert.equal(getD().metadata.annotations?.[REVISION], '1');
    const s = status();
    assert.deepEqual(
      [s.replicas, s.updatedReplicas, s.readyReplicas, s.availableReplicas, s.unavailableReplicas],
      [3, 3, 3, 3, 0],
    );
    assert.equal(s.observedGeneration, getD().metadata.generation);
    assert.equal(condition('Available')?.status, 'True');
    assert.equal(condition('Available')?.reason, 'MinimumReplicasAvailable');
    assert.equal(condition('Progressing')?.status, 'True');
    assert.deepEqual(events('ScalingReplicaSet'), [
      `Scaled up replica set ${rs.metadata.name} from 0 to 3`,
    ]);

    // Level-triggered and idempotent: resyncs of a settled Deployment write nothing.
    await new Promise((r) => setTimeout(r, 250));
    const writes = bed.proposed.length;
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(bed.proposed.length, writes);
  });

  it('rolls out with maxSurge 1 / maxUnavailable 0: never below 3 available, never above 4 pods', async () => {
    start();
    bed.create(deployment('web', 3, 'app:v1'));
    await rolledOut('app:v1', 3);
    const old = rsWith('app:v1')!;
    let most = 0;
    let fewestReady = Infinity;
    const stop = everyPodChange(() => {
      const pods = bed.list('Pod').filter(isActive);
      most = Math.max(most, pods.length);
      fewestReady = Math.min(fewestReady, pods.filter(isReady).length);
    });
    bed.update(deployment('web', 3, 'app:v2'));
    await rolledOut('app:v2', 3);
    stop();
    assert.equal(most, 4, 'the surge is used, and never exceeded');
    assert.equal(fewestReady, 3, 'no pod is unavailable');
    assert.equal(activePods(old).length, 0);
    const fresh = rsWith('app:v2')!;
    assert.notEqual(fresh.metadata.name, old.metadata.name);
    assert.equal(fresh.metadata.annotations?.[REVISION], '2');
    assert.equal(getD().metadata.annotations?.[REVISION], '2');
    await bed.until(
      'old ReplicaSet at 0',
      () =>
        bed.get('ReplicaSet', 'default', old.metadata.name)?.object.status !== undefined &&
        (bed.get('ReplicaSet', 'default', old.metadata.name)!.object as ReplicaSet).spec
          .replicas === 0,
    );
    const scaling = events('ScalingReplicaSet');
    assert.deepEqual(scaling.slice(1), [
      `Scaled up replica set ${fresh.metadata.name} from 0 to 1`,
      `Scaled down replica set ${old.metadata.name} from 3 to 2`,
      `Scaled up replica set ${fresh.metadata.name} from 1 to 2`,
      `Scaled down replica set ${old.metadata.name} from 2 to 1`,
      `Scaled up replica set ${fresh.metadata.name} from 2 to 3`,
      `Scaled down replica set ${old.metadata.name} from 1 to 0`,
    ]);
  });

  it('stops a rollout whose new pods never become Ready, keeps old pods, then reports ProgressDeadlineExceeded', async () => {
    start();
    // The bed's clock stands still: the deadline passes when the test moves
    // it, not while a slow machine is still getting the rollout stuck.
    bed.freeze();
    const spec = {
      progressDeadlineSeconds: 3,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } },
    };
    bed.create(deployment('web', 3, 'app:v1', spec));
    await rolledOut('app:v1', 3);
    const old = rsWith('app:v1')!;
    bed.update(deployment('web', 3, 'app:v2', spec));
    // The new pods run but fail readiness. maxUnavailable 1 lets one old pod
    // go; the surge allows 4 pods: 2 old (ready) + 2 new (not ready).
    const stuck = () => {
      markUnready(rsWith('app:v2'));
      return (
        activePods(rsWith('app:v2')).length === 2 &&
        readyPods(old).length === 2 &&
        activePods(old).length === 2 &&
        status().updatedReplicas === 2
      );
    };
    await bed.until('rollout stuck at 2 old + 2 new', stuck);
    await new Promise((r) => setTimeout(r, 400)); // several resyncs: still stuck
    assert.ok(stuck(), 'nothing moved');
    assert.equal(readyPods(rsWith('app:v2')).length, 0);
    assert.equal(status().availableReplicas, 2);
    assert.equal(condition('Available')?.status, 'True', '2 available >= 3 - maxUnavailable 1');
    assert.equal(condition('Progressing')?.status, 'True');
    assert.equal(condition('Progressing')?.reason, 'ReplicaSetUpdated');

    bed.advance(4000);
    await bed.until('deadline exceeded', () => condition('Progressing')?.status === 'False');
    const c = condition('Progressing')!;
    assert.equal(c.reason, 'ProgressDeadlineExceeded');
    assert.equal(
      c.message,
      `ReplicaSet "${rsWith('app:v2')!.metadata.name}" has timed out progressing.`,
    );
    assert.equal(readyPods(old).length, 2, 'the old pods stay');
  });

  it('notices the progress deadline by itself, without a resync', async () => {
    start(new ControllerBed({ ...DEFAULT_SETTINGS, resyncMs: 60_000 }));
    bed.create(deployment('web', 1, 'app:v1', { progressDeadlineSeconds: 1 }));
    await bed.until('pod created', () => activePods(rsWith('app:v1')).length === 1);
    markUnready(rsWith('app:v1'));
    // Second-precision timestamps: the deadline falls 0..1 s after the last progress, plus 1 s.
    // The wait is generous for a slow machine and still far short of the 60 s resync.
    await bed.until(
      'deadline exceeded',
      () => condition('Progressing')?.status === 'False',
      10_000,
    );
    assert.equal(condition('Progressing')?.reason, 'ProgressDeadlineExceeded');
    assert.equal(condition('Available')?.status, 'False');
    assert.equal(condition('Available')?.reason, 'MinimumReplicasUnavailable');
  });

  it('Recreate: every old pod is gone before the first new pod appears', async () => {
    start();
    const spec = { strategy: { type: 'Recreate' } };
    bed.create(deployment('web', 3, 'app:v1', spec));
    await rolledOut('app:v1', 3);
    const old = rsWith('app:v1')!;
    let overlap = false;
    let sawNone = false;
    const stop = everyPodChange(() => {
      const images = bed.list('Pod').filter(isActive).map(imageOf);
      if (images.includes('app:v1') && images.includes('app:v2')) overlap = true;
      if (images.length === 0) sawNone = true;
    });
    bed.update(deployment('web', 3, 'app:v2', spec));
    await rolledOut('app:v2', 3);
    stop();
    assert.equal(overlap, false);
    assert.equal(sawNone, true);
    const fresh = rsWith('app:v2')!;
    assert.deepEqual(events('ScalingReplicaSet').slice(1), [
      `Scaled down replica set ${old.metadata.name} from 3 to 0`,
      `Scaled up replica set ${fresh.metadata.name} from 0 to 3`,
    ]);
  });

  it('scales the current ReplicaSet up and down when only replicas change', async () => {
    start();
    bed.create(deployment('web', 3, 'app:v1'));
    await rolledOut('app:v1', 3);
    const [rs] = replicaSets();
    bed.update(deployment('web', 5, 'app:v1'));
    await rolledOut('app:v1', 5);
    bed.update(deployment('web', 2, 'app:v1'));
    await rolledOut('app:v1', 2);
    assert.deepEqual(
      replicaSets().map((r) => r.metadata.name),
      [rs.metadata.name],
      'no new ReplicaSet',
    );
    const now = replicaSets()[0];
    assert.equal(now.spec.replicas, 2);
    assert.equal(now.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '2');
    assert.equal(now.metadata.annotations?.['deployment.kubernetes.io/max-replicas'], '3');
    assert.equal(now.metadata.annotations?.[REVISION], '1');
    assert.deepEqual(events('ScalingReplicaSet'), [
      `Scaled up replica set ${rs.metadata.name} from 0 to 3`,
      `Scaled up replica set ${rs.metadata.name} from 3 to 5`,
      `Scaled down replica set ${rs.metadata.name} from 5 to 2`,
    ]);
  });

  it('paused: scaling applies but the new template does not roll out until resumed', async () => {
    start();
    bed.create(deployment('web', 3, 'app:v1'));
    await rolledOut('app:v1', 3);
    const old = rsWith('app:v1')!;
    bed.update(deployment('web', 4, 'app:v2', { paused: true }));
    await bed.until('paused, scaled to 4', () => {
      markReady(old);
      return condition('Progressing')?.reason === 'DeploymentPaused' && readyPods(old).length === 4;
    });
    assert.equal(condition('Progressing')?.status, 'Unknown');
    assert.equal(condition('Progressing')?.message, 'Deployment is paused');
    // The 4th pod's readiness reaches the Deployment's status two writes later (the
    // ReplicaSet's status, then the Deployment's): wait for it rather than for a sleep.
    await bed.until('4 available', () => status().availableReplicas === 4);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(replicaSets().length, 1, 'no ReplicaSet for the new template while paused');
    assert.equal(status().availableReplicas, 4);
    assert.equal(status().updatedReplicas, 0, 'no pod runs the paused template');

    bed.update(deployment('web', 4, 'app:v2', { paused: false }));
    await rolledOut('app:v2', 4);
    assert.equal(activePods(old).length, 0);
    assert.equal(rsWith('app:v2')!.metadata.annotations?.[REVISION], '2');
  });

  it('keeps at most revisionHistoryLimit old ReplicaSets, deleting the oldest revisions', async () => {
    start();
    const spec = { revisionHistoryLimit: 1 };
    for (const [i, image] of ['app:v1', 'app:v2', 'app:v3', 'app:v4'].entries()) {
      if (i === 0) bed.create(deployment('web', 2, image, spec));
      else bed.update(deployment('web', 2, image, spec));
      await rolledOut(image, 2);
    }
    await bed.until('2 ReplicaSets left', () => replicaSets().length === 2);
    assert.deepEqual(
      replicaSets().map((rs) => [
        imageOf(rs.spec.template),
        rs.metadata.annotations?.[REVISION],
        rs.spec.replicas,
      ]),
      [
        ['app:v3', '3', 0],
        ['app:v4', '4', 2],
      ],
    );
  });

  it('rolls back with rollbackTemplate: the old ReplicaSet comes back with the next revision', async () => {
    start();
    bed.create(deployment('web', 3, 'app:v1'));
    await rolledOut('app:v1', 3);
    bed.update(deployment('web', 3, 'app:v2'));
    await rolledOut('app:v2', 3);
    const v1 = rsWith('app:v1')!;
    const all = bed.list('ReplicaSet') as ReplicaSet[];

    assert.throws(
      () => rollbackTemplate(getD(), all, 7),
      (e: unknown) =>
        e instanceof RollbackError &&
        e.code === 'REVISION_NOT_FOUND' &&
        /revision 7/.test(e.message),
    );
    const template = rollbackTemplate(getD(), all);
    assert.equal(imageOf(template), 'app:v1');
    assert.equal(template.metadata?.labels?.['pod-template-hash'], undefined);
    assert.deepEqual(rollbackTemplate(getD(), all, 1), template);

    const createsBefore = bed.proposed.filter(
      (c) => c.op === 'create' && c.object.kind === 'ReplicaSet',
    ).length;
    const d = deployment('web', 3, 'app:v1');
    d.spec.template = template;
    bed.update(d);
    await rolledOut('app:v1', 3);
    const createsAfter = bed.proposed.filter(
      (c) => c.op === 'create' && c.object.kind === 'ReplicaSet',
    ).length;
    assert.equal(createsAfter, createsBefore, 'no ReplicaSet created');
    assert.equal(replicaSets().length, 2);
    const back = rsWith('app:v1')!;
    assert.equal(back.metadata.name, v1.metadata.name);
    assert.equal(back.spec.replicas, 3);
    assert.equal(back.metadata.annotations?.[REVISION], '3');
    assert.equal(back.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '1');
    assert.equal(getD().metadata.annotations?.[REVISION], '3');
    assert.equal(rsWith('app:v2')!.spec.replicas, 0);
    // The previous revision is now v2.
    assert.equal(
      imageOf(rollbackTemplate(getD(), bed.list('ReplicaSet') as ReplicaSet[])),
      'app:v2',
    );
  });

  it('minReadySeconds: a new pod must stay ready that long before an old pod goes', async () => {
    start();
    const spec = { minReadySeconds: 5 };
    bed.create(deployment('web', 2, 'app:v1', spec));
    await bed.until('2 pods', () => activePods(rsWith('app:v1')).length === 2);
    markReady(rsWith('app:v1'));
    await bed.until('ready, not yet available', () => status().readyReplicas === 2);
    assert.equal(status().availableReplicas, 0);
    assert.equal(condition('Available')?.status, 'False');
    bed.advance(6000);
    await rolledOut('app:v1', 2);

    bed.update(deployment('web', 2, 'app:v2', spec));
    const old = rsWith('app:v1')!;
    await bed.until('one new pod', () => activePods(rsWith('app:v2')).length === 1);
    markReady(rsWith('app:v2'));
    await bed.until('new pod ready', () => status().readyReplicas === 3);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(activePods(old).length, 2, 'no old pod goes while the new one is not available');
    assert.equal(status().availableReplicas, 2);

    bed.advance(6000);
    await bed.until('an old pod goes', () => activePods(old).length === 1);
    await bed.until('second new pod', () => activePods(rsWith('app:v2')).length === 2);
    markReady(rsWith('app:v2'));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(activePods(old).length, 1);
    bed.advance(6000);
    await rolledOut('app:v2', 2);
    assert.equal(activePods(old).length, 0);
  });

  it('adopts the orphaned ReplicaSet of a recreated Deployment instead of starting over', async () => {
    start();
    bed.create(deployment('web', 2, 'app:v1'));
    await rolledOut('app:v1', 2);
    const [rs] = replicaSets();
    const pods = activePods(rs)
      .map((p) => p.metadata.name)
      .sort();
    bed.applyNow({
      op: 'delete',
      kind: 'Deployment',
      namespace: 'default',
      name: 'web',
      propagation: 'Orphan',
    });
    const orphan = bed.get('ReplicaSet', 'default', rs.metadata.name)!.object;
    assert.equal(orphan.metadata.ownerReferences, undefined);
    const d = bed.create(deployment('web', 2, 'app:v1'));
    await bed.until(
      'adopted',
      () => replicaSets().length === 1 && status().availableReplicas === 2,
    );
    const adopted = replicaSets()[0];
    assert.equal(adopted.metadata.name, rs.metadata.name);
    assert.equal(adopted.metadata.ownerReferences?.[0].uid, d.metadata.uid);
    assert.deepEqual(
      activePods(adopted)
        .map((p) => p.metadata.name)
        .sort(),
      pods,
      'the same pods',
    );
  });

  it('releases a ReplicaSet that stops matching, and hashes again on the name collision', async () => {
    start();
    bed.create(deployment('web', 1, 'app:v1'));
    await rolledOut('app:v1', 1);
    const [rs] = replicaSets();
    bed.applyNow({
      op: 'update',
      object: { ...rs, metadata: { ...rs.metadata, labels: { app: 'other' } } },
      uid: rs.metadata.uid!,
    });
    await bed.until('released and replaced', () => {
      const released = bed.get('ReplicaSet', 'default', rs.metadata.name)!.object;
      markReady(rsWith('app:v1'));
      return (
        released.metadata.ownerReferences === undefined &&
        status().availableReplicas === 1 &&
        replicaSets().length === 1
      );
    });
    assert.equal(status().collisionCount, 1);
    const fresh = replicaSets()[0];
    assert.notEqual(fresh.metadata.name, rs.metadata.name);
    assert.match(fresh.metadata.name, /^web-[a-z0-9]{10}$/);
  });

  describe('with the ReplicaSet controller played by hand', () => {
    /** Reports `rs` as the ReplicaSet controller would after counting `pods` pods, all available. */
    function report(rs: ReplicaSet, pods: number): void {
      const cur = bed.get('ReplicaSet', 'default', rs.metadata.name)!.object;
      bed.setStatus(cur, {
        replicas: pods,
        readyReplicas: pods,
        availableReplicas: pods,
        observedGeneration: cur.metadata.generation,
      });
    }
    const spec = (name: string) =>
      (bed.get('ReplicaSet', 'default', name)!.object as ReplicaSet).spec.replicas;
    const settle = () => new Promise((r) => setTimeout(r, 300));

    it('counts pods an old ReplicaSet still runs against maxSurge', async () => {
      bed = new ControllerBed();
      bed.start(new DeploymentController(bed.ctx));
      bed.create(deployment('web', 3, 'app:v1'));
      await bed.until('v1 ReplicaSet', () => rsWith('app:v1') !== undefined);
      const v1 = rsWith('app:v1')!;
      report(v1, 3);
      bed.update(deployment('web', 3, 'app:v2'));
      await bed.until('v2 at 1', () => rsWith('app:v2')?.spec.replicas === 1);
      const v2 = rsWith('app:v2')!;
      report(v2, 1);
      await bed.until('v1 told to shed a pod', () => spec(v1.metadata.name) === 2);
      await settle();
      // v1 still runs 3 pods: 3 + 1 = replicas + maxSurge, no room for another new pod.
      assert.equal(spec(v2.metadata.name), 1);
      report(v1, 2);
      await bed.until('v2 grows once the old pod is gone', () => spec(v2.metadata.name) === 2);
    });

    it('Recreate waits until the old ReplicaSets report no pods and their pods have finished', async () => {
      bed = new ControllerBed();
      bed.start(new DeploymentController(bed.ctx));
      const recreate = { strategy: { type: 'Recreate' } };
      const d = bed.create(deployment('web', 2, 'app:v1', recreate));
      await bed.until('v1 ReplicaSet', () => rsWith('app:v1') !== undefined);
      const v1 = rsWith('app:v1')!;
      report(v1, 2);
      const straggler = bed.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'straggler',
          namespace: 'default',
          labels: v1.spec.template.metadata!.labels,
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: v1.metadata.name,
              uid: v1.metadata.uid!,
              controller: true,
            },
          ],
        },
        spec: { containers: [{ name: 'c', image: 'app:v1' }] },
      } as ApiObject);
      bed.markRunning(straggler);
      bed.update(deployment('web', 2, 'app:v2', recreate));
      await bed.until('v1 scaled to 0', () => spec(v1.metadata.name) === 0);
      await settle();
      assert.equal(rsWith('app:v2'), undefined, 'v1 still reports 2 pods');
      report(v1, 0);
      await settle();
      assert.equal(rsWith('app:v2'), undefined, 'a v1 pod still runs');
      bed.markFinished(straggler, true);
      await bed.until('v2 created at full size', () => rsWith('app:v2')?.spec.replicas === 2);
      assert.equal(getD().metadata.uid, d.metadata.uid);
    });

    it('spreads a resize over the ReplicaSets of a rollout in proportion to their sizes', async () => {
      bed = new ControllerBed();
      bed.start(new DeploymentController(bed.ctx));
      const surge3 = {
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 0 } },
      };
      bed.create(deployment('web', 10, 'app:v1', surge3));
      await bed.until('v1 ReplicaSet', () => rsWith('app:v1') !== undefined);
      const v1 = rsWith('app:v1')!;
      report(v1, 10);
      bed.update(deployment('web', 10, 'app:v2', surge3));
      await bed.until('v2 at 3', () => rsWith('app:v2')?.spec.replicas === 3);
      const v2 = rsWith('app:v2')!;
      report(v2, 3); // 3 new available: 3 old may go
      await bed.until('v1 at 7', () => spec(v1.metadata.name) === 7);
      report(v1, 7);
      await bed.until('v2 at 6', () => spec(v2.metadata.name) === 6);
      // Mid-rollout: 7 old + 6 new = 13 = 10 + maxSurge. Scaling to 20 (max 23) adds 10, shared by size.
      bed.update(deployment('web', 20, 'app:v2', surge3));
      await bed.until('scaled', () => spec(v1.metadata.name) + spec(v2.metadata.name) === 23);
      assert.equal(spec(v1.metadata.name), 12); // round(7 * 23 / 13) = 12
      assert.equal(spec(v2.metadata.name), 11); // round(6 * 23 / 13) = 11
      for (const name of [v1.metadata.name, v2.metadata.name]) {
        const a = bed.get('ReplicaSet', 'default', name)!.object.metadata.annotations!;
        assert.equal(a['deployment.kubernetes.io/desired-replicas'], '20');
        assert.equal(a['deployment.kubernetes.io/max-replicas'], '23');
      }
    });
  });
});

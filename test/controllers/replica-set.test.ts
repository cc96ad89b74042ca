import { strict as assert } from 'node:assert';
import { ApiObject } from '../../src/api/types';
import { ReplicaSetController } from '../../src/master/controllers/replica-set';
import { DEFAULT_SETTINGS } from '../../src/master/controllers/runtime/controller';
import { ControllerBed } from '../support/controller-bed';

export function replicaSet(name: string, replicas: number, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'c', image: 'baton/busybox' }] },
      },
      ...extra,
    },
  } as unknown as ApiObject;
}

function pod(name: string, labels: Record<string, string>): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: { containers: [{ name: 'c', image: 'baton/busybox' }] },
  } as ApiObject;
}

describe('ReplicaSet controller', () => {
  let bed: ControllerBed;
  beforeEach(() => {
    bed = new ControllerBed();
    bed.start(new ReplicaSetController(bed.ctx));
  });
  afterEach(() => bed.stop());

  const status = (name: string) =>
    bed.get('ReplicaSet', 'default', name)?.object.status as Record<string, number> | undefined;

  it('creates the missing pods, owned by the ReplicaSet, and reports them', async () => {
    const rs = bed.create(replicaSet('web', 5));
    await bed.until('5 pods', () => bed.podsOf(rs).length === 5);
    for (const p of bed.podsOf(rs)) {
      assert.equal(p.metadata.labels?.app, 'web');
      assert.ok(p.metadata.name.startsWith('web-'));
      assert.equal(p.metadata.ownerReferences?.[0].controller, true);
    }
    await bed.until('status', () => status('web')?.replicas === 5);
    assert.equal(status('web')?.readyReplicas, 0);
    const created = bed.list('Event').filter((e) => e.reason === 'SuccessfulCreate');
    assert.equal(created.length, 5);
  });

  it('counts ready and available pods, honouring minReadySeconds', async () => {
    // The bed's clock stands still: timestamps have whole seconds, so on the
    // real clock the pods could count as available a moment after they are
    // marked Ready (a second boundary passing), before the check below. And no
    // resync: the controller must look again by itself once they can be.
    await bed.stop();
    bed = new ControllerBed({ ...DEFAULT_SETTINGS, resyncMs: 60_000 });
    bed.start(new ReplicaSetController(bed.ctx));
    bed.freeze();
    const rs = bed.create(replicaSet('web', 2, { minReadySeconds: 1 }));
    await bed.until('2 pods', () => bed.podsOf(rs).length === 2);
    for (const p of bed.podsOf(rs)) bed.markRunning(p);
    await bed.until('ready', () => status('web')?.readyReplicas === 2);
    assert.equal(status('web')?.availableReplicas ?? 0, 0);
    // The controller asks to look again when the pods become available.
    bed.advance(1000);
    await bed.until('available', () => status('web')?.availableReplicas === 2, 10_000);
  });

  it('scales down by deleting unscheduled, then not-ready, then the newest pods first', async () => {
    const rs = bed.create(replicaSet('web', 4));
    await bed.until('4 pods', () => bed.podsOf(rs).length === 4);
    const [a, b, c] = bed.podsOf(rs);
    // a and b are bound and ready, c is bound and not ready, d is unscheduled.
    for (const p of [a, b, c])
      bed.applyNow({
        op: 'bind',
        namespace: 'default',
        name: p.metadata.name,
        uid: p.metadata.uid!,
        node: 'n1',
      });
    bed.markRunning(a);
    bed.markRunning(b);
    bed.markRunning(c, false);
    bed.update(replicaSet('web', 2));
    await bed.until('2 pods', () => bed.podsOf(rs).length === 2);
    assert.deepEqual(
      bed
        .podsOf(rs)
        .map((p) => p.metadata.name)
        .sort(),
      [a.metadata.name, b.metadata.name].sort(),
    );
  });

  it('adopts matching orphans and releases pods whose labels stop matching', async () => {
    bed.create(pod('orphan', { app: 'web' }));
    const rs = bed.create(replicaSet('web', 2));
    await bed.until('2 pods', () => bed.podsOf(rs).length === 2);
    assert.ok(bed.podsOf(rs).some((p) => p.metadata.name === 'orphan'));
    const orphan = bed.get('Pod', 'default', 'orphan')!.object;
    bed.applyNow({
      op: 'update',
      object: { ...orphan, metadata: { ...orphan.metadata, labels: { app: 'other' } } },
      uid: orphan.metadata.uid!,
    });
    await bed.until('released and replaced', () => {
      const o = bed.get('Pod', 'default', 'orphan')!.object;
      return o.metadata.ownerReferences === undefined && bed.podsOf(rs).length === 2;
    });
  });

  it('replaces a deleted pod and a failed pod', async () => {
    const rs = bed.create(replicaSet('web', 2));
    await bed.until('2 pods', () => bed.podsOf(rs).length === 2);
    const [a, b] = bed.podsOf(rs);
    bed.remove(a);
    bed.markFinished(b, false);
    await bed.until('two fresh pods', () => {
      const names = bed.podsOf(rs).map((p) => p.metadata.name);
      return (
        names.length === 2 && !names.includes(a.metadata.name) && !names.includes(b.metadata.name)
      );
    });
  });

  it('stops after the first failure of a slow-start batch and says why in an event', async () => {
    bed.create({
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'q', namespace: 'default' },
      spec: { hard: { pods: '3' } },
    } as ApiObject);
    const rs = bed.create(replicaSet('web', 10));
    await bed.until(
      '3 pods and a FailedCreate event',
      () =>
        bed.podsOf(rs).length === 3 &&
        bed
          .list('Event')
          .some(
            (e) =>
              e.reason === 'FailedCreate' && /exceeded quota|forbidden/.test(String(e.message)),
          ),
    );
    // 1 + 2 succeed, the batch of 4 fails at its first pod: far fewer than 10 attempts per round.
    const creates = bed.proposed.filter((c) => c.op === 'create' && c.object.kind === 'Pod');
    assert.ok(creates.length < 10, `${creates.length} pod creates proposed`);
  });

  it('stops writing the moment its leadership ends (signal aborted)', async () => {
    const rs = bed.create(replicaSet('web', 1));
    await bed.until('1 pod', () => bed.podsOf(rs).length === 1);
    await bed.stop();
    const before = bed.proposed.length;
    bed.update(replicaSet('web', 3));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(bed.proposed.length, before);
  });
});

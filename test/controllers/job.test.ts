import { strict as assert } from 'node:assert';
import type { Job } from '../../src/api/schema';
import { ApiObject } from '../../src/api/types';
import {
  COMPLETION_INDEX,
  CONTROLLER_UID_LABEL,
  formatIndexes,
  JOB_NAME_LABEL,
  JobController,
  parseIndexes,
} from '../../src/master/controllers/job';
import { isActive, phaseOf } from '../../src/master/controllers/pods';
import { ControllerBed } from '../support/controller-bed';

export function job(name: string, spec: Record<string, unknown> = {}): ApiObject {
  const { restartPolicy = 'Never', ...rest } = spec;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default' },
    spec: {
      template: {
        metadata: { labels: { app: name } },
        spec: { restartPolicy, containers: [{ name: 'c', image: 'baton/busybox' }] },
      },
      ...rest,
    },
  } as ApiObject;
}

type Status = NonNullable<Job['status']>;

describe('Job controller', () => {
  let bed: ControllerBed;
  /** Tests about backoff set their own base; the rest replace failed pods at once. */
  const start = (backoffBaseMs = 1) =>
    bed.start(new JobController(bed.ctx, { backoffBaseMs, backoffMaxMs: 600_000 }));
  beforeEach(() => {
    bed = new ControllerBed();
  });
  afterEach(() => bed.stop());

  const status = (name: string): Status =>
    (bed.get('Job', 'default', name)?.object.status ?? {}) as Status;
  const condition = (name: string, type: string) =>
    status(name).conditions?.find((c) => c.type === type);
  const activePods = (j: ApiObject) => bed.podsOf(j).filter(isActive);
  const events = (reason: string) => bed.list('Event').filter((e) => e.reason === reason);

  it('runs min(parallelism, completions left) pods until `completions` succeed, then completes', async () => {
    start();
    const j = bed.create(job('pi', { completions: 3, parallelism: 2 }));
    await bed.until('2 pods', () => activePods(j).length === 2);
    await bed.until('active 2', () => status('pi').active === 2);
    assert.ok(status('pi').startTime);
    for (const p of bed.podsOf(j)) {
      assert.ok(p.metadata.name.startsWith('pi-'));
      assert.equal(p.metadata.labels?.app, 'pi');
      assert.equal(p.metadata.labels?.[CONTROLLER_UID_LABEL], j.metadata.uid);
      assert.equal(p.metadata.labels?.[JOB_NAME_LABEL], 'pi');
      assert.equal(p.metadata.labels?.['controller-uid'], j.metadata.uid);
      assert.equal(p.metadata.labels?.['job-name'], 'pi');
      assert.equal(p.metadata.ownerReferences?.[0].uid, j.metadata.uid);
    }
    const [a, b] = bed.podsOf(j);
    bed.markRunning(a);
    await bed.until('ready 1', () => status('pi').ready === 1);
    bed.markFinished(a, true);
    // One left to do after the two running: a third pod, never a fourth.
    await bed.until('3 pods', () => bed.podsOf(j).length === 3 && status('pi').succeeded === 1);
    bed.markFinished(b, true);
    await bed.until('succeeded 2', () => status('pi').succeeded === 2);
    assert.equal(activePods(j).length, 1);
    bed.markFinished(activePods(j)[0], true);
    await bed.until('Complete', () => condition('pi', 'Complete')?.status === 'True');
    const st = status('pi');
    assert.equal(st.succeeded, 3);
    assert.equal(st.active, 0);
    assert.equal(st.failed, 0);
    assert.ok(st.completionTime);
    assert.equal(condition('pi', 'SuccessCriteriaMet')?.status, 'True');
    assert.equal(condition('pi', 'Complete')?.reason, 'CompletionsReached');
    await bed.until('events', () => events('Completed').length === 1);
    assert.equal(events('SuccessfulCreate').length, 3);
    // Finished pods are kept, and counted once however often the Job is looked at.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bed.podsOf(j).length, 3);
    assert.equal(status('pi').succeeded, 3);
  });

  it('replaces failed pods after an exponential backoff, then fails at backoffLimit', async () => {
    start(60_000);
    const j = bed.create(job('flaky', { backoffLimit: 1 }));
    await bed.until('1 pod', () => bed.podsOf(j).length === 1);
    bed.markFinished(bed.podsOf(j)[0], false);
    await bed.until('failed 1', () => status('flaky').failed === 1);
    // The first failure waits the base delay (60 s on the bed's clock)…
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bed.podsOf(j).length, 1);
    bed.advance(60_000);
    await bed.until('a replacement', () => activePods(j).length === 1);
    bed.markFinished(activePods(j)[0], false);
    // …and the second failure is one too many: no third pod, whatever the time.
    await bed.until('Failed', () => condition('flaky', 'Failed')?.status === 'True');
    bed.advance(600_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bed.podsOf(j).length, 2);
    const st = status('flaky');
    assert.equal(st.failed, 2);
    assert.equal(st.active, 0);
    assert.equal(st.completionTime, undefined);
    assert.equal(condition('flaky', 'Failed')?.reason, 'BackoffLimitExceeded');
    assert.equal(condition('flaky', 'FailureTarget')?.status, 'True');
    await bed.until('a warning', () => events('BackoffLimitExceeded').length === 1);
    assert.equal(events('BackoffLimitExceeded')[0].type, 'Warning');
  });

  it('doubles the wait with each failure since the last success', async () => {
    start(60_000);
    const j = bed.create(job('twice', { completions: 3, backoffLimit: 5 }));
    await bed.until('1 pod', () => bed.podsOf(j).length === 1);
    bed.markFinished(bed.podsOf(j)[0], false);
    bed.advance(60_000);
    await bed.until('a 2nd pod', () => activePods(j).length === 1);
    bed.markFinished(activePods(j)[0], false);
    await bed.until('failed 2', () => status('twice').failed === 2);
    bed.advance(60_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(activePods(j).length, 0, 'second failure waits 120 s, not 60 s');
    bed.advance(60_000);
    await bed.until('a 3rd pod', () => activePods(j).length === 1);
    // A success resets the count: the next pod comes at once.
    bed.markFinished(activePods(j)[0], true);
    await bed.until('a 4th pod', () => activePods(j).length === 1 && bed.podsOf(j).length === 4);
  });

  it('fails a Job active longer than activeDeadlineSeconds and stops its pods', async () => {
    start();
    const j = bed.create(
      job('slow', { parallelism: 2, completions: 2, activeDeadlineSeconds: 30 }),
    );
    await bed.until('2 pods', () => activePods(j).length === 2);
    for (const p of bed.podsOf(j)) bed.markRunning(p);
    bed.advance(20_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(condition('slow', 'Failed'), undefined);
    bed.advance(11_000);
    await bed.until('Failed', () => condition('slow', 'Failed')?.status === 'True');
    assert.equal(condition('slow', 'Failed')?.reason, 'DeadlineExceeded');
    assert.equal(status('slow').active, 0);
    // The verdict is written before the pods are deleted (their restart counts are evidence),
    // so the deletes may still be on their way when Failed is seen (CI under load).
    await bed.until('pods deleted', () => bed.podsOf(j).length === 0);
    // Events are recorded in batches of their own: wait for each kind (seen in CI under load).
    await bed.until('events', () => events('DeadlineExceeded').length === 1);
    await bed.until('delete events', () => events('SuccessfulDelete').length >= 2);
    assert.equal(events('SuccessfulDelete').length, 2);
  });

  it('runs a work queue (parallelism only) until one pod succeeds and the rest have stopped', async () => {
    start();
    const j = bed.create(job('queue', { parallelism: 3 }));
    assert.equal((bed.get('Job', 'default', 'queue')!.object as Job).spec.completions, undefined);
    await bed.until('3 pods', () => activePods(j).length === 3);
    const [a, b, c] = bed.podsOf(j);
    bed.markFinished(a, true);
    await bed.until('succeeded 1', () => status('queue').succeeded === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bed.podsOf(j).length, 3, 'no new pod after a success');
    assert.equal(condition('queue', 'Complete'), undefined, 'not complete while pods run');
    bed.markFinished(b, true);
    bed.markFinished(c, false); // a failure after the work is done is ignored
    await bed.until('Complete', () => condition('queue', 'Complete')?.status === 'True');
    assert.deepEqual([status('queue').succeeded, status('queue').failed], [2, 1]);
    assert.equal(bed.podsOf(j).length, 3);
  });

  it('with restartPolicy OnFailure, counts container restarts and failed pods toward backoffLimit', async () => {
    start();
    const j = bed.create(job('restarts', { restartPolicy: 'OnFailure', backoffLimit: 3 }));
    await bed.until('1 pod', () => bed.podsOf(j).length === 1);
    const p = bed.markRunning(bed.podsOf(j)[0]);
    const restarted = (n: number) =>
      bed.setStatus(bed.get('Pod', 'default', p.metadata.name)!.object, {
        ...(p.status as object),
        containerStatuses: [{ name: 'c', image: 'baton/busybox', ready: true, restartCount: n }],
      });
    restarted(2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(condition('restarts', 'Failed'), undefined);
    restarted(3);
    await bed.until('Failed', () => condition('restarts', 'Failed')?.status === 'True');
    assert.equal(condition('restarts', 'Failed')?.reason, 'BackoffLimitExceeded');
    // As with the deadline: the verdict is written first, the pod deleted in a later write.
    await bed.until('the restarting pod deleted', () => bed.podsOf(j).length === 0);

    // A pod-level failure counts too, as with Never.
    const k = bed.create(job('podfail', { restartPolicy: 'OnFailure', backoffLimit: 0 }));
    await bed.until('1 pod', () => bed.podsOf(k).length === 1);
    bed.markFinished(bed.podsOf(k)[0], false);
    await bed.until('Failed', () => condition('podfail', 'Failed')?.status === 'True');
  });

  it('Indexed: one pod per index, each index completes once, failed indexes are retried', async () => {
    start();
    const j = bed.create(job('ix', { completionMode: 'Indexed', completions: 3, parallelism: 2 }));
    await bed.until('2 pods', () => activePods(j).length === 2);
    const byIndex = () =>
      new Map(activePods(j).map((p) => [p.metadata.labels?.[COMPLETION_INDEX], p]));
    assert.deepEqual([...byIndex().keys()].sort(), ['0', '1']);
    const p0 = byIndex().get('0')!;
    assert.equal(p0.metadata.annotations?.[COMPLETION_INDEX], '0');
    assert.ok(p0.metadata.name.startsWith('ix-0-'));
    const spec = p0.spec as { hostname?: string; containers: { env?: unknown[] }[] };
    assert.equal(spec.hostname, 'ix-0');
    assert.deepEqual(spec.containers[0].env, [{ name: 'JOB_COMPLETION_INDEX', value: '0' }]);

    bed.markFinished(p0, true);
    await bed.until('index 2 starts', () => byIndex().has('2') && byIndex().size === 2);
    bed.markFinished(byIndex().get('1')!, false);
    await bed.until('index 1 again', () => byIndex().has('1') && status('ix').failed === 1);
    assert.equal(status('ix').completedIndexes, '0');
    bed.markFinished(byIndex().get('2')!, true);
    await bed.until('completed 0,2', () => status('ix').completedIndexes === '0,2');
    assert.equal(status('ix').succeeded, 2);
    bed.markFinished(byIndex().get('1')!, true);
    await bed.until('Complete', () => condition('ix', 'Complete')?.status === 'True');
    assert.equal(status('ix').completedIndexes, '0-2');
    assert.equal(status('ix').succeeded, 3);
    assert.equal(bed.podsOf(j).length, 4);
  });

  it('suspend deletes the running pods; resuming starts them again and restarts the clock', async () => {
    start();
    const spec = { parallelism: 2, completions: 4 };
    const j = bed.create(job('batch', spec));
    await bed.until('2 pods', () => activePods(j).length === 2);
    const started = status('batch').startTime;
    bed.update(job('batch', { ...spec, suspend: true }));
    await bed.until('suspended', () => condition('batch', 'Suspended')?.status === 'True');
    await bed.until('no pods', () => bed.podsOf(j).length === 0 && status('batch').active === 0);
    assert.equal(condition('batch', 'Suspended')?.reason, 'JobSuspended');
    await bed.until('events', () => events('Suspended').length === 1);
    assert.equal(events('SuccessfulDelete').length, 2);

    bed.advance(5_000);
    bed.update(job('batch', { ...spec, suspend: false }));
    await bed.until('resumed', () => condition('batch', 'Suspended')?.status === 'False');
    assert.equal(condition('batch', 'Suspended')?.reason, 'JobResumed');
    await bed.until('2 pods again', () => activePods(j).length === 2);
    assert.notEqual(status('batch').startTime, started);
  });

  it('a Job created suspended starts nothing and has no start time', async () => {
    start();
    const j = bed.create(job('later', { suspend: true }));
    await bed.until('suspended', () => condition('later', 'Suspended')?.status === 'True');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bed.podsOf(j).length, 0);
    assert.equal(status('later').startTime, undefined);
  });

  it('deletes a finished Job (and its pods) ttlSecondsAfterFinished after it finished', async () => {
    start();
    const j = bed.create(job('brief', { ttlSecondsAfterFinished: 60 }));
    await bed.until('1 pod', () => bed.podsOf(j).length === 1);
    bed.markFinished(bed.podsOf(j)[0], true);
    await bed.until('Complete', () => condition('brief', 'Complete')?.status === 'True');
    bed.advance(30_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(bed.get('Job', 'default', 'brief'));
    bed.advance(31_000);
    await bed.until('deleted', () => bed.get('Job', 'default', 'brief') === undefined);
    assert.equal(bed.list('Pod').length, 0);
  });

  it('with manualSelector, labels pods only as the template says', async () => {
    start();
    const j = bed.create(
      job('manual', { manualSelector: true, selector: { matchLabels: { app: 'manual' } } }),
    );
    await bed.until('1 pod', () => bed.podsOf(j).length === 1);
    assert.deepEqual(bed.podsOf(j)[0].metadata.labels, { app: 'manual' });
  });

  it('a new leader counts the same pods to the same status (no pod counted twice)', async () => {
    const first = new AbortController();
    bed.start(new JobController({ ...bed.ctx, signal: first.signal }, { backoffBaseMs: 1 }));
    const j = bed.create(job('handover', { completions: 2, parallelism: 2 }));
    await bed.until('2 pods', () => activePods(j).length === 2);
    const [a, b] = bed.podsOf(j);
    bed.markFinished(a, true);
    await bed.until('succeeded 1', () => status('handover').succeeded === 1);
    first.abort();
    bed.markFinished(b, true);
    bed.start(new JobController(bed.ctx, { backoffBaseMs: 1 }));
    await bed.until('Complete', () => condition('handover', 'Complete')?.status === 'True');
    assert.equal(status('handover').succeeded, 2);
    assert.equal(bed.podsOf(j).length, 2);
    // Someone deletes a finished pod: the count does not go down.
    bed.remove(bed.podsOf(j)[0]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(status('handover').succeeded, 2);
    assert.ok(bed.podsOf(j).every((p) => phaseOf(p) === 'Succeeded'));
  });

  it('writes completedIndexes as Kubernetes does', () => {
    for (const [s, ixs] of [
      ['', []],
      ['0', [0]],
      ['0-2', [0, 1, 2]],
      ['1,3-5,7', [1, 3, 4, 5, 7]],
    ] as const) {
      assert.equal(formatIndexes(new Set(ixs)), s);
      assert.deepEqual(
        [...parseIndexes(s)].sort((x, y) => x - y),
        ixs,
      );
    }
  });
});

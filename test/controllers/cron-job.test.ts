import { strict as assert } from 'node:assert';
import type { CronJob, Job } from '../../src/api/schema';
import { ApiObject } from '../../src/api/types';
import { timestamp } from '../../src/master/admission';
import {
  CronJobController,
  mostRecentTime,
  nextTime,
  SCHEDULED_TIMESTAMP,
} from '../../src/master/controllers/cron-job';
import { JobController } from '../../src/master/controllers/job';
import { newControllerRef } from '../../src/master/controllers/pods';
import { ControllerBed } from '../support/controller-bed';

function cronJob(name: string, spec: Record<string, unknown> = {}): ApiObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: 'default' },
    spec: {
      schedule: '*/1 * * * *',
      jobTemplate: {
        metadata: { labels: { app: name } },
        spec: {
          template: {
            spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'baton/busybox' }] },
          },
        },
      },
      ...spec,
    },
  } as ApiObject;
}

const MINUTE = 60_000;

/** Counts its finished reconciles, so a test can wait until it has looked again. */
class CountingCronJobController extends CronJobController {
  reconciles = 0;
  protected override async reconcile(key: string): Promise<number | void> {
    try {
      return await super.reconcile(key);
    } finally {
      this.reconciles++;
    }
  }
}

describe('CronJob controller', () => {
  let bed: ControllerBed;
  beforeEach(() => {
    bed = new ControllerBed();
    // Ten seconds into a minute: the next scheduled time is 50 s (of the bed's clock) away.
    toNextMinute(10);
  });
  afterEach(() => bed.stop());

  /** Moves the bed's clock to `s` seconds past the next minute; returns that minute. */
  function toNextMinute(s: number): number {
    const now = bed.now();
    const minute = Math.floor(now / MINUTE) * MINUTE + MINUTE;
    bed.advance(minute + s * 1000 - now);
    return minute;
  }
  const settle = () => new Promise((r) => setTimeout(r, 300));
  const start = () => bed.start(new CronJobController(bed.ctx));
  const status = (name: string) =>
    (bed.get('CronJob', 'default', name)?.object as CronJob | undefined)?.status ?? {};
  const jobs = () => bed.list('Job') as Job[];
  const jobName = (cj: string, minute: number) => `${cj}-${minute / MINUTE}`;
  const events = (reason: string) => bed.list('Event').filter((e) => e.reason === reason);
  const finish = (name: string, type: 'Complete' | 'Failed', startTime = bed.now()) => {
    const j = bed.get('Job', 'default', name)!.object;
    const at = timestamp(bed.env.now());
    bed.setStatus(j, {
      startTime: timestamp(new Date(startTime)),
      ...(type === 'Complete' ? { completionTime: at } : {}),
      conditions: [{ type, status: 'True', lastTransitionTime: at }],
    });
  };

  it('creates a Job named after the scheduled minute, at that minute and not before', async () => {
    start();
    const cj = bed.create(cronJob('tick'));
    await settle();
    assert.equal(jobs().length, 0);
    const minute = toNextMinute(1);
    await bed.until('a job', () => jobs().length === 1);
    const j = jobs()[0];
    assert.equal(j.metadata.name, jobName('tick', minute));
    assert.equal(j.metadata.annotations?.[SCHEDULED_TIMESTAMP], timestamp(new Date(minute)));
    assert.equal(j.metadata.labels?.app, 'tick');
    assert.equal(j.metadata.ownerReferences?.[0].uid, cj.metadata.uid);
    assert.equal(j.spec.backoffLimit, 6);
    await bed.until('status', () => status('tick').lastScheduleTime !== undefined);
    assert.equal(status('tick').lastScheduleTime, timestamp(new Date(minute)));
    assert.deepEqual(
      status('tick').active?.map((r) => r.name),
      [j.metadata.name],
    );
    await bed.until('event', () => events('SuccessfulCreate').length === 1);
    assert.equal(events('SuccessfulCreate')[0].message, `Created job ${j.metadata.name}`);
    await settle();
    assert.equal(jobs().length, 1, 'one Job per scheduled time');
  });

  it('Allow runs Jobs side by side', async () => {
    start();
    bed.create(cronJob('both'));
    toNextMinute(1);
    await bed.until('1 job', () => jobs().length === 1);
    toNextMinute(1);
    await bed.until('2 jobs', () => jobs().length === 2 && status('both').active?.length === 2);
  });

  it('Forbid skips a time while a Job runs, and runs it once the Job ends', async () => {
    start();
    bed.create(cronJob('solo', { concurrencyPolicy: 'Forbid' }));
    const first = toNextMinute(1);
    await bed.until('1 job', () => jobs().length === 1);
    const second = toNextMinute(1);
    await bed.until('JobAlreadyActive', () => events('JobAlreadyActive').length === 1);
    assert.equal(jobs().length, 1);
    assert.equal(status('solo').lastScheduleTime, timestamp(new Date(first)));
    finish(jobName('solo', first), 'Complete');
    await bed.until('the skipped time runs', () =>
      jobs().some((j) => j.metadata.name === jobName('solo', second)),
    );
    await bed.until('status', () => status('solo').lastSuccessfulTime !== undefined);
    assert.deepEqual(
      status('solo').active?.map((r) => r.name),
      [jobName('solo', second)],
    );
    await bed.until('SawCompletedJob', () => events('SawCompletedJob').length === 1);
    assert.match(String(events('SawCompletedJob')[0].message), /condition: Complete/);
  });

  it('Replace deletes the running Job and starts the new one', async () => {
    start();
    bed.create(cronJob('fresh', { concurrencyPolicy: 'Replace' }));
    const first = toNextMinute(1);
    await bed.until('1 job', () => jobs().length === 1);
    const second = toNextMinute(1);
    await bed.until(
      'replaced',
      () =>
        jobs()
          .map((j) => j.metadata.name)
          .join() === jobName('fresh', second),
    );
    await bed.until('event', () => events('SuccessfulDelete').length === 1);
    assert.equal(events('SuccessfulDelete')[0].message, `Deleted job ${jobName('fresh', first)}`);
    await bed.until('active', () => status('fresh').active?.[0]?.name === jobName('fresh', second));
  });

  it('keeps successfulJobsHistoryLimit and failedJobsHistoryLimit finished Jobs, the newest', async () => {
    const cj = bed.create(
      cronJob('hist', { suspend: true, successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 }),
    );
    const t0 = bed.now() - 10 * MINUTE;
    const made = (i: number, type?: 'Complete' | 'Failed') => {
      const name = `hist-${i}`;
      bed.create({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name, namespace: 'default', ownerReferences: [newControllerRef(cj)] },
        spec: (cj as CronJob).spec.jobTemplate.spec,
      } as ApiObject);
      if (type) finish(name, type, t0 + i * MINUTE);
    };
    made(1, 'Complete');
    made(2, 'Failed');
    made(3, 'Complete');
    made(4, 'Failed');
    made(5, 'Complete');
    made(6); // running: never a victim
    start();
    await bed.until('trimmed', () => jobs().length === 3);
    assert.deepEqual(
      jobs()
        .map((j) => j.metadata.name)
        .sort(),
      ['hist-4', 'hist-5', 'hist-6'],
    );
    await bed.until('events', () => events('SuccessfulDelete').length === 3);
    await bed.until('status', () => status('hist').active?.length === 1);
    assert.equal(status('hist').lastSuccessfulTime !== undefined, true);
  });

  it('suspend stops scheduling; unsuspended, only the most recent missed time runs', async () => {
    start();
    bed.create(cronJob('paused', { suspend: true }));
    toNextMinute(1);
    toNextMinute(1);
    const latest = toNextMinute(1);
    await settle();
    assert.equal(jobs().length, 0);
    bed.update(cronJob('paused', { suspend: false }));
    await bed.until('1 job', () => jobs().length === 1);
    assert.equal(jobs()[0].metadata.name, jobName('paused', latest));
    await settle();
    assert.equal(jobs().length, 1);
  });

  it('does not start a time missed by more than startingDeadlineSeconds, and says so', async () => {
    const controller = new CountingCronJobController(bed.ctx);
    bed.start(controller);
    // What the controller reports, as it reports it: a repeat reaches the
    // stored Event's count only when the recorder flushes repeats, a second later.
    const reported: string[] = [];
    const record = bed.events.record.bind(bed.events);
    bed.events.record = (about, component, type, reason, message) => {
      reported.push(reason);
      record(about, component, type, reason, message);
    };
    bed.create(cronJob('late', { startingDeadlineSeconds: 10 }));
    const missed = toNextMinute(30);
    await bed.until('MissSchedule', () => events('MissSchedule').length === 1);
    assert.equal(events('MissSchedule')[0].type, 'Warning');
    assert.match(
      String(events('MissSchedule')[0].message),
      new RegExp(new Date(missed).toUTCString()),
    );
    // Three more looks at the CronJob (resyncs), each a chance to start the
    // missed time or to report it again.
    const looked = controller.reconciles;
    await bed.until('three more reconciles', () => controller.reconciles >= looked + 3);
    assert.equal(jobs().length, 0);
    assert.deepEqual(
      reported.filter((r) => r === 'MissSchedule'),
      ['MissSchedule'],
      'one event per missed time',
    );
    // Within the deadline the next time runs.
    const next = toNextMinute(5);
    await bed.until('1 job', () => jobs().length === 1);
    assert.equal(jobs()[0].metadata.name, jobName('late', next));
  });

  it('a Job made for the time already (by an earlier leader) is taken as done', async () => {
    const cj = bed.create(cronJob('handover'));
    const minute = toNextMinute(1);
    bed.create({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: jobName('handover', minute),
        namespace: 'default',
        ownerReferences: [newControllerRef(cj)],
      },
      spec: (cj as CronJob).spec.jobTemplate.spec,
    } as ApiObject);
    start();
    await bed.until('status', () => status('handover').lastScheduleTime !== undefined);
    assert.equal(status('handover').lastScheduleTime, timestamp(new Date(minute)));
    assert.equal(status('handover').active?.length, 1);
    assert.equal(jobs().length, 1);
    assert.equal(events('SuccessfulCreate').length, 0);
  });

  it('with the Job controller: a scheduled Job runs its pod to completion', async () => {
    start();
    bed.start(new JobController(bed.ctx, { backoffBaseMs: 1 }));
    bed.create(cronJob('nightly'));
    toNextMinute(1);
    await bed.until('a job', () => jobs().length === 1);
    const j = jobs()[0];
    await bed.until('a pod', () => bed.podsOf(j).length === 1);
    bed.markFinished(bed.podsOf(j)[0], true);
    await bed.until(
      'seen complete',
      () => status('nightly').lastSuccessfulTime !== undefined && !status('nightly').active,
    );
    await bed.until('SawCompletedJob', () => events('SawCompletedJob').length === 1);
  });

  it('computes times in the CronJob time zone', () => {
    const at = (iso: string) => Date.parse(iso);
    // 09:00 in Tokyo is 00:00 UTC; in New York (EDT in May) it is 13:00 UTC.
    assert.equal(
      nextTime('0 9 * * *', 'Asia/Tokyo', at('2024-05-01T12:00:00Z')),
      at('2024-05-02T00:00:00Z'),
    );
    assert.equal(
      nextTime('0 9 * * *', 'America/New_York', at('2024-05-01T12:00:00Z')),
      at('2024-05-01T13:00:00Z'),
    );
    assert.equal(
      nextTime('0 9 * * *', 'UTC', at('2024-05-01T09:00:00Z')),
      at('2024-05-02T09:00:00Z'),
    );
  });

  it('finds the most recent missed time and counts the misses', () => {
    const at = (iso: string) => Date.parse(iso);
    const since = at('2024-05-01T12:00:00Z');
    assert.deepEqual(mostRecentTime('*/1 * * * *', 'UTC', since, at('2024-05-01T12:00:59Z')), {
      missed: 0,
    });
    assert.deepEqual(mostRecentTime('*/1 * * * *', 'UTC', since, at('2024-05-01T12:01:00Z')), {
      time: at('2024-05-01T12:01:00Z'),
      missed: 1,
    });
    assert.deepEqual(mostRecentTime('*/1 * * * *', 'UTC', since, at('2024-05-01T12:03:30Z')), {
      time: at('2024-05-01T12:03:00Z'),
      missed: 3,
    });
    // A year of minutes: counting stops past the warning threshold.
    const r = mostRecentTime('*/1 * * * *', 'UTC', since, at('2025-05-01T12:00:30Z'));
    assert.equal(r.time, at('2025-05-01T12:00:00Z'));
    assert.equal(r.missed, 101);
  });
});

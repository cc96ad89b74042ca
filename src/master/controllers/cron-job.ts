/**
 * The CronJob controller (Kubernetes' cronjob-controller v2): at each time
 * the schedule names, a Job from the template.
 *
 * The Job's name is derived from the scheduled time, so the run of one
 * time is created once whoever the leader is (a second create fails with
 * ALREADY_EXISTS, which means "done"). Times are computed from
 * lastScheduleTime (or the CronJob's creation), in `timeZone` (UTC when
 * unset): only the most recent missed time runs, and not at all when it is
 * older than startingDeadlineSeconds. Between times the key is requeued to
 * the next one.
 */
import { CronExpressionParser } from 'cron-parser';
import type { CronJob, Job } from '../../api/schema';
import { cronExpression } from '../../api/schema/cron-job';
import { ApiObject } from '../../api/types';
import { timestamp } from '../admission';
import { stableStringify } from '../store/stable-json';
import { finishedType } from './job';
import { controllerRef, newControllerRef } from './pods';
import { Controller, splitKey } from './runtime/controller';
import { WriteError } from './runtime/writer';

const COMPONENT = 'cronjob-controller';

/** On each Job a CronJob makes: the time it was scheduled for (RFC 3339). */
export const SCHEDULED_TIMESTAMP = 'batch.kubernetes.io/cronjob-scheduled-timestamp';

/** More missed times than this and Kubernetes warns: the clock or the deadline is off. */
const TOO_MANY_MISSED = 100;

type CronJobStatus = NonNullable<CronJob['status']>;
type ObjectRef = NonNullable<CronJobStatus['active']>[number];

export class CronJobController extends Controller {
  readonly name = 'cronjob';
  protected readonly kind = 'CronJob';
  /** The missed time last reported per CronJob, so a miss is one event, not one per resync. */
  private readonly reportedMiss = new Map<string, number>();

  protected override watchOthers(): void {
    this.watch('Job', (c) => this.enqueueOwner(c.object));
  }

  protected async reconcile(key: string): Promise<number | void> {
    const { namespace, name } = splitKey(key);
    const stored = this.ctx.store.get('CronJob', namespace, name);
    if (!stored) {
      this.reportedMiss.delete(key);
      return; // its Jobs went with it (cascading delete)
    }
    const cj = stored.object as CronJob;
    const now = this.ctx.env.now().getTime();
    const status: CronJobStatus = { ...cj.status };
    const jobs = this.jobsOf(cj);

    this.noteFinished(cj, jobs);
    let active = jobs.filter((j) => !finishedType(j));
    const succeeded = jobs
      .filter((j) => finishedType(j) === 'Complete' && j.status?.completionTime)
      .map((j) => j.status!.completionTime!);
    const lastSuccess = latest([status.lastSuccessfulTime, ...succeeded]);
    if (lastSuccess) status.lastSuccessfulTime = lastSuccess;
    await this.trimHistory(cj, jobs);

    const finish = async (requeue: number | undefined) => {
      status.active = active.length > 0 ? active.map(refTo) : undefined;
      await this.writeStatus(cj, status);
      return requeue;
    };
    if (cj.spec.suspend) return finish(undefined);
    const parsed = cronExpression(cj.spec.schedule);
    if ('error' in parsed) {
      this.ctx.events.record(
        cj,
        COMPONENT,
        'Warning',
        'InvalidSchedule',
        `invalid schedule "${cj.spec.schedule}": ${parsed.error}`,
      );
      return finish(undefined);
    }
    const tz = cj.spec.timeZone ?? 'UTC';
    const since = Date.parse(status.lastScheduleTime ?? cj.metadata.creationTimestamp ?? '') || now;
    const next = nextTime(parsed.expression, tz, now);
    const untilNext = next === undefined ? undefined : next - now;
    const due = mostRecentTime(parsed.expression, tz, since, now);
    if (due.time === undefined) return finish(untilNext);
    const warnIfManyMissed = () => {
      if (due.missed > TOO_MANY_MISSED)
        this.ctx.events.record(
          cj,
          COMPONENT,
          'Warning',
          'TooManyMissedTimes',
          `too many missed start times: ${due.missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew`,
        );
    };
    const scheduled = due.time;

    const made = jobs.find((j) => j.metadata.name === jobFor(cj, scheduled).metadata.name);
    if (made) {
      // Created for this time already (by a leader that stopped before writing the status).
      status.lastScheduleTime = timestamp(new Date(scheduled));
      return finish(untilNext);
    }

    const deadline = cj.spec.startingDeadlineSeconds;
    if (deadline !== undefined && scheduled + deadline * 1000 < now) {
      if (this.reportedMiss.get(key) !== scheduled) {
        this.reportedMiss.set(key, scheduled);
        warnIfManyMissed();
        this.ctx.events.record(
          cj,
          COMPONENT,
          'Warning',
          'MissSchedule',
          `Missed scheduled time to start a job: ${new Date(scheduled).toUTCString()}`,
        );
      }
      return finish(untilNext);
    }

    if (cj.spec.concurrencyPolicy === 'Forbid' && active.length > 0) {
      // The time stays unmet: it runs when the active Job ends, if still within the deadline.
      this.ctx.events.record(
        cj,
        COMPONENT,
        'Normal',
        'JobAlreadyActive',
        'Not starting job because prior execution is running and concurrency policy is Forbid',
      );
      return finish(untilNext);
    }
    if (cj.spec.concurrencyPolicy === 'Replace') {
      await Promise.all(active.map((j) => this.deleteJob(cj, j)));
      active = [];
    }

    warnIfManyMissed();
    const job = await this.createJob(cj, scheduled);
    if (!active.some((j) => j.metadata.uid === job.metadata.uid) && !finishedType(job))
      active = [...active, job];
    status.lastScheduleTime = timestamp(new Date(scheduled));
    return finish(untilNext);
  }

  /** The Jobs this CronJob controls, oldest first. */
  private jobsOf(cj: CronJob): Job[] {
    const uid = cj.metadata.uid!;
    return (
      this.ctx.store.objects
        .dependents(uid)
        .map((k) => this.ctx.store.objects.get(k)?.object)
        .filter((o): o is ApiObject => o?.kind === 'Job' && controllerRef(o)?.uid === uid) as Job[]
    ).sort(byStart);
  }

  /** Events for the Jobs of status.active that have finished or gone. */
  private noteFinished(cj: CronJob, jobs: Job[]): void {
    for (const ref of cj.status?.active ?? []) {
      const job = jobs.find((j) => j.metadata.uid === ref.uid);
      const type = job && finishedType(job);
      if (!job)
        this.ctx.events.record(
          cj,
          COMPONENT,
          'Normal',
          'MissingJob',
          `Active job went missing: ${ref.name}`,
        );
      else if (type)
        this.ctx.events.record(
          cj,
          COMPONENT,
          'Normal',
          'SawCompletedJob',
          `Saw completed job: ${job.metadata.name}, condition: ${type}`,
        );
    }
  }

  /** Deletes the oldest finished Jobs beyond the history limits. */
  private async trimHistory(cj: CronJob, jobs: Job[]): Promise<void> {
    const extra = (type: 'Complete' | 'Failed', limit: number) => {
      const done = jobs.filter((j) => finishedType(j) === type);
      return done.slice(0, Math.max(0, done.length - limit));
    };
    const victims = [
      ...extra('Complete', cj.spec.successfulJobsHistoryLimit),
      ...extra('Failed', cj.spec.failedJobsHistoryLimit),
    ];
    await Promise.all(victims.map((j) => this.deleteJob(cj, j)));
  }

  private async deleteJob(cj: CronJob, job: Job): Promise<void> {
    try {
      await this.ctx.writer.delete(job, { propagation: 'Background' });
      this.ctx.events.record(
        cj,
        COMPONENT,
        'Normal',
        'SuccessfulDelete',
        `Deleted job ${job.metadata.name}`,
      );
    } catch (err) {
      if (!(err instanceof WriteError) || err.code !== 'NOT_FOUND') throw err;
    }
  }

  /** Creates the Job of `scheduled`, or finds it made already (by this or an earlier leader). */
  private async createJob(cj: CronJob, scheduled: number): Promise<Job> {
    const job = jobFor(cj, scheduled);
    try {
      const created = await this.ctx.writer.create(job);
      this.ctx.events.record(
        cj,
        COMPONENT,
        'Normal',
        'SuccessfulCreate',
        `Created job ${created.metadata.name}`,
      );
      return created;
    } catch (err) {
      if (err instanceof WriteError && err.code === 'ALREADY_EXISTS') {
        const existing = this.ctx.store.get('Job', job.metadata.namespace, job.metadata.name);
        if (existing && controllerRef(existing.object)?.uid === cj.metadata.uid)
          return existing.object as Job;
      }
      this.ctx.events.record(
        cj,
        COMPONENT,
        'Warning',
        'FailedCreate',
        `Error creating job: ${(err as Error).message}`,
      );
      throw err;
    }
  }

  private async writeStatus(cj: CronJob, status: CronJobStatus): Promise<void> {
    const next = Object.fromEntries(Object.entries(status).filter(([, v]) => v !== undefined));
    if (stableStringify(next) === stableStringify(cj.status ?? {})) return;
    await this.ctx.writer.updateStatus({ ...cj, status: next });
  }
}

/** The Job a CronJob runs for the time `scheduled`, named after that minute. */
export function jobFor(cj: CronJob, scheduled: number): Job {
  const t = cj.spec.jobTemplate;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: `${cj.metadata.name}-${Math.floor(scheduled / 60_000)}`,
      namespace: cj.metadata.namespace,
      labels: { ...t.metadata?.labels },
      annotations: {
        ...t.metadata?.annotations,
        [SCHEDULED_TIMESTAMP]: timestamp(new Date(scheduled)),
      },
      ownerReferences: [newControllerRef(cj)],
    },
    spec: structuredClone(t.spec),
  };
}

/**
 * The latest time of the schedule in (`since`, `now`], and how many times
 * in that span were missed (counted up to one past the warning threshold).
 */
export function mostRecentTime(
  expression: string,
  tz: string,
  since: number,
  now: number,
): { time?: number; missed: number } {
  if (since >= now) return { missed: 0 };
  try {
    // prev() is strictly before its start: start 1 ms late so `now` itself counts.
    const prev = CronExpressionParser.parse(expression, { tz, currentDate: now + 1 }).prev();
    const time = prev.getTime();
    if (time <= since) return { missed: 0 };
    const it = CronExpressionParser.parse(expression, { tz, currentDate: since });
    let missed = 0;
    while (missed <= TOO_MANY_MISSED && it.next().getTime() <= now) missed++;
    return { time, missed };
  } catch {
    return { missed: 0 }; // no time at all (an expression no date satisfies)
  }
}

/** The first time of the schedule after `now`. */
export function nextTime(expression: string, tz: string, now: number): number | undefined {
  try {
    return CronExpressionParser.parse(expression, { tz, currentDate: now }).next().getTime();
  } catch {
    return undefined;
  }
}

function refTo(job: Job): ObjectRef {
  return {
    apiVersion: job.apiVersion,
    kind: job.kind,
    namespace: job.metadata.namespace,
    name: job.metadata.name,
    uid: job.metadata.uid,
  };
}

/** Oldest first, by when they started (unstarted Jobs by creation). */
function byStart(a: Job, b: Job): number {
  const t = (j: Job) => Date.parse(j.status?.startTime ?? j.metadata.creationTimestamp ?? '') || 0;
  return t(a) - t(b) || (a.metadata.name < b.metadata.name ? -1 : 1);
}

function latest(times: (string | undefined)[]): string | undefined {
  let best: string | undefined;
  for (const t of times) if (t && (!best || Date.parse(t) > Date.parse(best))) best = t;
  return best;
}

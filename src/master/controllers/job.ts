/**
 * The Job controller (Kubernetes' job-controller): runs a Job's pods until
 * enough of them succeed, or the Job runs out of retries or time.
 *
 * Everything is counted from the pods, which are kept after they finish
 * (as Kubernetes keeps them): a new leader counts the same pods and reaches
 * the same status, so no pod is counted twice. The status counts never go
 * down, so a finished pod someone deleted is not forgotten either.
 *
 * The decisions (what is wanted, whether the Job failed or completed, how
 * long to back off) are pure functions below the class; the class reads
 * the store, writes the difference and the status.
 */
import type { Job, Pod } from '../../api/schema';
import { ApiObject } from '../../api/types';
import { timestamp } from '../admission';
import { stableStringify } from '../store/stable-json';
import { controllerRef, deletionCost, isActive, isReady, phaseOf, podFromTemplate } from './pods';
import { Controller, ControllerContext, splitKey } from './runtime/controller';
import { WriteError } from './runtime/writer';

const COMPONENT = 'job-controller';

export const CONTROLLER_UID_LABEL = 'batch.kubernetes.io/controller-uid';
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';
/** Label and annotation of an Indexed Job's pods: which completion the pod works on. */
export const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';

/** Most pods created or deleted in one reconcile (Kubernetes' MaxPodCreateDeletePerSync). */
const BURST = 500;

export interface JobControllerOptions {
  /** Wait before replacing the first failed pod; doubles per failure since the last success. Kubernetes: 10 s. */
  backoffBaseMs?: number;
  /** Longest wait between failures. Kubernetes: 6 minutes. */
  backoffMaxMs?: number;
}

type JobStatus = NonNullable<Job['status']>;
type Condition = NonNullable<JobStatus['conditions']>[number];

/** An event to record once the status that explains it is written. */
type Note = [type: 'Normal' | 'Warning', reason: string, message: string];

interface Outcome {
  type: 'Complete' | 'Failed';
  reason: string;
  message: string;
}

export class JobController extends Controller {
  readonly name = 'job';
  protected readonly kind = 'Job';
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;

  constructor(ctx: ControllerContext, opts: JobControllerOptions = {}) {
    super(ctx);
    this.backoffBaseMs = opts.backoffBaseMs ?? 10_000;
    this.backoffMaxMs = opts.backoffMaxMs ?? 360_000;
  }

  protected override watchOthers(): void {
    this.watch('Pod', (c) => this.enqueueOwner(c.object));
  }

  protected async reconcile(key: string): Promise<number | void> {
    const { namespace, name } = splitKey(key);
    const stored = this.ctx.store.get('Job', namespace, name);
    if (!stored) return; // its pods went with it (cascading delete)
    const job = stored.object as Job;
    const now = this.ctx.env.now().getTime();
    const finished = finishedType(job);
    if (finished) return this.afterFinish(job, now);

    const at = timestamp(new Date(now));
    const notes: Note[] = [];
    const status: JobStatus = { ...job.status };
    let conditions = status.conditions ?? [];
    const suspended = job.spec.suspend;
    const flip = suspended
      ? setCondition(conditions, 'Suspended', 'True', 'JobSuspended', 'Job suspended', at)
      : setCondition(conditions, 'Suspended', 'False', 'JobResumed', 'Job resumed', at);
    if (flip) {
      conditions = flip;
      notes.push([
        'Normal',
        suspended ? 'Suspended' : 'Resumed',
        `Job ${suspended ? 'suspended' : 'resumed'}`,
      ]);
      // The deadline counts time continuously active: a resumed Job starts again.
      if (!suspended) status.startTime = at;
    }
    if (!suspended && !status.startTime) status.startTime = at;

    const pods = this.podsOf(job);
    const count = countPods(job, pods);
    const active = pods.filter(isActive);
    const counts = (running: Pod[]): JobStatus => ({
      active: running.length,
      ready: running.filter(isReady).length,
      succeeded: count.succeeded,
      failed: count.failed,
      ...(job.spec.completionMode === 'Indexed'
        ? { completedIndexes: formatIndexes(count.completed) || undefined }
        : {}),
    });
    const conclude = (outcome: Outcome) => {
      const second = outcome.type === 'Complete' ? 'SuccessCriteriaMet' : 'FailureTarget';
      for (const type of [second, outcome.type])
        conditions = setCondition(conditions, type, 'True', outcome.reason, outcome.message, at)!;
      if (outcome.type === 'Complete') status.completionTime = at;
      notes.push(
        outcome.type === 'Complete'
          ? ['Normal', 'Completed', 'Job completed']
          : ['Warning', outcome.reason, outcome.message],
      );
    };

    const failed = failure(job, count.failed, active, status.startTime, now);
    if (failed) {
      // The verdict is written before the pods go: their restart counts are part of the evidence.
      conclude(failed);
      await this.writeStatus(job, { ...status, conditions, ...counts([]) }, notes);
      await this.deletePods(job, active);
      return ttlRemaining(job, status, now);
    }

    let creates: Pod[] = [];
    let waitMs: number | undefined;
    let more = false; // more than one burst to create or delete: come back at once
    let done: Outcome | undefined;
    let deletes = active;
    if (!suspended) {
      const plan =
        job.spec.completionMode === 'Indexed'
          ? planIndexed(job, active, count.completed)
          : planNonIndexed(job, active, count.succeeded);
      deletes = plan.deletes.slice(0, BURST);
      more = plan.deletes.length > BURST;
      done = more ? undefined : completion(job, count, active.length - deletes.length);
      if (done) conclude(done);
      else if (plan.creates.length > 0) {
        waitMs = backoffRemaining(pods, now, this.backoffBaseMs, this.backoffMaxMs);
        if (waitMs === 0) creates = plan.creates.slice(0, BURST);
        more ||= waitMs === 0 && plan.creates.length > BURST;
      }
    }
    await this.deletePods(job, deletes);
    const createError = await this.createPods(job, creates);
    const running = this.podsOf(job).filter(isActive);
    await this.writeStatus(job, { ...status, conditions, ...counts(running) }, notes);
    if (createError) throw createError;

    if (done) return ttlRemaining(job, status, now);
    if (more) return 0;
    const delays = [waitMs, deadlineRemaining(job, status.startTime, now)].filter(
      (ms): ms is number => ms !== undefined && ms > 0,
    );
    if (delays.length > 0) return Math.min(...delays);
  }

  /** A finished Job runs no pods; with `ttlSecondsAfterFinished` it is deleted in time. */
  private async afterFinish(job: Job, now: number): Promise<number | void> {
    await this.deletePods(job, this.podsOf(job).filter(isActive));
    const ms = ttlRemaining(job, job.status ?? {}, now);
    if (ms === undefined || ms > 0) return ms;
    try {
      // Exact: a Job changed meanwhile (a new TTL, say) is looked at again.
      await this.ctx.writer.delete(job, { exact: true });
    } catch (err) {
      if (!(err instanceof WriteError) || err.code !== 'NOT_FOUND') throw err;
    }
  }

  /** The pods this Job controls: found by owner reference, whatever their labels. */
  private podsOf(job: Job): Pod[] {
    const uid = job.metadata.uid!;
    return this.ctx.store.objects
      .dependents(uid)
      .map((k) => this.ctx.store.objects.get(k)?.object)
      .filter((o): o is ApiObject => o?.kind === 'Pod' && controllerRef(o)?.uid === uid) as Pod[];
  }

  /** Creates pods in slow-start batches (1, 2, 4, …); returns the first failure, having stopped there. */
  private async createPods(job: Job, pods: Pod[]): Promise<Error | undefined> {
    for (let i = 0, batch = 1; i < pods.length; i += batch, batch *= 2) {
      const results = await Promise.allSettled(
        pods.slice(i, i + batch).map((p) => this.ctx.writer.create(p)),
      );
      let failed: Error | undefined;
      for (const r of results) {
        if (r.status === 'fulfilled')
          this.ctx.events.record(
            job,
            COMPONENT,
            'Normal',
            'SuccessfulCreate',
            `Created pod: ${r.value.metadata.name}`,
          );
        else failed ??= r.reason as Error;
      }
      if (failed) {
        this.ctx.events.record(
          job,
          COMPONENT,
          'Warning',
          'FailedCreate',
          `Error creating: ${failed.message}`,
        );
        return failed;
      }
    }
  }

  private async deletePods(job: Job, pods: Pod[]): Promise<void> {
    await Promise.all(
      pods.map(async (p) => {
        try {
          await this.ctx.writer.delete(p);
          this.ctx.events.record(
            job,
            COMPONENT,
            'Normal',
            'SuccessfulDelete',
            `Deleted pod: ${p.metadata.name}`,
          );
        } catch (err) {
          if (!(err instanceof WriteError) || err.code !== 'NOT_FOUND') throw err;
        }
      }),
    );
  }

  /**
   * Writes `status` over the Job as read (a change meanwhile is a CONFLICT,
   * and a retry), then records what it tells.
   */
  private async writeStatus(job: Job, status: JobStatus, notes: Note[]): Promise<void> {
    const next = Object.fromEntries(Object.entries(status).filter(([, v]) => v !== undefined));
    if (stableStringify(next) !== stableStringify(job.status ?? {}))
      await this.ctx.writer.updateStatus({ ...job, status: next });
    for (const [type, reason, message] of notes)
      this.ctx.events.record(job, COMPONENT, type, reason, message);
  }

  /** A pod for `job` from its template: the generated selector's labels, and its index if Indexed. */
  static podFor(job: Job, index?: number): Pod {
    const { name, uid } = job.metadata;
    const labels: Record<string, string> = {};
    if (job.spec.manualSelector !== true)
      Object.assign(labels, {
        [CONTROLLER_UID_LABEL]: uid!,
        [JOB_NAME_LABEL]: name,
        'controller-uid': uid!,
        'job-name': name,
      });
    if (index === undefined) return podFromTemplate(job.spec.template, job, `${name}-`, labels);
    const ix = String(index);
    const pod = podFromTemplate(job.spec.template, job, `${name}-${ix}-`, {
      ...labels,
      [COMPLETION_INDEX]: ix,
    });
    pod.metadata.annotations = { ...pod.metadata.annotations, [COMPLETION_INDEX]: ix };
    const hostname = `${name}-${ix}`;
    if (pod.spec.hostname === undefined && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(hostname))
      pod.spec.hostname = hostname;
    // Kubernetes passes the index through the downward API; a plain value says the same.
    for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])])
      c.env = [...(c.env ?? []), { name: 'JOB_COMPLETION_INDEX', value: ix }];
    return pod;
  }
}

// ---- decisions ---------------------------------------------------------------

/** 'Complete' or 'Failed' once the Job has finished. */
export function finishedType(job: Job): 'Complete' | 'Failed' | undefined {
  const c = (job.status?.conditions ?? []).find(
    (x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True',
  );
  return c?.type as 'Complete' | 'Failed' | undefined;
}

export interface PodCounts {
  succeeded: number;
  failed: number;
  /** Indexed Jobs: the indexes that have succeeded. */
  completed: Set<number>;
}

/** What the pods say, never less than the status already says (finished pods may be deleted). */
export function countPods(job: Job, pods: Pod[]): PodCounts {
  const succeeded = pods.filter((p) => phaseOf(p) === 'Succeeded');
  const failed = Math.max(
    job.status?.failed ?? 0,
    pods.filter((p) => phaseOf(p) === 'Failed').length,
  );
  if (job.spec.completionMode !== 'Indexed')
    return {
      succeeded: Math.max(job.status?.succeeded ?? 0, succeeded.length),
      failed,
      completed: new Set(),
    };
  const completions = job.spec.completions ?? 0;
  const completed = parseIndexes(job.status?.completedIndexes ?? '');
  for (const p of succeeded) {
    const ix = indexOf(p);
    if (ix !== undefined && ix < completions) completed.add(ix);
  }
  // Each index counts once, however many of its pods succeeded.
  return { succeeded: completed.size, failed, completed };
}

/** Why the Job failed, if it did: too many failures, or too long active. */
export function failure(
  job: Job,
  failed: number,
  active: Pod[],
  startTime: string | undefined,
  now: number,
): Outcome | undefined {
  const limit = job.spec.backoffLimit;
  if (failed > limit || restartsExceed(job, active))
    return {
      type: 'Failed',
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    };
  const left = deadlineRemaining(job, startTime, now);
  if (left !== undefined && left <= 0)
    return {
      type: 'Failed',
      reason: 'DeadlineExceeded',
      message: 'Job was active longer than specified deadline',
    };
}

/**
 * With restartPolicy OnFailure a failing container is restarted in its pod
 * and the pod never fails: Kubernetes counts those restarts against the
 * backoffLimit too.
 */
function restartsExceed(job: Job, active: Pod[]): boolean {
  if (job.spec.template.spec.restartPolicy !== 'OnFailure') return false;
  let restarts = 0;
  for (const p of active) {
    const st = p.status;
    for (const c of [...(st?.initContainerStatuses ?? []), ...(st?.containerStatuses ?? [])])
      restarts += c.restartCount ?? 0;
  }
  const limit = job.spec.backoffLimit;
  return limit === 0 ? restarts > 0 : restarts >= limit;
}

/** Milliseconds left before activeDeadlineSeconds runs out, or undefined when there is no deadline. */
export function deadlineRemaining(
  job: Job,
  startTime: string | undefined,
  now: number,
): number | undefined {
  const s = job.spec.activeDeadlineSeconds;
  if (s === undefined || startTime === undefined || job.spec.suspend) return undefined;
  return Date.parse(startTime) + s * 1000 - now;
}

/** Whether the Job has succeeded, given its counts and how many pods still run. */
export function completion(job: Job, count: PodCounts, active: number): Outcome | undefined {
  const { completions } = job.spec;
  const done =
    completions === undefined
      ? // A work queue: any success means the work is done, once the rest have stopped.
        count.succeeded > 0 && active === 0
      : count.succeeded >= completions && active === 0;
  if (done)
    return {
      type: 'Complete',
      reason: 'CompletionsReached',
      message: 'Reached expected number of succeeded pods',
    };
}

interface Plan {
  creates: Pod[];
  deletes: Pod[];
}

/** min(parallelism, completions left) pods; a work queue runs `parallelism` until one succeeds. */
function planNonIndexed(job: Job, active: Pod[], succeeded: number): Plan {
  const { parallelism, completions } = job.spec;
  const want =
    completions === undefined
      ? succeeded > 0
        ? active.length // leave what runs running, start nothing new
        : parallelism
      : Math.max(0, Math.min(parallelism, completions - succeeded));
  if (active.length > want)
    return { creates: [], deletes: [...active].sort(deletionCost).slice(0, active.length - want) };
  return {
    creates: Array.from({ length: want - active.length }, () => JobController.podFor(job)),
    deletes: [],
  };
}

/** One pod per index not yet completed, lowest first, at most `parallelism` at once. */
function planIndexed(job: Job, active: Pod[], completed: Set<number>): Plan {
  const completions = job.spec.completions ?? 0;
  const deletes: Pod[] = [];
  const byIndex = new Map<number, Pod[]>();
  for (const p of active) {
    const ix = indexOf(p);
    if (ix === undefined || ix >= completions || completed.has(ix)) deletes.push(p);
    else byIndex.set(ix, [...(byIndex.get(ix) ?? []), p]);
  }
  // Two pods on one index (a create retried across leaders): keep the most advanced.
  for (const ps of byIndex.values())
    if (ps.length > 1) deletes.push(...[...ps].sort(deletionCost).slice(0, ps.length - 1));
  const want = Math.max(0, Math.min(job.spec.parallelism, completions - completed.size));
  const running = [...byIndex.keys()].sort((a, b) => a - b);
  if (running.length > want) {
    for (const ix of running.slice(want)) deletes.push(...byIndex.get(ix)!.slice(-1));
    return { creates: [], deletes };
  }
  const creates: Pod[] = [];
  for (let ix = 0; ix < completions && running.length + creates.length < want; ix++)
    if (!completed.has(ix) && !byIndex.has(ix)) creates.push(JobController.podFor(job, ix));
  return { creates, deletes };
}

function indexOf(pod: Pod): number | undefined {
  const v = pod.metadata.annotations?.[COMPLETION_INDEX] ?? pod.metadata.labels?.[COMPLETION_INDEX];
  return v !== undefined && /^(0|[1-9][0-9]*)$/.test(v) ? Number(v) : undefined;
}

/** When a pod finished: its containers' last finish, else when it stopped being ready. */
function finishedAt(pod: Pod): number {
  const times = (pod.status?.containerStatuses ?? [])
    .map((c) => c.state?.terminated?.finishedAt)
    .filter((t): t is string => t !== undefined)
    .map(Date.parse);
  if (times.length > 0) return Math.max(...times);
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime;
  return Date.parse(ready ?? pod.metadata.creationTimestamp ?? '') || 0;
}

/**
 * How long to wait before creating pods: `base * 2^(n-1)` after the last of
 * the n failures since the last success, capped at `max` (Kubernetes'
 * backoff for pod failures, computed from the pods rather than kept in
 * memory, so a new leader waits the same).
 */
export function backoffRemaining(pods: Pod[], now: number, base: number, max: number): number {
  let lastSuccess = -Infinity;
  for (const p of pods)
    if (phaseOf(p) === 'Succeeded') lastSuccess = Math.max(lastSuccess, finishedAt(p));
  const failures = pods
    .filter((p) => phaseOf(p) === 'Failed')
    .map(finishedAt)
    .filter((t) => t > lastSuccess);
  if (failures.length === 0) return 0;
  const delay = Math.min(max, base * 2 ** Math.min(failures.length - 1, 30));
  return Math.max(0, Math.max(...failures) + delay - now);
}

/** Milliseconds until a finished Job is due for deletion, or undefined when it is kept. */
export function ttlRemaining(job: Job, status: JobStatus, now: number): number | undefined {
  const ttl = job.spec.ttlSecondsAfterFinished;
  if (ttl === undefined) return undefined;
  const done = (status.conditions ?? []).find(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
  const at = status.completionTime ?? done?.lastTransitionTime;
  if (!at) return undefined;
  return Math.max(0, Date.parse(at) + ttl * 1000 - now);
}

/**
 * Kubernetes' ensureJobConditionStatus: sets a condition to `status`, or
 * changes nothing (undefined) when it already is, or is absent and False.
 */
function setCondition(
  conditions: Condition[],
  type: string,
  status: 'True' | 'False',
  reason: string,
  message: string,
  at: string,
): Condition[] | undefined {
  const i = conditions.findIndex((c) => c.type === type);
  if (i < 0) {
    if (status === 'False') return undefined;
    return [
      ...conditions,
      { type, status, reason, message, lastProbeTime: at, lastTransitionTime: at },
    ];
  }
  if (conditions[i].status === status) return undefined;
  const next = [...conditions];
  next[i] = { type, status, reason, message, lastProbeTime: at, lastTransitionTime: at };
  return next;
}

/** "1,3-5,7" → {1, 3, 4, 5, 7} (status.completedIndexes). */
export function parseIndexes(s: string): Set<number> {
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}

/** {1, 3, 4, 5, 7} → "1,3-5,7". */
export function formatIndexes(ixs: Set<number>): string {
  const sorted = [...ixs].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

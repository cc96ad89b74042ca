/**
 * CronJob: a Job template and a cron schedule (in a time zone) saying when
 * to make a Job from it. The schedule is checked here, with the reason it
 * does not parse, so a bad one is refused at `apply` rather than found by
 * the controller later.
 */
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { nonNegInt, objectReference, timestamp } from './fields';
import { objectMeta, templateMeta } from './meta';
import { jobSpec } from './workloads';

/** Kubernetes' descriptors (robfig/cron), as the 5-field expressions they stand for. */
const DESCRIPTORS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const EXPECTED =
  'expected 5 fields "minute hour day-of-month month day-of-week" (e.g. "*/5 * * * *") or one of ' +
  Object.keys(DESCRIPTORS).join(', ');

// One field: `*`, `?`, numbers and 3-letter month/day names, joined by `,` `-` `/`.
// cron-parser also knows L, W, # and H; robfig/cron (Kubernetes) does not.
const FIELD = /^(\*|\?|[0-9]+|[a-z]{3})([-/,](\*|[0-9]+|[a-z]{3}))*$/i;

/**
 * The 5-field expression a schedule stands for, or why it is not one.
 * Descriptors are expanded; surrounding blanks are dropped.
 */
export function cronExpression(schedule: string): { expression: string } | { error: string } {
  const s = schedule.trim();
  if (/^(CRON_)?TZ=/.test(s))
    return { error: 'TZ and CRON_TZ are not supported in the schedule: set `timeZone` instead' };
  if (s.startsWith('@')) {
    const expression = DESCRIPTORS[s.toLowerCase()];
    return expression ? { expression } : { error: `unknown descriptor "${s}"; ${EXPECTED}` };
  }
  const fields = s.split(/\s+/);
  if (fields.length !== 5)
    return { error: `${fields.length} field${fields.length === 1 ? '' : 's'}; ${EXPECTED}` };
  const bad = fields.find((f) => !FIELD.test(f));
  if (bad !== undefined) return { error: `unsupported field "${bad}"; ${EXPECTED}` };
  try {
    CronExpressionParser.parse(s, { tz: 'UTC' });
  } catch (err) {
    return { error: parserMessage((err as Error).message) };
  }
  return { expression: s };
}

/** cron-parser's reasons, in the words of the rest of the schema. */
function parserMessage(m: string): string {
  const range = /got value (\S+) expected range (\S+)/.exec(m);
  if (range) return `${range[1]} is out of range ${range[2]}`;
  if (/explicit day of month/.test(m)) return 'that day of the month never occurs in those months';
  return m;
}

/** Whether `tz` names a time zone this process knows (the IANA database behind Intl). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const schedule = () =>
  z.string().superRefine((s, ctx) => {
    const r = cronExpression(s);
    if ('error' in r)
      ctx.addIssue({ code: 'custom', message: `invalid schedule "${s}": ${r.error}` });
  });

const timeZone = () =>
  z.string().superRefine((tz, ctx) => {
    if (!isTimeZone(tz))
      ctx.addIssue({
        code: 'custom',
        message: `unknown time zone "${tz}": expected an IANA name such as "Europe/Berlin" or "UTC"`,
      });
  });

const cronJobSpec = () =>
  z.strictObject({
    schedule: schedule(),
    timeZone: timeZone().optional(),
    startingDeadlineSeconds: nonNegInt().optional(),
    concurrencyPolicy: z.enum(['Allow', 'Forbid', 'Replace']).default('Allow'),
    suspend: z.boolean().default(false),
    jobTemplate: z.strictObject({ metadata: templateMeta().optional(), spec: jobSpec() }),
    successfulJobsHistoryLimit: nonNegInt().default(3),
    failedJobsHistoryLimit: nonNegInt().default(1),
  });

const cronJobStatus = () =>
  z.strictObject({
    active: z.array(objectReference()).optional(),
    lastScheduleTime: timestamp().optional(),
    lastSuccessfulTime: timestamp().optional(),
  });

/** Job names are `<cronjob>-<minutes since the epoch>` (up to 11 more characters) and must stay labels. */
const MAX_NAME = 52;

export const cronJobSchema = z
  .strictObject({
    apiVersion: z.literal('batch/v1'),
    kind: z.literal('CronJob'),
    metadata: objectMeta('CronJob', 'subdomain', true),
    spec: cronJobSpec(),
    status: cronJobStatus().optional(),
  })
  .superRefine((cj, ctx) => {
    // Runs even when metadata itself failed its checks: look before touching.
    const name = (cj.metadata as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string' && name.length > MAX_NAME)
      ctx.addIssue({
        code: 'custom',
        path: ['metadata', 'name'],
        message: `must be no more than ${MAX_NAME} characters`,
      });
  });

export type CronJob = z.output<typeof cronJobSchema>;
export type CronJobSpec = CronJob['spec'];

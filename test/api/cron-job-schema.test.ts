import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { CronJob, formatIssues, validateObject } from '../../src/api/schema';
import { cronExpression } from '../../src/api/schema/cron-job';
import { ApiObject, resolveKind } from '../../src/api/types';
import { PRINTERS } from '../../src/cli/kind-columns';

const CRON_JOB = `
apiVersion: batch/v1
kind: CronJob
metadata: { name: report, namespace: default }
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{ name: report, image: baton/busybox }]
`;

function manifest(spec: Record<string, unknown> = {}, name = 'report'): Record<string, unknown> {
  const m = parse(CRON_JOB) as { metadata: { name: string }; spec: Record<string, unknown> };
  m.metadata.name = name;
  Object.assign(m.spec, spec);
  return m;
}

function accept(raw: unknown): CronJob {
  const r = validateObject(raw);
  if (!r.ok) assert.fail(`expected the manifest to validate, got:\n${formatIssues(r.errors)}`);
  return r.object as unknown as CronJob;
}

function reject(raw: unknown): string[] {
  const r = validateObject(raw);
  if (r.ok) assert.fail(`expected errors, got a valid ${r.object.kind}`);
  return formatIssues(r.errors).split('\n');
}

describe('CronJob schema', () => {
  it('is a known kind: cronjobs, cj', () => {
    assert.equal(resolveKind('cj')?.kind, 'CronJob');
    assert.equal(resolveKind('cronjobs')?.apiVersion, 'batch/v1');
  });

  it('fills the defaults Kubernetes fills, down into the job template', () => {
    const cj = accept(manifest());
    assert.equal(cj.spec.concurrencyPolicy, 'Allow');
    assert.equal(cj.spec.suspend, false);
    assert.equal(cj.spec.successfulJobsHistoryLimit, 3);
    assert.equal(cj.spec.failedJobsHistoryLimit, 1);
    assert.equal(cj.spec.timeZone, undefined);
    assert.equal(cj.spec.jobTemplate.spec.backoffLimit, 6);
    assert.equal(cj.spec.jobTemplate.spec.completions, 1);
    assert.equal(cj.spec.jobTemplate.spec.parallelism, 1);
  });

  it('accepts 5-field expressions, names and descriptors, and IANA time zones', () => {
    for (const schedule of [
      '0 3 * * *',
      '*/15 9-17 * * mon-fri',
      '0 0 1,15 * ?',
      '0 12 * jan-mar sun',
      '@hourly',
      '@daily',
      '@midnight',
      '@weekly',
      '@monthly',
      '@yearly',
      '@annually',
    ])
      accept(manifest({ schedule }));
    for (const timeZone of ['UTC', 'Europe/Berlin', 'America/New_York', 'Etc/UTC'])
      accept(manifest({ timeZone }));
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      'a minute out of range',
      { schedule: '61 * * * *' },
      /^spec\.schedule: invalid schedule "61 \* \* \* \*": 61 is out of range 0-59$/,
    ],
    [
      'four fields',
      { schedule: '* * * *' },
      /^spec\.schedule: invalid schedule "\* \* \* \*": 4 fields; expected 5 fields/,
    ],
    ['six fields (seconds)', { schedule: '0 * * * * *' }, /^spec\.schedule: .*6 fields/],
    ['@every', { schedule: '@every 5m' }, /^spec\.schedule: .*unknown descriptor "@every 5m"/],
    ['a word', { schedule: 'often' }, /^spec\.schedule: invalid schedule "often": 1 field; /],
    [
      "cron-parser's L extension",
      { schedule: '0 0 L * *' },
      /^spec\.schedule: .*unsupported field "L"/,
    ],
    [
      'TZ in the schedule',
      { schedule: 'TZ=UTC 0 * * * *' },
      /^spec\.schedule: .*set `timeZone` instead/,
    ],
    ['a date that never comes', { schedule: '0 0 30 2 *' }, /^spec\.schedule: .*never occurs/],
    [
      'an unknown time zone',
      { timeZone: 'Mars/Olympus_Mons' },
      /^spec\.timeZone: unknown time zone "Mars\/Olympus_Mons": expected an IANA name/,
    ],
    ['"Local"', { timeZone: 'Local' }, /^spec\.timeZone: unknown time zone "Local"/],
    [
      'a policy Kubernetes does not have',
      { concurrencyPolicy: 'Queue' },
      /^spec\.concurrencyPolicy: unsupported value "Queue"/,
    ],
    [
      'a negative deadline',
      { startingDeadlineSeconds: -1 },
      /^spec\.startingDeadlineSeconds: must be greater than or equal to 0/,
    ],
  ];
  for (const [what, spec, error] of bad)
    it(`rejects ${what}, naming the field`, () => {
      const errors = reject(manifest(spec));
      assert.ok(
        errors.some((e) => error.test(e)),
        `no error matching ${error} in:\n${errors.join('\n')}`,
      );
    });

  it('checks the job template as a Job', () => {
    const m = manifest();
    (
      m.spec as { jobTemplate: { spec: { template: { spec: Record<string, unknown> } } } }
    ).jobTemplate.spec.template.spec.restartPolicy = 'Always';
    assert.deepEqual(reject(m), [
      'spec.jobTemplate.spec.template.spec.restartPolicy: unsupported value "Always": a Job supports only "Never" or "OnFailure"',
    ]);
  });

  it('limits the name to 52 characters (Job names add up to 11)', () => {
    accept(manifest({}, 'a'.repeat(52)));
    assert.deepEqual(reject(manifest({}, 'a'.repeat(53))), [
      'metadata.name: must be no more than 52 characters',
    ]);
  });

  it('cronExpression expands descriptors', () => {
    assert.deepEqual(cronExpression(' @daily '), { expression: '0 0 * * *' });
    assert.deepEqual(cronExpression('*/1 * * * *'), { expression: '*/1 * * * *' });
  });
});

describe('baton get cronjobs', () => {
  const now = new Date('2024-05-01T12:00:00Z');
  const cj = {
    ...(manifest({ timeZone: 'Europe/Berlin', suspend: true }) as unknown as ApiObject),
    metadata: { name: 'report', namespace: 'default', creationTimestamp: '2024-05-01T10:00:00Z' },
    status: {
      active: [{ kind: 'Job', name: 'report-1', namespace: 'default' }],
      lastScheduleTime: '2024-05-01T11:55:00Z',
    },
  } as ApiObject;

  it("shows kubectl's columns", () => {
    const p = PRINTERS.CronJob;
    assert.deepEqual(p.headers, [
      'NAME',
      'SCHEDULE',
      'TIMEZONE',
      'SUSPEND',
      'ACTIVE',
      'LAST SCHEDULE',
      'AGE',
    ]);
    assert.deepEqual(p.cells(cj, now, false), [
      'report',
      '*/5 * * * *',
      'Europe/Berlin',
      'True',
      '1',
      '5m',
      '120m',
    ]);
    const fresh = { ...cj, spec: { schedule: '@daily' }, status: undefined } as ApiObject;
    assert.deepEqual(p.cells(fresh, now, false).slice(1, 6), [
      '@daily',
      '<none>',
      '<unset>',
      '0',
      '<none>',
    ]);
    assert.deepEqual(p.cells(cj, now, true).slice(7), ['report', 'baton/busybox', '<none>']);
  });
});

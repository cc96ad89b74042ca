import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ApiObject } from '../../src/api/types';
import { loadManifests, ManifestError } from '../../src/cli/manifests';
import { formatAge, parseOutputFormat, printObjects, renderTable } from '../../src/cli/printers';

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;

describe('cli: reading manifests', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-manifests-'));
    writeFileSync(join(dir, 'b.yaml'), `${cm('b1')}---\n---\n${cm('b2')}`);
    writeFileSync(
      join(dir, 'a.json'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }],
      }),
    );
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'c.yml'), cm('c'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const names = (docs: { object: unknown; index: number }[]) =>
    docs.map((d) => `${(d.object as ApiObject).metadata.name}#${d.index}`);

  it('reads a directory in name order, skips empty documents, flattens Lists, recurses only with -R', async () => {
    assert.deepEqual(names(await loadManifests([dir])), ['s#1', 'b1#1', 'b2#3']);
    assert.deepEqual(names(await loadManifests([dir], { recursive: true })), [
      's#1',
      'b1#1',
      'b2#3',
      'c#1',
    ]);
  });

  it('reads standard input for "-"', async () => {
    const docs = await loadManifests(['-'], { stdin: Readable.from([cm('from-stdin')]) });
    assert.equal(docs[0].source, 'stdin');
    assert.deepEqual(names(docs), ['from-stdin#1']);
  });

  const bad: [string, string, RegExp][] = [
    [
      'a YAML syntax error',
      `${cm('ok')}---\nkind: ConfigMap\nmetadata: {name: [x\n`,
      /bad\.yaml: document 2 \(line \d+, column \d+\): /,
    ],
    [
      'a duplicate key',
      'apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: x}\n',
      /bad\.yaml: document 1 .*: Map keys must be unique/,
    ],
    [
      'a document without kind',
      'apiVersion: v1\nmetadata: {name: x}\n',
      /bad\.yaml: document 1 \(line 1, column 1\): the document: "kind" is required/,
    ],
    ['a document that is a list', '- a\n- b\n', /document 1 .*: the document is not a mapping/],
  ];
  for (const [what, text, message] of bad) {
    it(`names the file and document of ${what}`, async () => {
      const f = join(dir, 'bad.yaml');
      writeFileSync(f, text);
      await assert.rejects(
        loadManifests([f]),
        (e: Error) => e instanceof ManifestError && message.test(e.message),
      );
    });
  }

  it('says which path does not exist', async () => {
    await assert.rejects(
      loadManifests([join(dir, 'nope.yaml')]),
      /the path ".*nope\.yaml" does not exist/,
    );
  });
});

describe('cli: printing objects like kubectl', () => {
  const now = new Date('2026-11-22T12:00:00Z');
  const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();

  it('formats ages with kubectl’s rules', () => {
    const table: [number, string][] = [
      [0, '0s'],
      [119, '119s'],
      [150, '2m30s'],
      [600, '10m'],
      [3 * 3600 + 60, '3h1m'],
      [9 * 3600, '9h'],
      [50 * 3600, '2d2h'],
      [30 * 86400, '30d'],
      [3 * 365 * 86400 + 86400, '3y1d'],
    ];
    for (const [s, want] of table) assert.equal(formatAge(ago(s), now), want, `${s}s`);
    assert.equal(formatAge(undefined, now), '<unknown>');
  });

  it('aligns columns with three spaces and no trailing blanks', () => {
    assert.equal(
      renderTable(
        ['NAME', 'AGE'],
        [
          ['a-long-name', '5m'],
          ['b', ''],
        ],
      ),
      'NAME          AGE\na-long-name   5m\nb',
    );
  });

  it('prints pods with kubectl’s columns and statuses, and names', () => {
    const pods = [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'web-1', namespace: 'default', creationTimestamp: ago(300) },
        spec: { containers: [{ name: 'a' }, { name: 'b' }], nodeName: 'n1' },
        status: {
          phase: 'Running',
          podIP: '10.0.0.5',
          containerStatuses: [
            { ready: true, restartCount: 1 },
            { ready: false, restartCount: 2, state: { waiting: { reason: 'CrashLoopBackOff' } } },
          ],
        },
      },
    ] as ApiObject[];
    assert.equal(
      printObjects(pods, 'table', { now }),
      'NAME    READY   STATUS             RESTARTS   AGE\nweb-1   1/2     CrashLoopBackOff   3          5m',
    );
    assert.equal(
      printObjects(pods, 'wide', { now, allNamespaces: true }),
      'NAMESPACE   NAME    READY   STATUS             RESTARTS   AGE   IP         NODE\ndefault     web-1   1/2     CrashLoopBackOff   3          5m    10.0.0.5   n1',
    );
    assert.equal(printObjects(pods, 'name', { now }), 'pod/web-1');
    assert.equal(
      printObjects([{ ...pods[0], kind: 'Deployment', apiVersion: 'apps/v1' }], 'name', { now }),
      'deployment.apps/web-1',
    );
    assert.deepEqual(JSON.parse(printObjects([...pods, ...pods], 'json', { now })).kind, 'List');
  });

  it('refuses an unknown output format, naming the choices', () => {
    assert.throws(
      () => parseOutputFormat('xml'),
      /--output: unknown format "xml" \(expected one of: wide, yaml, json, name\)/,
    );
  });
});

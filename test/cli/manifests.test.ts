import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadManifests, ManifestDoc, ManifestError } from '../../src/cli/manifests';

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;

/** "name#document" per object, e.g. ["a#1", "b#3"]: what came out, and from which document. */
const names = (docs: ManifestDoc[]) =>
  docs.map((d) => {
    const o = d.object as { kind: string; metadata?: { name?: string } };
    return `${o.metadata?.name ?? o.kind}#${d.index}`;
  });

describe('cli: reading manifests (-f)', () => {
  let dir: string;
  /** Writes files (relative path → text) under a fresh directory and returns its path. */
  const tree = async (files: Record<string, string>): Promise<string> => {
    const root = await mkdtemp(join(dir, 'case-'));
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(join(root, rel, '..'), { recursive: true });
      await writeFile(join(root, rel), text);
    }
    return root;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'baton-manifests-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  describe('what is read', () => {
    it('reads every document of a file, numbering them and skipping empty ones', async () => {
      const root = await tree({
        'web.yaml': `${cm('a')}---\n---\n# only a comment\n---\n${cm('b')}---\nnull\n---\n${cm('c')}`,
      });
      const docs = await loadManifests([join(root, 'web.yaml')]);
      assert.deepEqual(names(docs), ['a#1', 'b#4', 'c#6']);
      assert.ok(docs.every((d) => d.source === join(root, 'web.yaml')));
    });

    it('reads a directory’s manifests by name, with subdirectories only when recursive', async () => {
      const root = await tree({
        'b.yaml': cm('b'),
        'a.json': JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'a' },
        }),
        'c.yml': cm('c'),
        'notes.txt': 'not a manifest',
        'UPPER.YAML': cm('upper'), // extensions are case-sensitive, as in kubectl
        'ab/x.yaml': cm('in-ab'), // sorts between a.json and b.yaml
        'ab/deeper/y.yaml': cm('deeper'),
      });
      assert.deepEqual(names(await loadManifests([root])), ['a#1', 'b#1', 'c#1']);
      const all = await loadManifests([root], { recursive: true });
      // Go's filepath.Walk order: "ab/deeper" sorts before "ab/x.yaml".
      assert.deepEqual(names(all), ['a#1', 'deeper#1', 'in-ab#1', 'b#1', 'c#1']);
      assert.deepEqual(
        all.map((d) => d.source),
        ['a.json', 'ab/deeper/y.yaml', 'ab/x.yaml', 'b.yaml', 'c.yml'].map((f) => join(root, f)),
      );
    });

    it('reads a file named explicitly whatever its extension, and -f arguments in order', async () => {
      const root = await tree({ 'z.yaml': cm('z'), 'manifest.txt': cm('txt') });
      assert.deepEqual(
        names(await loadManifests([join(root, 'z.yaml'), join(root, 'manifest.txt')])),
        ['z#1', 'txt#1'],
      );
    });

    it('reads a symbolic link to a file but does not follow one to a directory', async () => {
      const root = await tree({ 'real/a.yaml': cm('a'), 'top.yaml': cm('top') });
      await symlink(join(root, 'top.yaml'), join(root, 'real', 'link.yaml'));
      await symlink(root, join(root, 'real', 'loop'));
      assert.deepEqual(names(await loadManifests([join(root, 'real')], { recursive: true })), [
        'a#1',
        'top#1',
      ]);
    });

    it('reads standard input for "-", named "stdin"', async () => {
      const stdin = Readable.from([cm('one'), '---\n', cm('two')]);
      const docs = await loadManifests(['-'], { stdin });
      assert.deepEqual(names(docs), ['one#1', 'two#2']);
      assert.deepEqual(
        docs.map((d) => d.source),
        ['stdin', 'stdin'],
      );
    });

    it('flattens a List, its items keeping the List’s document number', async () => {
      const root = await tree({
        'list.yaml': `${cm('first')}---\napiVersion: v1\nkind: List\nitems:\n- ${cm('i0').trimEnd().replace(/\n/g, '\n  ')}\n- apiVersion: v1\n  kind: List\n  items:\n  - ${cm('nested').trimEnd().replace(/\n/g, '\n    ')}\n---\napiVersion: v1\nkind: List\nitems: []\n`,
      });
      assert.deepEqual(names(await loadManifests([join(root, 'list.yaml')])), [
        'first#1',
        'i0#2',
        'nested#2',
      ]);
    });

    it('reads JSON: a single object, or a List; a typed list’s items get its kind', async () => {
      const root = await tree({
        'one.json': JSON.stringify({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: 'ns' },
        }),
        'list.json': JSON.stringify(
          {
            apiVersion: 'v1',
            kind: 'List',
            items: [
              { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } },
              { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'y' } },
            ],
          },
          null,
          2,
        ),
        'pods.json': JSON.stringify({
          apiVersion: 'v1',
          kind: 'PodList',
          items: [{ metadata: { name: 'p' } }],
        }),
      });
      const docs = await loadManifests([root]);
      assert.deepEqual(names(docs), ['x#1', 'y#1', 'ns#1', 'p#1']);
      assert.deepEqual(docs[3].object, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } });
    });

    it('honours anchors and merge keys, as kubectl’s YAML reader does', async () => {
      const root = await tree({
        'm.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: &m\n  name: m\n  labels: {app: web}\ndata:\n  <<: {a: "1"}\n  b: "2"\n',
      });
      const [doc] = await loadManifests([join(root, 'm.yaml')]);
      assert.deepEqual(doc.object, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'm', labels: { app: 'web' } },
        data: { a: '1', b: '2' },
      });
    });

    it('gives nothing for an empty file or empty standard input', async () => {
      const root = await tree({ 'empty.yaml': '', 'blank.yaml': '\n# nothing\n---\n' });
      assert.deepEqual(await loadManifests([root]), []);
      assert.deepEqual(await loadManifests(['-'], { stdin: Readable.from([]) }), []);
    });
  });

  describe('what is refused, and how it is explained', () => {
    // Each case: the file's text, and the message after the file's path.
    const cases: [string, string, string][] = [
      [
        'a YAML syntax error (line and column from the parser)',
        `${cm('ok')}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n`,
        'document 2 (line 9, column 9): Nested mappings are not allowed in compact mappings',
      ],
      [
        'a tab used as indentation',
        'apiVersion: v1\n\tkind: Pod\n',
        'document 1 (line 2, column 1): Tabs are not allowed as indentation',
      ],
      [
        'a duplicate key',
        `${cm('ok')}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n`,
        'document 2 (line 10, column 3): Map keys must be unique',
      ],
      [
        'a document without kind',
        `${cm('ok')}---\n\napiVersion: v1\nmetadata: {name: x}\n`,
        'document 2 (line 7): missing "kind"',
      ],
      [
        'a document without either field',
        'metadata: {name: x}\n',
        'document 1 (line 1): missing "apiVersion" and "kind"',
      ],
      [
        'a kind that is not a string',
        'apiVersion: v1\nkind: [Pod]\n',
        'document 1 (line 2): "kind" must be a string, found a sequence',
      ],
      [
        'a document that is a sequence',
        '- a\n- b\n',
        'document 1 (line 1): expected a mapping with apiVersion and kind, found a sequence',
      ],
      [
        'a document that is a scalar',
        `${cm('ok')}---\njust some text\n`,
        'document 2 (line 6): expected a mapping with apiVersion and kind, found a string',
      ],
      [
        'a List item without kind (the line is the item’s)',
        'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n- apiVersion: v1\n  metadata: {name: t}\n',
        'document 1 (line 7): items[1]: missing "kind"',
      ],
      [
        'a List whose items are not a sequence',
        'apiVersion: v1\nkind: List\nitems: {a: 1}\n',
        'document 1 (line 3): "items" of a List must be a sequence, found a mapping',
      ],
      [
        'an alias bomb',
        `apiVersion: v1\nkind: ConfigMap\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [${'*a, '.repeat(10)}*a]\nc: &c [${'*b, '.repeat(10)}*b]\n`,
        'document 1 (line 1): Excessive alias count indicates a resource exhaustion attack',
      ],
    ];
    for (const [what, text, message] of cases) {
      it(`names the file and document of ${what}`, async () => {
        const root = await tree({ 'web.yaml': text });
        const file = join(root, 'web.yaml');
        await assert.rejects(loadManifests([file]), (e: unknown) => {
          assert.ok(e instanceof ManifestError);
          assert.equal(e.message, `${file}: ${message}`);
          return true;
        });
      });
    }

    it('reports a JSON syntax error with its line and column', async () => {
      const root = await tree({
        'bad.json': '{\n  "apiVersion": "v1",\n  "kind": "Pod"\n  "x": 1\n}\n',
      });
      await assert.rejects(loadManifests([join(root, 'bad.json')]), {
        name: 'ManifestError',
        message: `${join(root, 'bad.json')}: document 1 (line 4, column 3): Missing , between flow map items`,
      });
    });

    it('names standard input as "stdin"', async () => {
      await assert.rejects(loadManifests(['-'], { stdin: Readable.from(['kind: Pod\n']) }), {
        message: 'stdin: document 1 (line 1): missing "apiVersion"',
      });
    });

    it('says which path does not exist (main adds "error: ")', async () => {
      await assert.rejects(loadManifests(['x.yaml']), {
        name: 'ManifestError',
        message: 'the path "x.yaml" does not exist',
      });
      const missing = join(dir, 'nope', 'web.yaml');
      await assert.rejects(loadManifests([missing]), {
        message: `the path "${missing}" does not exist`,
      });
    });

    it('explains that URLs are not read', async () => {
      await assert.rejects(loadManifests(['https://example.com/web.yaml']), {
        name: 'ManifestError',
        message:
          'the path "https://example.com/web.yaml" is a URL; Baton reads manifests from files only: download it and pass the file',
      });
    });
  });
});

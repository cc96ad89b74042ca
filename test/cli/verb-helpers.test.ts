/** The pure parts of the newcomer's verbs: argument parsing, sorting, watch rows, completion, `up`'s plan. */
import { parse as parseYaml } from 'yaml';
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  mkdirSync,
  existsSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiObject } from '../../src/api/types';
import { candidates } from '../../src/cli/commands/completion';
import { containerName, dataFrom } from '../../src/cli/commands/create';
import { applyChange, parseChanges } from '../../src/cli/commands/metadata';
import { fieldValue, sortObjects } from '../../src/cli/commands/objects';
import { formatLogLine } from '../../src/cli/commands/up';
import { clientConfigFor, LocalCluster, writeClientConfig } from '../../src/cli/local-cluster';
import { buildProgram } from '../../src/cli/main';
import { WatchTable } from '../../src/cli/printers';
import { CliError } from '../../src/cli/output';

const pod = (name: string, extra: Record<string, unknown> = {}): ApiObject =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { containers: [{ name: 'c', image: 'i' }] },
    status: { phase: 'Running' },
    ...extra,
  }) as ApiObject;

describe('cli verb helpers', () => {
  describe('label and annotate arguments', () => {
    it('splits resources, settings and removals', () => {
      const r = parseChanges(['deploy', 'web', 'tier=front', 'old-', 'note='], 'label');
      assert.deepEqual(r.resources, ['deploy', 'web']);
      assert.deepEqual(r.change, { set: { tier: 'front', note: '' }, remove: ['old'] });
    });
    it('refuses no change, a bad key or value, and set-and-remove of one key', () => {
      assert.throws(() => parseChanges(['deploy', 'web'], 'label'), /at least one label update/);
      assert.throws(() => parseChanges(['pod', 'x', 'bad key=1'], 'label'), /invalid label key/);
      assert.throws(() => parseChanges(['pod', 'x', 'a=b c'], 'label'), /invalid label value/);
      assert.throws(
        () => parseChanges(['pod', 'x', 'a=1', 'a-'], 'label'),
        /both modify and remove/,
      );
      // Annotation values are free text.
      assert.deepEqual(parseChanges(['pod', 'x', 'a=b c'], 'annotation').change.set, { a: 'b c' });
    });
    it('changing a value needs --overwrite; the same value or a missing removal is no change', () => {
      const change = { set: { tier: 'back' }, remove: [] };
      assert.throws(() => applyChange({ tier: 'front' }, change, false), CliError);
      assert.deepEqual(applyChange({ tier: 'front' }, change, true), { tier: 'back' });
      assert.equal(applyChange({ tier: 'back' }, change, false), undefined);
      assert.equal(applyChange({}, { set: {}, remove: ['x'] }, false), undefined);
      assert.deepEqual(applyChange({ x: '1', y: '2' }, { set: {}, remove: ['x'] }, false), {
        y: '2',
      });
    });
  });

  describe('create generators', () => {
    it('names the container after the image as kubectl does', () => {
      assert.equal(containerName('nginx:1.27'), 'nginx');
      assert.equal(containerName('registry.local:5000/team/web-app@sha256:ab'), 'web-app');
      assert.equal(containerName('baton/busybox'), 'busybox');
    });
    it('reads literals, files and directories; a duplicate or bad key is an error', () => {
      const dir = mkdtempSync(join(tmpdir(), 'baton-from-'));
      try {
        writeFileSync(join(dir, 'a.conf'), 'A');
        mkdirSync(join(dir, 'sub'));
        writeFileSync(join(dir, 'sub', 'b.txt'), 'B');
        assert.deepEqual(dataFrom(['x=1=2'], [join(dir, 'a.conf'), `k=${join(dir, 'a.conf')}`]), {
          x: '1=2',
          'a.conf': 'A',
          k: 'A',
        });
        assert.deepEqual(dataFrom([], [join(dir, 'sub')]), { 'b.txt': 'B' });
        assert.throws(() => dataFrom(['a.conf=1'], [join(dir, 'a.conf')]), /already exists/);
        assert.throws(() => dataFrom(['no-equals'], []), /expected KEY=VALUE/);
        assert.throws(() => dataFrom(['a b=1'], []), /not a valid key/);
        assert.throws(() => dataFrom([], [join(dir, 'missing')]), /no such file/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('get --sort-by', () => {
    it('reads kubectl field paths, with or without braces, through arrays', () => {
      const o = { status: { containerStatuses: [{ restartCount: 3 }] } };
      assert.equal(fieldValue(o, '.status.containerStatuses[0].restartCount'), 3);
      assert.equal(fieldValue(o, '{.status.containerStatuses[0].restartCount}'), 3);
      assert.equal(fieldValue(o, '.status.nothing.here'), undefined);
      assert.throws(() => fieldValue(o, '.a[x]'), /not a field path/);
    });
    it('sorts numbers by value, text as text, objects without the field first', () => {
      const objs = [
        pod('b', { spec: { priority: 10 } }),
        pod('a', { spec: { priority: 9 } }),
        pod('c'),
      ];
      assert.deepEqual(
        sortObjects(objs, '.spec.priority').map((o) => o.metadata.name),
        ['c', 'a', 'b'],
      );
      assert.deepEqual(
        sortObjects(objs, '.metadata.name').map((o) => o.metadata.name),
        ['a', 'b', 'c'],
      );
    });
  });

  describe('get -w rows', () => {
    it('prints the header with the first row only, and keeps columns as wide as before', () => {
      const t = new WatchTable('Pod', false, { now: new Date('2026-01-01T00:05:00Z') });
      const first = t.row(pod('a-very-long-pod-name'));
      assert.match(first.split('\n')[0], /^NAME\s+READY\s+STATUS/);
      const second = t.row(pod('b'));
      assert.equal(second.split('\n').length, 1);
      assert.equal(second.indexOf('0/1'), first.split('\n')[1].indexOf('0/1'));
    });
    it('after a listing, rows come without a header', () => {
      const t = new WatchTable('Pod', false, { now: new Date() });
      assert.match(t.listed([pod('a')]), /^NAME/);
      assert.doesNotMatch(t.row(pod('b')), /NAME/);
    });
  });

  describe('completion', () => {
    it('completes commands, subcommands, flags, kinds and output formats from the real tree', async () => {
      const program = buildProgram();
      const c = (...w: string[]) => candidates(program, w);
      assert.ok((await c('')).includes('rollout'));
      assert.ok(!(await c('')).includes('__complete'));
      assert.deepEqual((await c('rollout', '')).sort(), [
        'history',
        'pause',
        'restart',
        'resume',
        'status',
        'undo',
      ]);
      assert.ok((await c('get', '')).includes('deployments'));
      assert.ok((await c('get', '-')).includes('--sort-by'));
      assert.ok((await c('get', '-')).includes('--namespace'));
      assert.deepEqual(await c('get', 'pods', '-o', ''), ['wide', 'yaml', 'json', 'name']);
      assert.ok((await c('create', '')).includes('deployment'));
    });
  });

  describe('baton up', () => {
    it('plans masters and nodes on distinct loopback ports, one rule owner per host', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'baton-plan-'));
      try {
        const s = await LocalCluster.plan(dir, {
          masters: 3,
          nodes: 2,
          runtime: 'exec',
          root: false,
        });
        assert.deepEqual(
          s.processes.map((p) => p.name),
          ['master-1', 'master-2', 'master-3', 'node-1', 'node-2'],
        );
        const addrs = s.processes.map((p) => p.address);
        assert.equal(new Set(addrs).size, 5);
        const node1 = s.processes[3].args;
        const node2 = s.processes[4].args;
        assert.ok(!node1.includes('--shared-host'));
        assert.ok(node2.includes('--shared-host'));
        assert.ok(node1.includes('--remove-pods-on-exit'));
        assert.equal(node1[node1.indexOf('--runtime') + 1], 'exec');
        const peers = s.processes[0].args[s.processes[0].args.indexOf('--peers') + 1];
        assert.equal(peers.split(',').length, 3);
        // Nothing recorded yet is running.
        assert.equal(new LocalCluster(dir).running(s.processes[0]), false);
        assert.equal(new LocalCluster(dir).running({ ...s.processes[0], pid: process.pid }), false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    it('writes the client config, keeping a foreign one as .bak', () => {
      const dir = mkdtempSync(join(tmpdir(), 'baton-cfg-'));
      try {
        const file = join(dir, 'config');
        writeFileSync(file, 'server: [10.0.0.1:7001]\n');
        assert.deepEqual(writeClientConfig(file, ['127.0.0.1:7001'], '/x'), { replaced: true });
        assert.equal(readFileSync(`${file}.bak`, 'utf8'), 'server: [10.0.0.1:7001]\n');
        assert.deepEqual(parseYaml(readFileSync(file, 'utf8')), { server: ['127.0.0.1:7001'] });
        assert.equal(statSync(file).mode & 0o777, 0o600);
        assert.ok(clientConfigFor(file, '/x'));
        assert.ok(!clientConfigFor(file, '/y'));
        // Its own config is replaced without a backup.
        assert.deepEqual(writeClientConfig(file, ['127.0.0.1:7002'], '/x'), { replaced: false });
        assert.ok(existsSync(`${file}.bak`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    it('shows pino lines as time, level, message and fields; other lines as they are', () => {
      const line = JSON.stringify({
        level: 40,
        time: Date.parse('2026-01-01T12:34:56Z'),
        pid: 1,
        hostname: 'h',
        msg: 'slow',
        node: 'node-1',
        n: 3,
      });
      assert.equal(formatLogLine(line), '12:34:56 WARN slow node=node-1 n=3');
      assert.equal(formatLogLine('baton node node-1 starting'), 'baton node node-1 starting');
    });
  });
});

/**
 * `create`, `edit`, `label`, `annotate`, `delete --wait` and completion of
 * names: the real `baton` binary against a real master (in this process).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Master } from '../../src/master/master';
import { runBaton, soloMaster } from '../support/cli';

describe('cli: create, edit, label, annotate, delete --wait', function () {
  this.timeout(60_000);
  let dir: string;
  let m: Master;
  let address: string;
  const baton = (args: string[], env: NodeJS.ProcessEnv = {}) => runBaton(address, args, env);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-edit-'));
    ({ master: m, address } = await soloMaster(dir));
  });
  after(async () => {
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('create: generators make what kubectl would; an existing object is an error', async () => {
    const r = await baton([
      'create',
      'deployment',
      'web',
      '--image',
      'nginx:1.27',
      '--replicas',
      '2',
      '--port',
      '80',
      '--',
      'nginx',
      '-g',
      'daemon off;',
    ]);
    assert.equal(r.stdout, 'deployment.apps/web created\n', r.stderr);
    const d = JSON.parse((await baton(['get', 'deploy', 'web', '-o', 'json'])).stdout) as {
      spec: {
        replicas: number;
        selector: unknown;
        template: { spec: { containers: { name: string; command: string[] }[] } };
      };
    };
    assert.equal(d.spec.replicas, 2);
    assert.deepEqual(d.spec.selector, { matchLabels: { app: 'web' } });
    assert.equal(d.spec.template.spec.containers[0].name, 'nginx');
    assert.deepEqual(d.spec.template.spec.containers[0].command, ['nginx', '-g', 'daemon off;']);
    const again = await baton(['create', 'deployment', 'web', '--image', 'x']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    assert.equal(
      (await baton(['create', 'configmap', 'cfg', '--from-literal', 'a=1'])).stdout,
      'configmap/cfg created\n',
    );
    const sec = await baton(['create', 'secret', 'generic', 's', '--from-literal', 'pw=hunter2']);
    assert.equal(sec.stdout, 'secret/s created\n');
    const svc = await baton(['create', 'service', 'nodeport', 'web', '--tcp', '80:8080']);
    assert.equal(svc.stdout, 'service/web created\n', svc.stderr);
    assert.match(
      (await baton(['get', 'svc', 'web'])).stdout,
      /NodePort\s+10\.\S+\s+<none>\s+80:3\d{4}\/TCP/,
    );
    // --dry-run=client prints the manifest and sends nothing.
    const dry = await baton(['create', 'ns', 'team-a', '--dry-run=client', '-o', 'yaml']);
    assert.equal(dry.stdout, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n');
    assert.equal((await baton(['get', 'ns', 'team-a'])).code, 1);
    const bad = await baton(['create', 'deployment', 'x', '--image', 'i', '--replicas', 'two']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: --replicas: expected a whole number, got "two"$/m);
  });

  it('label and annotate: set, refuse to overwrite without --overwrite, remove, by selector', async () => {
    assert.equal(
      (await baton(['label', 'deploy', 'web', 'tier=front'])).stdout,
      'deployment.apps/web labeled\n',
    );
    const refused = await baton(['label', 'deploy/web', 'tier=back']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /'tier' already has a value \(front\), and --overwrite is false/);
    assert.equal((await baton(['label', 'deploy/web', 'tier=back', '--overwrite'])).code, 0);
    assert.match((await baton(['get', 'deploy', '--show-labels'])).stdout, /app=web,tier=back/);
    assert.equal((await baton(['label', 'deploy', 'web', 'tier-'])).code, 0);
    assert.match((await baton(['get', 'deploy', '--show-labels'])).stdout, /\sapp=web$/m);
    const ann = await baton(['annotate', 'cm', '--all', 'owner=team a']);
    assert.equal(ann.stdout, 'configmap/cfg annotated\n', ann.stderr);
    const cm = JSON.parse((await baton(['get', 'cm', 'cfg', '-o', 'json'])).stdout) as {
      metadata: { annotations: Record<string, string> };
    };
    assert.equal(cm.metadata.annotations.owner, 'team a');
    const missing = await baton(['label', 'deploy', 'nope', 'a=b']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);
  });

  it('edit: the editor changes the object; a rejected edit reopens with the reason; no change cancels', async () => {
    const script = join(dir, 'editor.sh');
    writeFileSync(script, '#!/bin/sh\nsed -i "s/replicas: 2/replicas: 5/" "$1"\n');
    chmodSync(script, 0o755);
    const ok = await baton(['edit', 'deploy/web'], { EDITOR: script });
    assert.equal(ok.stdout, 'deployment.apps/web edited\n', ok.stderr);
    assert.match((await baton(['get', 'deploy', 'web', '-o', 'yaml'])).stdout, /replicas: 5/);

    const none = await baton(['edit', 'deploy', 'web'], { EDITOR: 'true' });
    assert.equal(none.stdout, 'Edit cancelled, no changes made.\n');

    // First pass writes an invalid value; the second sees the error at the top and gives up.
    const log = join(dir, 'seen.txt');
    const bad = join(dir, 'bad-editor.sh');
    writeFileSync(
      bad,
      `#!/bin/sh\nif [ -f ${log} ]; then cat "$1" >> ${log}; exit 0; fi\ntouch ${log}\nsed -i "s/replicas: 5/replicas: -1/" "$1"\n`,
    );
    chmodSync(bad, 0o755);
    const r = await baton(['edit', 'deploy', 'web'], { EDITOR: bad });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /edit not saved; the last attempt is kept in /);
    assert.match(readFileSync(log, 'utf8'), /^# .*spec\.replicas/m);
    assert.match((await baton(['get', 'deploy', 'web', '-o', 'yaml'])).stdout, /replicas: 5/);
  });

  it('delete waits until the objects are gone; names complete from the server', async () => {
    const names = await baton(['__complete', 'get', 'deploy', '']);
    assert.equal(names.stdout, 'web\n');
    const r = await baton(['delete', 'deploy', 'web', '--timeout', '20']);
    assert.equal(r.stdout, 'deployment.apps/web deleted\n', r.stderr);
    assert.equal((await baton(['get', 'deploy', 'web'])).code, 1);
    const nowait = await baton(['delete', 'cm', 'cfg', '--wait=false']);
    assert.equal(nowait.code, 0);
  });
});

/**
 * The daemons refuse to start, with an error naming the cause and exit
 * code 1, instead of hanging half-started.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATON_BIN } from '../support/master-cluster';
import { freePort } from '../support/raft-kv/processes';

function baton(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [BATON_BIN, ...args],
      { timeout: 20_000, env: { ...process.env, BATON_LOG_PRETTY: '0' } },
      (err, _out, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, stderr }),
    ),
  );
}

describe('daemons that cannot start say why and exit', function () {
  this.timeout(30_000);
  let dir: string;
  let busy: Server;
  let port: number;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-daemons-'));
    port = await freePort();
    busy = createServer();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
  });
  after(() => {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a master whose address is taken', async () => {
    const r = await baton([
      'master',
      '--id',
      '1',
      '--listen',
      `127.0.0.1:${port}`,
      '--data-dir',
      join(dir, 'm1'),
      '--insecure',
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`),
    );
  });

  it('a master reads its settings from --config FILE (not the CLI client config)', async () => {
    const file = join(dir, 'master.yaml');
    // The same taken address, from the file: the error proves the file was read.
    writeFileSync(
      file,
      `id: 1\nlisten: 127.0.0.1:${port}\ndataDir: ${join(dir, 'm2')}\ninsecure: true\n`,
    );
    const r = await baton(['master', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
  });

  it('a master given a cluster CIDR with host bits set', async () => {
    const r = await baton([
      'master',
      '--id',
      '1',
      '--listen',
      `127.0.0.1:${await freePort()}`,
      '--data-dir',
      join(dir, 'm2'),
      '--cluster-cidr',
      '10.244.1.0/16',
      '--insecure',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /setting "cluster-cidr": "10\.244\.1\.0\/16" has host bits set/);
  });

  it('a node whose API address is taken', async () => {
    const r = await baton([
      'node',
      '--name',
      'n1',
      '--masters',
      '127.0.0.1:1',
      '--runtime',
      'exec',
      '--data-dir',
      join(dir, 'n1'),
      '--listen',
      `127.0.0.1:${port}`,
      '--insecure',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.match(r.stderr, /in use/);
  });

  it('a node given the masters twice (--join is --masters, as in docker swarm join)', async () => {
    const args = ['node', '--name', 'n2', '--runtime', 'exec', '--data-dir', join(dir, 'n2')];
    const both = await baton([...args, '--join', '127.0.0.1:1', '--masters', '127.0.0.1:2']);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--join and --masters both name the masters: give one of them/);
    // --join alone is taken as the masters: this one gets as far as its busy API address.
    const joined = await baton([
      ...args,
      '--join',
      '127.0.0.1:1',
      '--listen',
      `127.0.0.1:${port}`,
      '--insecure',
    ]);
    assert.equal(joined.code, 1);
    assert.match(joined.stderr, /in use/);
  });
});

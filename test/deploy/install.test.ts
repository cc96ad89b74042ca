import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { masterConfigSchema } from '../../src/cli/commands/master';
import { nodeConfigSchema } from '../../src/cli/commands/node';

const REPO = join(__dirname, '..', '..', '..');
const INSTALL = join(REPO, 'deploy', 'install.sh');
/** The bootstrap settings of the secure bootstrap (init, join tokens), beside the schemas' own. */

function install(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', [INSTALL, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A release tarball shaped like scripts/pack-release.sh's, with a stand-in bin/baton.js. */
function fakeRelease(dir: string, version: string): string {
  const top = `baton-${version}-linux-${process.arch}`;
  const root = join(dir, 'stage', top);
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(
    join(root, 'bin', 'baton.js'),
    `#!/usr/bin/env node\nconsole.log('${version}');\n`,
    {
      mode: 0o755,
    },
  );
  cpSync(join(REPO, 'deploy'), join(root, 'deploy'), { recursive: true });
  const tarball = join(dir, `${top}.tar.gz`);
  execFileSync('tar', ['-C', join(dir, 'stage'), '-czf', tarball, top]);
  return tarball;
}

/** deploy/install.sh into a temporary root (--root): files, links, configs; no apt, users or systemctl. */
describe('deploy/install.sh', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-install-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('knows exactly the settings of baton master and baton node (plus init and token)', () => {
    const script = readFileSync(INSTALL, 'utf8');
    const keys = (name: string) =>
      /^\S+="(.*)"$/m
        .exec(script.split('\n').find((l) => l.startsWith(`${name}=`)) ?? '')![1]
        .trim()
        .split(/\s+/)
        .sort();
    assert.deepEqual(keys('master_keys'), Object.keys(masterConfigSchema.shape).sort());
    assert.deepEqual(keys('node_keys'), Object.keys(nodeConfigSchema.shape).sort());
  });

  it('installs a master: the release, the links, the unit and master.yaml from the flags', () => {
    const root = join(dir, 'm');
    const r = install([
      '--role',
      'master',
      '--root',
      root,
      '--tarball',
      fakeRelease(dir, '1.0.0'),
      '--id',
      '2',
      '--join',
      '10.0.0.1:7001',
      '--token',
      "it's secret",
      '--advertise',
      '10.0.0.2:7001',
      '--set',
      'logLevel=debug',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const top = `baton-1.0.0-linux-${process.arch}`;
    assert.equal(readlinkSync(join(root, 'opt/baton/current')), `releases/${top}`);
    assert.equal(
      readlinkSync(join(root, 'usr/local/bin/baton')),
      '/opt/baton/current/bin/baton.js',
    );
    assert.equal(
      readFileSync(join(root, 'etc/systemd/system/baton-master.service'), 'utf8'),
      readFileSync(join(REPO, 'deploy/systemd/baton-master.service'), 'utf8'),
    );
    const file = join(root, 'etc/baton/master.yaml');
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.deepEqual(parseYaml(readFileSync(file, 'utf8')), {
      id: '2',
      join: '10.0.0.1:7001',
      advertise: '10.0.0.2:7001',
      logLevel: 'debug',
      listen: '0.0.0.0:7001',
      dataDir: '/var/lib/baton/master',
      token: "it's secret",
    });
    // Every setting passes the master's own schema.
    const cfg = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.ok(masterConfigSchema.safeParse(cfg).success);
  });

  it('upgrades in place: a new release becomes current, the config is kept', () => {
    const root = join(dir, 'm');
    const before = readFileSync(join(root, 'etc/baton/master.yaml'), 'utf8');
    const r = install(['--role', 'master', '--root', root, '--tarball', fakeRelease(dir, '1.1.0')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kept .*master\.yaml/);
    assert.equal(readFileSync(join(root, 'etc/baton/master.yaml'), 'utf8'), before);
    assert.equal(
      readlinkSync(join(root, 'opt/baton/current')),
      `releases/baton-1.1.0-linux-${process.arch}`,
    );
  });

  it('installs a node: node.yaml (mode 0600) with the Docker runtime and proxy rules kept across restarts', () => {
    const root = join(dir, 'n');
    const r = install([
      '--role',
      'node',
      '--root',
      root,
      '--tarball',
      fakeRelease(dir, '1.0.0'),
      '--masters',
      '10.0.0.1:7001,10.0.0.2:7001',
      '--token',
      'abc',
      '--labels',
      'zone=a',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const file = join(root, 'etc/baton/node.yaml');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const cfg = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.equal(cfg.token, 'abc');
    delete cfg.token;
    const parsed = nodeConfigSchema.parse(cfg);
    assert.deepEqual(parsed.masters, ['10.0.0.1:7001', '10.0.0.2:7001']);
    assert.equal(parsed.runtime, 'docker');
    assert.equal(parsed.keepProxyRules, true);
    assert.equal(parsed.dataDir, '/var/lib/baton-node');
    assert.ok(
      readFileSync(join(root, 'etc/systemd/system/baton-node.service'), 'utf8').includes(
        'KillMode=process',
      ),
    );
  });

  it('refuses what cannot work, before changing anything, and says why', () => {
    const root = join(dir, 'x');
    const master1 = [
      '--role',
      'master',
      '--root',
      root,
      '--tarball',
      fakeRelease(dir, '1.0.0'),
      '--id',
      '1',
    ];
    const cases: [string[], RegExp][] = [
      [['--role', 'web'], /--role must be master or node/],
      [['--role', 'node', '--root', root], /--tarball is required/],
      [['--role', 'master', '--root', root, '--tarball', INSTALL], /not a gzipped tar file/],
      [
        [
          '--role',
          'node',
          '--root',
          root,
          '--tarball',
          fakeRelease(dir, '1.0.0'),
          '--masters',
          'a:1',
        ],
        /--token is required for a node/,
      ],
      [master1, /needs --init .* or --join/],
      [[...master1, '--init', '--join', 'a:1'], /exclude each other/],
      [[...master1, '--init', '--set', 'bogus=1'], /--set bogus: not a setting of baton master/],
    ];
    for (const [args, message] of cases) {
      const r = install(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.throws(() => statSync(root), /ENOENT/);
  });

  it('--dry-run prints the steps and hides the token', () => {
    const r = install([
      '--role',
      'node',
      '--dry-run',
      '--tarball',
      fakeRelease(dir, '1.0.0'),
      '--masters',
      '10.0.0.1:7001',
      '--token',
      'TOPSECRET',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\+ systemctl restart baton-node\.service/);
    assert.match(r.stdout, /token: '<redacted>'/);
    assert.doesNotMatch(r.stdout, /TOPSECRET/);
  });
});

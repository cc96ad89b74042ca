import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

const root = join(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'baton.js');

describe('baton executable', () => {
  it('prints its version', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    assert.equal(
      execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(),
      pkg.version,
    );
  });

  it('prints help', () => {
    const out = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.match(out, /Usage: baton/);
  });

  it('fails with a hint on an unknown command', () => {
    assert.throws(
      () =>
        execFileSync(process.execPath, [bin, 'frobnicate'], { encoding: 'utf8', stdio: 'pipe' }),
      (e: { status: number; stderr: string }) => e.status !== 0 && /baton --help/.test(e.stderr),
    );
  });
});

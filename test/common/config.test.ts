import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { bool, ConfigError, envName, list, loadConfig, num } from '../../src/common/config';

const schema = z.object({
  listen: z.string().default('127.0.0.1:7100'),
  electionTicks: num().pipe(z.number().int().min(2)).default(10),
  preVote: bool().default(true),
  peers: list().default([]),
});

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-config-'));
  const p = join(dir, 'baton.yaml');
  writeFileSync(p, text);
  return p;
}

describe('config: flags > env > file > defaults', () => {
  it('uses the defaults when nothing is given', () => {
    const { value, sources } = loadConfig(schema, { env: {} });
    assert.deepEqual(value, {
      listen: '127.0.0.1:7100',
      electionTicks: 10,
      preVote: true,
      peers: [],
    });
    assert.equal(sources.listen, 'default');
  });

  it('layers file, env and flags in that order of precedence', () => {
    const f = file('listen: 0.0.0.0:1\nelectionTicks: 20\npreVote: false\n');
    const { value, sources } = loadConfig(schema, {
      file: f,
      env: { BATON_ELECTION_TICKS: '30', BATON_PEERS: 'a:1, b:2' },
      flags: { electionTicks: '40', listen: undefined },
    });
    assert.deepEqual(value, {
      listen: '0.0.0.0:1',
      electionTicks: 40,
      preVote: false,
      peers: ['a:1', 'b:2'],
    });
    assert.deepEqual(sources, {
      listen: 'file',
      electionTicks: 'flag',
      preVote: 'file',
      peers: 'env',
    });
  });

  it('names the setting and the source of a bad value', () => {
    assert.throws(
      () => loadConfig(schema, { env: { BATON_ELECTION_TICKS: '1' } }),
      (e: Error) =>
        e instanceof ConfigError && /electionTicks.*BATON_ELECTION_TICKS/.test(e.message),
    );
    assert.throws(
      () => loadConfig(schema, { env: {}, flags: { preVote: 'maybe' } }),
      (e: Error) => e instanceof ConfigError && /preVote.*--pre-vote/.test(e.message),
    );
  });

  it('rejects unknown settings and non-mapping files', () => {
    assert.throws(
      () => loadConfig(schema, { env: {}, file: file('listn: x\n') }),
      /unknown setting "listn"/,
    );
    assert.throws(() => loadConfig(schema, { env: {}, file: file('- a\n') }), /expected a mapping/);
    assert.throws(
      () => loadConfig(schema, { env: {}, file: '/nonexistent/baton.yaml' }),
      /config file/,
    );
  });

  it('derives environment variable names from setting names', () => {
    assert.equal(envName('electionTicks'), 'BATON_ELECTION_TICKS');
    assert.equal(envName('listen'), 'BATON_LISTEN');
  });
});

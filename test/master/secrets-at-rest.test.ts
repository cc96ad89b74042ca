import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiObject } from '../../src/api/types';
import { BatonClient, ClientError } from '../../src/client/cluster-client';
import { Master, startMaster } from '../../src/master/master';
import { ClusterStore } from '../../src/master/store/cluster-store';
import { CommandCodec } from '../../src/master/store/command-codec';
import { Command } from '../../src/master/store/commands';
import {
  formatKeyFile,
  KeyRing,
  KeyRingError,
  loadOrCreateKeyRing,
  newKeyRing,
  parseKeyFile,
  secretsKeyPath,
} from '../../src/master/store/key-ring';
import { ApplyHaltError } from '../../src/raft/types';
import { MasterCluster } from '../support/master-cluster';
import { freePort } from '../support/raft-kv/processes';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const marker = (what: string) => `${what}${randomBytes(9).toString('hex')}`;

/**
 * The ways a value can show up in bytes at rest: as itself, and base64 of
 * it at each of the three alignments (inside a larger base64 string only
 * the middle of an encoding is stable, so the ends are trimmed).
 */
function forms(value: string): string[] {
  const out = [value];
  for (const pad of ['', 'x', 'xy']) {
    const enc = b64(pad + value);
    out.push(enc.slice(pad === '' ? 0 : 4, -4));
  }
  return out;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

/** Every file under `dir` that holds any form of `value`, with the form found. */
function findAtRest(dir: string, value: string): string[] {
  const found: string[] = [];
  for (const f of filesUnder(dir)) {
    const bytes = readFileSync(f);
    for (const form of forms(value))
      if (bytes.includes(Buffer.from(form))) found.push(`${f} (${JSON.stringify(form)})`);
  }
  return found;
}

const secret = (name: string, data: Record<string, string>, stringData?: Record<string, string>) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    data,
    ...(stringData ? { stringData } : {}),
  });
const configMap = (name: string, v: string) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v } });

describe('secrets at rest: the key ring', () => {
  it('seals with the primary key, naming it, and opens what it sealed', () => {
    const ring = newKeyRing('k1');
    const a = ring.seal(Buffer.from('hunter2'));
    assert.ok(a.subarray(0, 24).toString().startsWith('baton:enc:aesgcm:v1:k1:'));
    assert.ok(!a.includes('hunter2'));
    assert.equal(ring.open(a).toString(), 'hunter2');
    // A fresh nonce each time: equal plaintexts do not look equal at rest.
    assert.ok(!ring.seal(Buffer.from('hunter2')).equals(a));
  });

  it('refuses, naming the key, data sealed with a key it lacks or with another key of the same name', () => {
    const sealed = newKeyRing('k1').seal(Buffer.from('x'));
    assert.throws(
      () => newKeyRing('k2').open(sealed),
      (e: Error) =>
        e instanceof KeyRingError && /key "k1", which is not in the key ring.*"k2"/.test(e.message),
    );
    assert.throws(
      () => newKeyRing('k1').open(sealed),
      (e: Error) => e instanceof KeyRingError && /key "k1".*does not authenticate/.test(e.message),
    );
  });

  it('refuses tampered or truncated bytes', () => {
    const ring = newKeyRing('k1');
    const sealed = ring.seal(Buffer.from('some secret value'));
    for (const i of [23, 30, sealed.length - 20, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[i] ^= 1;
      assert.throws(() => ring.open(bad), KeyRingError, `byte ${i}`);
    }
    assert.throws(() => ring.open(sealed.subarray(0, 30)), /truncated/);
  });

  it('rotates: a new primary seals, the old key still opens what it sealed', () => {
    const old = newKeyRing('old');
    const before = old.seal(Buffer.from('v1'));
    const rotated = new KeyRing([newKeyRing('new').keys[0], old.keys[0]]);
    assert.equal(rotated.primary, 'new');
    assert.equal(rotated.open(before).toString(), 'v1');
    const after = rotated.seal(Buffer.from('v2'));
    assert.match(after.subarray(0, 30).toString('latin1'), /:new:/);
    assert.throws(() => old.open(after), /key "new", which is not in the key ring/);
  });

  it('creates a key file once, mode 0600, and reads rotations written into it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-keys-'));
    try {
      const path = secretsKeyPath(dir);
      assert.equal(path, join(dir, 'pki', 'secrets.key'));
      const a = loadOrCreateKeyRing(path);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const b = loadOrCreateKeyRing(path);
      assert.ok(a.keys[0].key.equals(b.keys[0].key));
      const sealed = a.seal(Buffer.from('kept'));
      writeFileSync(path, formatKeyFile(new KeyRing([newKeyRing('k2').keys[0], ...a.keys])));
      const c = loadOrCreateKeyRing(path);
      assert.equal(c.primary, 'k2');
      assert.equal(c.open(sealed).toString(), 'kept');
      assert.throws(
        () => parseKeyFile('keys:\n  - name: a\n    secret: c2hvcnQ=\n', 'f'),
        /f: keys\[0\] \("a"\): secret must be 32 bytes/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('secrets at rest: commands and snapshots', () => {
  const object = (kind: string, name: string, v: string): ApiObject => ({
    apiVersion: 'v1',
    kind,
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    data: { v: b64(v) },
  });

  it('seals every command that carries a Secret, at any depth, and only those', () => {
    const codec = new CommandCodec(newKeyRing('k1'));
    const m = marker('cmd');
    const secretCommands: Command[] = [
      { op: 'create', object: object('Secret', 's', m) },
      { op: 'update', object: object('Secret', 's', m), uid: 'uid-s' },
      {
        op: 'fenced',
        term: 3,
        command: {
          op: 'each',
          commands: [
            { op: 'create', object: object('ConfigMap', 'c', 'plain') },
            { op: 'batch', commands: [{ op: 'create', object: object('Secret', 's', m) }] },
          ],
        },
      },
    ];
    for (const c of secretCommands) {
      const bytes = codec.encode(c);
      for (const form of forms(m)) assert.ok(!bytes.includes(form), `${c.op}: ${form} in clear`);
      assert.deepEqual(codec.decode(bytes), c);
    }
    const plain = codec.encode({ op: 'create', object: object('ConfigMap', 'c', m) });
    assert.equal(plain[0], '{'.charCodeAt(0));
    // Entries written before encryption was turned on are still read.
    assert.deepEqual(
      codec.decode(Buffer.from(JSON.stringify(secretCommands[0]))),
      secretCommands[0],
    );
  });

  it('applies sealed entries, snapshots Secrets sealed, and restores them only with the key', async () => {
    const ring = newKeyRing('k1');
    const codec = new CommandCodec(ring);
    const s = new ClusterStore({ codec });
    const m = marker('snap');
    const c = marker('control');
    s.apply(codec.encode({ op: 'create', object: object('Secret', 's', m) }), 1);
    s.apply(codec.encode({ op: 'create', object: object('ConfigMap', 'c', c) }), 2);
    assert.equal(
      (s.get('Secret', 'default', 's')!.object.data as Record<string, string>).v,
      b64(m),
    );
    for (const snap of [Buffer.from(s.snapshot()), Buffer.from(await s.capture())]) {
      for (const form of forms(m)) assert.ok(!snap.includes(form), `${form} in a snapshot`);
      assert.ok(snap.includes(b64(c)), 'the ConfigMap is not sealed');
      const r = new ClusterStore({ codec: new CommandCodec(ring) });
      r.restore(snap);
      assert.equal(r.get('Secret', 'default', 's')!.json, s.get('Secret', 'default', 's')!.json);
      assert.equal(r.revision, 2);
      for (const other of [new CommandCodec(newKeyRing('k1')), new CommandCodec()]) {
        const x = new ClusterStore({ codec: other });
        assert.throws(() => x.restore(snap), ApplyHaltError);
        assert.equal(x.list({ kind: 'ConfigMap' }).length, 0);
      }
    }
    assert.throws(
      () =>
        new ClusterStore({ codec: new CommandCodec(newKeyRing('k9')) }).apply(
          codec.encode({ op: 'create', object: object('Secret', 's', m) }),
          1,
        ),
      (e: Error) => e instanceof ApplyHaltError && /key "k1"/.test(e.message),
    );
  });
});

describe('secrets at rest: a master with a data directory', function () {
  this.timeout(60_000);
  let dir: string;
  let keys: KeyRing;
  let m: Master | undefined;
  let client: BatonClient | undefined;
  let address: string;

  const start = async (secretKeys?: KeyRing) => {
    m = await startMaster({
      id: 1,
      listen: address,
      peers: { 1: address },
      dataDir: dir,
      bootstrap: true,
      secretKeys,
      raft: { snapshotEntries: 5, keepEntries: 2 },
    });
    client = new BatonClient([address]);
    while (!m.store.get('Namespace', undefined, 'default'))
      await new Promise((r) => setTimeout(r, 20));
  };
  const stop = async () => {
    client?.close();
    client = undefined;
    await m?.stop();
    m = undefined;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-secrets-'));
    address = `127.0.0.1:${await freePort()}`;
    keys = newKeyRing('test-key');
  });
  afterEach(stop);
  after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const inData = marker('indata');
  const inStringData = marker('instringdata');
  const updated = marker('updated');
  const control = marker('control');

  it('keeps a Secret out of the Raft log and the snapshots, and still serves it', async () => {
    await start(keys);
    await client!.create(secret('db', { password: b64(inData) }, { token: inStringData }));
    await client!.apply(secret('db', { password: b64(inData), other: b64(updated) }));
    await client!.create(configMap('control', control));
    // More writes than snapshotEntries, after the Secret's: snapshots hold it, entries too.
    for (let i = 0; i < 12; i++) await client!.create(configMap(`filler-${i}`, String(i)));
    await client!.apply(secret('db', { password: b64(inData), other: b64(updated), n: b64('3') }));
    const snaps = filesUnder(dir).filter((f) => f.endsWith('.snap') || /snap/.test(f));
    assert.ok(snaps.length > 0, `no snapshot file among ${filesUnder(dir).join(', ')}`);

    const got = JSON.parse((await client!.get('Secret', 'default', 'db')).objectJson) as {
      data: Record<string, string>;
    };
    assert.equal(got.data.password, b64(inData));
    assert.equal(got.data.other, b64(updated));
    assert.equal(got.data.n, b64('3'));

    await stop(); // the files whole: LevelDB's write-ahead log flushed and closed
    // The scan would find the Secret if it were there: it finds the ConfigMap.
    assert.notDeepEqual(findAtRest(dir, control), []);
    for (const v of [inData, inStringData, updated])
      assert.deepEqual(findAtRest(dir, v), [], `${v} at rest`);
  });

  it('reads the Secret back after a restart (snapshot restored, log replayed)', async () => {
    await start(keys);
    const got = JSON.parse((await client!.get('Secret', 'default', 'db')).objectJson) as {
      data: Record<string, string>;
    };
    // token came from create's stringData; apply keeps what it never applied.
    assert.deepEqual(got.data, {
      password: b64(inData),
      token: b64(inStringData),
      other: b64(updated),
      n: b64('3'),
    });
    await stop();
  });

  it('refuses to start with another key, or with none, naming the key', async () => {
    for (const other of [newKeyRing('test-key'), newKeyRing('other-key'), undefined])
      await assert.rejects(
        start(other),
        (e: Error) => e instanceof ApplyHaltError && /key "test-key"/.test(e.message),
      );
    // Nothing was left running or locked: the right key still opens it.
    await start(keys);
    assert.ok(m!.store.get('Secret', 'default', 'db'));
    await stop();
  });

  it('never echoes Secret data in an error message', async () => {
    await start(keys);
    const m1 = marker('bad');
    const bad = [
      secret('bad', { k: `${m1}!` }),
      secret('bad', { k: b64(m1), 'bad key/': b64(m1) }),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'bad' },
        data: { k: 1 },
        stringData: { k: m1 },
        extra: m1,
      }),
      `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bad"},"stringData":{"k":${m1}}}`,
      `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bad"},"stringData":{"k":"${m1}"} ${m1}}`,
    ];
    for (const json of bad)
      await assert.rejects(client!.create(json), (e: Error) => {
        assert.ok(e instanceof ClientError, String(e));
        for (const form of forms(m1)) assert.ok(!e.message.includes(form), e.message);
        return true;
      });
    await stop();
  });
});

describe('secrets at rest: `baton master` processes', function () {
  this.timeout(120_000);
  let c: MasterCluster | undefined;
  let client: BatonClient | undefined;
  after(async () => {
    client?.close();
    await c?.stop();
  });

  it('seal Secrets with their key file (made 0600 when absent), never log them, and refuse another key', async () => {
    // A plaintext (--insecure) test master seals only with a key file given
    // to it; a TLS master's default, <data-dir>/pki/secrets.key, is covered in test/ca/.
    const keyFile = join(
      tmpdir(),
      `baton-proc-key-${randomBytes(4).toString('hex')}`,
      'secrets.key',
    );
    c = await MasterCluster.start(
      1,
      ['--log-level', 'debug', '--snapshot-entries', '100', '--secrets-key-file', keyFile],
      '127.0.0.1',
      { keepTranscripts: true },
    );
    client = c.client();
    await c.leader();
    assert.ok(existsSync(keyFile));
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);

    const v1 = marker('procdata');
    const v2 = marker('procstring');
    const control = marker('proccontrol');
    await client.create(secret('api', { key: b64(v1) }, { token: v2 }));
    await client.apply(secret('api', { key: b64(v1), token: b64(v2) }));
    await client.create(configMap('control', control));
    for (let i = 0; i < 110; i++) await client.create(configMap(`filler-${i}`, String(i)));
    await client.apply(secret('api', { key: b64(v1), token: b64(v2), more: b64('1') }));
    await assert.rejects(client.create(secret('api', { key: `${v1}!` })));
    await c.terminate(1);

    assert.ok(
      filesUnder(join(c.dir, 'm1')).some((f) => /snap/.test(f)),
      'no snapshot was taken',
    );
    assert.notDeepEqual(findAtRest(c.dir, control), []);
    for (const v of [v1, v2]) assert.deepEqual(findAtRest(c.dir, v), [], `${v} at rest`);
    const transcript = c.transcripts.get(1) ?? '';
    assert.match(transcript, /"level":20/, 'no debug lines were logged');
    for (const v of [v1, v2])
      for (const form of forms(v)) assert.ok(!transcript.includes(form), `${form} logged`);

    // Restarted: the snapshot and the log after it are read back.
    await c.startMaster(1);
    await c.leader();
    client.close();
    client = c.client();
    const got = JSON.parse((await client.get('Secret', 'default', 'api')).objectJson) as {
      data: Record<string, string>;
    };
    assert.deepEqual(got.data, { key: b64(v1), token: b64(v2), more: b64('1') });
    await c.terminate(1);

    // Another key under the same name: it says so and exits, serving nothing.
    const ring = loadOrCreateKeyRing(keyFile);
    writeFileSync(keyFile, formatKeyFile(newKeyRing(ring.primary)));
    await assert.rejects(
      c.startMaster(1),
      (e: Error) =>
        /exited with 1/.test(e.message) &&
        new RegExp(`error: .*key "${ring.primary}".*does not authenticate`).test(e.message),
    );
  });

  it('share one key file among three masters; a master with another key stops instead of diverging', async () => {
    const shared = join(tmpdir(), `baton-shared-key-${randomBytes(4).toString('hex')}`);
    const c3 = await MasterCluster.start(3, ['--secrets-key-file', shared]);
    const cl = c3.client();
    try {
      await c3.leader();
      const v = marker('shared');
      await cl.create(secret('shared', { v: b64(v) }));
      for (const id of c3.ids()) {
        const one = c3.client([id]);
        try {
          const got = JSON.parse((await one.get('Secret', 'default', 'shared', true)).objectJson);
          assert.equal((got as { data: Record<string, string> }).data.v, b64(v), `master ${id}`);
        } finally {
          one.close();
        }
      }
      // A follower restarted with a key of its own cannot read the sealed
      // entry in its log: it exits, naming the key; the other two go on.
      const leader = await c3.leader();
      const odd = leader === 3 ? 2 : 3;
      await c3.terminate(odd);
      const other = `${shared}.other`;
      loadOrCreateKeyRing(other);
      await c3.startMaster(odd, undefined, ['--secrets-key-file', other]).catch(() => {});
      const p = c3.procs.get(odd);
      await cl.create(secret('later', { v: b64(v) }));
      if (p && p.exitCode === null) await new Promise((r) => p.once('exit', r));
      assert.equal(p?.exitCode ?? 1, 1);
      assert.match(
        c3.logs.get(odd) ?? '',
        /error: .*key "key-[0-9a-f]+", which is not in the key ring/,
      );
      assert.ok(JSON.parse((await cl.get('Secret', 'default', 'later')).objectJson));
    } finally {
      cl.close();
      await c3.stop();
      rmSync(shared, { force: true });
      rmSync(`${shared}.other`, { force: true });
    }
  });
});

import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { BatonClient, ClientError } from '../../src/client/cluster-client';
import { runBaton } from '../support/cli';
import { MasterCluster } from '../support/master-cluster';
import { freePort } from '../support/raft-kv/processes';
import { until } from '../support/until';

const EXIT_REMOVED = 3;

/** Creates ConfigMaps one after another until stopped, remembering what was acknowledged and what failed. */
class Writer {
  readonly acked: string[] = [];
  readonly failures: string[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly client: BatonClient) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const name = `w-${i}`;
      const object = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name },
        data: { i: `${i}` },
      };
      try {
        await this.client.create(
          JSON.stringify({ ...object, metadata: { name, namespace: 'default' } }),
        );
        this.acked.push(name);
      } catch (err) {
        // A create retried after a leader change may find its first try committed.
        if (err instanceof ClientError && err.code === grpc.status.ALREADY_EXISTS)
          this.acked.push(name);
        else this.failures.push(`${name}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Resolves once `n` more writes than now were acknowledged. */
  async progresses(n = 5): Promise<void> {
    const target = this.acked.length + n;
    await until(`${n} more acknowledged writes`, () => this.acked.length >= target);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

async function rejects(p: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof ClientError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

/** The rows of `baton cluster members`, by id. */
function parseMembers(stdout: string): Map<number, string[]> {
  const lines = stdout.trim().split('\n');
  const header = lines.findIndex((l) => /^ID\s+ADDRESS\s+ROLE\s+LEADER\s+HEALTHY\s+MATCH$/.test(l));
  assert.ok(header >= 0, stdout);
  return new Map(
    lines.slice(header + 1).map((l) => {
      const cols = l.trim().split(/\s+/);
      return [Number(cols[0]), cols];
    }),
  );
}

/**
 * Runtime membership with real `baton master` processes: a cluster grows
 * from three to four with --join, then loses a follower and its leader
 * through `baton cluster remove-member`, while a client keeps writing.
 */
describe('masters: runtime membership (join, remove-member, a removed master restarted)', function () {
  this.timeout(180_000);
  let c: MasterCluster;
  let writer: Writer;
  let writes: BatonClient;
  const alive = new Set([1, 2, 3, 4]);
  const servers = () => [...alive].map((id) => c.addresses[id]).join(',');
  const baton = (args: string[]) => runBaton(servers(), args);
  const status = async () => {
    const cl = c.client([...alive].filter((id) => c.procs.has(id)));
    try {
      return await cl.status();
    } finally {
      cl.close();
    }
  };

  before(async () => {
    c = await MasterCluster.start(3);
    // Known up front, so the writing client can fail over to it later.
    c.addresses[4] = `127.0.0.1:${await freePort()}`;
    await c.leader();
    writes = c.client([1, 2, 3, 4], 20_000);
    writer = new Writer(writes);
    await writer.progresses();
  });
  after(async () => {
    await writer?.stop();
    writes?.close();
    await c?.stop();
  });

  it('grows from three masters to four with --join while a client writes', async () => {
    await c.startMaster(4, c.addresses[1]);
    await until('master 4 to vote', async () =>
      (await status()).members.some((m) => Number(m.id) === 4 && m.voter),
    );
    await writer.progresses();
    await until('every master healthy', async () => {
      const s = await status();
      return s.members.length === 4 && s.members.every((m) => m.healthy);
    });
    const r = await baton(['cluster', 'members']);
    assert.equal(r.code, 0, r.stderr);
    const rows = parseMembers(r.stdout);
    assert.deepEqual([...rows.keys()], [1, 2, 3, 4], r.stdout);
    for (const [id, cols] of rows) {
      assert.equal(cols[1], c.addresses[id]);
      assert.equal(cols[2], 'voter', r.stdout);
      assert.equal(cols[4], 'yes', r.stdout);
      assert.match(cols[5], /^\d+$/);
    }
    assert.equal([...rows.values()].filter((cols) => cols[3] === 'yes').length, 1, r.stdout);
  });

  it('refuses removals that name no member or no valid id', async () => {
    await rejects(writes.removeMember(99), grpc.status.NOT_FOUND, /master 99 is not a member/);
    await rejects(writes.removeMember(0), grpc.status.INVALID_ARGUMENT, /positive integer/);
    let r = await baton(['cluster', 'remove-member', 'abc']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: master id must be a positive integer, not "abc"/);
    r = await baton(['cluster', 'remove-member', '99']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^Error from server: master 99 is not a member of the cluster \(members: 1, 2, 3, 4\)/,
    );
  });

  let follower = 0;
  it('removes a follower: it learns it and exits (code 3); writes go on', async () => {
    const leader = await c.leader();
    follower = [1, 2, 3, 4].find((id) => id !== leader && id !== 4)!;
    const r = await baton(['cluster', 'remove-member', String(follower)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^master ${follower} removed\n`));
    assert.ok(!parseMembers(r.stdout).has(follower), r.stdout);
    assert.equal(parseMembers(r.stdout).size, 3, r.stdout);
    assert.equal(await c.exited(follower), EXIT_REMOVED);
    assert.match(c.logs.get(follower) ?? '', /removed from the cluster/);
    alive.delete(follower);
    await writer.progresses();
    await rejects(
      writes.removeMember(follower),
      grpc.status.NOT_FOUND,
      new RegExp(`master ${follower} was already removed`),
    );
  });

  it('a removed master restarted with its old data stops again and disturbs nobody; its id cannot join again', async () => {
    await until('every remaining master healthy', async () =>
      (await status()).members.every((m) => m.healthy),
    );
    const before = await status();
    await c.startMaster(follower);
    assert.equal(await c.exited(follower), EXIT_REMOVED);
    assert.match(c.logs.get(follower) ?? '', /removed from the cluster/);
    await writer.progresses();
    const after = await status();
    assert.equal(after.leader, before.leader);
    assert.equal(after.term, before.term, 'the removed master caused no election');
    assert.ok(!after.members.some((m) => Number(m.id) === follower));

    // An empty data directory does not make the id new again.
    rmSync(join(c.dir, `m${follower}`), { recursive: true, force: true });
    await assert.rejects(
      c.startMaster(follower, c.addresses[4]),
      /was removed from the cluster and cannot join again under that id/,
    );
  });

  it('removes the leader: it hands leadership over, then leaves and exits; writes go on', async () => {
    const leader = await c.leader();
    const r = await baton(['cluster', 'remove-member', String(leader)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^master ${leader} removed\n`));
    const rows = parseMembers(r.stdout);
    assert.ok(!rows.has(leader), r.stdout);
    assert.equal(rows.size, 2, r.stdout);
    assert.equal(await c.exited(leader), EXIT_REMOVED);
    alive.delete(leader);
    const next = await c.leader();
    assert.notEqual(next, leader);
    await writer.progresses();
    const s = await status();
    assert.deepEqual(s.members.map((m) => Number(m.id)).sort(), [...alive].sort());
  });

  it('refuses to remove the only voter', async () => {
    const leader = await c.leader();
    const other = [...alive].find((id) => id !== leader)!;
    const r = await baton(['cluster', 'remove-member', String(other)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await c.exited(other), EXIT_REMOVED);
    alive.delete(other);
    await rejects(
      writes.removeMember(leader),
      grpc.status.FAILED_PRECONDITION,
      new RegExp(`master ${leader} is the only voter`),
    );
    await writer.progresses();
  });

  it('lost no acknowledged write and saw no failed one', async () => {
    await writer.stop();
    assert.deepEqual(writer.failures, []);
    const list = await writes.list({ kind: 'ConfigMap', namespace: 'default' });
    const names = new Set(
      list.itemsJson.map((j) => (JSON.parse(j) as { metadata: { name: string } }).metadata.name),
    );
    for (const name of writer.acked)
      assert.ok(names.has(name), `${name} was acknowledged but is gone`);
  });
});

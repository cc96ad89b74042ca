import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableStore } from '../../src/raft/durable-store';
import { decodeSnapshotData, encodeSnapshotData, RaftNodeOptions } from '../../src/raft/raft-node';
import { ConfChangeType, RaftError, StateType } from '../../src/raft/types';
import { freePort } from '../support/raft-kv/processes';
import { RaftMember, RaftMemberOptions, startRaftMember } from '../support/raft-member';
import { encodePut } from '../support/raft-kv/state-machine';

type Member = RaftMember;

const dirs: string[] = [];
const fast = {
  tickMs: 20,
  electionTicks: 6,
  requestTimeoutMs: 3000,
} satisfies Partial<RaftNodeOptions>;

/** A member with the fast timers, unless `opts` says otherwise. */
function startMember(
  id: number,
  peers: Record<number, string>,
  dir: string,
  opts: RaftMemberOptions = {},
): Promise<Member> {
  return startRaftMember(id, peers, dir, { ...fast, ...opts });
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `s` with its writes of entries replaced (a disk that stalls or fills up); the rest passes through. */
function withSave(s: DurableStore, save: DurableStore['save']): DurableStore {
  return {
    load: () => s.load(),
    save,
    saveSnapshot: (snap) => s.saveSnapshot(snap),
    compact: (i) => s.compact(i),
    close: () => s.close(),
  };
}

function leaderOf(members: Member[]): Member | undefined {
  return members.find((m) => m.node.isLeader());
}

async function startCluster(n: number, opts: Partial<RaftNodeOptions> = {}) {
  const base = mkdtempSync(join(tmpdir(), 'baton-raftnode-'));
  dirs.push(base);
  const peers: Record<number, string> = {};
  for (let id = 1; id <= n; id++) peers[id] = `127.0.0.1:${await freePort()}`;
  const bootstrap = Object.keys(peers).map(Number);
  const members = await Promise.all(
    bootstrap.map((id) => startMember(id, peers, join(base, `n${id}`), { bootstrap, ...opts })),
  );
  await until('a leader', () => leaderOf(members) !== undefined);
  return { base, peers, members };
}

const put = (m: Member, k: string, v: string) => m.node.propose(encodePut(k, Buffer.from(v)));

describe('raft: RaftNode over real gRPC and LevelDB', function () {
  this.timeout(60_000);
  const running: Member[] = [];

  afterEach(async () => {
    await Promise.all(running.splice(0).map((m) => m.stop().catch(() => {})));
  });

  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('replicates writes proposed on any member, forwarding from followers, and serves ReadIndex reads', async () => {
    const { members } = await startCluster(3);
    running.push(...members);
    const leader = leaderOf(members)!;
    const follower = members.find((m) => m !== leader)!;
    const r1 = await put(leader, 'a', '1');
    const r2 = await put(follower, 'b', '2');
    assert.ok(r2.index > r1.index);
    // A linearizable read through a follower sees both writes.
    const idx = await follower.node.readIndex();
    assert.ok(idx >= r2.index);
    assert.equal(follower.sm.data.get('a')?.toString(), '1');
    assert.equal(follower.sm.data.get('b')?.toString(), '2');
    await until('every member applied', () =>
      members.every((m) => m.node.status().applied >= r2.index),
    );
  });

  it('survives a restart of every member with nothing acknowledged lost', async () => {
    const { members, peers, base } = await startCluster(3);
    const leader = leaderOf(members)!;
    for (let i = 0; i < 20; i++) await put(leader, `k${i}`, `v${i}`);
    await Promise.all(members.map((m) => m.stop()));
    const again = await Promise.all(
      [1, 2, 3].map((id) => startMember(id, peers, join(base, `n${id}`))),
    );
    running.push(...again);
    await until('a leader after restart', () => leaderOf(again) !== undefined);
    const l = leaderOf(again)!;
    await l.node.readIndex();
    for (let i = 0; i < 20; i++) assert.equal(l.sm.data.get(`k${i}`)?.toString(), `v${i}`);
  });

  it('adds a learner that catches up by snapshot, promotes it, and moves leadership before removing the old leader', async () => {
    const { members, peers, base } = await startCluster(3, { snapshotEntries: 30, keepEntries: 5 });
    running.push(...members);
    let leader = leaderOf(members)!;
    for (let i = 0; i < 80; i++) await put(leader, `k${i}`, `v${i}`);
    // The log is compacted past index 1: a new member can only catch up by snapshot.
    peers[4] = `127.0.0.1:${await freePort()}`;
    const m4 = await startMember(4, { ...peers }, join(base, 'n4'), {
      snapshotEntries: 30,
      keepEntries: 5,
    });
    running.push(m4);
    // Learner first, promoted once caught up (by snapshot: the log is compacted).
    await leader.node.addMember(4, peers[4]);
    assert.equal(m4.sm.data.get('k79')?.toString(), 'v79');
    assert.deepEqual([...leader.node.status().confState.voters].sort(), [1, 2, 3, 4]);

    // Removing the leader itself directly is refused with a reason...
    await assert.rejects(
      leader.node.changeMembership([{ type: ConfChangeType.CONF_REMOVE_NODE, nodeId: leader.id }]),
      (e: Error) => e instanceof RaftError && /transfer leadership first/.test(e.message),
    );
    // ...and removeMember does it properly: hand leadership over, then leave.
    const old = leader;
    const cs = await old.node.removeMember(old.id);
    assert.deepEqual(
      [...cs.voters].sort(),
      [1, 2, 3, 4].filter((id) => id !== old.id),
    );
    const rest = [...members, m4].filter((m) => m !== old);
    await until('a leader among the rest', () => leaderOf(rest) !== undefined);
    leader = leaderOf(rest)!;
    await put(leader, 'after', 'removal');
  });

  it('steps a leader down when its disk stalls, and the others carry on', async () => {
    let stall = false;
    const stallable = (s: DurableStore) =>
      withSave(s, async (hs, ents, sync) => {
        while (stall) await new Promise((r) => setTimeout(r, 20));
        return s.save(hs, ents, sync);
      });
    const base = mkdtempSync(join(tmpdir(), 'baton-raftnode-'));
    dirs.push(base);
    const peers: Record<number, string> = {};
    for (let id = 1; id <= 3; id++) peers[id] = `127.0.0.1:${await freePort()}`;
    // Member 1 has the stallable disk and campaigns first.
    const m1 = await startMember(1, peers, join(base, 'n1'), {
      bootstrap: [1, 2, 3],
      wrapStore: stallable,
    });
    const rest = await Promise.all(
      [2, 3].map((id) => startMember(id, peers, join(base, `n${id}`), { bootstrap: [1, 2, 3] })),
    );
    const members = [m1, ...rest];
    running.push(...members);
    m1.node.campaign();
    await until('member 1 leads', () => m1.node.isLeader());
    await put(m1, 'before', 'stall');
    stall = true;
    const pending = put(m1, 'during', 'stall').catch((e: Error) => e);
    await until('member 1 stepped down', () => m1.node.status().state !== StateType.Leader, 5000);
    await until('another leader', () => rest.some((m) => m.node.isLeader()), 5000);
    await put(leaderOf(rest)!, 'after', 'stall');
    stall = false;
    await pending;
  });

  it('stops a member whose disk is full and tells its owner why, while the others carry on', async () => {
    // Every member's store can be filled; the test fills a follower's, so the writes that follow
    // have a leader that can still persist them.
    const full = new Set<number>();
    const fillable = (id: number) => (s: DurableStore) =>
      withSave(s, async (hs, ents, sync) => {
        if (full.has(id))
          throw Object.assign(new Error('IO error: 000003.log: No space left on device'), {
            code: 'LEVEL_IO_ERROR',
          });
        return s.save(hs, ents, sync);
      });
    const base = mkdtempSync(join(tmpdir(), 'baton-raftnode-'));
    dirs.push(base);
    const peers: Record<number, string> = {};
    for (let id = 1; id <= 3; id++) peers[id] = `127.0.0.1:${await freePort()}`;
    const members = await Promise.all(
      [1, 2, 3].map((id) =>
        startMember(id, peers, join(base, `n${id}`), {
          bootstrap: [1, 2, 3],
          wrapStore: fillable(id),
        }),
      ),
    );
    running.push(...members);
    await until('a leader', () => leaderOf(members) !== undefined);
    const leader = leaderOf(members)!;
    const victim = members.find((m) => m !== leader)!;
    const failed = new Promise<Error>((resolve) => victim.node.onFailure(resolve));
    full.add(victim.id);
    await put(leader, 'a', '1');
    const err = await failed;
    assert.match(err.message, /No space left on device/);
    await put(leaderOf(members)!, 'b', '2');
  });

  it('refuses to start on a corrupted snapshot file, saying which file', async () => {
    const { members, peers, base } = await startCluster(3, { snapshotEntries: 10 });
    const leader = leaderOf(members)!;
    for (let i = 0; i < 15; i++) await put(leader, `k${i}`, `v${i}`);
    await until('member 1 snapshotted', () =>
      readdirSync(join(base, 'n1', 'snap')).some(
        (f) => f.endsWith('.snap') && !f.startsWith('0000000000000001-0000000000000001'),
      ),
    );
    await Promise.all(members.map((m) => m.stop()));
    const snapDir = join(base, 'n1', 'snap');
    const newest = readdirSync(snapDir)
      .filter((f) => f.endsWith('.snap'))
      .sort()
      .pop()!;
    const bytes = readFileSync(join(snapDir, newest));
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(join(snapDir, newest), bytes);
    await assert.rejects(
      startMember(1, peers, join(base, 'n1')),
      (e: Error) => e instanceof RaftError && e.code === 'CORRUPT' && e.message.includes(newest),
    );
  });
});

describe('raft: snapshot data (address book, removed members, application bytes)', () => {
  it('round-trips removed ids, and reads snapshots written before they existed', () => {
    const app = Buffer.from('state');
    const peers = { 1: 'a:1', 2: 'b:2' };
    const withRemoved = decodeSnapshotData(encodeSnapshotData(peers, app, [4, 3]));
    assert.deepEqual(withRemoved.peers, peers);
    assert.deepEqual(withRemoved.removed, [3, 4]);
    assert.equal(Buffer.from(withRemoved.app).toString(), 'state');
    // The old layout: the address book alone (what encodeSnapshotData writes with no removals).
    const old = Buffer.concat([Buffer.alloc(4), Buffer.from(JSON.stringify(peers)), app]);
    old.writeUInt32BE(old.length - 4 - app.length, 0);
    const decoded = decodeSnapshotData(old);
    assert.deepEqual(decoded.peers, peers);
    assert.deepEqual(decoded.removed, []);
    assert.deepEqual(decodeSnapshotData(encodeSnapshotData(peers, app)), decoded);
  });
});

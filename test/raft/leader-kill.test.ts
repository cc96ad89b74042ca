import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftNodeOptions } from '../../src/raft/raft-node';
import { freePort } from '../support/raft-kv/processes';
import { RaftMember, startRaftMember } from '../support/raft-member';
import { encodePut } from '../support/raft-kv/state-machine';

/** The masters' settings: 50 ms ticks, a heartbeat every tick, elections after 20-40 ticks. */
const MASTER = {
  tickMs: 50,
  electionTicks: 20,
  requestTimeoutMs: 3000,
} satisfies Partial<RaftNodeOptions>;
/** More with LEADER_KILL_ROUNDS=n. */
const ROUNDS = Number(process.env.LEADER_KILL_ROUNDS ?? 5);

type Member = RaftMember;

function startMember(
  id: number,
  peers: Record<number, string>,
  dir: string,
  bootstrap?: number[],
): Promise<Member> {
  return startRaftMember(id, peers, dir, { ...MASTER, bootstrap });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('raft: the two survivors of a killed leader elect another, again and again', function () {
  this.timeout(ROUNDS * 30_000 + 30_000);
  const base = mkdtempSync(join(tmpdir(), 'baton-leaderkill-'));
  const members = new Map<number, Member>();
  after(async () => {
    await Promise.all([...members.values()].map((m) => m.kill().catch(() => {})));
    rmSync(base, { recursive: true, force: true });
  });

  it(`a new leader within a few election timeouts, writes going on through the followers (${ROUNDS} kills)`, async () => {
    const peers: Record<number, string> = {};
    for (const id of [1, 2, 3]) peers[id] = `127.0.0.1:${await freePort()}`;
    const ids = [1, 2, 3];
    await Promise.all(
      ids.map(async (id) =>
        members.set(id, await startMember(id, peers, join(base, `n${id}`), ids)),
      ),
    );
    const describe = () =>
      JSON.stringify(
        [...members.values()].map((m) => {
          const { id, term, leader, state, commit, applied, lastIndex } = m.node.status();
          return { id, term, leader, state, commit, applied, lastIndex };
        }),
      );
    /** The leader every member follows. */
    const agreed = async (ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const l = [...members.values()].find((m) => m.node.isLeader());
        if (l && [...members.values()].every((m) => m.node.leader() === l.id)) return l;
        await sleep(10);
      }
      return undefined;
    };
    let writes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const leader = await agreed(10_000);
      assert.ok(leader, `round ${round}: no leader all agree on: ${describe()}`);
      let writing = true;
      const writers = [...members.values()]
        .filter((m) => m !== leader)
        .map(async (m) => {
          while (writing)
            await m.node
              .propose(encodePut(`k${writes++}`, Buffer.from('v')))
              .catch(() => sleep(20));
        });
      await sleep(300 + Math.random() * 500);
      const killedAt = Date.now();
      members.delete(leader.id);
      await leader.kill();
      // Elections start 20-40 ticks (1-2 s) after the last heartbeat; a lost
      // round (the other survivor still in its lease, a split vote) costs
      // one more. Well within 6 s on an idle machine, 15 s on a loaded one.
      const next = await agreed(15_000);
      writing = false;
      await Promise.all(writers);
      assert.ok(
        next,
        `round ${round}: no leader ${Date.now() - killedAt} ms after killing ${leader.id}: ${describe()}`,
      );
      // The killed member comes back and catches up before the next round.
      members.set(leader.id, await startMember(leader.id, peers, join(base, `n${leader.id}`)));
      const target = next.node.status().commit;
      const back = members.get(leader.id)!;
      const deadline = Date.now() + 10_000;
      while (back.node.status().applied < target && Date.now() < deadline) await sleep(20);
    }
  });
});

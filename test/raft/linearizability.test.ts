import assert from 'node:assert/strict';
import { checkOperations } from '../support/linearizability/checker';
import { kvModel } from '../support/linearizability/kv-model';
import { kvHistory } from './sim/kv-history';

/**
 * Clients write and read a key-value state machine through random members
 * while the simulator drops, duplicates, delays and reorders messages,
 * partitions the network, crashes and restarts members and changes the
 * membership. Every history must be linearizable. Replay one seed with
 *   BATON_LIN_SEEDS=1 BATON_LIN_START=S npx mocha --no-config dist/test/raft/linearizability.test.js
 */
describe('raft: linearizability of a key-value store under simulated faults', function () {
  this.timeout(600_000);
  const seeds = Number(process.env.BATON_LIN_SEEDS ?? 500);
  const start = Number(process.env.BATON_LIN_START ?? 1);

  it(`every history of ${seeds} seeds is linearizable (ReadIndex reads, writes through any member)`, () => {
    const failures: string[] = [];
    let ops = 0;
    let reads = 0;
    let unknown = 0;
    for (let s = start; s < start + seeds; s++) {
      const { history, error } = kvHistory(s);
      if (error) failures.push(`seed ${s}: ${error}`);
      ops += history.length;
      reads += history.filter((o) => o.input.op === 'get').length;
      unknown += history.filter((o) => o.return === Infinity).length;
      const r = checkOperations(kvModel, history, { timeoutMs: 20_000 });
      if (r.verdict !== 'ok') failures.push(`seed ${s}: ${r.verdict}: ${r.explain}`);
    }
    assert.deepEqual(failures, [], failures.join('\n'));
    // The histories were substantial: reads, acknowledged and unknown writes.
    assert.ok(reads > seeds * 20, `only ${reads} reads`);
    assert.ok(
      ops - reads - unknown > seeds * 20,
      `only ${ops - reads - unknown} acknowledged writes`,
    );
    assert.ok(unknown > 0, 'no write of unknown outcome: faults did not bite');
  });

  it('catches the bug it exists for: reads served from a member’s local state are not linearizable', () => {
    // The same workload, but reads skip ReadIndex. Partitioned or lagging
    // members then answer with old values, and the checker must notice.
    let caught = 0;
    let example = '';
    for (let s = 1; s <= 100; s++) {
      const r = checkOperations(kvModel, kvHistory(s, { localReads: true }).history);
      if (r.verdict === 'illegal') {
        caught++;
        example ||= r.explain;
      }
    }
    assert.ok(caught >= 10, `only ${caught} of 100 seeds with local reads were flagged`);
    assert.match(example, /cannot place: .*get\(/);
  });
});

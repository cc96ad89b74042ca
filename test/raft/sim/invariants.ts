import { RaftLog } from '../../../src/raft/raft-log';
import { MemoryStorage } from '../../../src/raft/storage';
import { Entry } from '../../../src/raft/types';

export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

function fail(now: number, msg: string): never {
  throw new InvariantError(`t=${now}: ${msg}`);
}

function content(e: Entry): string {
  return `${e.type}:${Buffer.from(e.data).toString('latin1')}`;
}

function termOr(storage: MemoryStorage, i: number): number | undefined {
  try {
    return storage.term(i);
  } catch {
    return undefined;
  }
}

/**
 * The safety properties of Raft (Figure 3 of the paper), checked as the
 * simulation runs:
 * - Election safety: at most one leader per term.
 * - Log matching: entries with the same index and term have the same content
 *   and the same predecessor, hence identical logs up to there.
 * - Leader completeness: a new leader holds every committed entry.
 * - State-machine safety: no two nodes apply different entries at an index.
 * - Committed entries never change: no node overwrites an entry it committed.
 */
export class Invariants {
  private leaders = new Map<number, number>();
  /** index -> term of the entry committed there (as seen by any node). */
  private committed = new Map<number, number>();
  private maxCommitted = 0;
  /** "index/term" -> "prevTerm|content". */
  private seen = new Map<string, string>();
  private applied = new Map<number, string>();
  private nodeCommit = new Map<number, number>();
  checks = 0;

  onLeader(id: number, term: number, log: RaftLog, now: number): void {
    this.checks++;
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== id)
      fail(now, `election safety: ${prev} and ${id} both leaders of term ${term}`);
    this.leaders.set(term, id);
    const first = log.firstIndex();
    for (let i = first; i <= this.maxCommitted; i++) {
      const want = this.committed.get(i);
      if (want === undefined) continue;
      const have = log.zeroTermOnOutOfBounds(i);
      if (have !== want) {
        fail(
          now,
          `leader completeness: leader ${id} of term ${term} has term ${have} at committed index ${i} (committed term ${want})`,
        );
      }
    }
  }

  onAppend(id: number, entries: Entry[], storage: MemoryStorage, now: number): void {
    this.checks++;
    const durableCommit = storage.hardStateValue().commit;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const prevTerm = i > 0 ? entries[i - 1].term : termOr(storage, e.index - 1);
      const key = `${e.index}/${e.term}`;
      const val = `${prevTerm ?? '?'}|${content(e)}`;
      const old = this.seen.get(key);
      if (old === undefined) {
        this.seen.set(key, val);
      } else if (old !== val) {
        const [oldPrev, ...oldRest] = old.split('|');
        const [newPrev, ...newRest] = val.split('|');
        const prevDiffers = oldPrev !== '?' && newPrev !== '?' && oldPrev !== newPrev;
        if (prevDiffers || oldRest.join('|') !== newRest.join('|')) {
          fail(now, `log matching: node ${id} entry ${key} is "${val}", elsewhere "${old}"`);
        }
      }
      if (e.index <= durableCommit) {
        const stored = termOr(storage, e.index);
        if (stored !== undefined && stored !== e.term) {
          fail(
            now,
            `committed entry changed: node ${id} overwrites index ${e.index} (term ${stored} -> ${e.term}) below its commit ${durableCommit}`,
          );
        }
      }
    }
  }

  onCommit(id: number, commit: number, storage: MemoryStorage, now: number): void {
    this.checks++;
    const from = Math.max((this.nodeCommit.get(id) ?? 0) + 1, storage.firstIndex());
    for (let i = from; i <= commit; i++) {
      const t = termOr(storage, i);
      if (t === undefined) fail(now, `node ${id} committed ${commit} but has no entry ${i}`);
      const want = this.committed.get(i);
      if (want === undefined) this.committed.set(i, t);
      else if (want !== t)
        fail(
          now,
          `committed entries differ: node ${id} committed term ${t} at ${i}, others term ${want}`,
        );
    }
    this.nodeCommit.set(id, Math.max(this.nodeCommit.get(id) ?? 0, commit));
    this.maxCommitted = Math.max(this.maxCommitted, commit);
  }

  /** A restarted node may re-commit from its persisted state. */
  onRestart(id: number, commit: number): void {
    this.nodeCommit.set(id, commit);
  }

  onApply(id: number, e: Entry, now: number): void {
    this.checks++;
    const v = `${e.term}|${content(e)}`;
    const old = this.applied.get(e.index);
    if (old === undefined) this.applied.set(e.index, v);
    else if (old !== v)
      fail(
        now,
        `state-machine safety: node ${id} applied "${v}" at ${e.index}, another applied "${old}"`,
      );
  }
}

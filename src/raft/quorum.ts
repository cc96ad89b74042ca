/**
 * Quorum arithmetic over one or two voter sets. In a joint configuration
 * (Raft thesis §4.3) every decision needs a majority of the incoming AND the
 * outgoing set; with an empty outgoing set this is plain majority.
 */
export type VoteResult = 'pending' | 'lost' | 'won';

export class MajorityConfig {
  readonly ids: Set<number>;
  constructor(ids: Iterable<number> = []) {
    this.ids = new Set(ids);
  }

  get size(): number {
    return this.ids.size;
  }

  sorted(): number[] {
    return [...this.ids].sort((a, b) => a - b);
  }

  /**
   * The largest index acknowledged by a majority. An empty config commits
   * everything (so that a joint config with one empty half behaves as the other).
   */
  committedIndex(acked: (id: number) => number | undefined): number {
    const n = this.ids.size;
    if (n === 0) return Number.MAX_SAFE_INTEGER;
    const idxs: number[] = [];
    for (const id of this.ids) idxs.push(acked(id) ?? 0);
    idxs.sort((a, b) => a - b);
    // With n voters, the entry at position n - (n/2 + 1) in ascending order is
    // held by a majority.
    return idxs[n - (Math.floor(n / 2) + 1)];
  }

  voteResult(votes: ReadonlyMap<number, boolean>): VoteResult {
    if (this.ids.size === 0) return 'won';
    let yes = 0;
    let missing = 0;
    for (const id of this.ids) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) yes++;
    }
    const q = Math.floor(this.ids.size / 2) + 1;
    if (yes >= q) return 'won';
    if (yes + missing >= q) return 'pending';
    return 'lost';
  }
}

export class JointConfig {
  constructor(
    readonly incoming: MajorityConfig,
    readonly outgoing: MajorityConfig,
  ) {}

  ids(): Set<number> {
    return new Set([...this.incoming.ids, ...this.outgoing.ids]);
  }

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  committedIndex(acked: (id: number) => number | undefined): number {
    return Math.min(this.incoming.committedIndex(acked), this.outgoing.committedIndex(acked));
  }

  voteResult(votes: ReadonlyMap<number, boolean>): VoteResult {
    const a = this.incoming.voteResult(votes);
    const b = this.outgoing.voteResult(votes);
    if (a === b) return a;
    if (a === 'lost' || b === 'lost') return 'lost';
    return 'pending';
  }
}

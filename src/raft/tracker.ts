import { Inflights } from './inflights';
import { Progress } from './progress';
import { JointConfig, MajorityConfig, VoteResult } from './quorum';
import { ConfState } from './types';

/**
 * The membership of the group. `learnersNext` holds voters of the outgoing
 * config that are being demoted to learners: they stay voters until the joint
 * config is left, then become learners (a node is never both a voter and a
 * learner in the same half).
 */
export interface TrackerConfig {
  voters: JointConfig;
  learners: Set<number>;
  learnersNext: Set<number>;
  autoLeave: boolean;
}

export function cloneConfig(c: TrackerConfig): TrackerConfig {
  return {
    voters: new JointConfig(
      new MajorityConfig(c.voters.incoming.ids),
      new MajorityConfig(c.voters.outgoing.ids),
    ),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export function emptyTrackerConfig(): TrackerConfig {
  return {
    voters: new JointConfig(new MajorityConfig(), new MajorityConfig()),
    learners: new Set(),
    learnersNext: new Set(),
    autoLeave: false,
  };
}

export function configToConfState(c: TrackerConfig): ConfState {
  const sorted = (s: Iterable<number>) => [...s].sort((a, b) => a - b);
  return {
    voters: c.voters.incoming.sorted(),
    votersOutgoing: c.voters.outgoing.sorted(),
    learners: sorted(c.learners),
    learnersNext: sorted(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export type ProgressMap = Map<number, Progress>;

/** Tracks the configuration and, on the leader, every peer's replication progress and votes. */
export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress: ProgressMap = new Map();
  votes = new Map<number, boolean>();

  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number,
  ) {}

  newInflights(): Inflights {
    return new Inflights(this.maxInflight, this.maxInflightBytes);
  }

  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  committed(): number {
    return this.config.voters.committedIndex((id) => this.progress.get(id)?.match);
  }

  /** Every voter and learner, in id order (deterministic iteration). */
  ids(): number[] {
    return [...this.progress.keys()].sort((a, b) => a - b);
  }

  visit(fn: (id: number, pr: Progress) => void): void {
    for (const id of this.ids()) fn(id, this.progress.get(id)!);
  }

  isVoter(id: number): boolean {
    return this.config.voters.incoming.ids.has(id) || this.config.voters.outgoing.ids.has(id);
  }

  /** Whether the voters heard from recently form a quorum (check-quorum, §6.2). */
  quorumActive(): boolean {
    const votes = new Map<number, boolean>();
    this.visit((id, pr) => {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    });
    return this.config.voters.voteResult(votes) === 'won';
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  recordVote(id: number, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}

import { Progress } from './progress';
import { MajorityConfig, JointConfig } from './quorum';
import { cloneConfig, ProgressMap, ProgressTracker, TrackerConfig } from './tracker';
import {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  ConfState,
  RaftError,
} from './types';

/**
 * Computes new configurations from membership changes, without mutating the
 * tracker it reads (the caller swaps the result in). Two ways to change:
 *
 * - `simple`: at most one voter added or removed. Any two majorities of
 *   configurations that differ by one voter intersect (thesis §4.1), so the
 *   change can take effect at once without risking two leaders.
 * - `enterJoint` / `leaveJoint`: arbitrary changes through a joint
 *   configuration C_old,new in which every decision needs both majorities
 *   (thesis §4.3), so no decision can be made by C_old or C_new alone.
 */
export class Changer {
  constructor(
    private readonly tracker: ProgressTracker,
    private readonly lastIndex: number,
  ) {}

  enterJoint(
    autoLeave: boolean,
    changes: ConfChangeSingle[],
  ): { config: TrackerConfig; progress: ProgressMap } {
    const { config, progress } = this.checkAndCopy();
    if (config.voters.isJoint()) throw invalid('config is already joint');
    if (config.voters.incoming.size === 0) throw invalid("can't make a zero-voter config joint");
    config.voters = new JointConfig(
      new MajorityConfig(config.voters.incoming.ids),
      new MajorityConfig(config.voters.incoming.ids),
    );
    this.apply(config, progress, changes);
    config.autoLeave = autoLeave;
    checkInvariants(config, progress);
    return { config, progress };
  }

  leaveJoint(): { config: TrackerConfig; progress: ProgressMap } {
    const { config, progress } = this.checkAndCopy();
    if (!config.voters.isJoint()) throw invalid("can't leave a non-joint config");
    for (const id of config.learnersNext) {
      config.learners.add(id);
      progress.get(id)!.isLearner = true;
    }
    config.learnersNext = new Set();
    for (const id of config.voters.outgoing.ids) {
      if (!config.voters.incoming.ids.has(id) && !config.learners.has(id)) progress.delete(id);
    }
    config.voters = new JointConfig(config.voters.incoming, new MajorityConfig());
    config.autoLeave = false;
    checkInvariants(config, progress);
    return { config, progress };
  }

  simple(changes: ConfChangeSingle[]): { config: TrackerConfig; progress: ProgressMap } {
    const { config, progress } = this.checkAndCopy();
    if (config.voters.isJoint())
      throw invalid("can't apply a simple config change in a joint config");
    const before = new Set(config.voters.incoming.ids);
    this.apply(config, progress, changes);
    let diff = 0;
    for (const id of before) if (!config.voters.incoming.ids.has(id)) diff++;
    for (const id of config.voters.incoming.ids) if (!before.has(id)) diff++;
    if (diff > 1) throw invalid('more than one voter changed without entering a joint config');
    checkInvariants(config, progress);
    return { config, progress };
  }

  private apply(config: TrackerConfig, progress: ProgressMap, changes: ConfChangeSingle[]): void {
    for (const cc of changes) {
      if (cc.nodeId === 0) continue; // a no-op change, as etcd allows
      switch (cc.type) {
        case ConfChangeType.CONF_ADD_NODE:
          this.makeVoter(config, progress, cc.nodeId);
          break;
        case ConfChangeType.CONF_ADD_LEARNER:
          this.makeLearner(config, progress, cc.nodeId);
          break;
        case ConfChangeType.CONF_REMOVE_NODE:
          this.remove(config, progress, cc.nodeId);
          break;
        default:
          throw invalid(`unknown conf change type ${cc.type}`);
      }
    }
    if (config.voters.incoming.size === 0) throw invalid('removed all voters');
  }

  private makeVoter(config: TrackerConfig, progress: ProgressMap, id: number): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, false);
      return;
    }
    pr.isLearner = false;
    config.learners.delete(id);
    config.learnersNext.delete(id);
    config.voters.incoming.ids.add(id);
  }

  private makeLearner(config: TrackerConfig, progress: ProgressMap, id: number): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, true);
      return;
    }
    if (pr.isLearner) return;
    // Drop it as a voter of the incoming config (keeping its progress), then
    // either make it a learner now, or — if it still votes in the outgoing
    // config — once the joint config is left.
    this.remove(config, progress, id);
    progress.set(id, pr);
    if (config.voters.outgoing.ids.has(id)) {
      config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      config.learners.add(id);
    }
  }

  private remove(config: TrackerConfig, progress: ProgressMap, id: number): void {
    if (!progress.has(id)) return;
    config.voters.incoming.ids.delete(id);
    config.learners.delete(id);
    config.learnersNext.delete(id);
    // An outgoing voter keeps its progress until the joint config is left.
    if (!config.voters.outgoing.ids.has(id)) progress.delete(id);
  }

  private initProgress(
    config: TrackerConfig,
    progress: ProgressMap,
    id: number,
    isLearner: boolean,
  ): void {
    if (isLearner) config.learners.add(id);
    else config.voters.incoming.ids.add(id);
    const pr = new Progress(Math.max(this.lastIndex, 1), this.tracker.newInflights(), isLearner);
    // A new member counts as active so that check-quorum does not depose the
    // leader before the newcomer had a chance to answer.
    pr.recentActive = true;
    progress.set(id, pr);
  }

  private checkAndCopy(): { config: TrackerConfig; progress: ProgressMap } {
    const config = cloneConfig(this.tracker.config);
    const progress: ProgressMap = new Map();
    for (const [id, pr] of this.tracker.progress) {
      // Progress objects are copied shallowly except for isLearner, which
      // the changes may flip; inflights are shared state of the leader.
      const c = Object.assign(Object.create(Object.getPrototypeOf(pr)) as Progress, pr);
      progress.set(id, c);
    }
    checkInvariants(config, progress);
    return { config, progress };
  }
}

function invalid(msg: string): RaftError {
  return new RaftError('INVALID_CONFIG', msg);
}

function checkInvariants(config: TrackerConfig, progress: ProgressMap): void {
  const all = [...config.voters.ids(), ...config.learners, ...config.learnersNext];
  for (const id of all) if (!progress.has(id)) throw invalid(`no progress for ${id}`);
  for (const id of config.learnersNext) {
    if (!config.voters.outgoing.ids.has(id))
      throw invalid(`${id} is in learnersNext but not an outgoing voter`);
    if (progress.get(id)!.isLearner)
      throw invalid(`${id} is in learnersNext but already marked learner`);
  }
  for (const id of config.learners) {
    if (config.voters.outgoing.ids.has(id))
      throw invalid(`${id} is both a learner and an outgoing voter`);
    if (config.voters.incoming.ids.has(id)) throw invalid(`${id} is both a learner and a voter`);
    if (!progress.get(id)!.isLearner) throw invalid(`${id} is a learner but not marked as such`);
  }
  if (!config.voters.isJoint()) {
    if (config.learnersNext.size > 0) throw invalid('learnersNext outside a joint config');
    if (config.autoLeave) throw invalid('autoLeave outside a joint config');
  }
}

/** Whether a ConfChange enters a joint config, and if so whether the leader leaves it by itself. */
export function enterJoint(cc: ConfChange): { autoLeave: boolean; ok: boolean } {
  if (cc.transition !== ConfChangeTransition.TRANSITION_AUTO || cc.changes.length > 1) {
    switch (cc.transition) {
      case ConfChangeTransition.TRANSITION_AUTO:
      case ConfChangeTransition.TRANSITION_JOINT_IMPLICIT:
        return { autoLeave: true, ok: true };
      case ConfChangeTransition.TRANSITION_JOINT_EXPLICIT:
        return { autoLeave: false, ok: true };
      default:
        throw invalid(`unknown transition ${cc.transition}`);
    }
  }
  return { autoLeave: false, ok: false };
}

/** An empty ConfChange: the instruction to leave a joint config. */
export function leaveJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0 && cc.transition === ConfChangeTransition.TRANSITION_AUTO;
}

/** Rebuilds a tracker's configuration from a snapshot's ConfState. */
export function restoreConfig(tracker: ProgressTracker, cs: ConfState, lastIndex: number): void {
  const config: TrackerConfig = {
    voters: new JointConfig(new MajorityConfig(cs.voters), new MajorityConfig(cs.votersOutgoing)),
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
  const progress: ProgressMap = new Map();
  for (const id of [...config.voters.ids(), ...config.learners, ...config.learnersNext]) {
    const pr = new Progress(
      Math.max(lastIndex, 1),
      tracker.newInflights(),
      config.learners.has(id),
    );
    pr.recentActive = true;
    progress.set(id, pr);
  }
  checkInvariants(config, progress);
  tracker.config = config;
  tracker.progress = progress;
}

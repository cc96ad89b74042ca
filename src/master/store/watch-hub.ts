import { ApiObject } from '../../api/types';
import { matches, Query } from './object-index';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  type: ChangeType;
  revision: number;
  object: ApiObject;
  json: string;
}

export class TooOldError extends Error {
  constructor(
    readonly requested: number,
    readonly oldest: number,
  ) {
    super(
      `revision ${requested} is too old: this master keeps changes after revision ${oldest}; list again and watch from the list's revision`,
    );
    this.name = 'TooOldError';
  }
}

export interface Subscription {
  query: Query;
  deliver(changes: Change[]): void;
}

/**
 * The recent history of changes, for watches that start from a revision,
 * and the live subscribers. History is bounded: a watch from before the
 * oldest kept change gets TooOldError ("relist"), as with Kubernetes' 410.
 */
export class WatchHub {
  private history: Change[] = [];
  private start = 0; // index in `history` of the oldest kept change
  /** Changes at or before this revision are no longer kept. */
  private compactedThrough = 0;
  private readonly subs = new Set<Subscription>();

  constructor(private readonly capacity = 100_000) {}

  /** Forgets everything (after restoring a snapshot taken at `revision`). */
  reset(revision: number): void {
    this.history = [];
    this.start = 0;
    this.compactedThrough = revision;
  }

  oldest(): number {
    return this.compactedThrough;
  }

  publish(changes: Change[]): void {
    if (changes.length === 0) return;
    for (const c of changes) this.history.push(c);
    const kept = this.history.length - this.start;
    if (kept > this.capacity) {
      // Drop whole revisions only, so a resumed watch never sees half of one.
      let i = this.start + (kept - this.capacity);
      while (i < this.history.length && this.history[i].revision === this.history[i - 1].revision)
        i++;
      this.compactedThrough = this.history[i - 1].revision;
      this.start = i;
      if (this.start > this.capacity) {
        this.history = this.history.slice(this.start);
        this.start = 0;
      }
    }
    for (const s of this.subs) {
      const mine = changes.filter((c) => matches(c.object, s.query));
      if (mine.length > 0) s.deliver(mine);
    }
  }

  /** Kept changes after `revision` matching the query; TooOldError when some are gone. */
  since(revision: number, query: Query): Change[] {
    if (revision < this.compactedThrough) throw new TooOldError(revision, this.compactedThrough);
    const out: Change[] = [];
    // Binary search for the first change after `revision`.
    let lo = this.start;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid].revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.history.length; i++) {
      const c = this.history[i];
      if (matches(c.object, query)) out.push(c);
    }
    return out;
  }

  subscribe(s: Subscription): () => void {
    this.subs.add(s);
    return () => this.subs.delete(s);
  }

  get subscribers(): number {
    return this.subs.size;
  }
}

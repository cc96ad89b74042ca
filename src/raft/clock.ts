/**
 * Time as the driver sees it. Production uses the monotonic clock of the
 * process; tests may pass their own. Durations are milliseconds.
 */
export interface Clock {
  /** Monotonic milliseconds (never goes backwards, unrelated to wall time). */
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
  setInterval(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
};

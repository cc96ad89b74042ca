/**
 * Runs a task one at a time: asked while it runs, it runs once more after,
 * however many times it was asked meanwhile (a level trigger, as a
 * controller's work queue). Errors go to `onError`; the next ask runs again.
 */
export class Coalescer {
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly onError: (err: unknown) => void | Promise<void>,
  ) {}

  /** Asks for a run. */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.task();
        } catch (err) {
          await this.onError(err);
        }
      } while (this.again);
    })().finally(() => (this.running = undefined));
  }

  /** Resolves when no run is in progress or pending. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }
}

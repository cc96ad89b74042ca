'use strict';
// The spec reporter plus one closing line that CI reads:
// "N passed, N failed, N skipped" alone on the last line.
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

class TotalsReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || { passes: 0, failures: 0, pending: 0 };
      // Print after the spec reporter's own epilogue.
      process.nextTick(() => {
        process.stdout.write(`${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
      });
    });
  }
}

module.exports = TotalsReporter;

#!/usr/bin/env node
'use strict';
require('../dist/src/cli/main.js')
  .main(process.argv)
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`baton: ${err && err.message ? err.message : String(err)}\n`);
      // A daemon that failed half way may still hold timers or sockets: do not linger.
      process.exit(1);
    },
  );

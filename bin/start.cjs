'use strict';
// Loaded by launch.cjs once the Node version is known to be new enough.
module.exports = function start(command) {
  import('../dist/cli/entry.js').then(
    (m) => m.run(command),
    (e) => {
      process.stderr.write(`${command}: cannot load ${require('node:path').join(__dirname, '..', 'dist', 'cli', 'entry.js')} (run npm run build): ${e.message}\n`);
      process.exitCode = 1;
    },
  );
};

'use strict';
// The installed commands start here. Written for any Node (no modern syntax, no
// ESM), so an old Node prints which version is needed instead of a stack trace;
// only then is the ES-module CLI loaded. Keep REQUIRED in step with "engines".
var REQUIRED = [22, 19];

module.exports = function launch(command) {
  var v = process.versions.node.split('.').map(Number);
  if (v[0] < REQUIRED[0] || (v[0] === REQUIRED[0] && v[1] < REQUIRED[1])) {
    process.stderr.write(
      command + ': needs Node.js >= ' + REQUIRED.join('.') + ' (this is ' + process.version + '); ' +
        'install a current Node from https://nodejs.org (or `nvm install 24`), or see .ci/run for getting Node 24 from npm\n'
    );
    process.exitCode = 2;
    return;
  }
  require('./start.cjs')(command);
};

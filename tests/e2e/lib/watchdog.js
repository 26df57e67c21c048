'use strict';
// A test file that hangs (a server that never answers, a socket never closed) must not hold
// ctest until its timeout: after ms, say which file it was, stop its servers with stop()
// and exit 1.
module.exports = function watchdog(name, ms, stop) {
  const t = setTimeout(() => {
    console.error(`${name}: watchdog fired`);
    Promise.resolve().then(stop).finally(() => process.exit(1));
  }, ms);
  t.unref();
  return t;
};

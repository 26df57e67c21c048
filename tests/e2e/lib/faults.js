'use strict';
// Helpers of the fault-injection tests (faults_*.test.js): a plugin directory holding the
// real plugins beside the deliberately faulty ones of tests/faults, a small tmpfs to fill
// (root only: mounting needs it, and CI runs as root), and a subscriber that holds its lane full.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const sf = require('./streamfenced');

const FAULT_PLUGIN_DIR = path.join(process.env.SF_BUILD_DIR || path.join(__dirname, '..', '..', '..', 'build'), 'tests', 'faultplugins');

// A temp directory with symlinks to every plugin of the build and to the fault plugins.
function pluginDirWithFaults() {
  const dir = sf.tmpdir('sf-faultplugins-');
  for (const src of [sf.PLUGIN_DIR, FAULT_PLUGIN_DIR]) {
    if (!fs.existsSync(src)) throw new Error(`plugin directory ${src} is missing: build first`);
    for (const f of fs.readdirSync(src)) if (f.endsWith('.so')) fs.symlinkSync(path.resolve(src, f), path.join(dir, f));
  }
  for (const want of ['storage_faulty.so', 'validator_hang.so'])
    if (!fs.existsSync(path.join(dir, want))) throw new Error(`${want} was not built (tests/faults)`);
  return dir;
}

// Mounting needs root. Not root is a failure with the reason, never a silent pass.
function requireRoot() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0)
    throw new Error('this test mounts a small tmpfs to fill it and must run as root (CI does); run it with sudo');
}

// A tmpfs of `size` (e.g. "1m") at a fresh directory; remount(size) resizes it, unmount() at the end.
function mountTmpfs(size) {
  requireRoot();
  const dir = sf.tmpdir('sf-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  return {
    dir,
    remount(newSize) { execFileSync('mount', ['-o', `remount,size=${newSize}`, dir]); },
    unmount() {
      try { execFileSync('umount', ['-l', dir]); } catch (_) { /* already gone */ }
      try { fs.rmdirSync(dir); } catch (_) { /* busy: left in tmp */ }
    },
  };
}

// A subscriber of an AT_LEAST_ONCE topic (maxInFlight 1, a long ackTimeoutMs) that does not
// ack until startAcking(): its lane holds exactly maxQueuedMessagesPerClient and everything
// after goes to the overflow policy, whatever the kernel's socket buffers would take.
async function holdingSubscriber(srv, nsPath, topic = 't') {
  const c = await sf.connect(srv, nsPath);
  const got = [];
  const unacked = [];
  let acking = false;
  const ack = (id) => c.emit('ack', { topic, messageId: id });
  c.on(topic, (p, meta) => {
    got.push(p.i);
    if (acking) ack(meta.messageId); else unacked.push(meta.messageId);
  });
  const r = await sf.call(c, 'subscribe', { topic });
  if (!r || r.ok !== true) throw new Error(`subscribe: ${JSON.stringify(r)}`);
  return { client: c, got, startAcking() { acking = true; unacked.splice(0).forEach(ack); } };
}

// Waits until `got` stops growing for `quietMs`.
async function waitQuiet(got, timeoutMs = 60000, quietMs = 1000) {
  let last = -1;
  await sf.waitUntil(async () => { const n = got.length; const quiet = n === last; last = n; await sf.sleep(quietMs); return quiet; }, timeoutMs);
}

// Publishes payloads {i, pad} for i in [from, to] through the control API, `batch` per request.
async function publishRange(srv, nsPath, topic, from, to, padBytes = 2000, batch = 100) {
  for (let k = from; k <= to; k += batch) {
    const msgs = [];
    for (let i = k; i <= Math.min(to, k + batch - 1); i++) msgs.push({ namespace: nsPath, topic, payload: { i, pad: 'p'.repeat(padBytes) } });
    const r = await srv.publish(msgs);
    if (r.status !== 200) throw new Error(`publish ${k}..: HTTP ${r.status} ${r.body}`);
  }
}

module.exports = { FAULT_PLUGIN_DIR, pluginDirWithFaults, requireRoot, mountTmpfs, holdingSubscriber, waitQuiet, publishRange };

'use strict';
// The reconnect-storm tool (bench/storm.cpp, bench/storm.sh) against the real binary: a small
// storm must come out whole (every client recovered, no gap, no duplicate), and the tool must
// tell a storm that does not recover (sessions expired before the reconnect: fresh sessions)
// and a server without recovery (no pid) from one that does.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawn } = require('node:child_process');
const sf = require('./lib/streamfenced');

const STORM = path.join(process.env.SF_BUILD_DIR || '../build', 'bench', 'storm');
const feed = () => [sf.ns('/feed', ['t'], { overflowAction: 'DROP_OLDEST', maxQueuedMessagesPerClient: 1024 })];

function storm(srv, args) {
  return new Promise((resolve) => {
    const p = spawn(STORM, ['--port', String(srv.port), '--control', String(srv.controlPort), '--server-pid', String(srv.proc.pid),
      '--timeout', '20', '--tail', '0.5', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT')) || '';
      const r = {};
      for (const kv of line.split(' ').slice(1)) { const i = kv.indexOf('='); r[kv.slice(0, i)] = kv.slice(i + 1); }
      resolve({ code, r, err });
    });
  });
}

test('200 clients cut at once all recover: same sid, every missed message once, in order', async () => {
  const srv = await sf.start({ ioThreads: 2, connectionStateRecovery: { maxDisconnectionDurationMs: 60000 }, namespaces: feed() });
  try {
    const { code, r, err } = await storm(srv, ['--conns', '200', '--rate', '50']);
    assert.strictEqual(code, 0, err);
    assert.strictEqual(r.ok, '1', err);
    assert.strictEqual(r.recovered, '200', err);
    assert.strictEqual(r.fresh, '0', err);
    for (const k of ['gaps', 'dups', 'tail_missing', 'lost', 'rejected', 'pub_errors']) assert.strictEqual(r[k], '0', `${k}: ${err}`);
    assert.strictEqual(r.no_first, '0', 'every client got a message it missed');
    assert.ok(Number(r.all_caught_ms) >= Number(r.all_recovered_ms), err);
    // The server's own count agrees with the tool's.
    assert.strictEqual(sf.metricValue(await srv.metrics(), 'streamfence_sessions_recovered_total', { namespace: '/feed' }), 200);
  } finally { await srv.stop(); }
});

test('sessions that expired before the reconnect are counted fresh, not recovered', async () => {
  // The clients stay away 500 ms; their sessions expire after 1 ms.
  const srv = await sf.start({ connectionStateRecovery: { maxDisconnectionDurationMs: 1 }, namespaces: feed() });
  try {
    const { code, r, err } = await storm(srv, ['--conns', '20', '--rate', '50', '--away-ms', '500', '--timeout', '5']);
    assert.strictEqual(code, 0, err);
    assert.strictEqual(r.recovered, '0', err);
    assert.strictEqual(r.fresh, '20', err);
  } finally { await srv.stop(); }
});

test('a server without recovery is refused up front (its CONNECT answer has no pid)', async () => {
  const srv = await sf.start({ namespaces: feed() });
  try {
    const { code, err } = await storm(srv, ['--conns', '5']);
    assert.notStrictEqual(code, 0);
    assert.match(err, /no pid/);
  } finally { await srv.stop(); }
});

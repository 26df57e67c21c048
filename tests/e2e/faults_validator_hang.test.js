'use strict';
// Fault injection: a token validator that hangs (tests/faults/hang_validator.cpp: a token
// starting with "hang" sleeps 20 s). It runs on worker threads with a deadline
// (authTimeoutMs, delivery/validator_calls.hpp): while more calls hang than the pool starts
// threads, other clients keep being served (an unauthenticated namespace, other clients
// authenticating), the hanging ones are refused AUTH_REJECTED "Token validation timed out"
// at the deadline, counted and logged, and the server still stops promptly.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');
const { pluginDirWithFaults } = require('./lib/faults');

test.after(async () => { await sf.stopAll(); });

test('hanging validator: others served meanwhile, the hung auth times out, counted and logged', async () => {
  const TIMEOUT = 1500;
  const srv = await sf.start({
    auth: 'TOKEN', tokenValidator: 'hang', authTimeoutMs: TIMEOUT,
    authRateLimit: { windowMs: 60000, maxFailures: 1000 },
    namespaces: [sf.ns('/open', ['t']), sf.ns('/secure', ['t'], { authRequired: true })],
  }, { pluginDir: pluginDirWithFaults(), plugins: { hang: { hangMs: 20000 } } });

  // More hanging connects than the pool's 2 starting threads.
  const t0 = Date.now();
  const hung = [];
  for (let k = 0; k < 6; k++) {
    hung.push(sf.connect(srv, '/secure', { auth: { token: `hang-${k}` } }).then(
      (s) => { s.close(); return { ok: true, ms: Date.now() - t0 }; },
      (e) => ({ ok: false, ms: Date.now() - t0, message: e.message })));
  }
  await sf.sleep(200);

  // Meanwhile: a namespace without auth, and clients with good tokens, are served at once.
  const start = Date.now();
  const open = await sf.connect(srv, '/open');
  const got = [];
  open.on('t', (p) => got.push(p));
  assert.deepStrictEqual(await sf.call(open, 'subscribe', { topic: 't' }), { ok: true });
  assert.strictEqual((await srv.publish({ namespace: '/open', topic: 't', payload: { n: 1 } })).status, 200);
  await sf.waitUntil(() => got.length === 1, 1000, 'the open namespace was not served while a validator hangs');
  const goods = await Promise.all([1, 2, 3].map((k) => sf.connect(srv, '/secure', { auth: { token: `good-${k}` } })));
  for (const g of goods) assert.deepStrictEqual(await sf.call(g, 'subscribe', { topic: 't' }), { ok: true });
  const servedMs = Date.now() - start;
  assert.ok(servedMs < TIMEOUT, `other clients waited ${servedMs} ms behind the hanging validator`);

  // The hung ones are refused at the deadline, with the reason.
  const results = await Promise.all(hung);
  for (const r of results) {
    assert.strictEqual(r.ok, false, 'a hung validation must not let the client in');
    assert.match(r.message, /AUTH_REJECTED: Token validation timed out/);
    assert.ok(r.ms >= TIMEOUT - 100 && r.ms < TIMEOUT + 3000, `refused after ${r.ms} ms (deadline ${TIMEOUT})`);
  }
  // A payload token that hangs on subscribe: refused in the ack the same way.
  const ack = await sf.call(goods[0], 'subscribe', { topic: 't', token: 'hang-sub' }, 8000);
  assert.strictEqual(ack.ok, false);
  assert.strictEqual(ack.code, 'AUTH_REJECTED');
  assert.match(ack.message, /timed out/);

  const m = await srv.metrics();
  assert.ok(sf.metricValue(m, 'streamfence_auth_rejected_total', { namespace: '/secure' }) >= 7, 'timeouts are counted');
  assert.match(srv.logs, /event=auth_validate_timeout .*count=7/);
  for (const g of goods) g.close();
  open.close();

  // Threads still stuck in the plugin do not hold up the stop.
  const stopStart = Date.now();
  const ex = await srv.stop();
  assert.strictEqual(ex.sig, null, `stopped by ${ex.sig}: SIGTERM did not end it`);
  assert.strictEqual(ex.code, 0);
  assert.ok(Date.now() - stopStart < 4500, `stop took ${Date.now() - stopStart} ms`);
});

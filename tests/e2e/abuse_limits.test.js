'use strict';
// Abuse limits (conf/README.md): a slowloris request is closed at handshakeTimeoutMs
// whatever trickles in; a client earning errors past maxClientErrorsPerMinute is
// disconnected, logged and counted; idle keep-alive connections to the control listener do
// not keep a publish on a fresh connection waiting. Raw sockets against the real binary.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

require('./lib/watchdog')('abuse_limits', 120000, sf.stopAll);

test.after(async () => { await sf.stopAll(); });

const rawSocket = require('./lib/raw_socket');

test('slowloris: a request trickling one byte per 200 ms is closed at handshakeTimeoutMs', async () => {
  const srv = await sf.start({ handshakeTimeoutMs: 1500, namespaces: [sf.ns('/feed', ['prices'])] });
  const req = 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n' + 'X-Slow: ' + 'a'.repeat(200);
  const socks = await Promise.all([0, 1, 2].map(() => rawSocket(srv.port)));
  const t0 = Date.now();
  let i = 0;
  const drip = setInterval(() => {
    for (const s of socks) if (!s.closedAt) s.write(req[i % req.length]);
    i++;
  }, 200);
  try {
    await sf.waitUntil(() => socks.every((s) => s.closedAt), 6000, 'slowloris sockets still open after 6 s');
  } finally {
    clearInterval(drip);
  }
  for (const s of socks) {
    const after = s.closedAt - t0;
    assert.ok(after >= 1300 && after <= 3000, `closed after ${after} ms (deadline 1500 ms)`);
    assert.strictEqual(s.received, '', 'an unfinished request gets no answer');
  }
  await sf.waitUntil(() => /event=http_request_timeout .*count=3/.test(srv.logs), 2000, () => `no timeout log:\n${srv.logs}`);

  // A stock client (polling first, then the websocket upgrade) still connects and works.
  for (const transports of [['polling', 'websocket'], ['websocket']]) {
    const c = await sf.connect(srv, '/feed', { transports });
    assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'prices' }), { ok: true });
    c.close();
  }
  // A complete request sent in one go is answered, however long the connection then idles.
  const ok = await rawSocket(srv.port);
  ok.write('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await sf.sleep(2200);
  assert.match(ok.received, /^HTTP\/1\.1 200/);
  assert.strictEqual(ok.closedAt, 0, 'a keep-alive connection between requests is not cut by the request deadline');
  ok.destroy();
});

test('a client flooding unknown-topic subscribes is disconnected past maxClientErrorsPerMinute', async () => {
  const srv = await sf.start({ maxClientErrorsPerMinute: 50, namespaces: [sf.ns('/feed', ['prices'])] });
  const good = await sf.connect(srv, '/feed');
  const goodRec = sf.recorder(good);
  assert.deepStrictEqual(await sf.call(good, 'subscribe', { topic: 'prices' }), { ok: true });
  // A few errors under the cap cost nothing.
  for (let i = 0; i < 5; i++) await sf.call(good, 'subscribe', { topic: `nope${i}` });

  const bad = await sf.connect(srv, '/feed');
  const badRec = sf.recorder(bad);
  const gone = sf.once(bad, 'disconnect', 10000);
  for (let i = 0; i < 2000; i++) bad.emit('subscribe', { topic: `unknown-${i}` });
  const [reason] = await gone;
  assert.strictEqual(reason, 'io server disconnect');
  const errors = badRec.count('error');
  assert.ok(errors >= 50 && errors <= 51, `${errors} error answers before the disconnect (cap 50)`);
  await sf.waitUntil(() => /event=client_error_limit namespace=\/feed .*limitPerMinute=50 count=1/.test(srv.logs), 2000,
    () => `no client_error_limit log:\n${srv.logs}`);
  const m = await srv.metrics();
  assert.strictEqual(sf.metricValue(m, 'streamfence_client_error_limit_disconnects_total', { namespace: '/feed' }), 1);

  // The well-behaved client is still connected and still served.
  assert.ok(good.connected);
  assert.strictEqual((await srv.publish({ namespace: '/feed', topic: 'prices', payload: 7 })).status, 200);
  await sf.waitUntil(() => goodRec.count('prices') === 1, 3000, 'the good client did not get the publish');
  good.close();
});

test('200 idle keep-alive connections do not keep a publish on a fresh connection waiting', async () => {
  const srv = await sf.start({ namespaces: [sf.ns('/feed', ['prices'])] });
  const idle = [];
  for (let i = 0; i < 200; i++) idle.push(await rawSocket(srv.controlPort));
  // Half ask once and then idle on the kept-alive connection; half never send a byte.
  for (const s of idle.slice(0, 100)) s.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await sf.sleep(300);
  const times = [];
  for (let round = 0; round < 3; round++) {
    const body = JSON.stringify({ namespace: '/feed', topic: 'prices', payload: round });
    const s = await rawSocket(srv.controlPort);
    const t0 = Date.now();
    s.write(`POST /v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await sf.waitUntil(() => /^HTTP\/1\.1 \d+/.test(s.received), 5000, 'publish unanswered after 5 s');
    times.push(Date.now() - t0);
    assert.match(s.received, /^HTTP\/1\.1 200/);
    s.destroy();
  }
  assert.ok(Math.max(...times) <= 500, `publish answered after ${times.join(', ')} ms with 200 idle connections open`);
  for (const s of idle) s.destroy();
});

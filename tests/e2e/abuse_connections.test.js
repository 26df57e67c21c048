'use strict';
// Accept-time limits (conf/README.md "limits"): global and per-address connection caps, the
// per-address connection rate, the bounded address table, and the deadline that closes a
// connection which never completes its first request (silent, or a TLS handshake that
// trickles). Raw sockets from several loopback source addresses (all of 127.0.0.0/8 is
// local on Linux) against the real binary, with the loopback exemption turned off.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');
const { makeCert } = require('./lib/tls');

require('./lib/watchdog')('abuse_connections', 150000, sf.stopAll);

test.after(async () => { await sf.stopAll(); });

const rawFrom = require('./lib/raw_socket');

const open = (socks) => socks.filter((s) => !s.closedAt);
const refusedSamples = async (srv) => {
  const m = await srv.metrics();
  const v = (reason) => sf.metricValue(m, 'streamfence_connections_refused_total', { reason });
  return { global: v('max_connections'), perAddress: v('max_connections_per_address'), rate: v('connection_rate'), text: m };
};

test('connections past maxConnectionsPerAddress and maxConnections are closed at accept', async () => {
  const srv = await sf.start({
    handshakeTimeoutMs: 60000,
    limits: { exemptLoopback: false, maxConnections: 8, maxConnectionsPerAddress: 5, maxConnectionsPerAddressPerSecond: 0 },
    namespaces: [sf.ns('/feed', ['prices'])],
  });
  const a = [];
  for (let i = 0; i < 6; i++) a.push(await rawFrom(srv.port, '127.0.0.2'));
  // Accepts are handled in order: once the sixth is closed, the five before it were admitted.
  await sf.waitUntil(() => a[5].closedAt, 5000, 'the sixth connection from one address is still open');
  await sf.sleep(200);
  assert.strictEqual(open(a).length, 5, 'five from 127.0.0.2 stay open, the sixth is closed');
  assert.match(a[5].received, /^HTTP\/1\.1 503 /, 'a plain-HTTP client is told why');

  const b = [];
  for (let i = 0; i < 4; i++) b.push(await rawFrom(srv.port, '127.0.0.3'));
  await sf.waitUntil(() => b[3].closedAt, 5000, 'the ninth connection is still open');
  await sf.sleep(200);
  assert.strictEqual(open(b).length, 3, 'three more from another address fill the global cap of 8; the fourth is closed');

  let r = await refusedSamples(srv);
  assert.strictEqual(r.perAddress, 1);
  assert.strictEqual(r.global, 1);
  assert.strictEqual(r.rate, 0);
  assert.match(srv.logs, /event=connection_refused .*remote=127\.0\.0\.2:\d+ reason=max_connections_per_address .*limit=5 count=1/);
  assert.match(srv.logs, /event=connection_refused .*remote=127\.0\.0\.3:\d+ reason=max_connections .*limit=8 count=1/);

  // A closed connection gives its place back: one from 127.0.0.2 goes, another comes in.
  a[0].destroy();
  await sf.waitUntil(async () => {
    const s = await rawFrom(srv.port, '127.0.0.2');
    await sf.sleep(200);
    if (s.closedAt) return false;
    a.push(s);
    return true;
  }, 5000, 'the place of a closed connection was not given back');

  // With the connections gone, a stock client connects and is served.
  for (const s of [...a, ...b]) s.destroy();
  await sf.sleep(300);
  const c = await sf.connect(srv, '/feed');
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'prices' }), { ok: true });
  c.close();
  r = await refusedSamples(srv);
  assert.ok(r.perAddress >= 1 && r.global >= 1);
});

test('a burst past maxConnectionsPerAddressPerSecond is refused; other addresses and later connections are not', async () => {
  const srv = await sf.start({
    handshakeTimeoutMs: 60000,
    limits: { exemptLoopback: false, maxConnectionsPerAddressPerSecond: 5 }, // a bucket of 10
    namespaces: [sf.ns('/feed', ['prices'])],
  });
  const burst = await Promise.all(Array.from({ length: 30 }, () => rawFrom(srv.port, '127.0.0.4')));
  // Refused ones are closed at once; wait until the count settles (a loaded machine is slow to tell).
  let settled = -1;
  await sf.waitUntil(async () => {
    const n = open(burst).length;
    if (n === settled && n <= 14) return true;
    settled = n;
    await sf.sleep(300);
    return false;
  }, 8000, () => `${open(burst).length} of a burst of 30 still open`);
  const admitted = open(burst).length;
  assert.ok(admitted >= 10 && admitted <= 14, `${admitted} of a burst of 30 admitted (bucket 10, 5/s)`);
  const other = await rawFrom(srv.port, '127.0.0.5');
  await sf.sleep(300);
  assert.strictEqual(other.closedAt, 0, 'another address is not limited by the first one\'s rate');
  const r = await refusedSamples(srv);
  assert.strictEqual(r.rate, 30 - admitted);
  assert.match(srv.logs, /event=connection_refused .*remote=127\.0\.0\.4:\d+ reason=connection_rate .*limit=5 /);
  // A burst logs a bounded number of lines (10 at once, then one a second), not one per refusal.
  const lines = srv.logs.split('\n').filter((l) => /event=connection_refused/.test(l)).length;
  assert.ok(lines <= 11, `${lines} log lines for ${30 - admitted} refusals`);

  await sf.sleep(1100); // the bucket refills at 5/s
  const later = await rawFrom(srv.port, '127.0.0.4');
  await sf.sleep(200);
  assert.strictEqual(later.closedAt, 0, 'the address connects again once its bucket refilled');
  for (const s of [...burst, other, later]) s.destroy();
});

test('a spray of source addresses does not grow the address table past addressTableSize', async () => {
  const srv = await sf.start({
    handshakeTimeoutMs: 60000,
    limits: { exemptLoopback: false, addressTableSize: 50 },
    namespaces: [sf.ns('/feed', ['prices'])],
  });
  const gauge = async () => sf.metricValue(await srv.metrics(), 'streamfence_address_table_entries');
  for (let batch = 0; batch < 6; batch++) {
    const socks = await Promise.all(Array.from({ length: 50 }, (_, i) => rawFrom(srv.port, `127.0.${10 + batch}.${i + 1}`)));
    await sf.sleep(100);
    assert.strictEqual(open(socks).length, 50, 'every sprayed address is admitted');
    for (const s of socks) s.destroy();
  }
  // Once their connections are gone, at most addressTableSize idle addresses are remembered.
  await sf.waitUntil(async () => (await gauge()) <= 50, 5000, 'the address table holds more than addressTableSize entries after 300 addresses');
  assert.ok((await gauge()) >= 40, 'the most recent addresses are still remembered');
});

test('a connection that never sends a byte, or trickles a TLS handshake, is closed at handshakeTimeoutMs from accept', async () => {
  const srv = await sf.start({ handshakeTimeoutMs: 1000, namespaces: [sf.ns('/feed', ['prices'])] });
  const t0 = Date.now();
  const silent = await Promise.all([0, 1, 2].map(() => rawFrom(srv.port, '127.0.0.1')));
  await sf.waitUntil(() => silent.every((s) => s.closedAt), 5000, 'silent connections still open after 5 s');
  for (const s of silent) {
    const after = s.closedAt - t0;
    assert.ok(after >= 800 && after <= 4000, `silent connection closed after ${after} ms (deadline 1000 ms)`);
  }
  await sf.waitUntil(() => /event=http_request_timeout .*phase=silent/.test(srv.logs), 2000, () => srv.logs);
  assert.strictEqual(sf.metricValue(await srv.metrics(), 'streamfence_handshake_timeouts_total'), 3);
  // A stock client is not affected.
  const c = await sf.connect(srv, '/feed');
  c.close();

  // TLS: the first bytes of a ClientHello, then one byte now and then.
  const dir = sf.tmpdir('sf-abuse-tls-');
  const cert = makeCert(dir, 'abuse', 'abuse', 'ec');
  const tlsSrv = await sf.start({
    transport: 'WSS', handshakeTimeoutMs: 1000,
    tls: { certChainPemPath: cert.crt, privateKeyPemPath: cert.key, watchIntervalMs: 600000 },
    namespaces: [sf.ns('/feed', ['prices'])],
  });
  const t1 = Date.now();
  const slow = await rawFrom(tlsSrv.port, '127.0.0.1');
  const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  let i = 0;
  const drip = setInterval(() => { if (!slow.closedAt && i < hello.length) slow.write(hello.subarray(i, ++i)); }, 150);
  try {
    await sf.waitUntil(() => slow.closedAt, 5000, 'trickling TLS handshake still open after 5 s');
  } finally {
    clearInterval(drip);
  }
  const after = slow.closedAt - t1;
  assert.ok(after >= 800 && after <= 4000, `TLS trickle closed after ${after} ms (deadline 1000 ms)`);
  assert.strictEqual(sf.metricValue(await tlsSrv.metrics(), 'streamfence_handshake_timeouts_total'), 1);
});

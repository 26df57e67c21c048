'use strict';
// Fault injection: the spill directory's disk fills up (a 1 MiB tmpfs this test mounts; it
// must run as root). A SPILL_TO_DISK lane (of a subscriber that holds it full by not acking
// yet) whose appends fail refuses them visibly (counted in
// streamfence_queue_overflow_total with a spill reason, logged) while the server keeps serving
// other clients and namespaces; once there is room again the spill works again, and every
// message is either delivered once, in order, or counted as refused: none silently vanishes.
// A durable namespace on the same full disk refuses publishes (OVERLOADED / HTTP 429) rather
// than accept and lose them; what it accepted is delivered.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');
const { mountTmpfs, holdingSubscriber, waitQuiet, publishRange } = require('./lib/faults');

let disk = null;
test.after(async () => { await sf.stopAll(); if (disk) disk.unmount(); });

test('spill disk full: refused visibly, server keeps serving, nothing accepted lost; durable publishes refused', async (t) => {
  disk = mountTmpfs('1m');
  const srv = await sf.start({
    spillRootPath: disk.dir,
    connectionStateRecovery: true,  // durable namespaces need it
    namespaces: [
      sf.ns('/spill', ['t'], { deliveryMode: 'AT_LEAST_ONCE', overflowAction: 'SPILL_TO_DISK', maxQueuedMessagesPerClient: 16,
        maxInFlight: 1, ackTimeoutMs: 60000, maxRetries: 3 }),
      sf.ns('/other', ['t']),
      sf.ns('/dur', ['t'], { deliveryMode: 'AT_LEAST_ONCE', durable: true, maxRetries: 100, ackTimeoutMs: 1000 }),
    ],
  });
  const L = { namespace: '/spill', topic: 't' };
  // Its lane holds 16 until it acks: everything after goes to the spill.
  const sub = await holdingSubscriber(srv, '/spill');
  const got = sub.got;

  // 1 MiB holds about 450 records of 2 KiB: 1500 fill it and run over.
  const FULL = 1500;
  await publishRange(srv, '/spill', 't', 1, FULL);
  await sf.waitUntil(async () => {
    const m = await srv.metrics();
    return sf.metricValue(m, 'streamfence_queue_overflow_total', L) - sf.metricValue(m, 'streamfence_queue_overflow_total', Object.assign({ reason: 'spilled to disk' }, L)) > 0;
  }, 10000, 'the full disk never showed as refused spill appends');
  assert.match(srv.logs, /event=spill_(append_failed|write_failed|refused)/, 'a refused spill append is logged');

  // The server keeps serving: a new client of another namespace gets what is published there.
  const other = await sf.connect(srv, '/other');
  const otherGot = [];
  other.on('t', (p) => otherGot.push(p.i));
  await sf.call(other, 'subscribe', { topic: 't' });
  await publishRange(srv, '/other', 't', 1, 50, 10);
  await sf.waitUntil(() => otherGot.length === 50, 5000, () => `/other received ${otherGot.length}/50 while the disk is full`);

  // The durable namespace on the same full disk: publishes are refused, not accepted and lost.
  const dur = await sf.connect(srv, '/dur');
  const durGot = new Set();
  dur.on('t', (p, meta) => { durGot.add(p.i); dur.emit('ack', { topic: 't', messageId: meta.messageId }); });
  await sf.call(dur, 'subscribe', { topic: 't' });
  const durAccepted = new Set();
  let durRefused = 0;
  for (let i = 1; i <= 60; i++) {
    const r = await srv.publish({ namespace: '/dur', topic: 't', payload: { i, pad: 'd'.repeat(2000) } });
    if (r.status === 200) durAccepted.add(i);
    else { assert.strictEqual(r.status, 429, `durable publish on a full disk: ${r.status} ${r.body}`); durRefused++; }
  }
  assert.ok(durRefused > 0, `a durable publish on a full disk was refused (accepted ${durAccepted.size})`);
  assert.match(srv.logs, /event=durable_journal_write_failed/);
  // A client publish gets the refusal in its ack.
  const ack = await sf.call(dur, 'publish', { topic: 't', payload: { i: 1000, pad: 'd'.repeat(2000) } });
  assert.strictEqual(ack.ok, false, `client publish on a full disk: ${JSON.stringify(ack)}`);
  assert.strictEqual(ack.code, 'OVERLOADED');

  // Room again: the spill and the journal work again.
  disk.remount('64m');
  const TOTAL = 2000;
  await publishRange(srv, '/spill', 't', FULL + 1, TOTAL);
  for (let i = 61; i <= 80; i++) {
    const r = await srv.publish({ namespace: '/dur', topic: 't', payload: { i } });
    assert.strictEqual(r.status, 200, `durable publish after space is back: ${r.status} ${r.body}`);
    durAccepted.add(i);
  }
  sub.startAcking();
  await waitQuiet(got);
  const m = await srv.metrics();
  const refused = sf.metricValue(m, 'streamfence_queue_overflow_total', L) -
    sf.metricValue(m, 'streamfence_queue_overflow_total', Object.assign({ reason: 'spilled to disk' }, L));
  assert.ok(got.every((x, k) => k === 0 || x > got[k - 1]), 'in order, no duplicates');
  assert.ok(got.includes(TOTAL), 'the spill works again once there is room');
  assert.ok(refused > 0, 'the full disk was visible as refusals');
  assert.strictEqual(got.length + refused, TOTAL, `received ${got.length} + refused ${refused} != published ${TOTAL}`);
  t.diagnostic(`spill: ${TOTAL} published, ${got.length} delivered, ${refused} refused while the disk was full; durable: ${durAccepted.size} accepted, ${durRefused} refused`);
  await sf.waitUntil(() => [...durAccepted].every((i) => durGot.has(i)), 10000,
    () => `durable: accepted but not delivered: ${[...durAccepted].filter((i) => !durGot.has(i)).join(',')}`);
  for (const i of durGot) assert.ok(durAccepted.has(i) || i === 1000, `durable: delivered ${i}, which was refused`);
  assert.ok(!durGot.has(1000), 'the refused client publish was not delivered');
  sub.client.close(); other.close(); dur.close();
});

'use strict';
// Overflow policies (each a plugin) against a subscriber that stops reading: the slow
// client's lane is what the policy bounds, while a fast subscriber of the same topic gets
// everything, in order.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

const N = 3000;
const PAD = 'x'.repeat(2000); // ~2 KB per message, so kernel buffers fill quickly

let srv;
test.before(async () => {
  const lim = { maxQueuedMessagesPerClient: 64, maxQueuedBytesPerClient: 1 << 20 };
  srv = await sf.start({
    namespaces: [
      sf.ns('/drop', ['t'], Object.assign({ overflowAction: 'DROP_OLDEST' }, lim)),
      sf.ns('/reject', ['t'], Object.assign({ overflowAction: 'REJECT_NEW' }, lim)),
      sf.ns('/snap', ['t'], Object.assign({ overflowAction: 'SNAPSHOT_ONLY' }, lim)),
      sf.ns('/coal', ['t'], Object.assign({ overflowAction: 'COALESCE', coalesce: true, coalesceKey: 'symbol' }, lim)),
      sf.ns('/bytes', ['t'], { overflowAction: 'REJECT_NEW', maxQueuedBytesPerClient: 10 }),
    ],
  });
});
test.after(async () => { await sf.stopAll(); });

const increasing = (xs) => xs.every((x, k) => k === 0 || x > xs[k - 1]);

// Stop reading from the socket (TCP window closes, the server's writes back up).
function rawSocket(c) { return c.io.engine.transport.ws._socket; }

// orderKey: COALESCE replaces a pending message in place, so order holds per key only.
async function scenario(nsPath, payloadOf, fastKeepsAll = true, orderKey = () => '') {
  const slow = await sf.connect(srv, nsPath);
  const fast = await sf.connect(srv, nsPath);
  const slowGot = [];
  const fastGot = [];
  slow.on('t', (p) => slowGot.push(p));
  fast.on('t', (p) => fastGot.push(p));
  await sf.call(slow, 'subscribe', { topic: 't' });
  await sf.call(fast, 'subscribe', { topic: 't' });
  rawSocket(slow).pause();
  const msgs = [];
  for (let i = 1; i <= N; i++) msgs.push({ namespace: nsPath, topic: 't', payload: payloadOf(i) });
  // small batches (40 KB, under the socket high-water mark), each sent once the reading
  // subscriber has everything before it: it keeps up however loaded the machine is, while
  // the paused one overflows
  for (let k = 0; k < N; k += 20) {
    // the highest i so far (COALESCE puts a replacement where the replaced message was)
    const maxI = () => fastGot.reduce((m, p) => Math.max(m, p.i), 0);
    await sf.waitUntil(() => maxI() >= k, 20000, () => `fast subscriber stuck at i=${maxI()}`);
    const r = await srv.publish(msgs.slice(k, k + 20));
    assert.strictEqual(r.status, 200);
  }
  await sf.waitUntil(() => fastGot.some((p) => p.i === N), 20000,
    () => `fast subscriber got ${fastGot.length}/${N}`);
  rawSocket(slow).resume();
  // quiet for 500 ms = everything the server still had for the slow client has arrived
  let last = -1;
  await sf.waitUntil(async () => { const n = slowGot.length; const quiet = n === last; last = n; await sf.sleep(500); return quiet; }, 20000);
  if (fastKeepsAll) {
    assert.deepStrictEqual(fastGot.map((p) => p.i), msgs.map((m) => m.payload.i), 'fast subscriber: all, in order');
  } else {
    // snapshot/coalescing policies may replace a queued message even for a reader that is
    // a moment behind; it still gets the newest, in order (per key for COALESCE)
    for (const k of new Set(fastGot.map(orderKey))) {
      assert.ok(increasing(fastGot.filter((p) => orderKey(p) === k).map((p) => p.i)), `fast subscriber: in order ${k}`);
    }
  }
  slow.close();
  fast.close();
  return slowGot;
}

test('DROP_OLDEST: the slow client loses old messages, keeps the newest, in order', async () => {
  const before = await srv.metrics();
  const got = await scenario('/drop', (i) => ({ i, pad: PAD }));
  const ids = got.map((p) => p.i);
  assert.ok(ids.length < N, `slow client got ${ids.length}: nothing was dropped`);
  assert.ok(increasing(ids), 'order kept');
  assert.strictEqual(ids[ids.length - 1], N, 'the newest message survives');
  const after = await srv.metrics();
  assert.ok(sf.metricValue(after, 'streamfence_messages_dropped_total', { namespace: '/drop' }) >
            sf.metricValue(before, 'streamfence_messages_dropped_total', { namespace: '/drop' }));
});

test('REJECT_NEW: the slow client keeps the oldest, the newest are rejected and counted', async () => {
  const got = await scenario('/reject', (i) => ({ i, pad: PAD }));
  const ids = got.map((p) => p.i);
  assert.ok(ids.length < N);
  assert.ok(increasing(ids));
  assert.notStrictEqual(ids[ids.length - 1], N, 'the newest message was rejected');
  assert.deepStrictEqual(ids.slice(0, 64), Array.from({ length: 64 }, (_, k) => k + 1));
  const m = await srv.metrics();
  assert.ok(sf.metricValue(m, 'streamfence_queue_overflow_total', { namespace: '/reject', topic: 't', reason: 'queue full with REJECT_NEW' }) > 0, m);
});

test('SNAPSHOT_ONLY: the slow client ends on the latest message', async () => {
  const got = await scenario('/snap', (i) => ({ i, pad: PAD }), false);
  const ids = got.map((p) => p.i);
  assert.ok(ids.length < N);
  assert.ok(increasing(ids));
  assert.strictEqual(ids[ids.length - 1], N);
});

test('COALESCE by coalesceKey: the latest value of every key arrives', async () => {
  const symbols = ['A', 'B', 'C'];
  const got = await scenario('/coal', (i) => ({ i, symbol: symbols[i % 3], pad: PAD }), false, (p) => p.symbol);
  const ids = got.map((p) => p.i);
  assert.ok(ids.length < N);
  for (const s of symbols) {
    const lastPublished = Math.max(...Array.from({ length: N }, (_, k) => k + 1).filter((i) => symbols[i % 3] === s));
    const lastGot = got.filter((p) => p.symbol === s).map((p) => p.i).pop();
    assert.strictEqual(lastGot, lastPublished, `symbol ${s}`);
  }
  const m = await srv.metrics();
  assert.ok(sf.metricValue(m, 'streamfence_messages_coalesced_total', { namespace: '/coal', topic: 't' }) > 0);
});

test('maxQueuedBytesPerClient also caps a single message', async () => {
  const c = await sf.connect(srv, '/bytes');
  const got = [];
  c.on('t', (p) => got.push(p));
  await sf.call(c, 'subscribe', { topic: 't' });
  await srv.publish({ namespace: '/bytes', topic: 't', payload: { text: 'this is longer than ten bytes' } });
  await srv.publish({ namespace: '/bytes', topic: 't', payload: { i: 1 } }); // 7 bytes: fits
  await sf.waitUntil(() => got.length === 1, 3000);
  await sf.sleep(100);
  assert.deepStrictEqual(got, [{ i: 1 }]);
  c.close();
});

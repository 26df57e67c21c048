'use strict';
// AT_LEAST_ONCE with the real socket.io-client: metadata shape, retries with the same
// messageId, exhaustion freeing the slot, acks stopping retries, in-flight limits.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

let srv;
test.before(async () => {
  srv = await sf.start({
    namespaces: [
      sf.ns('/alerts', ['order'], { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 300, maxRetries: 2, maxInFlight: 1, maxQueuedMessagesPerClient: 3 }),
      sf.ns('/fast', ['t'], { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 5000, maxRetries: 1, maxInFlight: 4, maxQueuedMessagesPerClient: 8 }),
    ],
  });
});
test.after(async () => { await sf.stopAll(); });

test('delivery carries {namespace, topic, messageId, ackRequired:true}; an ack stops retries', async () => {
  const c = await sf.connect(srv, '/alerts');
  const rec = sf.recorder(c);
  await sf.call(c, 'subscribe', { topic: 'order' });
  await srv.publish({ namespace: '/alerts', topic: 'order', payload: { i: 1 } });
  await sf.waitUntil(() => rec.count('order') === 1, 3000);
  const [payload, meta] = rec.events.order[0];
  assert.deepStrictEqual(payload, { i: 1 });
  assert.deepStrictEqual(Object.keys(meta), ['namespace', 'topic', 'messageId', 'ackRequired']);
  assert.strictEqual(meta.namespace, '/alerts');
  assert.strictEqual(meta.topic, 'order');
  assert.strictEqual(meta.ackRequired, true);
  assert.match(meta.messageId, /^msg-\d+$/);
  c.emit('ack', { topic: 'order', messageId: meta.messageId });
  await sf.sleep(900); // three ack timeouts
  assert.strictEqual(rec.count('order'), 1);
  c.close();
});

test('unacked: 1 + maxRetries sends with the same messageId, gaps ~ackTimeoutMs, then the next message flows', async () => {
  const c = await sf.connect(srv, '/alerts');
  const times = [];
  const got = [];
  c.on('order', (payload, meta) => { times.push(Date.now()); got.push([payload.i, meta.messageId]); });
  await sf.call(c, 'subscribe', { topic: 'order' });
  const before = await srv.metrics();
  await srv.publish([{ namespace: '/alerts', topic: 'order', payload: { i: 1 } }, { namespace: '/alerts', topic: 'order', payload: { i: 2 } }]);
  await sf.waitUntil(() => got.some(([i]) => i === 2), 5000, () => `message 2 never came: ${JSON.stringify(got)}`);
  const first = got.filter(([i]) => i === 1);
  assert.strictEqual(first.length, 3, JSON.stringify(got)); // 1 + maxRetries(2)
  assert.ok(first.every(([, id]) => id === first[0][1]), 'retries reuse the messageId');
  for (let k = 1; k < 3; k++) {
    const gap = times[k] - times[k - 1];
    assert.ok(gap >= 250 && gap < 1000, `gap ${gap} ms`);
  }
  // message 2 is only sent after message 1 is exhausted (maxInFlight 1)
  assert.strictEqual(got.findIndex(([i]) => i === 2), 3);
  const after = await srv.metrics();
  const d = (n) => sf.metricValue(after, n, { namespace: '/alerts', topic: 'order' }) - sf.metricValue(before, n, { namespace: '/alerts', topic: 'order' });
  assert.strictEqual(d('streamfence_retries_total'), 2);
  assert.strictEqual(d('streamfence_retries_exhausted_total'), 1);
  c.close();
});

test('in-flight entries count toward the queue limit (REJECT_NEW)', async () => {
  const c = await sf.connect(srv, '/alerts');
  const got = [];
  c.on('order', (p, meta) => got.push([p.i, meta.messageId]));
  await sf.call(c, 'subscribe', { topic: 'order' });
  const labels = { namespace: '/alerts', topic: 'order' };
  const overflowBefore = sf.metricValueOr(await srv.metrics(), 'streamfence_queue_overflow_total', labels, 0);
  const msgs = [1, 2, 3, 4, 5].map((i) => ({ namespace: '/alerts', topic: 'order', payload: { i } }));
  await srv.publish(msgs);
  await sf.waitUntil(() => got.length >= 1, 3000);
  // The publish is answered once the log holds all five, but the loop may offer them to the
  // lane in more than one run; an ack landing between runs frees a slot for message 4. So no
  // ack goes out before the lane has refused 4 and 5.
  await sf.waitUntil(async () => sf.metricValue(await srv.metrics(), 'streamfence_queue_overflow_total', labels) - overflowBefore >= 2,
    3000, 'messages 4 and 5 were never refused');
  // ack each delivery as it comes: 1, 2, 3 fit (max 3 incl. in-flight); 4 and 5 were rejected
  const acked = new Set();
  await sf.waitUntil(async () => {
    for (const [, id] of got) if (!acked.has(id)) { acked.add(id); c.emit('ack', { topic: 'order', messageId: id }); }
    return new Set(got.map(([i]) => i)).size >= 3;
  }, 5000);
  await sf.sleep(700);
  assert.deepStrictEqual([...new Set(got.map(([i]) => i))], [1, 2, 3]);
  const m = await srv.metrics();
  assert.strictEqual(sf.metricValue(m, 'streamfence_queue_overflow_total', labels) - overflowBefore, 2);
  c.close();
});

test('maxInFlight 4 sends four before any ack, and acking releases the rest', async () => {
  const c = await sf.connect(srv, '/fast');
  const got = [];
  c.on('t', (p, meta) => got.push([p, meta.messageId]));
  await sf.call(c, 'subscribe', { topic: 't' });
  await srv.publish([1, 2, 3, 4, 5, 6].map((i) => ({ namespace: '/fast', topic: 't', payload: i })));
  await sf.waitUntil(() => got.length >= 4, 3000);
  await sf.sleep(150);
  assert.deepStrictEqual(got.map(([p]) => p), [1, 2, 3, 4]);
  for (const [, id] of got.slice(0, 2)) c.emit('ack', { topic: 't', messageId: id });
  await sf.waitUntil(() => got.length >= 6, 3000);
  assert.deepStrictEqual(got.map(([p]) => p), [1, 2, 3, 4, 5, 6]);
  c.close();
});

test('acks that name nothing are ignored safely', async () => {
  const c = await sf.connect(srv, '/fast');
  await sf.call(c, 'subscribe', { topic: 't' });
  c.emit('ack', { topic: 't', messageId: 'msg-999999' });
  c.emit('ack', { topic: 'nope', messageId: 'msg-1' });
  c.emit('ack', { topic: 't', messageId: 5 });
  c.emit('ack', 'garbage');
  const got = [];
  c.on('t', (p) => got.push(p));
  await srv.publish({ namespace: '/fast', topic: 't', payload: 'still-works' });
  await sf.waitUntil(() => got.length === 1, 3000);
  assert.ok(c.connected);
  c.close();
});

test('a default client (polling, then upgrade) gets every message exactly once across the upgrade', async () => {
  const srv2 = await sf.start({ namespaces: [sf.ns('/up', ['t'], { deliveryMode: 'AT_LEAST_ONCE', maxRetries: 3, maxInFlight: 8, maxQueuedMessagesPerClient: 256 })] });
  for (let k = 0; k < 5; k++) {
    const c = await sf.connect(srv2, '/up', { transports: ['polling', 'websocket'] });
    const got = [];
    c.on('t', (p, meta) => { got.push(p.i); c.emit('ack', { topic: 't', messageId: meta.messageId }); });
    await sf.call(c, 'subscribe', { topic: 't' });
    for (let b = 0; b < 5; b++) {
      await srv2.publish(Array.from({ length: 20 }, (_, i) => ({ namespace: '/up', topic: 't', payload: { i: b * 20 + i } })));
    }
    await sf.waitUntil(() => got.length >= 100, 10000, () => `got ${got.length}`);
    await sf.sleep(100);
    assert.deepStrictEqual(got, Array.from({ length: 100 }, (_, i) => i));
    assert.strictEqual(c.io.engine.transport.name, 'websocket');
    c.close();
  }
});

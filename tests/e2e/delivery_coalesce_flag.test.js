'use strict';
// `coalesce: true` beside any overflowAction (issue 14's defect: it was parsed and validated,
// but five publishes to a paused client still arrived as five): while a subscriber is not
// reading, each new message of the topic replaces the one pending in its lane.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

test.after(async () => { await sf.stopAll(); });

function rawSocket(c) { return c.io.engine.transport.ws._socket; }

for (const overflowAction of ['REJECT_NEW', 'DROP_OLDEST']) {
  test(`coalesce: true with ${overflowAction}: five publishes to a paused client arrive as the last one`, async () => {
    const srv = await sf.start({
      namespaces: [sf.ns('/c', ['t'], { overflowAction, coalesce: true, maxQueuedMessagesPerClient: 64 })],
    });
    const c = await sf.connect(srv, '/c');
    const got = [];
    c.on('t', (p) => got.push(p));
    await sf.call(c, 'subscribe', { topic: 't' });
    rawSocket(c).pause();
    const labels = { namespace: '/c', topic: 't' };
    const coalesced = async () => sf.metricValue(await srv.metrics(), 'streamfence_messages_coalesced_total', labels);
    // The loops take published messages asynchronously: read the counter once it is still.
    const settled = async () => {
      for (;;) {
        const x = await coalesced();
        await sf.sleep(300);
        if ((await coalesced()) === x) return x;
      }
    };
    // Fill the kernel buffers until the socket takes nothing more: then every message of a
    // batch replaces the one waiting in the lane.
    let n = 0;
    let before = 0;
    await sf.waitUntil(async () => {
      const x = await settled();
      const batch = [];
      for (let k = 0; k < 20; k++) batch.push({ namespace: '/c', topic: 't', payload: { fill: n++, pad: 'x'.repeat(60000) } });
      assert.strictEqual((await srv.publish(batch)).status, 200);
      before = await settled();
      return before - x === 20;
    }, 60000, () => `the lane never held a message after ${n} fillers`);
    for (let v = 1; v <= 5; v++) assert.strictEqual((await srv.publish({ namespace: '/c', topic: 't', payload: { v } })).status, 200);
    let now = 0;
    await sf.waitUntil(async () => (now = await coalesced()) >= before + 5, 5000, () => `coalesced ${before} -> ${now}`);
    await sf.sleep(200);
    assert.strictEqual(await coalesced(), before + 5, 'each of the five replaced the pending message');
    rawSocket(c).resume();
    await sf.waitUntil(() => got.some((p) => p.v === 5), 20000, () => `got ${got.length}`);
    await sf.sleep(200);
    assert.deepStrictEqual(got.filter((p) => p.v).map((p) => p.v), [5]);
    c.close();
  });
}

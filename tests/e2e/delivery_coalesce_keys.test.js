'use strict';
// COALESCE with coalesceKey, seen by a stock client: key values compare as JSON values (by
// type and value), and a payload without the key field is its own entry.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

const PAD = 'x'.repeat(4000);

test.after(async () => { await sf.stopAll(); });

// Stop reading from the socket (TCP window closes, the server's writes back up).
function rawSocket(c) { return c.io.engine.transport.ws._socket; }

test('coalesceKey values 1, "1", true, false and a missing key are five different keys', async () => {
  const srv = await sf.start({
    namespaces: [sf.ns('/c', ['t'], { overflowAction: 'COALESCE', coalesceKey: 'k', maxQueuedMessagesPerClient: 100000, maxQueuedBytesPerClient: 1 << 30 })],
  });
  const c = await sf.connect(srv, '/c');
  const got = [];
  c.on('t', (p) => got.push(p));
  await sf.call(c, 'subscribe', { topic: 't' });
  rawSocket(c).pause();
  // Fill the kernel buffers until the server holds messages in the lane (each filler has its
  // own key, so none replaces another).
  const labels = { namespace: '/c', topic: 't' };
  let n = 0;
  // The backlog must be stable (kernel buffers full, nothing leaving the lane), not just seen
  // once: a gauge read while buffers still grow could let the next messages go straight out.
  const fill = async () => {
    const batch = [];
    for (let k = 0; k < 50; k++) batch.push({ namespace: '/c', topic: 't', payload: { k: `fill-${n++}`, pad: PAD } });
    assert.strictEqual((await srv.publish(batch)).status, 200);
  };
  const depth = async () => sf.metricValue(await srv.metrics(), 'streamfence_lane_depth_max', labels);
  await sf.waitUntil(async () => {
    await fill();
    await sf.sleep(300);
    const d1 = await depth();
    await sf.sleep(300);
    return d1 >= 20 && (await depth()) === d1;
  }, 30000, () => `lane never backed up after ${n} fillers`);
  const fillers = n;

  const keyed = [['one', 1], ['str', '1'], ['yes', true], ['no', false]];
  const round = (v) => [...keyed.map(([name, k]) => ({ name, v, k })), { name: 'none', v }];
  const msgs = [...round(1), ...round(2)].map((payload) => ({ namespace: '/c', topic: 't', payload }));
  assert.strictEqual((await srv.publish(msgs)).status, 200);
  // The publish's 200 comes before the loop has offered the messages to the lane: count the
  // coalesces once they have been delivered (nothing else is published after these).
  rawSocket(c).resume();
  await sf.waitUntil(() => got.some((p) => p.name === 'none' && p.v === 2), 20000, () => `got ${got.length}`);
  await sf.sleep(200);
  assert.strictEqual(got.filter((p) => p.pad).length, fillers);
  const tail = got.filter((p) => p.name).map((p) => `${p.name}${p.v}`);
  // each keyed message replaced its own key's pending one in place; the unkeyed two both arrive
  assert.deepStrictEqual(tail, ['one2', 'str2', 'yes2', 'no2', 'none1', 'none2']);
  assert.strictEqual(sf.metricValue(await srv.metrics(), 'streamfence_messages_coalesced_total', labels), 4);
  c.close();
});

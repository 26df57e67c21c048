'use strict';
// SPILL_TO_DISK through both storage backends: a subscriber that stops reading while
// 10,000 messages are published gets every one, in order, once it reads again; the spill
// is gone when the lane ends.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const sf = require('./lib/streamfenced');
const { startHpkvLocal } = require('./lib/hpkv-local');

const N = 10000;
const stores = []; // every hpkv-local started here, stopped at the end
test.after(async () => { await sf.stopAll(); await Promise.all(stores.map((s) => s.stop())); });

function rawSocket(c) { return c.io.engine.transport.ws._socket; }

function listFiles(dir) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p)); else out.push(p);
  }
  return out;
}

async function pausedSubscriberGetsEverything(srv, nsPath) {
  const slow = await sf.connect(srv, nsPath);
  const got = [];
  slow.on('t', (p) => got.push(p.i));
  assert.deepStrictEqual(await sf.call(slow, 'subscribe', { topic: 't' }), { ok: true });
  rawSocket(slow).pause();
  for (let k = 0; k < N; k += 250) {
    const batch = [];
    for (let i = k + 1; i <= Math.min(N, k + 250); i++) batch.push({ namespace: nsPath, topic: 't', payload: { i, pad: 'y'.repeat(2000) } });
    const r = await srv.publish(batch);
    assert.strictEqual(r.status, 200);
  }
  const m = await srv.metrics();
  const spilled = sf.metricValue(m, 'streamfence_messages_spilled_total', { namespace: nsPath, topic: 't' });
  assert.ok(spilled > 0, 'nothing was spilled: the test did not exercise the backend');
  rawSocket(slow).resume();
  await sf.waitUntil(() => got.length >= N, 60000, () => `received ${got.length}/${N}`);
  await sf.sleep(300);
  assert.strictEqual(got.length, N, 'no duplicates');
  for (let k = 0; k < N; k++) if (got[k] !== k + 1) assert.fail(`out of order at ${k}: got ${got[k]}`);
  return { slow, spilled };
}

test('disk backend: 10,000 messages to a paused subscriber arrive complete and in order', async () => {
  const srv = await sf.start({
    namespaces: [sf.ns('/spill', ['t'], { overflowAction: 'SPILL_TO_DISK', maxQueuedMessagesPerClient: 16 })],
  });
  const spillRoot = srv.cfg.servers.test.spillRootPath;
  const { slow } = await pausedSubscriberGetsEverything(srv, '/spill');
  slow.close();
  await sf.waitUntil(() => listFiles(spillRoot).filter((f) => f.endsWith('.seg')).length === 0, 5000,
    () => `spill files left after disconnect: ${listFiles(spillRoot).join(', ')}`);
});

test('hpkv backend: 10,000 messages to a paused subscriber arrive complete and in order', async () => {
  const hpkv = await startHpkvLocal({ apiKeys: ['spill-key'], dataDir: sf.tmpdir('sf-hpkv-') });
  stores.push(hpkv);
  const srv = await sf.start({
    namespaces: [sf.ns('/spill', ['t'], { overflowAction: 'SPILL_TO_DISK', spillBackend: 'hpkv', maxQueuedMessagesPerClient: 16 })],
  }, { plugins: { hpkv: { baseUrl: hpkv.baseUrl, apiKey: 'spill-key' } } });
  const { slow } = await pausedSubscriberGetsEverything(srv, '/spill');
  slow.close();
});

test('AT_LEAST_ONCE + SPILL_TO_DISK: FIFO across memory and spill while acking', async () => {
  const srv = await sf.start({
    namespaces: [sf.ns('/rel', ['t'], { deliveryMode: 'AT_LEAST_ONCE', overflowAction: 'SPILL_TO_DISK', maxQueuedMessagesPerClient: 1, maxInFlight: 1, maxRetries: 5, ackTimeoutMs: 2000 })],
  });
  const c = await sf.connect(srv, '/rel');
  const got = [];
  c.on('t', (p, meta) => { got.push(p.i); c.emit('ack', { topic: 't', messageId: meta.messageId }); });
  await sf.call(c, 'subscribe', { topic: 't' });
  await srv.publish([1, 2, 3, 4, 5].map((i) => ({ namespace: '/rel', topic: 't', payload: { i } })));
  await sf.waitUntil(() => got.length >= 5, 10000, () => `got ${JSON.stringify(got)}`);
  assert.deepStrictEqual(got, [1, 2, 3, 4, 5]);
  c.close();
});

test('hpkv backend: kill -9 of hpkv-local mid-spill loses nothing the spill accepted', async () => {
  const dataDir = sf.tmpdir('sf-hpkv-kill-');
  let store = await startHpkvLocal({ apiKeys: ['kill-key'], dataDir });
  stores.push(store);
  const port = store.port;
  const srv = await sf.start({
    namespaces: [sf.ns('/k', ['t'], { overflowAction: 'SPILL_TO_DISK', spillBackend: 'hpkv', maxQueuedMessagesPerClient: 16 })],
  }, { plugins: { hpkv: { baseUrl: store.baseUrl, apiKey: 'kill-key', requestTimeoutMs: 1500 } } });
  const slow = await sf.connect(srv, '/k');
  const got = [];
  slow.on('t', (p) => got.push(p.i));
  await sf.call(slow, 'subscribe', { topic: 't' });
  rawSocket(slow).pause();
  const TOTAL = 6000;
  const publish = async (from, to) => {
    for (let k = from; k <= to; k += 100) {
      const batch = [];
      for (let i = k; i < Math.min(to + 1, k + 100); i++) batch.push({ namespace: '/k', topic: 't', payload: { i, pad: 'z'.repeat(2000) } });
      assert.strictEqual((await srv.publish(batch)).status, 200);
    }
  };
  await publish(1, 3000);
  await store.kill9();                      // mid-spill: appends in flight are not acknowledged
  await publish(3001, 4000);                // these cannot be spilled: rejected and counted
  await sf.sleep(2500);                     // an outage longer than the request timeout
  store = await startHpkvLocal({ apiKeys: ['kill-key'], dataDir, extraArgs: ['--port', String(port)] });
  stores.push(store);
  await sf.sleep(2500);                     // the plugin reconnects with backoff
  await publish(4001, TOTAL);
  rawSocket(slow).resume();
  let last = -1;
  await sf.waitUntil(async () => { const n = got.length; const quiet = n === last; last = n; await sf.sleep(1000); return quiet; }, 60000);
  const m = await srv.metrics();
  const L = { namespace: '/k', topic: 't' };
  const overflow = sf.metricValue(m, 'streamfence_queue_overflow_total', L);
  const spilledReason = sf.metricValue(m, 'streamfence_queue_overflow_total', Object.assign({ reason: 'spilled to disk' }, L));
  const rejected = overflow - spilledReason;
  assert.ok(got.every((x, k) => k === 0 || x > got[k - 1]), 'in order, no duplicates');
  assert.ok(rejected > 0, 'the outage was visible as rejections');
  assert.ok(got.includes(TOTAL), 'spill works again after the restart');
  assert.strictEqual(got.length + rejected, TOTAL, `received ${got.length} + rejected ${rejected} != published ${TOTAL}`);
  // ... and logged: one line per second at most, with the count since the last one.
  assert.match(srv.logs, /event=spill_append_(failed|refused) namespace=\/k topic=t .* count=\d+/, 'the outage is logged');
  slow.close();
});

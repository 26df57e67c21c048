'use strict';
// Binary payloads end to end with the stock socket.io-client (docs/client-protocol.md, Binary):
// a client publish holding Buffers reaches websocket and polling subscribers byte for byte;
// the control API's octet-stream body and {"$binary"} JSON; AT_LEAST_ONCE retries re-send the
// parts; attachment bytes count against maxQueuedBytesPerClient and in the metrics;
// coalesceKey works beside binary fields; 10,000 binary messages spill and replay through
// both storage backends.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const sf = require('./lib/streamfenced');
const { startHpkvLocal } = require('./lib/hpkv-local');

const stores = [];
test.after(async () => { await sf.stopAll(); await Promise.all(stores.map((s) => s.stop())); });

function rawSocket(c) { return c.io.engine.transport.ws._socket; }
const bytesOf = (seed, n) => crypto.createHash('sha512').update(String(seed)).digest().subarray(0, n);
function eqBuf(actual, expected, what) {
  assert.ok(Buffer.isBuffer(actual), `${what}: not a Buffer but ${typeof actual} ${JSON.stringify(actual)}`);
  assert.ok(actual.equals(expected), `${what}: bytes differ (${actual.length} vs ${expected.length})`);
}

test('client publish with nested Buffers reaches websocket and polling subscribers byte for byte', async () => {
  const srv = await sf.start({
    maxPayloadBytes: 4000000,
    namespaces: [sf.ns('/feed', ['prices'], { maxQueuedBytesPerClient: 8000000 })],
  });
  const ws = await sf.connect(srv, '/feed');
  const poll = await sf.connect(srv, '/feed', { transports: ['polling'] });
  assert.strictEqual(poll.io.engine.transport.name, 'polling');
  const got = { ws: [], poll: [] };
  ws.on('prices', (p) => got.ws.push(p));
  poll.on('prices', (p) => got.poll.push(p));
  for (const c of [ws, poll]) assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'prices' }), { ok: true });

  const a = bytesOf('a', 64);
  const b = Uint8Array.from([0, 1, 2, 255, 0x1e, 0x62]); // NUL, high byte, the polling separator, 'b'
  const c = new ArrayBuffer(3);
  new Uint8Array(c).set([9, 8, 7]);
  const big = crypto.randomBytes(1024 * 1024);
  for (const [pub, payload] of [
    [ws, { sym: 'ACME', px: a, nested: { list: [b, { deep: c }], text: 'plain' } }],
    [poll, { sym: 'BIG', blob: big }],
    [ws, a],
  ]) {
    assert.deepStrictEqual(await sf.call(pub, 'publish', { topic: 'prices', payload }, 10000), { ok: true });
  }
  await sf.waitUntil(() => got.ws.length === 3 && got.poll.length === 3, 20000, () => `ws ${got.ws.length}, polling ${got.poll.length}`);
  for (const [name, list] of Object.entries(got)) {
    const [first, second, third] = list;
    assert.strictEqual(first.sym, 'ACME');
    assert.strictEqual(first.nested.text, 'plain');
    eqBuf(first.px, a, `${name} px`);
    eqBuf(first.nested.list[0], Buffer.from(b), `${name} list[0]`);
    eqBuf(first.nested.list[1].deep, Buffer.from([9, 8, 7]), `${name} deep`);
    assert.strictEqual(second.sym, 'BIG');
    eqBuf(second.blob, big, `${name} 1 MB blob`);
    eqBuf(third, a, `${name} bare Buffer payload`);
  }
  assert.strictEqual(poll.io.engine.transport.name, 'polling', 'the polling client stayed on polling');

  // Attachments count in the byte metrics (1 MB + 64 + 6 + 3 + 64 beside the JSON).
  const m = await srv.metrics();
  const pub = sf.metricValue(m, 'streamfence_messages_published_bytes_total', { namespace: '/feed', topic: 'prices' });
  const rec = sf.metricValue(m, 'streamfence_messages_received_bytes_total', { namespace: '/feed', topic: 'prices' });
  const att = big.length + 64 + 6 + 3 + 64;
  assert.ok(pub > att && pub < att + 400, `published bytes ${pub} should be the attachments (${att}) plus the JSON`);
  assert.strictEqual(rec, pub);
  ws.close();
  poll.close();
});

test('control API: octet-stream body and {"$binary"} JSON are delivered as binary', async () => {
  const srv = await sf.start({ namespaces: [sf.ns('/feed', ['prices'])] });
  const ws = await sf.connect(srv, '/feed');
  const poll = await sf.connect(srv, '/feed', { transports: ['polling'] });
  const other = await sf.connect(srv, '/feed');
  const recs = [ws, poll, other].map((c) => sf.recorder(c));
  for (const c of [ws, poll, other]) await sf.call(c, 'subscribe', { topic: 'prices' });

  const body = crypto.randomBytes(65536);
  const octet = { 'content-type': 'application/octet-stream' };
  let r = await srv.publish(body, octet);
  assert.strictEqual(r.status, 400, 'namespace and topic come from the query');
  r = await sf.request(srv.controlPort, 'POST', '/v1/publish?namespace=%2Ffeed&topic=prices', body, octet);
  assert.deepStrictEqual([r.status, r.json], [200, { status: 200 }]);
  r = await sf.request(srv.controlPort, 'POST', `/v1/publish?namespace=/feed&topic=prices&clientId=${ws.id}`, Buffer.from([1, 2, 3]), octet);
  assert.strictEqual(r.status, 200);
  r = await sf.request(srv.controlPort, 'POST', '/v1/publish?namespace=/feed&topic=nope', body, octet);
  assert.strictEqual(r.status, 404);

  const raw = Buffer.from([0, 1, 2, 255]);
  r = await srv.publish({ namespace: '/feed', topic: 'prices',
    payload: { sym: 'ACME', book: { $binary: raw.toString('base64') }, levels: [{ $binary: '' }, { $binary: 1 }, { $binary: 'AA==', x: 1 }] } });
  assert.deepStrictEqual([r.status, r.json], [200, { status: 200 }]);
  r = await srv.publish({ namespace: '/feed', topic: 'prices', payload: { b: { $binary: 'not base64!' } } });
  assert.strictEqual(r.status, 400);
  assert.match(r.json.error, /\$binary/);

  await sf.waitUntil(() => recs[0].count('prices') === 3 && recs[1].count('prices') === 2 && recs[2].count('prices') === 2, 5000,
    () => `counts ${recs.map((x) => x.count('prices'))}`);
  for (const [i, rec] of recs.entries()) {
    const list = rec.payloads('prices');
    eqBuf(list[0], body, `client ${i} octet-stream body`);
    const j = list[list.length - 1];
    assert.strictEqual(j.sym, 'ACME');
    eqBuf(j.book, raw, `client ${i} $binary`);
    eqBuf(j.levels[0], Buffer.alloc(0), `client ${i} empty $binary`);
    assert.deepStrictEqual(j.levels.slice(1), [{ $binary: 1 }, { $binary: 'AA==', x: 1 }], 'not markers: plain JSON');
  }
  eqBuf(recs[0].payloads('prices')[1], Buffer.from([1, 2, 3]), 'octet-stream publishTo');
  for (const c of [ws, poll, other]) c.close();
});

test('AT_LEAST_ONCE: a retry re-sends the binary parts; attachment bytes count against maxQueuedBytesPerClient', async () => {
  const srv = await sf.start({
    namespaces: [
      sf.ns('/rel', ['t'], { deliveryMode: 'AT_LEAST_ONCE', maxRetries: 2, ackTimeoutMs: 300 }),
      sf.ns('/small', ['t'], { maxQueuedBytesPerClient: 1000 }),
    ],
  });
  const c = await sf.connect(srv, '/rel');
  const got = [];
  c.on('t', (p, meta) => {
    got.push([p, meta]);
    if (got.length === 2) c.emit('ack', { topic: 't', messageId: meta.messageId });
  });
  await sf.call(c, 'subscribe', { topic: 't' });
  const part = bytesOf('retry', 48);
  let r = await srv.publish({ namespace: '/rel', topic: 't', payload: { n: 1, part: { $binary: part.toString('base64') } } });
  assert.strictEqual(r.status, 200);
  await sf.waitUntil(() => got.length >= 2, 5000, () => `deliveries ${got.length}`);
  await sf.sleep(800); // acked after the first retry: no third send
  assert.strictEqual(got.length, 2);
  assert.strictEqual(got[0][1].messageId, got[1][1].messageId);
  for (const [p] of got) eqBuf(p.part, part, 'retried part');
  const m = await srv.metrics();
  assert.strictEqual(sf.metricValue(m, 'streamfence_retries_total', { namespace: '/rel', topic: 't' }), 1);

  // 1,200 bytes of attachment in a message whose JSON is tiny: over the 1,000-byte lane limit.
  const s = await sf.connect(srv, '/small');
  const small = [];
  s.on('t', (p) => small.push(p));
  await sf.call(s, 'subscribe', { topic: 't' });
  r = await srv.publish([{ namespace: '/small', topic: 't', payload: { big: { $binary: Buffer.alloc(1200, 7).toString('base64') } } },
    { namespace: '/small', topic: 't', payload: { fits: { $binary: Buffer.alloc(900, 8).toString('base64') } } }]);
  assert.strictEqual(r.json.published, 2);
  await sf.waitUntil(() => small.length === 1, 5000, 'the fitting message did not arrive');
  await sf.sleep(200);
  assert.strictEqual(small.length, 1);
  eqBuf(small[0].fits, Buffer.alloc(900, 8), 'fitting message');
  const overflow = sf.metricValue(await srv.metrics(), 'streamfence_queue_overflow_total', { namespace: '/small', topic: 't' });
  assert.strictEqual(overflow, 1, 'the 1,200-byte attachment was refused by the byte limit');
  c.close();
  s.close();
});

test('COALESCE: coalesceKey is the text field beside binary fields', async () => {
  const srv = await sf.start({
    namespaces: [sf.ns('/c', ['t'], { overflowAction: 'COALESCE', coalesce: true, coalesceKey: 'sym', maxQueuedMessagesPerClient: 100000, maxQueuedBytesPerClient: 1 << 30 })],
  });
  const c = await sf.connect(srv, '/c');
  const got = [];
  c.on('t', (p) => got.push(p));
  await sf.call(c, 'subscribe', { topic: 't' });
  rawSocket(c).pause();
  const labels = { namespace: '/c', topic: 't' };
  let n = 0;
  const depth = async () => sf.metricValue(await srv.metrics(), 'streamfence_lane_depth_max', labels);
  await sf.waitUntil(async () => {
    const batch = [];
    for (let k = 0; k < 50; k++) batch.push({ namespace: '/c', topic: 't', payload: { sym: `fill-${n++}`, pad: { $binary: Buffer.alloc(4000, 1).toString('base64') } } });
    assert.strictEqual((await srv.publish(batch)).status, 200);
    await sf.sleep(300);
    const d1 = await depth();
    await sf.sleep(300);
    return d1 >= 20 && (await depth()) === d1;
  }, 30000, () => `lane never backed up after ${n} fillers`);
  const msg = (sym, v) => ({ namespace: '/c', topic: 't', payload: { sym, px: { $binary: bytesOf(`${sym}${v}`, 16).toString('base64') }, v } });
  assert.strictEqual((await srv.publish([msg('A', 1), msg('B', 1), msg('A', 2), msg('B', 2), msg('A', 3)])).status, 200);
  rawSocket(c).resume();
  await sf.waitUntil(() => got.some((p) => p.sym === 'B' && p.v === 2), 20000, () => `got ${got.length}`);
  await sf.sleep(200);
  const tail = got.filter((p) => p.sym === 'A' || p.sym === 'B');
  assert.deepStrictEqual(tail.map((p) => `${p.sym}${p.v}`), ['A3', 'B2']);
  for (const p of tail) eqBuf(p.px, bytesOf(`${p.sym}${p.v}`, 16), `${p.sym}${p.v} px`);
  assert.strictEqual(sf.metricValue(await srv.metrics(), 'streamfence_messages_coalesced_total', labels), 3);
  c.close();
});

const N = 10000;
async function spillAndReplayBinary(srv) {
  const slow = await sf.connect(srv, '/spill');
  const got = [];
  slow.on('t', (p) => got.push(p));
  assert.deepStrictEqual(await sf.call(slow, 'subscribe', { topic: 't' }), { ok: true });
  rawSocket(slow).pause();
  for (let k = 0; k < N; k += 250) {
    const batch = [];
    for (let i = k + 1; i <= Math.min(N, k + 250); i++)
      batch.push({ namespace: '/spill', topic: 't', payload: { i, b: { $binary: bytesOf(i, 1 + (i % 64)).toString('base64') }, pad: { $binary: Buffer.alloc(1500, i & 0xff).toString('base64') } } });
    assert.strictEqual((await srv.publish(batch)).status, 200);
  }
  const spilled = sf.metricValue(await srv.metrics(), 'streamfence_messages_spilled_total', { namespace: '/spill', topic: 't' });
  assert.ok(spilled > 1000, `only ${spilled} spilled: the test did not exercise the backend`);
  rawSocket(slow).resume();
  await sf.waitUntil(() => got.length >= N, 90000, () => `received ${got.length}/${N}`);
  await sf.sleep(300);
  assert.strictEqual(got.length, N, 'no duplicates');
  for (let k = 0; k < N; k++) {
    const p = got[k];
    if (p.i !== k + 1) assert.fail(`out of order at ${k}: got ${p.i}`);
    if (!Buffer.isBuffer(p.b) || !p.b.equals(bytesOf(p.i, 1 + (p.i % 64)))) assert.fail(`message ${p.i}: binary part differs`);
    if (!Buffer.isBuffer(p.pad) || p.pad.length !== 1500 || p.pad[1499] !== (p.i & 0xff)) assert.fail(`message ${p.i}: pad differs`);
  }
  slow.close();
  return spilled;
}

test('SPILL_TO_DISK disk backend: 10,000 binary messages replay byte for byte, in order', async () => {
  const srv = await sf.start({
    namespaces: [sf.ns('/spill', ['t'], { overflowAction: 'SPILL_TO_DISK', maxQueuedMessagesPerClient: 16 })],
  });
  await spillAndReplayBinary(srv);
});

test('SPILL_TO_DISK hpkv backend: 10,000 binary messages replay byte for byte, in order', async () => {
  const hpkv = await startHpkvLocal({ apiKeys: ['spill-key'], dataDir: sf.tmpdir('sf-hpkv-') });
  stores.push(hpkv);
  const srv = await sf.start({
    namespaces: [sf.ns('/spill', ['t'], { overflowAction: 'SPILL_TO_DISK', spillBackend: 'hpkv', maxQueuedMessagesPerClient: 16 })],
  }, { plugins: { hpkv: { baseUrl: hpkv.baseUrl, apiKey: 'spill-key' } } });
  await spillAndReplayBinary(srv);
});

'use strict';
// Connection-state recovery (docs/recovery.md) with stock socket.io-client 4.x and its own
// reconnection: the client cuts its transport with `socket.io.engine.close()`, comes back
// with {pid, offset}, and must get the same id, `recovered === true`, its subscriptions and
// every message it missed, exactly once for BEST_EFFORT; AT_LEAST_ONCE resends what was in
// flight with the same messageId. ioThreads: 2, so reconnects land on either loop (a
// session moves between loops).
const test = require('node:test');
const assert = require('node:assert');
const { io } = require('socket.io-client');
const sf = require('./lib/streamfenced');

const recovery = (ms = 120000) => ({ connectionStateRecovery: { maxDisconnectionDurationMs: ms } });

function client(srv, nsPath, opts = {}) {
  const s = io(srv.url(nsPath), Object.assign({
    transports: ['websocket'], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0,
  }, opts));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timeout')), 8000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
  });
}

// Cut the transport and resolve on the next `connect` (the client's own reconnection).
function cutAndReconnect(c, beforeReconnect) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reconnect')), 10000);
    c.once('connect', () => { clearTimeout(t); resolve(c.recovered); });
    c.io.engine.close();
    if (beforeReconnect) beforeReconnect();
  });
}

const publish = (srv, nsPath, topic, payload) => srv.publish({ namespace: nsPath, topic, payload });
async function publishSeq(srv, nsPath, topic, from, to) {
  const msgs = [];
  for (let i = from; i <= to; i++) msgs.push({ namespace: nsPath, topic, payload: { seq: i } });
  const r = await srv.publish(msgs);
  assert.strictEqual(r.status, 200, r.body);
  r.json.results.forEach((e) => assert.strictEqual(e.status, 200, JSON.stringify(e)));
}

test('off by default: no pid, no offset argument (nothing changes on the wire)', async () => {
  const srv = await sf.start({ namespaces: [sf.ns('/feed', ['t'])] });
  try {
    const c = await sf.connect(srv, '/feed');
    assert.strictEqual(c._pid, undefined, 'CONNECT carried no pid');
    const got = [];
    c.on('t', (...args) => got.push(args));
    await sf.call(c, 'subscribe', { topic: 't' });
    await publish(srv, '/feed', 't', { a: 1 });
    await sf.waitUntil(() => got.length === 1);
    assert.deepStrictEqual(got[0], [{ a: 1 }], 'the payload alone');
    c.close();
  } finally { await srv.stop(); }
});

for (const transport of ['websocket', 'polling']) {
  test(`recovers over ${transport}: same id, recovered, subscriptions kept, missed messages exactly once`, async () => {
    const srv = await sf.start(Object.assign({ ioThreads: 2, namespaces: [sf.ns('/feed', ['t', 'u'], { maxQueuedMessagesPerClient: 1000 })] }, recovery()));
    try {
      const c = await client(srv, '/feed', { transports: [transport] });
      assert.ok(typeof c._pid === 'string' && c._pid.length >= 16, 'CONNECT carried a pid');
      const got = [];
      const offsets = [];
      c.on('t', (p, offset) => { got.push(p.seq); offsets.push(offset); });
      await sf.call(c, 'subscribe', { topic: 't' });
      await publishSeq(srv, '/feed', 't', 1, 5);
      await sf.waitUntil(() => got.length === 5);
      assert.ok(offsets.every((o) => typeof o === 'string' && o.length > 0), 'every delivery carries its offset last');
      const id = c.id;
      for (let round = 0; round < 4; round++) {
        const base = 5 + round * 10;
        const recovered = await cutAndReconnect(c, () => { publishSeq(srv, '/feed', 't', base + 1, base + 10); });
        assert.strictEqual(recovered, true, `round ${round}: socket.recovered`);
        assert.strictEqual(c.id, id, 'same socket id');
        await sf.waitUntil(() => got.length >= base + 10, 5000, () => `round ${round}: got ${got.length}`);
      }
      await publishSeq(srv, '/feed', 't', 46, 50);  // the subscription is still there
      await sf.waitUntil(() => got.length >= 50);
      await sf.sleep(200);
      assert.deepStrictEqual(got, Array.from({ length: 50 }, (_, i) => i + 1), 'in order, no gap, no duplicate');
      const m = await srv.metrics();
      assert.strictEqual(sf.metricValue(m, 'streamfence_sessions_recovered_total', { namespace: '/feed' }), 4);
      assert.strictEqual(sf.metricValue(m, 'streamfence_sessions_detached', { namespace: '/feed' }), 0);
      c.close();
    } finally { await srv.stop(); }
  });
}

test('BEST_EFFORT under a steady stream with repeated cuts: every message exactly once, in order', async () => {
  const srv = await sf.start(Object.assign({ ioThreads: 2, namespaces: [sf.ns('/feed', ['t'], { maxQueuedMessagesPerClient: 20000, maxQueuedBytesPerClient: 8 << 20 })] }, recovery()));
  try {
    const clients = [];
    for (let i = 0; i < 4; i++) {
      const c = await client(srv, '/feed', { transports: i % 2 ? ['polling', 'websocket'] : ['websocket'] });
      const got = [];
      c.on('t', (p) => got.push(p.seq));
      await sf.call(c, 'subscribe', { topic: 't' });
      clients.push({ c, got, recovered: 0 });
    }
    let seq = 0;
    let stop = false;
    const pub = (async () => {
      while (!stop) {
        await publishSeq(srv, '/feed', 't', seq + 1, seq + 20);
        seq += 20;
        await sf.sleep(5);
      }
    })();
    for (let k = 0; k < 3; k++) {
      await sf.sleep(300);
      const rs = await Promise.all(clients.map((x) => cutAndReconnect(x.c)));
      rs.forEach((r, i) => { if (r) clients[i].recovered++; });
    }
    await sf.sleep(300);
    stop = true;
    await pub;
    for (const [i, x] of clients.entries()) {
      await sf.waitUntil(() => x.got.length >= seq, 8000, () => `client ${i}: ${x.got.length}/${seq}`);
      await sf.sleep(100);
      const dup = x.got.length - new Set(x.got).size;
      assert.strictEqual(dup, 0, `client ${i}: ${dup} duplicates`);
      assert.deepStrictEqual(x.got, Array.from({ length: seq }, (_, j) => j + 1), `client ${i}: in order, complete`);
      assert.strictEqual(x.recovered, 3, `client ${i} recovered each time`);
      x.c.close();
    }
    console.log(`steady stream: ${seq} messages x ${clients.length} clients, 3 cuts each, no gap, no duplicate`);
  } finally { await srv.stop(); }
});

test('explicit disconnect, unknown pid and expiry give fresh sessions (never an error)', async () => {
  const srv = await sf.start(Object.assign({ namespaces: [sf.ns('/feed', ['t'])] }, recovery(600)));
  try {
    // Explicit disconnect: not held.
    const a = await client(srv, '/feed');
    const got = [];
    a.on('t', (p) => got.push(p));
    await sf.call(a, 'subscribe', { topic: 't' });
    await publish(srv, '/feed', 't', { n: 1 });
    await sf.waitUntil(() => got.length === 1);
    const idA = a.id;
    a.disconnect();
    a.connect();
    await sf.once(a, 'connect');
    assert.strictEqual(a.recovered, false, 'after disconnect(): fresh');
    assert.notStrictEqual(a.id, idA);
    a.close();

    // Unknown pid.
    const b = await sf.connect(srv, '/feed', { auth: { pid: 'nope-nope-nope', offset: 'msg-1' } });
    assert.strictEqual(b.recovered, false);
    b.close();

    // Expiry: the client stays away longer than maxDisconnectionDurationMs.
    const c = await client(srv, '/feed', { reconnectionDelay: 2500, reconnectionDelayMax: 2500 });
    c.on('t', () => {});
    await sf.call(c, 'subscribe', { topic: 't' });
    await publish(srv, '/feed', 't', { n: 2 });
    await sf.sleep(100);
    const idC = c.id;
    const recovered = await cutAndReconnect(c, () => { publish(srv, '/feed', 't', { n: 3 }); });
    assert.strictEqual(recovered, false, 'expired: fresh session');
    assert.notStrictEqual(c.id, idC);
    const m = await srv.metrics();
    assert.strictEqual(sf.metricValue(m, 'streamfence_sessions_expired_total', { namespace: '/feed' }), 1);
    assert.strictEqual(sf.metricValue(m, 'streamfence_sessions_recovered_total', { namespace: '/feed' }), 0);
    assert.match(srv.logs, /event=session_expired .*namespace=\/feed/);
    c.close();
  } finally { await srv.stop(); }
});

test('AT_LEAST_ONCE: in flight at the drop is resent after recovery with its messageId; the ack is honoured', async () => {
  const srv = await sf.start(Object.assign({ ioThreads: 2, namespaces: [sf.ns('/orders', ['o'], {
    deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 60000, maxRetries: 5, maxInFlight: 4, overflowAction: 'REJECT_NEW' })] }, recovery()));
  try {
    const c = await client(srv, '/orders');
    const got = [];
    c.on('o', (p, meta, offset) => got.push({ p, meta, offset }));
    await sf.call(c, 'subscribe', { topic: 'o' });
    await publishSeq(srv, '/orders', 'o', 1, 3);
    await sf.waitUntil(() => got.length === 3);
    assert.strictEqual(typeof got[0].offset, 'string', 'offset after the metadata');
    const ids = got.map((g) => g.meta.messageId);
    await sf.call(c, 'ack', { topic: 'o', messageId: ids[0] });
    const recovered = await cutAndReconnect(c, () => { publishSeq(srv, '/orders', 'o', 4, 4); });
    assert.strictEqual(recovered, true);
    await sf.waitUntil(() => got.length >= 6, 5000, () => `got ${got.length}`);
    const again = got.slice(3).map((g) => g.meta.messageId);
    assert.deepStrictEqual(again.slice(0, 2), ids.slice(1), 'the two unacked, same messageIds, in order');
    assert.strictEqual(got[5].p.seq, 4, 'then the one published while away');
    for (const g of got.slice(3)) await sf.call(c, 'ack', { topic: 'o', messageId: g.meta.messageId });
    await sf.sleep(300);
    assert.strictEqual(got.length, 6, 'acked after recovery: nothing more comes');
    const m = await srv.metrics();
    assert.strictEqual(sf.metricValue(m, 'streamfence_retries_total', { namespace: '/orders', topic: 'o' }), 0, 'a resend after recovery is not a retry');
    assert.strictEqual(sf.metricValue(m, 'streamfence_inflight', { namespace: '/orders', topic: 'o' }), 0);
    c.close();
  } finally { await srv.stop(); }
});

// A subscriber of /feed topic t cuts its transport and stays away 1.5 s; resolves once the
// server holds its session, with `back` resolving to socket.recovered on its return.
async function subscribeThenLeave(srv) {
  const c = await client(srv, '/feed', { reconnectionDelay: 1500, reconnectionDelayMax: 1500 });
  const got = [];
  c.on('t', (p) => got.push(p.seq));
  await sf.call(c, 'subscribe', { topic: 't' });
  const back = cutAndReconnect(c);
  await sf.waitUntil(async () => sf.metricValue(await srv.metrics(), 'streamfence_sessions_detached', { namespace: '/feed' }) === 1);
  return { c, got, back };
}

test('while away, the lane keeps its limits and policy: REJECT_NEW overflow is counted, memory bounded', async () => {
  const srv = await sf.start(Object.assign({ namespaces: [sf.ns('/feed', ['t'], { maxQueuedMessagesPerClient: 5, overflowAction: 'REJECT_NEW' })] }, recovery()));
  try {
    const { c, got, back } = await subscribeThenLeave(srv);
    await publishSeq(srv, '/feed', 't', 1, 20);
    await sf.waitUntil(async () => sf.metricValue(await srv.metrics(), 'streamfence_sessions_detached_queued_messages', { namespace: '/feed' }) === 5,
      3000, 'detached lane holds its 5');
    assert.strictEqual(await back, true);
    await sf.waitUntil(() => got.length >= 5);
    await sf.sleep(200);
    assert.deepStrictEqual(got, [1, 2, 3, 4, 5], 'REJECT_NEW kept the first five');
    const m = await srv.metrics();
    assert.strictEqual(sf.metricValue(m, 'streamfence_queue_overflow_total', { namespace: '/feed', topic: 't', reason: 'queue full with REJECT_NEW' }), 15);
    c.close();
  } finally { await srv.stop(); }
});

test('while away, SPILL_TO_DISK spills past the lane and replays everything in order after recovery', async () => {
  const srv = await sf.start(Object.assign({ ioThreads: 2, namespaces: [sf.ns('/feed', ['t'], { maxQueuedMessagesPerClient: 5, overflowAction: 'SPILL_TO_DISK' })] }, recovery()));
  try {
    const { c, got, back } = await subscribeThenLeave(srv);
    await publishSeq(srv, '/feed', 't', 1, 30);
    assert.strictEqual(await back, true);
    await sf.waitUntil(() => got.length >= 30, 5000, () => `got ${got.length}`);
    await sf.sleep(200);
    assert.deepStrictEqual(got, Array.from({ length: 30 }, (_, i) => i + 1), 'memory then spill, in order, once');
    const m = await srv.metrics();
    assert.ok(sf.metricValue(m, 'streamfence_messages_spilled_total', { namespace: '/feed', topic: 't' }) >= 25, 'spilled while away');
    c.close();
  } finally { await srv.stop(); }
});

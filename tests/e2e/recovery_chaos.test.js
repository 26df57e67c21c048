'use strict';
// Chaos (docs/recovery.md): 50 stock socket.io-client sockets on an AT_LEAST_ONCE topic,
// 20,000 messages published through the control API; every client cuts its own transport at
// random moments and drops 10% of its acks. At the end every client holds every message;
// duplicates only where an ack was dropped or cut off in flight.
const test = require('node:test');
const assert = require('node:assert');
const { io } = require('socket.io-client');
const sf = require('./lib/streamfenced');

const CLIENTS = Number(process.env.SF_CHAOS_CLIENTS || 50);
const MESSAGES = Number(process.env.SF_CHAOS_MESSAGES || 20000);
const MAX_IN_FLIGHT = 256;

test('50 clients, 20,000 AT_LEAST_ONCE messages, random cuts and 10% lost acks: nothing missing', { timeout: 290000 }, async () => {
  const srv = await sf.start({
    ioThreads: 2,
    connectionStateRecovery: { maxDisconnectionDurationMs: 60000 },
    namespaces: [sf.ns('/orders', ['o'], {
      deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 3000, maxRetries: 100, maxInFlight: MAX_IN_FLIGHT,
      maxQueuedMessagesPerClient: MESSAGES + 100, maxQueuedBytesPerClient: 64 << 20, overflowAction: 'REJECT_NEW' })],
  });
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
  const clients = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      // Websocket: a stock client cut with engine.close() over long-polling can stall its own
      // reconnection under this load, against socket.io 4.8 itself too (docs/recovery.md);
      // recovery over polling is covered in recovery.test.js.
      const c = io(srv.url('/orders'), { transports: ['websocket'], forceNew: true,
        reconnectionDelay: 50, reconnectionDelayMax: 300 });
      const st = { c, seen: new Map(), dropped: 0, confirmed: new Set(), afterConfirm: 0, cuts: 0, recovered: 0, fresh: 0 };
      c.on('o', (p, meta) => {
        st.seen.set(p.seq, (st.seen.get(p.seq) || 0) + 1);
        // The server answered an earlier ack of this message: it must never come again.
        if (st.confirmed.has(p.seq)) st.afterConfirm++;
        if (rnd() < 0.1) { st.dropped++; return; }  // this ack is "lost"
        c.emit('ack', { topic: 'o', messageId: meta.messageId }, () => st.confirmed.add(p.seq));
      });
      c.on('connect', () => { if (st.cuts) (c.recovered ? st.recovered++ : st.fresh++); });
      await sf.once(c, 'connect', 8000);
      await sf.call(c, 'subscribe', { topic: 'o' });
      clients.push(st);
    }

    // Publisher: batches of 250, refused entries (429 while the topic log is full) retried.
    let published = 0;
    const pub = (async () => {
      let next = 1;
      while (next <= MESSAGES) {
        const batch = [];
        for (let k = 0; k < 250 && next + k <= MESSAGES; k++) batch.push({ namespace: '/orders', topic: 'o', payload: { seq: next + k } });
        const r = await srv.publish(batch);
        assert.strictEqual(r.status, 200, r.body);
        const firstRefused = r.json.results.findIndex((e) => e.status !== 200);
        const ok = firstRefused < 0 ? batch.length : firstRefused;
        r.json.results.slice(ok).forEach((e) => assert.strictEqual(e.status, 429, JSON.stringify(e)));
        next += ok;
        published = next - 1;
        if (ok < batch.length) await sf.sleep(20);
      }
    })();

    // Chaos: each client cuts its transport at random moments while the publisher runs.
    let chaos = true;
    const cutters = clients.map((st) => (async () => {
      while (chaos) {
        await sf.sleep(150 + rnd() * 900);
        if (!chaos) break;
        if (st.c.connected) { st.cuts++; st.c.io.engine.close(); }
      }
    })());
    await pub;
    chaos = false;
    await Promise.all(cutters);

    const missing = () => clients.reduce((n, st) => n + (MESSAGES - st.seen.size), 0);
    try {
      await sf.waitUntil(() => missing() === 0, 150000, () => `still missing ${missing()} deliveries`);
    } catch (e) {
      for (const [i, st] of clients.entries()) {
        const miss = [];
        for (let s = 1; s <= MESSAGES && miss.length < 5; s++) if (!st.seen.has(s)) miss.push(s);
        if (miss.length) console.log(`client ${i} id=${st.c.id} connected=${st.c.connected} cuts=${st.cuts} rec=${st.recovered} fresh=${st.fresh} missing ${MESSAGES - st.seen.size} first ${miss}`);
      }
      if (process.env.SF_CHAOS_LOG) require('node:fs').writeFileSync(process.env.SF_CHAOS_LOG, srv.logs);
      const m = await srv.metrics();
      console.log(m.split('\n').filter((l) => /orders/.test(l) && !/ 0$/.test(l)).join('\n'));
      throw e;
    }
    let dups = 0;
    let afterConfirm = 0;
    let droppedAcks = 0;
    let cuts = 0;
    let recovered = 0;
    let fresh = 0;
    for (const st of clients) {
      for (let s = 1; s <= MESSAGES; s++) assert.ok(st.seen.has(s), `seq ${s} missing`);
      for (const [, n] of st.seen) dups += n - 1;
      afterConfirm += st.afterConfirm;
      droppedAcks += st.dropped;
      cuts += st.cuts;
      recovered += st.recovered;
      fresh += st.fresh;
    }
    console.log(`chaos: ${published} messages x ${CLIENTS} clients, ${cuts} cuts (${recovered} recovered, ${fresh} fresh), ` +
      `${dups} duplicates, ${droppedAcks} acks dropped, ${afterConfirm} deliveries after a confirmed ack`);
    assert.strictEqual(fresh, 0, 'every reconnect recovered its session');
    // Duplicates only where an ack was lost: dropped here, cut off with a transport, or too
    // late for ackTimeoutMs. An ack the server confirmed is never followed by the message.
    assert.strictEqual(afterConfirm, 0, 'a message came again after the server confirmed its ack');
    const m = await srv.metrics();
    assert.strictEqual(sf.metricValue(m, 'streamfence_retries_exhausted_total', { namespace: '/orders', topic: 'o' }), 0);
    assert.ok(cuts >= CLIENTS, 'every client was cut at least once on average');
  } finally {
    for (const st of clients) st.c.close();
    await srv.stop();
  }
});

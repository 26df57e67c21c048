'use strict';
// Delivery control's client protocol with the real socket.io-client against streamfenced:
// subscribe/unsubscribe confirmations, error codes, ack answers, deliveries by topic event,
// client publish, publishTo isolation.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

let srv;
test.before(async () => {
  srv = await sf.start({
    namespaces: [
      sf.ns('/feed', ['prices', 'news']),
      sf.ns('/ws-only', ['ticks'], { allowPolling: false }),
    ],
  });
});
test.after(async () => { await sf.stopAll(); });

test('subscribe is confirmed by event and by ack; deliveries arrive on the topic event', async () => {
  const c = await sf.connect(srv, '/feed');
  const rec = sf.recorder(c);
  const reply = await sf.call(c, 'subscribe', { topic: 'prices' });
  assert.deepStrictEqual(reply, { ok: true });
  await sf.waitUntil(() => rec.count('subscribed') === 1, 3000, 'no subscribed event');
  assert.deepStrictEqual(rec.events.subscribed[0], [{ topic: 'prices' }]);

  const r = await srv.publish({ namespace: '/feed', topic: 'prices', payload: { value: 42 } });
  assert.strictEqual(r.status, 200);
  await sf.waitUntil(() => rec.count('prices') === 1, 3000, 'no delivery');
  assert.deepStrictEqual(rec.events.prices[0], [{ value: 42 }]); // BEST_EFFORT: exactly one argument
  c.close();
});

test('subscribe without an ack callback still gets the subscribed event', async () => {
  const c = await sf.connect(srv, '/feed');
  c.emit('subscribe', { topic: 'news', token: 'secret-not-echoed' });
  const [msg] = await sf.once(c, 'subscribed');
  assert.deepStrictEqual(msg, { topic: 'news' }); // the token is never echoed back
  c.close();
});

test('a client that did not subscribe receives nothing', async () => {
  const sub = await sf.connect(srv, '/feed');
  const other = await sf.connect(srv, '/feed');
  const recSub = sf.recorder(sub);
  const recOther = sf.recorder(other);
  await sf.call(sub, 'subscribe', { topic: 'prices' });
  await srv.publish({ namespace: '/feed', topic: 'prices', payload: 1 });
  await sf.waitUntil(() => recSub.count('prices') === 1, 3000);
  await sf.sleep(100);
  assert.strictEqual(recOther.count('prices'), 0);
  sub.close();
  other.close();
});

test('unknown topic: error event without ack, {ok:false} with ack', async () => {
  const c = await sf.connect(srv, '/feed');
  c.emit('subscribe', { topic: 'nope' });
  const [err] = await sf.once(c, 'error');
  assert.deepStrictEqual(err, { code: 'UNKNOWN_TOPIC', message: 'Unknown topic: nope' });
  const reply = await sf.call(c, 'subscribe', { topic: 'nope' });
  assert.strictEqual(reply.ok, false);
  assert.strictEqual(reply.code, 'UNKNOWN_TOPIC');
  c.close();
});

test('malformed subscribe payloads are INVALID_PAYLOAD and the connection survives', async () => {
  const c = await sf.connect(srv, '/feed');
  for (const bad of ['prices', 42, null, { topic: '' }, { topic: '  ' }, { topic: 7 }, [1, 2]]) {
    const reply = await sf.call(c, 'subscribe', bad);
    assert.strictEqual(reply.ok, false, JSON.stringify(bad));
    assert.strictEqual(reply.code, 'INVALID_PAYLOAD', JSON.stringify(bad));
  }
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'prices' }), { ok: true });
  assert.ok(c.connected);
  c.close();
});

test('unsubscribe is confirmed and stops deliveries', async () => {
  const c = await sf.connect(srv, '/feed');
  const rec = sf.recorder(c);
  await sf.call(c, 'subscribe', { topic: 'prices' });
  assert.deepStrictEqual(await sf.call(c, 'unsubscribe', { topic: 'prices' }), { ok: true });
  await sf.waitUntil(() => rec.count('unsubscribed') === 1, 3000, 'no unsubscribed event');
  assert.deepStrictEqual(rec.events.unsubscribed[0], [{ topic: 'prices' }]);
  await srv.publish({ namespace: '/feed', topic: 'prices', payload: 'after' });
  await sf.sleep(150);
  assert.strictEqual(rec.count('prices'), 0);
  c.close();
});

test('a duplicate subscribe delivers once per publish', async () => {
  const c = await sf.connect(srv, '/feed');
  const rec = sf.recorder(c);
  await sf.call(c, 'subscribe', { topic: 'prices' });
  await sf.call(c, 'subscribe', { topic: 'prices' });
  await srv.publish({ namespace: '/feed', topic: 'prices', payload: 'once' });
  await sf.waitUntil(() => rec.count('prices') >= 1, 3000);
  await sf.sleep(100);
  assert.strictEqual(rec.count('prices'), 1);
  c.close();
});

test('client publish fans out to subscribers (sender included) and is acknowledged', async () => {
  const a = await sf.connect(srv, '/feed');
  const b = await sf.connect(srv, '/feed');
  const recA = sf.recorder(a);
  const recB = sf.recorder(b);
  await sf.call(a, 'subscribe', { topic: 'news' });
  await sf.call(b, 'subscribe', { topic: 'news' });
  const reply = await sf.call(b, 'publish', { topic: 'news', payload: { headline: 'hi', n: [1, 2] } });
  assert.deepStrictEqual(reply, { ok: true });
  await sf.waitUntil(() => recA.count('news') === 1 && recB.count('news') === 1, 3000);
  assert.deepStrictEqual(recA.events.news[0], [{ headline: 'hi', n: [1, 2] }]);
  const bad = await sf.call(b, 'publish', { topic: 'nope', payload: 1 });
  assert.strictEqual(bad.code, 'UNKNOWN_TOPIC');
  a.close();
  b.close();
});

test('publishTo reaches only the named client', async () => {
  const a = await sf.connect(srv, '/feed');
  const b = await sf.connect(srv, '/feed');
  const recA = sf.recorder(a);
  const recB = sf.recorder(b);
  await sf.call(a, 'subscribe', { topic: 'prices' });
  await sf.call(b, 'subscribe', { topic: 'prices' });
  const r = await srv.publish({ namespace: '/feed', topic: 'prices', payload: { value: 99 }, clientId: a.id });
  assert.strictEqual(r.status, 200, r.body);
  await sf.waitUntil(() => recA.count('prices') === 1, 3000);
  await sf.sleep(100);
  assert.strictEqual(recB.count('prices'), 0);
  const unknown = await srv.publish({ namespace: '/feed', topic: 'prices', payload: 1, clientId: 'no-such-client' });
  assert.strictEqual(unknown.status, 404);
  a.close();
  b.close();
});

test('allowPolling:false refuses a polling-only client at CONNECT with TRANSPORT_REJECTED', async () => {
  const err = await sf.connect(srv, '/ws-only', { transports: ['polling'] }).then(() => null, (e) => e);
  assert.ok(err, 'a polling-only client must not join');
  assert.match(err.message, /TRANSPORT_REJECTED/);
  assert.strictEqual(err.data.code, 'TRANSPORT_REJECTED');
  // a polling client may still join a namespace that allows polling
  const other = await sf.connect(srv, '/feed', { transports: ['polling'] });
  assert.deepStrictEqual(await sf.call(other, 'subscribe', { topic: 'prices' }), { ok: true });
  other.close();
});

test('allowPolling:false: the stock client default (polling, then upgrade) joins on websocket', async () => {
  for (let i = 0; i < 5; i++) {
    // socket.io-client's default transports, in its default order
    const c = await sf.connect(srv, '/ws-only', { transports: ['polling', 'websocket'] });
    assert.strictEqual(c.io.engine.transport.name, 'websocket', 'joined only once upgraded');
    const rec = sf.recorder(c);
    assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'ticks' }), { ok: true });
    await srv.publish({ namespace: '/ws-only', topic: 'ticks', payload: { i } });
    await sf.waitUntil(() => rec.count('ticks') === 1, 3000);
    c.close();
  }
  const ws = await sf.connect(srv, '/ws-only');
  assert.deepStrictEqual(await sf.call(ws, 'subscribe', { topic: 'ticks' }), { ok: true });
  ws.close();
});

test('allowPolling:false: a CONNECT sent on polling is held, then answered on websocket after the upgrade', async () => {
  const WebSocket = require('ws');
  const base = '/socket.io/?EIO=4&transport=polling';
  const hs = await sf.request(srv.port, 'GET', base);
  const sid = JSON.parse(hs.body.slice(1)).sid;
  const post = await sf.request(srv.port, 'POST', `${base}&sid=${sid}`, '40/ws-only,', { 'content-type': 'text/plain;charset=UTF-8' });
  assert.strictEqual(post.body, 'ok');
  const pending = sf.request(srv.port, 'GET', `${base}&sid=${sid}`); // would carry the answer if it were sent on polling
  await sf.sleep(300);
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  const msgs = [];
  ws.on('message', (d) => msgs.push(d.toString()));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send('2probe');
  await sf.waitUntil(() => msgs.includes('3probe'), 3000);
  ws.send('5');
  const poll = await pending;
  assert.ok(!poll.body.includes('40/ws-only'), `answered on polling: ${poll.body}`);
  await sf.waitUntil(() => msgs.some((m) => m.startsWith('40/ws-only,{"sid":')), 3000, () => JSON.stringify(msgs));
  ws.close();
});

test('a polling client subscribes and receives', async () => {
  const c = await sf.connect(srv, '/feed', { transports: ['polling'] });
  const rec = sf.recorder(c);
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'prices' }), { ok: true });
  await srv.publish({ namespace: '/feed', topic: 'prices', payload: { via: 'polling' } });
  await sf.waitUntil(() => rec.count('prices') === 1, 5000);
  assert.deepStrictEqual(rec.events.prices[0], [{ via: 'polling' }]);
  c.close();
});

test('unknown namespace is a connect_error "Invalid namespace"', async () => {
  await assert.rejects(sf.connect(srv, '/nowhere'), /Invalid namespace/);
});

test('a huge unknown topic is refused without echoing it back whole', async () => {
  const c = await sf.connect(srv, '/feed');
  const reply = await sf.call(c, 'subscribe', { topic: 'é'.repeat(100000) });
  assert.strictEqual(reply.code, 'UNKNOWN_TOPIC');
  assert.ok(reply.message.length < 300, `message of ${reply.message.length} chars`);
  assert.match(reply.message, /\(200000 bytes\)$/);
  assert.ok(c.connected, 'valid UTF-8 kept the connection open');
  c.close();
});

'use strict';
// Three streamfenced nodes sharing a real redis-server (docs/cluster.md): fan-out across
// nodes, client publish across nodes, publishTo across nodes, AT_LEAST_ONCE across nodes with
// retries, and kill -9 of a node.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');
const cl = require('./lib/cluster');

const SERVER = {
  namespaces: [
    sf.ns('/feed', ['prices', 'news'], { maxQueuedMessagesPerClient: 1024 }),
    sf.ns('/alerts', ['order'], { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 300, maxRetries: 3, maxInFlight: 1, maxQueuedMessagesPerClient: 64 }),
  ],
};

let r;
let a;
let b;
let c;
test.before(async () => {
  r = await cl.redis.start();
  [a, b, c] = await cl.startNodes(r, 3, SERVER, { socketioEmitterKey: null });
});
test.after(async () => { await sf.stopAll(); await cl.redis.stopAll(); });

const metric = async (node, name, labels) => sf.metricValue(await node.metrics(), name, labels);

test('/health shows the cluster: node id, link, the nodes seen', async () => {
  const h = await a.health();
  assert.strictEqual(h.cluster.nodeId, 'node-a');
  assert.strictEqual(h.cluster.link, 'UP');
  assert.deepStrictEqual([...h.cluster.nodes].sort(), ['node-a', 'node-b', 'node-c']);
  assert.strictEqual(h.cluster.redis, `127.0.0.1:${r.port}`);
  const nodes = await r.command('ZRANGE', 'sf:nodes:test', '0', '-1');
  assert.deepStrictEqual(nodes.sort(), ['node-a', 'node-b', 'node-c']);
});

test('fan-out: a publish on one node reaches every subscriber on every node once, in order', async () => {
  const subs = [await sf.connect(a, '/feed'), await sf.connect(b, '/feed'), await sf.connect(b, '/feed'), await sf.connect(c, '/feed')];
  const recs = subs.map((s) => sf.recorder(s));
  for (const s of subs) await sf.call(s, 'subscribe', { topic: 'prices' });
  // Only nodes with subscribers subscribe in Redis: one topic channel each here.
  for (const n of [a, b, c]) await cl.waitSubscriptions(n, 1);
  const outBefore = await metric(a, 'streamfence_cluster_messages_out_total', { via: 'pubsub' });
  const inBefore = await metric(b, 'streamfence_cluster_messages_in_total', { via: 'pubsub' });
  const msgs = Array.from({ length: 50 }, (_, i) => ({ namespace: '/feed', topic: 'prices', payload: { i } }));
  const res = await a.publish(msgs);
  assert.strictEqual(res.status, 200, res.body);
  for (const rec of recs) await sf.waitUntil(() => rec.count('prices') >= 50, 5000, () => `got ${rec.count('prices')}`);
  await sf.sleep(200);
  for (const rec of recs) assert.deepStrictEqual(rec.payloads('prices').map((p) => p.i), msgs.map((m) => m.payload.i));
  assert.strictEqual(await metric(a, 'streamfence_cluster_messages_out_total', { via: 'pubsub' }) - outBefore, 50);
  assert.strictEqual(await metric(b, 'streamfence_cluster_messages_in_total', { via: 'pubsub' }) - inBefore, 50);
  // node-a's own subscriber got each once although node-a's records come back from Redis
  // (it subscribes to the same channel).
  assert.strictEqual(await metric(a, 'streamfence_cluster_messages_in_total', { via: 'pubsub' }), 0);
  for (const s of subs) s.close();
  for (const n of [a, b, c]) await cl.waitSubscriptions(n, 0);
});

test('a client publish on one node reaches the subscribers of the others', async () => {
  const sb = await sf.connect(b, '/feed');
  const sa = await sf.connect(a, '/feed');
  const rb = sf.recorder(sb);
  const ra = sf.recorder(sa);
  await sf.call(sb, 'subscribe', { topic: 'news' });
  await sf.call(sa, 'subscribe', { topic: 'news' });
  await cl.waitSubscriptions(b, 1);
  await cl.waitSubscriptions(a, 1);
  const pub = await sf.connect(c, '/feed');
  for (let i = 0; i < 10; i++) {
    const ack = await sf.call(pub, 'publish', { topic: 'news', payload: { n: i } });
    assert.deepStrictEqual(ack, { ok: true });
  }
  await sf.waitUntil(() => rb.count('news') === 10 && ra.count('news') === 10, 5000);
  assert.deepStrictEqual(rb.payloads('news').map((p) => p.n), [...Array(10).keys()]);
  assert.deepStrictEqual(ra.payloads('news').map((p) => p.n), [...Array(10).keys()]);
  sb.close(); sa.close(); pub.close();
});

test('publishTo reaches a client on another node; 404 when no node holds it or it is not subscribed', async () => {
  const s = await sf.connect(c, '/feed');
  const rec = sf.recorder(s);
  await sf.call(s, 'subscribe', { topic: 'prices' });
  // node-c's registry entry for this client (a length-prefixed record: docs/cluster.md)
  const field = `${'/feed'.length}:/feed${s.id.length}:${s.id}`;
  await sf.waitUntil(async () => (await r.command('HEXISTS', 'sf:clients:test:node-c', field)) === 1, 3000);
  const ok = await a.publish({ namespace: '/feed', topic: 'prices', clientId: s.id, payload: { to: 'you' } });
  assert.strictEqual(ok.status, 200, ok.body);
  await sf.waitUntil(() => rec.count('prices') === 1, 3000);
  assert.deepStrictEqual(rec.payloads('prices'), [{ to: 'you' }]);
  const unknown = await a.publish({ namespace: '/feed', topic: 'prices', clientId: 'no-such-client', payload: {} });
  assert.strictEqual(unknown.status, 404, unknown.body);
  const notSub = await b.publish({ namespace: '/feed', topic: 'news', clientId: s.id, payload: {} });
  assert.strictEqual(notSub.status, 404, notSub.body);
  assert.match(notSub.body, /not subscribed/);
  assert.ok(await metric(a, 'streamfence_cluster_messages_out_total', { via: 'direct' }) >= 1);
  assert.ok(await metric(c, 'streamfence_cluster_messages_in_total', { via: 'direct' }) >= 2);
  const id = s.id;  // socket.io-client forgets it on close
  s.close();
  // Once it is gone, nobody holds it.
  await sf.waitUntil(async () => (await a.publish({ namespace: '/feed', topic: 'prices', clientId: id, payload: {} })).status === 404, 3000);
});

test('AT_LEAST_ONCE across nodes: appended to the stream before accepted, retried by the node holding the client', async () => {
  const sub = await sf.connect(b, '/alerts');
  const got = [];
  let acking = false;
  sub.on('order', (p, meta) => {
    got.push([p.k, meta.messageId]);
    if (acking || got.filter(([k]) => k === p.k).length >= 2) sub.emit('ack', { topic: 'order', messageId: meta.messageId });
  });
  await sf.call(sub, 'subscribe', { topic: 'order' });
  // the stream read starts with the first local subscriber
  await sf.waitUntil(async () => (await b.health()).cluster.streams === 1, 3000);
  const res = await a.publish({ namespace: '/alerts', topic: 'order', payload: { k: 1 } });
  assert.strictEqual(res.status, 200, res.body);
  assert.strictEqual(await r.command('XLEN', 'sf:st:test:/alerts:order'), 1);
  const entry = (await r.command('XRANGE', 'sf:st:test:/alerts:order', '-', '+'))[0];
  // origin, payload and the one messageId every node gives it (docs/cluster.md)
  assert.deepStrictEqual(entry[1].slice(0, 5), ['n', 'node-a', 'p', '{"k":1}', 'i']);
  assert.match(entry[1][5], /^msg-[A-Za-z0-9]{8}-\d+$/);
  assert.strictEqual(entry[1].length, 6);
  // first send unacked, the retry (same messageId) acked: retries stay on node-b
  await sf.waitUntil(() => got.length >= 2, 3000, () => JSON.stringify(got));
  assert.strictEqual(got[0][1], entry[1][5], 'the messageId the stream carries');
  await sf.sleep(700);
  assert.strictEqual(got.length, 2, JSON.stringify(got));
  assert.strictEqual(got[0][1], got[1][1]);
  assert.strictEqual(await metric(b, 'streamfence_retries_total', { namespace: '/alerts', topic: 'order' }), 1);
  assert.strictEqual(await metric(a, 'streamfence_retries_total', { namespace: '/alerts', topic: 'order' }), 0);
  // a client publish on a third node is acked only once the stream holds it
  acking = true;
  const pub = await sf.connect(c, '/alerts');
  for (let k = 2; k <= 6; k++) assert.deepStrictEqual(await sf.call(pub, 'publish', { topic: 'order', payload: { k } }), { ok: true });
  assert.strictEqual(await r.command('XLEN', 'sf:st:test:/alerts:order'), 6);
  await sf.waitUntil(() => got.some(([k]) => k === 6), 5000, () => JSON.stringify(got));
  await sf.sleep(400);
  assert.deepStrictEqual(got.slice(2).map(([k]) => k), [2, 3, 4, 5, 6]);
  assert.strictEqual(await metric(c, 'streamfence_cluster_messages_out_total', { via: 'stream' }), 5);
  sub.close(); pub.close();
});

test('kill -9 of a node costs only its own connections', async () => {
  const sa = await sf.connect(a, '/feed');
  const sc = await sf.connect(c, '/feed');
  const ra = sf.recorder(sa);
  const rc = sf.recorder(sc);
  await sf.call(sa, 'subscribe', { topic: 'prices' });
  await sf.call(sc, 'subscribe', { topic: 'prices' });
  await cl.waitSubscriptions(a, 1);
  await cl.waitSubscriptions(c, 1);
  const closed = new Promise((res) => sc.once('disconnect', res));
  const scId = sc.id;
  await sf.stop(c, 'SIGKILL');
  await closed;
  assert.strictEqual(rc.count('prices'), 0);
  const res = await b.publish({ namespace: '/feed', topic: 'prices', payload: { after: 'kill' } });
  assert.strictEqual(res.status, 200, res.body);
  await sf.waitUntil(() => ra.count('prices') === 1, 3000);
  // node-c drops out of the cluster after nodeTtlMs; its clients with it
  await sf.waitUntil(async () => (await a.health()).cluster.nodes.length === 2, 5000);
  const gone = await a.publish({ namespace: '/feed', topic: 'prices', clientId: scId, payload: {} });
  assert.strictEqual(gone.status, 404, gone.body);
  assert.strictEqual((await a.health()).cluster.link, 'UP');
  sa.close();
});

test('streams.maxAgeMs trims old entries from the streams a node reads', async () => {
  const h = await sf.start(SERVER, { cluster: { redis: { url: r.url, keyPrefix: 'trim' }, nodeId: 'trim', heartbeatMs: 100, nodeTtlMs: 1000, streams: { maxAgeMs: 1000 }, socketioEmitterKey: null } });
  await cl.waitLink([h], 'UP');
  const sub = await sf.connect(h, '/alerts');
  sub.on('order', (p, meta) => sub.emit('ack', { topic: 'order', messageId: meta.messageId }));
  await sf.call(sub, 'subscribe', { topic: 'order' });
  await sf.waitUntil(async () => (await cl.health(h)).cluster.streams === 1, 3000);
  for (let k = 0; k < 3; k++) assert.strictEqual((await h.publish({ namespace: '/alerts', topic: 'order', payload: { k } })).status, 200);
  assert.ok((await r.command('XLEN', 'trim:st:test:/alerts:order')) >= 1);
  await sf.waitUntil(async () => (await r.command('XLEN', 'trim:st:test:/alerts:order')) === 0, 5000);
  sub.close();
  await sf.stop(h);
});

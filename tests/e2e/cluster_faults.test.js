'use strict';
// Redis stopped and restarted under three nodes mid-stream (docs/cluster.md "Faults"):
// publishes that must cross nodes are refused visibly (503, CLUSTER_UNAVAILABLE, counter,
// log line), local connections keep being served, and the nodes come back by themselves.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');
const cl = require('./lib/cluster');

const SERVER = {
  namespaces: [
    sf.ns('/feed', ['prices'], { maxQueuedMessagesPerClient: 4096 }),
    sf.ns('/alerts', ['order'], { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 1000, maxRetries: 3, maxInFlight: 16, maxQueuedMessagesPerClient: 4096 }),
  ],
};

test.after(async () => { await sf.stopAll(); await cl.redis.stopAll(); });

test('Redis down: refusals are visible, local clients are served; Redis back: the nodes resume by themselves', async () => {
  const r = await cl.redis.start();
  const [a, b, c] = await cl.startNodes(r, 3, SERVER, { socketioEmitterKey: null });
  const sb = await sf.connect(b, '/feed');
  const rb = sf.recorder(sb);
  await sf.call(sb, 'subscribe', { topic: 'prices' });
  const sc = await sf.connect(c, '/alerts');
  const gotAlerts = [];
  sc.on('order', (p, meta) => { gotAlerts.push(p.k); sc.emit('ack', { topic: 'order', messageId: meta.messageId }); });
  await sf.call(sc, 'subscribe', { topic: 'order' });
  await cl.waitSubscriptions(b, 1);
  await sf.waitUntil(async () => (await c.health()).cluster.streams === 1, 3000);
  const pub = await sf.connect(a, '/feed');
  const pubAlerts = await sf.connect(a, '/alerts');

  // Mid-stream: a publisher on node-a keeps going while Redis dies and comes back.
  const outcomes = [];
  let stop = false;
  let seq = 0;
  const loop = (async () => {
    while (!stop) {
      const i = seq++;
      const res = await a.publish({ namespace: '/feed', topic: 'prices', payload: { i } });
      const ack = await sf.call(pubAlerts, 'publish', { topic: 'order', payload: { k: i } });
      outcomes.push({ i, http: res.status, body: res.json, ack });
      await sf.sleep(10);
    }
  })();
  await sf.waitUntil(() => outcomes.length >= 20, 5000);
  await r.stop();
  await cl.waitLink([a], 'CONNECTING', 5000).catch(() => cl.waitLink([a], 'DOWN', 5000));
  await sf.waitUntil(() => outcomes.some((o) => o.http === 503), 5000, 'no refusal seen');

  // While Redis is down: the refusals say why ...
  const refused = outcomes.find((o) => o.http === 503);
  assert.match(refused.body.error, /cluster unavailable/);
  const ackRefused = outcomes.find((o) => o.ack.ok === false);
  assert.ok(ackRefused, 'a refused client publish');
  assert.strictEqual(ackRefused.ack.code, 'CLUSTER_UNAVAILABLE');
  const h = await a.health();
  assert.notStrictEqual(h.cluster.link, 'UP');
  assert.ok(h.cluster.lastError, JSON.stringify(h.cluster));
  assert.ok(sf.metricValue(await a.metrics(), 'streamfence_cluster_publish_refused_total') > 0);
  assert.strictEqual(sf.metricValue(await a.metrics(), 'streamfence_cluster_link_up'), 0);
  // ... and local connections keep being served: connect, subscribe, publishTo a local client.
  const local = await sf.connect(a, '/feed');
  const rl = sf.recorder(local);
  assert.deepStrictEqual(await sf.call(local, 'subscribe', { topic: 'prices' }), { ok: true });
  const to = await a.publish({ namespace: '/feed', topic: 'prices', clientId: local.id, payload: { local: true } });
  assert.strictEqual(to.status, 200, to.body);
  await sf.waitUntil(() => rl.count('prices') === 1, 2000);
  await sf.sleep(500); // a few refusals more, then Redis comes back

  await r.restart();
  await cl.waitLink([a, b, c], 'UP', 15000);
  await cl.waitSubscriptions(b, 1);
  const resumedFrom = seq + 1;  // published once every node is back and node-b re-subscribed
  await sf.waitUntil(() => outcomes.slice(-5).length === 5 && outcomes.slice(-5).every((o) => o.http === 200 && o.ack.ok), 10000,
    () => `not resumed: ${JSON.stringify(outcomes.slice(-3))}`);
  stop = true;
  await loop;
  await sf.sleep(1500);

  // Every publish was either refused or delivered, never lost silently.
  const accepted = outcomes.filter((o) => o.http === 200).map((o) => o.i);
  const refusedIdx = outcomes.filter((o) => o.http !== 200).map((o) => o.i);
  assert.ok(refusedIdx.length > 0);
  assert.ok(refusedIdx.every((i) => outcomes.find((o) => o.i === i).http === 503));
  const seen = new Set(rb.payloads('prices').map((p) => p.i));
  // BEST_EFFORT loses what other nodes publish while a node is not subscribed (Redis pub/sub
  // keeps nothing); everything accepted once all are back arrives.
  for (const i of accepted.filter((x) => x >= resumedFrom)) assert.ok(seen.has(i), `message ${i} accepted after resumption but not delivered`);
  // AT_LEAST_ONCE: every acked client publish reached node-c's subscriber.
  const ackedAlerts = outcomes.filter((o) => o.ack.ok).map((o) => o.i);
  const gotSet = new Set(gotAlerts);
  const lostAlerts = ackedAlerts.filter((k) => !gotSet.has(k));
  assert.deepStrictEqual(lostAlerts, [], `acked but never delivered: ${lostAlerts}`);
  assert.ok(sf.metricValue(await a.metrics(), 'streamfence_cluster_reconnects_total') >= 1);
  assert.match(a.logs, /event=cluster_link_down/);
  assert.match(a.logs, /event=cluster_publish_refused/);
  assert.match(a.logs, /event=cluster_link_up .*resumed=true/);
  for (const s of [sb, sc, pub, pubAlerts, local]) s.close();
});

test('a node started while Redis is unreachable serves locally, refuses cross-node publishes, joins when Redis appears', async () => {
  const port = await cl.redis.freePort();
  const h = await sf.start(SERVER, { cluster: { redis: { url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 }, nodeId: 'late', heartbeatMs: 200, nodeTtlMs: 1000 } });
  const s = await sf.connect(h, '/feed');
  assert.deepStrictEqual(await sf.call(s, 'subscribe', { topic: 'prices' }), { ok: true });
  const res = await h.publish({ namespace: '/feed', topic: 'prices', payload: {} });
  assert.strictEqual(res.status, 503);
  assert.strictEqual(res.headers['retry-after'], '1');
  const ack = await sf.call(s, 'publish', { topic: 'prices', payload: {} });
  assert.strictEqual(ack.code, 'CLUSTER_UNAVAILABLE');
  const r = await cl.redis.start(port);
  await cl.waitLink([h], 'UP', 10000);
  assert.strictEqual((await h.publish({ namespace: '/feed', topic: 'prices', payload: {} })).status, 200);
  assert.deepStrictEqual(await sf.call(s, 'publish', { topic: 'prices', payload: {} }), { ok: true });
  s.close();
  await sf.stop(h);
  // A clean stop leaves the cluster at once.
  assert.deepStrictEqual(await r.command('ZRANGE', 'sf:nodes:test', '0', '-1'), []);
});

'use strict';
// Cluster subscribe (docs/cluster.md, "Subscribing"): `subscribed` is answered once the node
// receives what any node publishes to the topic, so a publish made on another node right after
// it reaches the client. Node B talks to Redis through a link that holds every chunk 300 ms,
// which makes the gap between "subscribed here" and "subscribed in Redis" certain.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');
const cl = require('./lib/cluster');

require('./lib/watchdog')('cluster_subscribe', 120000, async () => { await sf.stopAll(); await cl.redis.stopAll(); });

const SERVER = { namespaces: [sf.ns('/feed', ['prices', 'news'])] };
const DELAY = 300;

let r;
let slow;
let a;
let b;
test.before(async () => {
  r = await cl.redis.start();
  slow = await cl.proxy({ delayMs: DELAY });
  slow.target = r.port;
  const node = (nodeId, port) => ({ cluster: { redis: { url: `redis://127.0.0.1:${port}/0`, commandTimeoutMs: 3000, connectTimeoutMs: 3000 },
    nodeId, heartbeatMs: 200, nodeTtlMs: 5000, socketioEmitterKey: null } });
  a = await sf.start(SERVER, node('node-a', r.port));
  b = await sf.start(SERVER, node('node-b', slow.port));
  await cl.waitLink([a, b], 'UP');
  await sf.waitUntil(async () => (await cl.health(a)).cluster.nodes.length === 2 && (await cl.health(b)).cluster.nodes.length === 2,
    10000, 'nodes did not see each other');
});
test.after(async () => { await sf.stopAll(); slow.close(); await cl.redis.stopAll(); });

test('a publish on another node right after `subscribed` reaches the client', async () => {
  const c = await sf.connect(b, '/feed');
  const rec = sf.recorder(c);
  const confirmed = [];
  c.on('subscribed', (e) => confirmed.push(e.topic));
  const t0 = Date.now();
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'prices' }), { ok: true });
  const waited = Date.now() - t0;
  const res = await a.publish({ namespace: '/feed', topic: 'prices', payload: { n: 1 } });
  assert.strictEqual(res.status, 200, res.body);
  await sf.waitUntil(() => rec.count('prices') === 1, 3000,
    () => `the publish after subscribed (answered in ${waited} ms) never arrived`);
  assert.deepStrictEqual(confirmed, ['prices']);
  // A second subscriber of a topic Redis already confirmed is not held up by the slow link.
  const c2 = await sf.connect(b, '/feed');
  const t1 = Date.now();
  await sf.call(c2, 'subscribe', { topic: 'prices' });
  const second = Date.now() - t1;
  assert.ok(second < waited, `second subscribe took ${second} ms, the first ${waited} ms`);
  c.close(); c2.close();
});

test('with Redis unreachable a subscribe is still answered, at once', async () => {
  const c = await sf.connect(b, '/feed');
  slow.target = 1;  // nothing listens there: the reconnect fails
  slow.cut();
  await sf.waitUntil(async () => (await cl.health(b)).cluster.link !== 'UP', 10000, 'link stayed UP');
  const t0 = Date.now();
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'news' }), { ok: true });
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  c.close();
  slow.target = r.port;
  await cl.waitLink([b], 'UP');
});

'use strict';
// The control listener: POST /v1/publish (single and batch), status codes, bearer token,
// /health and /metrics.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

let srv;
let locked;
test.before(async () => {
  srv = await sf.start({ namespaces: [sf.ns('/feed', ['prices'])] });
  locked = await sf.start({ namespaces: [sf.ns('/feed', ['prices'])], control: { host: '127.0.0.1', port: 0, token: 's3cret' } });
});
test.after(async () => { await sf.stopAll(); });

test('publish status codes', async () => {
  const ok = await srv.publish({ namespace: '/feed', topic: 'prices', payload: { p: 1 } });
  assert.strictEqual(ok.status, 200);
  assert.strictEqual((await srv.publish('{"namespace":')).status, 400);
  assert.strictEqual((await srv.publish({ topic: 'prices', payload: 1 })).status, 400);
  assert.strictEqual((await srv.publish({ namespace: '/feed', payload: 1 })).status, 400);
  assert.strictEqual((await srv.publish({ namespace: '/feed', topic: 'prices' })).status, 400);
  assert.strictEqual((await srv.publish({ namespace: '/feed', topic: 'nope', payload: 1 })).status, 404);
  assert.strictEqual((await srv.publish({ namespace: '/nope', topic: 'prices', payload: 1 })).status, 404);
  const get = await sf.request(srv.controlPort, 'GET', '/v1/publish');
  assert.strictEqual(get.status, 405);
  assert.strictEqual((await sf.request(srv.controlPort, 'GET', '/nowhere')).status, 404);
});

test('a batch gets one status per message, and every valid one is delivered', async () => {
  const c = await sf.connect(srv, '/feed');
  const rec = sf.recorder(c);
  await sf.call(c, 'subscribe', { topic: 'prices' });
  const r = await srv.publish([
    { namespace: '/feed', topic: 'prices', payload: 1 },
    { namespace: '/feed', topic: 'nope', payload: 2 },
    { namespace: '/feed', topic: 'prices' },
    { namespace: '/feed', topic: 'prices', payload: 3 },
  ]);
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(r.json.results.map((x) => x.status), [200, 404, 400, 200]);
  await sf.waitUntil(() => rec.count('prices') === 2, 3000);
  assert.deepStrictEqual(rec.payloads('prices'), [1, 3]);
  c.close();
});

test('bearer token protects publish and metrics, not health', async () => {
  const body = { namespace: '/feed', topic: 'prices', payload: 1 };
  assert.strictEqual((await locked.publish(body)).status, 401);
  assert.strictEqual((await locked.publish(body, { authorization: 'Bearer wrong' })).status, 401);
  assert.strictEqual((await locked.publish(body, { authorization: 'Bearer s3cret' })).status, 200);
  assert.strictEqual((await sf.request(locked.controlPort, 'GET', '/metrics')).status, 401);
  assert.strictEqual((await sf.request(locked.controlPort, 'GET', '/health')).status, 200);
});

test('health and metrics', async () => {
  const h = await sf.request(srv.controlPort, 'GET', '/health');
  assert.strictEqual(h.status, 200);
  assert.strictEqual(h.json.status, 'UP');
  const m = await sf.request(srv.controlPort, 'GET', '/metrics');
  assert.strictEqual(m.status, 200);
  assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  assert.match(m.body, /streamfence_messages_published_total\{namespace="\/feed",topic="prices"\} \d+/);
});

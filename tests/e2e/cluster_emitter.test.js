'use strict';
// The real @socket.io/redis-emitter (with the real `redis` client) publishing to three
// streamfenced nodes (docs/cluster.md "Socket.IO emitter"): the room is the topic, every
// subscriber on every node gets the message once, under delivery control.
const test = require('node:test');
const assert = require('node:assert');
const { createClient } = require('redis');
const { Emitter } = require('@socket.io/redis-emitter');
const notepack = require('notepack.io'); // the emitter's own msgpack encoder (its dependency)
const sf = require('./lib/streamfenced');
const cl = require('./lib/cluster');

const SERVER = { namespaces: [sf.ns('/feed', ['prices', 'news', '42'], { maxQueuedMessagesPerClient: 1024 })] };

let r;
let nodes;
let redisClient;
let emitter;
test.before(async () => {
  r = await cl.redis.start();
  nodes = await cl.startNodes(r, 3, SERVER);  // socketioEmitterKey defaults to socket.io
  redisClient = createClient({ url: `redis://127.0.0.1:${r.port}` });
  await redisClient.connect();
  emitter = new Emitter(redisClient);
});
test.after(async () => {
  if (redisClient) await redisClient.quit();
  await sf.stopAll();
  await cl.redis.stopAll();
});

async function subscribers(topics) {
  const out = [];
  for (const n of nodes) {
    const s = await sf.connect(n, '/feed');
    const rec = sf.recorder(s);
    for (const t of topics) await sf.call(s, 'subscribe', { topic: t });
    out.push({ s, rec, node: n });
  }
  // per node: the topic's own channel, the emitter's room channel per topic, its namespace channel
  for (const n of nodes) await cl.waitSubscriptions(n, topics.length * 2 + 1);
  return out;
}

test('emitter.of(ns).to(topic).emit(...) reaches every subscriber of the topic on every node', async () => {
  const subs = await subscribers(['prices']);
  for (let i = 0; i < 20; i++) emitter.of('/feed').to('prices').emit('prices', { p: i });
  for (const { rec } of subs) await sf.waitUntil(() => rec.count('prices') >= 20, 5000, () => `got ${rec.count('prices')}`);
  await sf.sleep(200);
  for (const { rec, node } of subs) {
    assert.deepStrictEqual(rec.payloads('prices').map((p) => p.p), [...Array(20).keys()], node.nodeId);
    assert.strictEqual(sf.metricValue(await node.metrics(), 'streamfence_cluster_messages_in_total', { via: 'emitter' }), 20);
    // under delivery control: counted as published on the topic of each node
    assert.strictEqual(sf.metricValue(await node.metrics(), 'streamfence_messages_published_total', { namespace: '/feed', topic: 'prices' }), 20);
  }
  // a message for another namespace on our channel (the emitter's own encoding, by hand) is
  // not ours, as the Socket.IO adapter would drop it
  await redisClient.publish('socket.io#/feed#prices#', notepack.encode(['x', { type: 2, data: ['prices', { p: 'other' }], nsp: '/other' }, { rooms: ['prices'], except: [], flags: {} }]));
  // several arguments arrive as one array payload
  emitter.of('/feed').to('prices').emit('prices', 1, 'two', { three: 3 });
  for (const { rec } of subs) await sf.waitUntil(() => rec.count('prices') === 21, 3000);
  for (const { rec } of subs) assert.deepStrictEqual(rec.payloads('prices')[20], [1, 'two', { three: 3 }]);
  for (const { s } of subs) s.close();
  for (const n of nodes) await cl.waitSubscriptions(n, 0);
});

test('several rooms: each room that is a topic gets it once; integer rooms; binary and room-less emits are refused, counted', async () => {
  const subs = await subscribers(['news', '42']);
  emitter.of('/feed').to('news').to(42).to('not-a-topic').emit('x', { multi: true });
  for (const { rec } of subs) await sf.waitUntil(() => rec.count('news') === 1 && rec.count('42') === 1, 3000);
  const before = sf.metricValue(await nodes[0].metrics(), 'streamfence_cluster_emitter_rejected_total');
  emitter.of('/feed').to('news').emit('bin', Buffer.from([1, 2, 3]));
  emitter.of('/feed').emit('everyone', { no: 'room' });
  await sf.waitUntil(async () => sf.metricValue(await nodes[0].metrics(), 'streamfence_cluster_emitter_rejected_total') === before + 2, 3000);
  await sf.sleep(200);
  for (const { rec } of subs) {
    assert.deepStrictEqual(rec.payloads('news'), [{ multi: true }]);
    assert.deepStrictEqual(rec.payloads('42'), [{ multi: true }]);
  }
  assert.match(nodes[0].logs, /event=cluster_emitter_rejected .*binary arguments are not supported/);
  for (const { s } of subs) s.close();
});

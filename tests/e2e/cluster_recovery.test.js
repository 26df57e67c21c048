'use strict';
// Connection-state recovery across nodes (docs/cluster.md "Recovery across nodes"): stock
// socket.io-client 4.x behind a small TCP proxy standing in for the load balancer. The
// proxy cuts the client's connection and sends its reconnect to another node; the client
// must get the same id, `recovered === true`, its subscriptions and what it missed —
// from the previous node's lanes when that node is alive, from the AT_LEAST_ONCE streams
// when it was killed with -9.
const test = require('node:test');
const assert = require('node:assert');
const { io } = require('socket.io-client');
const sf = require('./lib/streamfenced');
const cl = require('./lib/cluster');

const SERVER = {
  connectionStateRecovery: { maxDisconnectionDurationMs: 30000 },
  namespaces: [
    sf.ns('/feed', ['prices', 'news'], { maxQueuedMessagesPerClient: 4096 }),
    sf.ns('/alerts', ['order'], { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 5000, maxRetries: 3, maxInFlight: 16, maxQueuedMessagesPerClient: 1024 }),
  ],
};

const clients = [];  // closed in after(): a failed test must not leave a client reconnecting forever
function client(p, nsPath, transports = ['websocket']) {
  const s = io(`http://127.0.0.1:${p.port}${nsPath}`, {
    transports, forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0,
  });
  clients.push(s);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timeout')), 8000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
  });
}

// The proxy drops the connection and the client's own reconnection lands on `to`.
function moveTo(p, c, to) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reconnect')), 10000);
    c.once('connect', () => { clearTimeout(t); resolve(c.recovered); });
    p.target = to.port;
    p.cut();
  });
}

async function publishSeq(node, nsPath, topic, from, to) {
  const msgs = [];
  for (let i = from; i <= to; i++) msgs.push({ namespace: nsPath, topic, payload: { seq: i } });
  const r = await node.publish(msgs);
  assert.strictEqual(r.status, 200, r.body);
  r.json.results.forEach((e) => assert.strictEqual(e.status, 200, JSON.stringify(e)));
}

const metric = async (node, name, labels) => sf.metricValue(await node.metrics(), name, labels);
const sessionKeys = async (r) => r.command('KEYS', 'sf:sess:*');

let r;
let a;
let b;
let c;
let p;
test.before(async () => {
  r = await cl.redis.start();
  [a, b, c] = await cl.startNodes(r, 3, SERVER, { socketioEmitterKey: null });
  p = await cl.proxy();
});
test.after(async () => {
  for (const s of clients) s.close();
  p.close();
  await sf.stopAll();
  await cl.redis.stopAll();
});

test('BEST_EFFORT: a client cut on one node recovers on another mid-stream: same id, no gap, no duplicate', async () => {
  p.target = b.port;
  const cli = await client(p, '/feed');
  const id = cli.id;
  const got = [];
  cli.on('prices', (payload) => got.push(payload.seq));
  await sf.call(cli, 'subscribe', { topic: 'prices' });
  await cl.waitSubscriptions(b, 1);
  // the record other nodes recover it from (written within a heartbeat)
  await sf.waitUntil(async () => (await sessionKeys(r)).length === 1, 3000, 'no session record in Redis');
  // an open-loop publisher on node-a, 20 messages every 10 ms, across the move
  let seq = 0;
  let stop = false;
  const pub = (async () => {
    while (!stop) { await publishSeq(a, '/feed', 'prices', seq, seq + 19); seq += 20; await sf.sleep(10); }
  })();
  await sf.waitUntil(() => got.length > 100, 5000);
  const recovered = await moveTo(p, cli, c);
  await sf.sleep(300);
  stop = true;
  await pub;
  assert.strictEqual(recovered, true, 'socket.recovered');
  assert.strictEqual(cli.id, id, 'same id on the other node');
  await sf.waitUntil(() => got.length >= seq, 5000, () => `got ${got.length} of ${seq}: first missing ${[...Array(seq).keys()].find((i) => !got.includes(i))}, dups ${got.length - new Set(got).size}\n${b.logs.split('\n').filter((l) => /session|recover/.test(l)).join('\n')}\n---\n${c.logs.split('\n').filter((l) => /session|recover|gap|warn/.test(l)).join('\n')}`);
  await sf.sleep(200);
  assert.deepStrictEqual(got, [...Array(seq).keys()], 'every message once, in order');
  assert.strictEqual(await metric(c, 'streamfence_sessions_recovered_total', { namespace: '/feed' }), 1);
  assert.strictEqual(await metric(c, 'streamfence_cluster_sessions_claimed_total'), 1);
  assert.strictEqual(await metric(b, 'streamfence_cluster_sessions_handed_over_total'), 1);
  assert.match(b.logs, /event=session_handed_over namespace=\/feed/);
  // the subscription lives on node-c now: node-b left the topic's channel
  await cl.waitSubscriptions(b, 0);
  await publishSeq(a, '/feed', 'prices', seq, seq);
  await sf.waitUntil(() => got.length === seq + 1, 3000);
  cli.disconnect();
  // a clean end drops the record: nobody can recover it any more
  await sf.waitUntil(async () => (await sessionKeys(r)).length === 0, 3000, 'record left after disconnect');
});

test('over long-polling too: the reconnect on another node recovers the session', async () => {
  p.target = a.port;
  const cli = await client(p, '/feed', ['polling']);
  const id = cli.id;
  const got = [];
  cli.on('news', (payload) => got.push(payload.seq));
  await sf.call(cli, 'subscribe', { topic: 'news' });
  await cl.waitSubscriptions(a, 1);
  await publishSeq(b, '/feed', 'news', 0, 9);
  await sf.waitUntil(() => got.length === 10, 3000);
  const moved = moveTo(p, cli, c);
  // published on node-b while the client is between nodes: node-a holds them for it
  await publishSeq(b, '/feed', 'news', 10, 19);
  assert.strictEqual(await moved, true);
  assert.strictEqual(cli.id, id);
  await sf.waitUntil(() => got.length >= 20, 5000, () => JSON.stringify(got));
  await sf.sleep(200);
  assert.deepStrictEqual(got, [...Array(20).keys()]);
  cli.disconnect();
});

test('AT_LEAST_ONCE: unacked messages move with the session and are resent with the same messageId', async () => {
  p.target = b.port;
  const cli = await client(p, '/alerts');
  const id = cli.id;
  const seen = [];
  let acking = false;
  cli.on('order', (payload, meta) => {
    seen.push([payload.seq, meta.messageId]);
    if (acking) cli.emit('ack', { topic: 'order', messageId: meta.messageId });
  });
  await sf.call(cli, 'subscribe', { topic: 'order' });
  await sf.waitUntil(async () => (await b.health()).cluster.streams === 1, 3000);
  await publishSeq(a, '/alerts', 'order', 1, 5);
  await sf.waitUntil(() => seen.length === 5, 3000, () => JSON.stringify(seen));
  const firstIds = seen.map(([, m]) => m);
  acking = true;
  assert.strictEqual(await moveTo(p, cli, c), true);
  assert.strictEqual(cli.id, id);
  await publishSeq(a, '/alerts', 'order', 6, 8);
  await sf.waitUntil(() => seen.length >= 13, 5000, () => JSON.stringify(seen));
  await sf.sleep(300);
  // the five in flight again with their ids (a resend is not a retry), then 6..8 once
  assert.deepStrictEqual(seen.slice(5).map(([s]) => s), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepStrictEqual(seen.slice(5, 10).map(([, m]) => m), firstIds);
  assert.strictEqual(await metric(c, 'streamfence_retries_total', { namespace: '/alerts', topic: 'order' }), 0);
  cli.disconnect();
});

test('kill -9 of the node: the client recovers on another node; AT_LEAST_ONCE missed messages come from the stream', async () => {
  p.target = b.port;
  const cli = await client(p, '/alerts');
  const feed = await client(p, '/feed');
  const id = cli.id;
  const seen = [];
  cli.on('order', (payload, meta) => {
    seen.push(payload.seq);
    cli.emit('ack', { topic: 'order', messageId: meta.messageId });
  });
  const news = [];
  feed.on('news', (payload) => news.push(payload.n));
  await sf.call(cli, 'subscribe', { topic: 'order' });
  await sf.call(feed, 'subscribe', { topic: 'news' });
  await sf.waitUntil(async () => (await b.health()).cluster.streams === 1, 3000);
  await publishSeq(a, '/alerts', 'order', 1, 10);
  await sf.waitUntil(() => seen.length === 10, 3000, () => JSON.stringify(seen));
  // let node-b write where the client acked up to (once per heartbeat)
  await sf.sleep(1200);
  const gapsBefore = await metric(c, 'streamfence_recovery_gaps_total', { namespace: '/feed' });
  const back = new Promise((resolve) => cli.once('connect', () => resolve(cli.recovered)));
  const feedBack = new Promise((resolve) => feed.once('connect', () => resolve(feed.recovered)));
  b.proc.kill('SIGKILL');
  p.target = c.port;
  p.cut();
  await publishSeq(a, '/alerts', 'order', 11, 20);
  assert.strictEqual(await back, true, 'recovered on node-c');
  assert.strictEqual(cli.id, id);
  assert.strictEqual(await feedBack, true, 'the BEST_EFFORT session too');
  await sf.waitUntil(() => seen.length >= 20, 5000, () => JSON.stringify(seen));
  await sf.sleep(300);
  assert.deepStrictEqual(seen, [...Array(20).keys()].map((i) => i + 1), 'nothing lost, nothing acked twice');
  // its BEST_EFFORT subscription came back with it; what node-b held died with node-b (counted)
  await sf.waitUntil(async () => (await c.health()).cluster.subscriptions >= 1, 3000);
  await a.publish({ namespace: '/feed', topic: 'news', payload: { n: 1 } });
  await sf.waitUntil(() => news.length === 1, 3000);
  assert.strictEqual(await metric(c, 'streamfence_recovery_gaps_total', { namespace: '/feed' }) - gapsBefore, 1);
  assert.strictEqual(await metric(c, 'streamfence_cluster_session_owner_gone_total'), 2);
  cli.disconnect();
  feed.disconnect();
});

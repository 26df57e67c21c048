'use strict';
// streamfence-js API parity of the embedding API, through tests/embed-parity: a listener added
// after start() gets every event with streamfence-js's field names (transport and principal on
// connect, remoteAddress on auth rejection, 1-based retryCount), port() resolves port 0,
// onMessage gets the InboundMessageContext fields and binary parts as bytes, the byte
// overloads of publish/publishTo deliver binary, and inboundAckPolicy (from the config)
// answers a client publish after the handlers: HANDLER_FAILED when one failed.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const sf = require('./lib/streamfenced');

const BIN = path.join(process.env.SF_BUILD_DIR || '../build', 'tests', 'embed-parity', 'embed_parity_server');

async function startParity() {
  const dir = sf.tmpdir('sf-parity-');
  const cfg = {
    pluginDir: sf.PLUGIN_DIR,
    logLevel: 'warn',
    plugins: { static: { tokens: { alice: 'alice-token' } } },
    servers: {
      parity: {
        host: '127.0.0.1',
        port: 0,
        auth: 'TOKEN',
        tokenValidator: 'static',
        namespaces: [
          { path: '/strict', topics: ['orders'], inboundAckPolicy: 'ACK_AFTER_HANDLER_SUCCESS' },
          { path: '/lax', topics: ['orders', 'echo'] },
          { path: '/private', topics: ['t'], authRequired: true },
          { path: '/rel', topics: ['t'], deliveryMode: 'AT_LEAST_ONCE', maxRetries: 2, ackTimeoutMs: 200 },
          { path: '/tiny', topics: ['t'], maxQueuedBytesPerClient: 100 },
        ],
      },
    },
  };
  const file = path.join(dir, 'parity.json');
  fs.writeFileSync(file, JSON.stringify(cfg));
  const proc = spawn(BIN, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const h = { proc, out: '', err: '' };
  proc.stdout.on('data', (d) => { h.out += d; });
  proc.stderr.on('data', (d) => { h.err += d; });
  await sf.waitUntil(() => /^port=(\d+)$/m.test(h.out), 10000, () => `not started:\n${h.out}${h.err}`);
  h.port = Number(/^port=(\d+)$/m.exec(h.out)[1]);
  h.url = (ns) => `http://127.0.0.1:${h.port}${ns}`;
  h.events = (name) => h.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((e) => e.event === name);
  h.stop = () => new Promise((resolve) => { proc.once('exit', resolve); proc.kill('SIGTERM'); });
  return h;
}

test('embedding API: streamfence-js listener events, onMessage context, inboundAckPolicy, binary overloads', async () => {
  const h = await startParity();
  try {
    assert.ok(h.port > 0, 'port() after start with port 0 is the bound port');

    // --- connect / subscribe / publish events with their fields
    const ws = await sf.connect(h, '/strict');
    const poll = await sf.connect(h, '/lax', { transports: ['polling'] });
    const alice = await sf.connect(h, '/private', { auth: { token: 'alice-token' } });
    await sf.waitUntil(() => h.events('onClientConnected').length === 3, 5000, () => h.out);
    const conn = Object.fromEntries(h.events('onClientConnected').map((e) => [e.clientId, e]));
    assert.deepStrictEqual(conn[ws.id], { event: 'onClientConnected', namespace: '/strict', clientId: ws.id, transport: 'websocket', principal: null });
    assert.deepStrictEqual(conn[poll.id], { event: 'onClientConnected', namespace: '/lax', clientId: poll.id, transport: 'polling', principal: null });
    assert.deepStrictEqual(conn[alice.id], { event: 'onClientConnected', namespace: '/private', clientId: alice.id, transport: 'websocket', principal: 'alice' });

    await assert.rejects(sf.connect(h, '/private', { auth: { token: 'wrong' } }), /AUTH_REJECTED/);
    await sf.waitUntil(() => h.events('onAuthRejected').length === 1, 5000, () => h.out);
    const rej = h.events('onAuthRejected')[0];
    assert.strictEqual(rej.namespace, '/private');
    assert.strictEqual(rej.reason, 'Invalid token');
    assert.match(rej.remoteAddress, /^127\.0\.0\.1:\d+$/);
    assert.ok(typeof rej.clientId === 'string' && rej.clientId.length > 0);

    // --- ACK_AFTER_HANDLER_SUCCESS: the ack follows the handler's verdict; failures are not fanned out
    const sub = await sf.connect(h, '/strict');
    const fanned = [];
    sub.on('orders', (p) => fanned.push(p));
    assert.deepStrictEqual(await sf.call(sub, 'subscribe', { topic: 'orders' }), { ok: true });
    assert.deepStrictEqual(await sf.call(ws, 'publish', { topic: 'orders', payload: { id: 1, blob: Buffer.from([1, 2, 3]) } }), { ok: true });
    assert.deepStrictEqual(await sf.call(ws, 'publish', { topic: 'orders', payload: { id: 2, fail: true } }),
      { ok: false, code: 'HANDLER_FAILED', message: 'order refused by handler' });
    assert.deepStrictEqual(await sf.call(ws, 'publish', { topic: 'orders', payload: { id: 3, throw: true } }),
      { ok: false, code: 'HANDLER_FAILED', message: 'handler threw on purpose' });
    const r4 = await sf.call(ws, 'publish', { topic: 'orders', payload: { id: 4, false: true } });
    assert.strictEqual(r4.code, 'HANDLER_FAILED');
    await sf.waitUntil(() => fanned.length === 1, 5000, 'the accepted order was not fanned out');
    await sf.sleep(200);
    assert.deepStrictEqual(fanned.map((p) => p.id), [1], 'failed orders are not fanned out');
    assert.ok(Buffer.from([1, 2, 3]).equals(fanned[0].blob));
    const msgs = h.events('message').filter((e) => e.namespace === '/strict');
    assert.strictEqual(msgs.length, 4);
    const ctx = msgs[0];
    assert.strictEqual(ctx.clientId, ws.id);
    assert.strictEqual(ctx.principal, null);
    assert.strictEqual(ctx.topic, 'orders');
    assert.match(ctx.messageId, /^msg-\d+$/);
    assert.ok(Math.abs(ctx.receivedAtMs - Date.now()) < 60000);
    assert.strictEqual(ctx.payloadJson, '{"id":1,"blob":{"_placeholder":true,"num":0}}');
    assert.deepStrictEqual(ctx.binary, ['010203']);
    const prej = h.events('onPublishRejected').filter((e) => e.namespace === '/strict');
    assert.deepStrictEqual(prej[0], { event: 'onPublishRejected', namespace: '/strict', clientId: ws.id, topic: 'orders', reasonCode: 'HANDLER_FAILED', reason: 'order refused by handler' });
    assert.deepStrictEqual(h.events('onPublishAccepted').filter((e) => e.namespace === '/strict'),
      [{ event: 'onPublishAccepted', namespace: '/strict', clientId: ws.id, topic: 'orders' }]);

    // --- ACK_ON_RECEIPT (default): a throwing handler is logged, the publish still succeeds
    assert.deepStrictEqual(await sf.call(poll, 'publish', { topic: 'orders', payload: { throw: true } }), { ok: true });

    // --- byte overloads of publish / publishTo, over polling
    const other = await sf.connect(h, '/lax');
    const echoes = { poll: [], other: [] };
    poll.on('echo', (p) => echoes.poll.push(p));
    other.on('echo', (p) => echoes.other.push(p));
    for (const c of [poll, other]) assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'echo' }), { ok: true });
    const a = Buffer.from([0, 255, 0x1e, 10]);
    const b = Buffer.alloc(3000, 0x5a);
    assert.deepStrictEqual(await sf.call(poll, 'publish', { topic: 'orders', payload: { a, nested: [{ b }] } }), { ok: true });
    await sf.waitUntil(() => echoes.poll.length === 2 && echoes.other.length === 1, 5000, () => JSON.stringify(echoes));
    assert.ok(Buffer.isBuffer(echoes.other[0]) && echoes.other[0].equals(a), 'publish(Bytes) reached every subscriber as a Buffer');
    const back = echoes.poll.find((p) => !Buffer.isBuffer(p));
    assert.ok(back.back.a.equals(a) && back.back.nested[0].b.equals(b), 'publishTo(json, parts) rebuilt the nesting');

    // --- retries: 1-based retryCount, exhausted with the total
    const rel = await sf.connect(h, '/rel');
    let relGot = 0;
    rel.on('t', () => { relGot++; });
    await sf.call(rel, 'subscribe', { topic: 't' });
    const pubRel = await sf.connect(h, '/rel');
    assert.deepStrictEqual(await sf.call(pubRel, 'publish', { topic: 't', payload: { n: 1 } }), { ok: true });
    await sf.waitUntil(() => h.events('onRetryExhausted').length === 1, 5000, () => h.out);
    const retries = h.events('onRetry');
    assert.deepStrictEqual(retries.map((e) => e.retryCount), [1, 2]);
    assert.deepStrictEqual(Object.keys(retries[0]), ['event', 'namespace', 'clientId', 'topic', 'messageId', 'retryCount']);
    assert.strictEqual(h.events('onRetryExhausted')[0].retryCount, 2);
    assert.strictEqual(relGot, 3);

    // --- queue overflow: a binary part over the lane's byte limit (the JSON alone would fit)
    const tiny = await sf.connect(h, '/tiny');
    await sf.call(tiny, 'subscribe', { topic: 't' });
    assert.deepStrictEqual(await sf.call(tiny, 'publish', { topic: 't', payload: { b: Buffer.alloc(200) } }), { ok: true });
    await sf.waitUntil(() => h.events('onQueueOverflow').length === 1, 5000, () => h.out);
    assert.deepStrictEqual(h.events('onQueueOverflow')[0],
      { event: 'onQueueOverflow', namespace: '/tiny', clientId: tiny.id, topic: 't', reason: 'message exceeds maxQueuedBytesPerClient' });

    const subs = h.events('onSubscribed').find((e) => e.clientId === sub.id);
    assert.deepStrictEqual(subs, { event: 'onSubscribed', namespace: '/strict', clientId: sub.id, topic: 'orders' });
    assert.deepStrictEqual(await sf.call(sub, 'unsubscribe', { topic: 'orders' }), { ok: true });
    await sf.waitUntil(() => h.events('onUnsubscribed').length === 1, 5000, () => h.out);
    for (const c of [ws, poll, alice, sub, other, rel, pubRel, tiny]) c.close();
    await sf.waitUntil(() => h.events('onClientDisconnected').length === 8, 5000, () => h.out);
    assert.deepStrictEqual(Object.keys(h.events('onClientDisconnected')[0]), ['event', 'namespace', 'clientId']);
  } finally {
    await h.stop();
  }
  assert.match(h.out, /^stopped$/m);
});

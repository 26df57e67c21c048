'use strict';
// Durable AT_LEAST_ONCE (docs/recovery.md): a namespace with `durable: true` keeps every
// accepted message and its held sessions in a journal, so after kill -9 and a restart on the
// same port a stock socket.io-client that reconnects by itself gets its session back
// (recovered === true, same id) and receives every message that was accepted (control API
// 200) and not acked, with the same messageId; new messageIds never repeat old ones.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { io } = require('socket.io-client');
const sf = require('./lib/streamfenced');

test.after(async () => { await sf.stopAll(); });

const recovery = { connectionStateRecovery: { maxDisconnectionDurationMs: 60000 } };
const durableNs = (extra = {}) => sf.ns('/d', ['t'], Object.assign({
  deliveryMode: 'AT_LEAST_ONCE', durable: true, maxRetries: 5, ackTimeoutMs: 60000, maxInFlight: 2000,
  maxQueuedMessagesPerClient: 10000, maxQueuedBytesPerClient: 16 << 20,
}, extra));

function client(srv) {
  const s = io(srv.url('/d'), { transports: ['websocket'], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0 });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timeout')), 8000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
  });
}

test('--check: durable needs AT_LEAST_ONCE and connectionStateRecovery (file:line)', () => {
  const dir = sf.tmpdir();
  const file = path.join(dir, 'durable.yaml');
  fs.writeFileSync(file, [
    'servers:',
    '  s:',
    '    port: 3000',
    '    namespaces:',
    '      - path: /d',
    '        topics: [t]',
    '        durable: true',
    '',
  ].join('\n'));
  const r = spawnSync(sf.BIN, ['--check', '-c', file, '--plugin-dir', sf.PLUGIN_DIR], { encoding: 'utf8', timeout: 20000 });
  assert.strictEqual(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /durable\.yaml:7:\d+: servers\.s\.namespaces\[0\]\.durable: durable requires deliveryMode AT_LEAST_ONCE/);
  assert.match(r.stderr, /durable\.yaml:7:\d+: servers\.s\.namespaces\[0\]\.durable: durable requires connectionStateRecovery/);
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('        durable: true',
    '        durable: true\n        deliveryMode: AT_LEAST_ONCE\n        maxRetries: 1') + '    connectionStateRecovery: {}\n');
  const ok = spawnSync(sf.BIN, ['--check', '-c', file, '--plugin-dir', sf.PLUGIN_DIR], { encoding: 'utf8', timeout: 20000 });
  assert.strictEqual(ok.status, 0, ok.stderr);
});

test('kill -9 mid-stream: after a restart on the same port the client recovers every accepted, unacked message', async () => {
  const spill = path.join(sf.tmpdir(), 'spill');
  const server = (port) => Object.assign({ port, spillRootPath: spill, namespaces: [durableNs()] }, recovery);
  let srv = await sf.start(server(0));
  const port = srv.port;
  const c = await client(srv);
  const id = c.id;
  const before = new Map();  // seq -> messageId, received before the kill
  const after = new Map();   // seq -> messageId, received after the restart
  const acked = new Set();   // seqs acked before the kill
  let restarted = false;
  c.on('t', (payload, meta, offset) => {
    assert.strictEqual(offset, meta.messageId, 'the recovery offset is the messageId');
    (restarted ? after : before).set(payload.seq, meta.messageId);
    // Before the kill every third message stays unacked; after the restart all are acked.
    if (restarted || payload.seq % 3 !== 0) {
      if (!restarted) acked.add(payload.seq);
      c.emit('ack', { topic: 't', messageId: meta.messageId });
    }
  });
  await sf.call(c, 'subscribe', { topic: 't' });

  // A publisher that keeps going; each message is "accepted" once its 200 arrives.
  const accepted = new Set();
  let seq = 0;
  let killed = false;
  const publisher = (async () => {
    while (!killed) {
      const batch = [];
      for (let i = 0; i < 20; i++) batch.push({ namespace: '/d', topic: 't', payload: { seq: ++seq } });
      let r;
      try { r = await srv.publish(batch); } catch (e) { break; }  // the server died under us
      if (r.status !== 200) break;
      r.json.results.forEach((e, i) => { if (e.status === 200) accepted.add(batch[i].payload.seq); });
    }
  })();
  await sf.waitUntil(() => accepted.size >= 600 && before.size >= 300, 15000, () => `accepted ${accepted.size}, received ${before.size}`);
  // kill -9 mid-stream: publishes in flight, acks in flight.
  srv.proc.kill('SIGKILL');
  killed = true;
  await publisher;
  await sf.waitUntil(() => srv.exited !== null, 5000);
  const unackedAtKill = [...before.keys()].filter((s) => !acked.has(s));
  assert.ok(unackedAtKill.length >= 100, `some messages were left unacked (${unackedAtKill.length})`);

  // Same port, same journal; the client is still trying to reconnect by itself.
  const reconnected = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reconnect after restart')), 15000);
    c.once('connect', () => { clearTimeout(t); resolve(c.recovered); });
  });
  restarted = true;
  srv = await sf.start(server(port));
  assert.strictEqual(srv.port, port);
  assert.strictEqual(await reconnected, true, 'socket.recovered after the restart');
  assert.strictEqual(c.id, id, 'same socket id');

  // Every accepted message the client had not acked comes back (the ones it had seen with
  // the same messageId); nothing accepted is lost.
  const owed = [...accepted].filter((s) => !acked.has(s));
  await sf.waitUntil(() => owed.every((s) => after.has(s)), 15000,
    () => `missing after restart: ${owed.filter((s) => !after.has(s)).slice(0, 20).join(',')} (of ${owed.length})`);
  for (const s of unackedAtKill) assert.strictEqual(after.get(s), before.get(s), `seq ${s} keeps its messageId`);

  // New publishes reach the recovered subscription with messageIds never used before.
  const seen = new Set([...before.values(), ...after.values()]);
  const r = await srv.publish([{ namespace: '/d', topic: 't', payload: { seq: 1000001 } }, { namespace: '/d', topic: 't', payload: { seq: 1000002 } }]);
  assert.strictEqual(r.status, 200, r.body);
  await sf.waitUntil(() => after.has(1000001) && after.has(1000002), 5000);
  assert.ok(!seen.has(after.get(1000001)) && !seen.has(after.get(1000002)), 'messageIds do not repeat');
  const m = await srv.metrics();
  assert.strictEqual(sf.metricValue(m, 'streamfence_sessions_recovered_total', { namespace: '/d' }), 1);
  c.close();
  await srv.stop();
});

test('a client that left with disconnect() is not restored after a restart; an acked stream owes at most its last message', async () => {
  const spill = path.join(sf.tmpdir(), 'spill');
  const server = (port) => Object.assign({ port, spillRootPath: spill, namespaces: [durableNs()] }, recovery);
  let srv = await sf.start(server(0));
  const port = srv.port;
  const gone = await client(srv);
  await sf.call(gone, 'subscribe', { topic: 't' });
  const stays = await client(srv);
  const got = [];
  stays.on('t', (p, meta) => { got.push(p.seq); stays.emit('ack', { topic: 't', messageId: meta.messageId }); });
  await sf.call(stays, 'subscribe', { topic: 't' });
  const pid = gone._pid;
  gone.disconnect();
  const batch = [];
  for (let i = 1; i <= 50; i++) batch.push({ namespace: '/d', topic: 't', payload: { seq: i } });
  assert.strictEqual((await srv.publish(batch)).status, 200);
  await sf.waitUntil(() => got.length === 50);
  await sf.sleep(300);  // the acks' records reach the journal with the next write
  assert.strictEqual((await srv.publish({ namespace: '/d', topic: 't', payload: { seq: 51 } })).status, 200);
  await sf.waitUntil(() => got.length === 51);
  await sf.sleep(100);
  stays.io.opts.reconnection = false;
  srv.proc.kill('SIGKILL');
  await sf.waitUntil(() => srv.exited !== null, 5000);
  srv = await sf.start(server(port));
  // Only the session still open at the kill comes back, owing at most the last message (its
  // ack's record may not have reached the disk: at-least-once, never a loss).
  const restored = /durable_sessions_restored namespace=\/d sessions=(\d+) messages=(\d+)/.exec(srv.logs);
  assert.ok(restored, srv.logs);
  assert.strictEqual(Number(restored[1]), 1);
  assert.ok(Number(restored[2]) <= 1, `owed ${restored[2]}`);
  // The one that said goodbye gets a fresh session.
  const again = io(srv.url('/d'), { transports: ['websocket'], forceNew: true, reconnection: false, auth: { pid, offset: 'msg-1' } });
  await new Promise((resolve) => again.once('connect', resolve));
  assert.strictEqual(again.recovered, false);
  again.close();
  stays.close();
  await srv.stop();
});

// One loop: the client comes back on the loop holding its session, whose lane pulls the held
// messages as it sends; two loops: the session may move, and the move takes them all first.
for (const ioThreads of [1, 2]) test(`after kill -9 the held messages are built as the lanes send them: before anything newer, in order, shared by two sessions (${ioThreads} loops)`, async () => {
  const spill = path.join(sf.tmpdir(), 'spill');
  const server = (port) => Object.assign({ port, ioThreads, spillRootPath: spill, namespaces: [durableNs({ maxInFlight: 16 })] }, recovery);
  let srv = await sf.start(server(0));
  const port = srv.port;
  const a = await client(srv);
  const b = await client(srv);
  const ids = new Map();  // seq -> messageId before the kill
  a.on('t', (p, meta) => { ids.set(p.seq, meta.messageId); });  // a acks nothing
  const bAcked = new Set();
  b.on('t', (p, meta) => {  // b acks the even ones (and, its window full of odd ones, sees only the first few)
    if (p.seq % 2 === 0) { bAcked.add(p.seq); b.emit('ack', { topic: 't', messageId: meta.messageId }); }
  });
  await sf.call(a, 'subscribe', { topic: 't' });
  await sf.call(b, 'subscribe', { topic: 't' });
  const batch = (from, to) => { const out = []; for (let i = from; i <= to; i++) out.push({ namespace: '/d', topic: 't', payload: { seq: i } }); return out; };
  for (let i = 1; i <= 300; i += 100) assert.strictEqual((await srv.publish(batch(i, i + 99))).status, 200);
  await sf.waitUntil(() => ids.size >= 16 && bAcked.size >= 8, 5000);  // the first windows are out
  await sf.sleep(300);  // b's acks reach the journal with the next write
  assert.strictEqual((await srv.publish(batch(301, 301))).status, 200);
  await sf.sleep(200);
  const pids = [a._pid, b._pid];
  const oldIds = [a.id, b.id];
  a.io.reconnection(false);  // (the option object is read once, at construction)
  b.io.reconnection(false);
  srv.proc.kill('SIGKILL');
  await sf.waitUntil(() => srv.exited !== null, 5000);

  srv = await sf.start(server(port));
  const restored = /durable_sessions_restored namespace=\/d sessions=(\d+) messages=(\d+)/.exec(srv.logs);
  assert.ok(restored, srv.logs);
  assert.strictEqual(Number(restored[1]), 2);
  // Published after the restart, before either client is back: these queue behind the
  // held messages that are not built yet.
  assert.strictEqual((await srv.publish(batch(302, 350))).status, 200);
  const recv = [new Map(), new Map()];  // seq -> messageId after the restart, in arrival order
  const order = [[], []];
  const back = await Promise.all(pids.map((pid, k) => new Promise((resolve, reject) => {
    const s = io(srv.url('/d'), { transports: ['websocket'], forceNew: true, reconnection: false, auth: { pid, offset: '' } });
    s.on('t', (p, meta) => {
      order[k].push(p.seq);
      recv[k].set(p.seq, meta.messageId);
      s.emit('ack', { topic: 't', messageId: meta.messageId });
    });
    const t = setTimeout(() => reject(new Error('connect timeout')), 8000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
  })));
  // A new client object named the pid itself: recovered shows as the same socket id.
  assert.deepStrictEqual(back.map((s) => s.id), oldIds);
  const expectA = batch(1, 350).map((m) => m.payload.seq);
  const expectB = expectA.filter((s) => !bAcked.has(s));
  await sf.waitUntil(() => order[0].length >= expectA.length && order[1].length >= expectB.length, 15000,
    () => `a got ${order[0].length} of ${expectA.length}, b got ${order[1].length} of ${expectB.length}`);
  assert.deepStrictEqual(order[0], expectA, 'a: every held message, oldest first, then the new ones');
  assert.deepStrictEqual(order[1], expectB, 'b: its unacked ones in order, then the new ones');
  for (const [s, id] of ids) assert.strictEqual(recv[0].get(s), id, `seq ${s} keeps its messageId`);
  assert.strictEqual(recv[0].get(101), recv[1].get(101), 'one messageId per message whatever the lane');
  back.forEach((s) => s.close());
  await srv.stop();
});

test('what a full lane refused stays refused after kill -9: the restart resends the lane, not the refusals', async () => {
  const spill = path.join(sf.tmpdir(), 'spill');
  const nsCfg = sf.ns('/d', ['t', 'u'], {
    deliveryMode: 'AT_LEAST_ONCE', durable: true, maxRetries: 5, ackTimeoutMs: 60000, maxInFlight: 5,
    maxQueuedMessagesPerClient: 10, maxQueuedBytesPerClient: 1 << 20,
  });
  const server = (port) => Object.assign({ port, spillRootPath: spill, namespaces: [nsCfg] }, recovery);
  let srv = await sf.start(server(0));
  const port = srv.port;
  const c = await client(srv);
  const before = [], after = [];
  let restarted = false;
  c.on('t', (p, meta) => {
    if (!restarted) return before.push(p.seq);  // never acked: the lane stays full
    after.push(p.seq);
    c.emit('ack', { topic: 't', messageId: meta.messageId });
  });
  await sf.call(c, 'subscribe', { topic: 't' });
  const batch = [];
  for (let i = 1; i <= 100; i++) batch.push({ namespace: '/d', topic: 't', payload: { seq: i } });
  const r = await srv.publish(batch);
  assert.strictEqual(r.status, 200, r.body);
  assert.ok(r.json.results.every((e) => e.status === 200), 'all 100 accepted (on disk)');
  // 5 in flight + 5 queued fill the lane; REJECT_NEW refuses the other 90 for this client.
  await sf.waitUntil(async () => sf.metricValue(await srv.metrics(), 'streamfence_queue_overflow_total', { namespace: '/d', topic: 't' }) >= 90, 5000);
  await sf.waitUntil(() => before.length === 5, 5000, () => `received ${before.length}`);
  assert.deepStrictEqual(before, [1, 2, 3, 4, 5]);
  await sf.sleep(100);
  // A publish elsewhere syncs the session records queued before it (docs/recovery.md).
  assert.strictEqual((await srv.publish([{ namespace: '/d', topic: 'u', payload: { seq: 0 } }])).status, 200);
  srv.proc.kill('SIGKILL');
  await sf.waitUntil(() => srv.exited !== null, 5000);

  const reconnected = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reconnect after restart')), 15000);
    c.once('connect', () => { clearTimeout(t); resolve(c.recovered); });
  });
  restarted = true;
  srv = await sf.start(server(port));
  assert.strictEqual(await reconnected, true, 'socket.recovered after the restart');
  // What the lane held comes back; what it refused does not.
  await sf.waitUntil(() => after.length >= 10, 10000, () => `after restart: ${after.join(',')}`);
  await sf.sleep(500);
  assert.deepStrictEqual(after, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  c.close();
  await srv.stop();
});

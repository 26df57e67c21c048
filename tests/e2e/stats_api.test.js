'use strict';
// GET /v1/stats and its stream (docs/dashboard.md) against the real binary: the bearer token
// guards them, the JSON carries connections by transport, publish/delivery counts and
// rates, the lane histogram and deepest lanes of a client that stopped reading, overflow by
// policy and reason, plugins and TLS; one snapshot a second is shared by every viewer, and
// dashboard streams are capped so they cannot take the threads publishes need.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const sf = require('./lib/streamfenced');
const { makeCert } = require('./lib/tls');

require('./lib/watchdog')('stats_api', 150000, sf.stopAll);

test.after(async () => { await sf.stopAll(); });

const TOKEN = 'stats-s3cret';
const auth = { authorization: `Bearer ${TOKEN}` };
const PAD = 'x'.repeat(2000);

async function stats(srv, headers = auth) {
  const r = await sf.request(srv.controlPort, 'GET', '/v1/stats', undefined, headers);
  assert.strictEqual(r.status, 200, r.body);
  assert.match(r.headers['content-type'], /application\/json/);
  return r.json;
}

const topicOf = (s, ns, topic) => s.topics.find((t) => t.namespace === ns && t.topic === topic);
const nsOf = (s, ns) => s.namespaces.find((n) => n.namespace === ns);

// Opens GET /v1/stats/stream; collects each `data:` event parsed. close() ends it.
function openStream(port, headers = auth) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v1/stats/stream', headers }, (res) => {
      const st = { status: res.statusCode, headers: res.headers, events: [], raw: '', close: () => req.destroy() };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        st.raw += d;
        let end;
        while ((end = st.raw.indexOf('\n\n')) >= 0) {
          const ev = st.raw.slice(0, end);
          st.raw = st.raw.slice(end + 2);
          for (const line of ev.split('\n')) if (line.startsWith('data: ')) st.events.push(JSON.parse(line.slice(6)));
        }
      });
      res.on('error', () => {});
      resolve(st);
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
  });
}

test('/v1/stats: token, fields, connections, counts, slow lane, overflow, stream', async () => {
  const srv = await sf.start({
    control: { host: '127.0.0.1', port: 0, token: TOKEN, maxConnections: 8 },
    ioThreads: 2,
    namespaces: [
      sf.ns('/feed', ['prices', 'news']),
      sf.ns('/slow', ['t'], { overflowAction: 'REJECT_NEW', maxQueuedMessagesPerClient: 64, maxQueuedBytesPerClient: 1 << 20 }),
    ],
  });

  const publish = (body) => srv.publish(body, auth);

  // The token guards the data; the page itself holds none.
  for (const p of ['/v1/stats', '/v1/stats/stream']) {
    const none = await sf.request(srv.controlPort, 'GET', p);
    assert.strictEqual(none.status, 401, `${p} without token`);
    assert.strictEqual(none.headers['www-authenticate'], 'Bearer');
    const wrong = await sf.request(srv.controlPort, 'GET', p, undefined, { authorization: 'Bearer nope' });
    assert.strictEqual(wrong.status, 401, `${p} with a wrong token`);
  }
  const page = await sf.request(srv.controlPort, 'GET', '/dashboard');
  assert.strictEqual(page.status, 200);
  assert.match(page.headers['content-type'], /text\/html/);
  assert.match(page.body, /<title>StreamFence dashboard<\/title>/);
  assert.doesNotMatch(page.body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'the page fetches nothing from elsewhere');
  assert.strictEqual((await sf.request(srv.controlPort, 'POST', '/v1/stats', '{}', auth)).status, 405);

  const fresh = await stats(srv);
  assert.strictEqual(fresh.server, 'test');
  assert.deepStrictEqual(fresh.lanes.depthHistogram.map((b) => b.bucket), ['0', '1-10', '11-100', '101-1000', '1001-10000', '>10000']);
  assert.strictEqual(fresh.loops.answered, fresh.loops.total);
  assert.ok(fresh.loops.total >= 1);
  assert.deepStrictEqual(fresh.topics.map((t) => `${t.namespace} ${t.topic}`), ['/feed prices', '/feed news', '/slow t']);
  assert.strictEqual(topicOf(fresh, '/feed', 'prices').published, 0);
  assert.strictEqual(fresh.tls.enabled, false);
  assert.strictEqual(fresh.detachedSessions, null);
  assert.strictEqual(fresh.cluster, null);
  const policy = fresh.plugins.loaded.find((p) => p.name === 'REJECT_NEW');
  assert.ok(policy, `REJECT_NEW among ${JSON.stringify(fresh.plugins.loaded.map((p) => p.name))}`);
  assert.strictEqual(policy.kind, 'overflow-policy');
  assert.ok(policy.abiVersion >= 1 && policy.version && policy.file.endsWith('.so'));
  assert.strictEqual(policy.abi.split('.')[0], String(policy.abiVersion));
  assert.ok(Array.isArray(fresh.plugins.refused));

  // One websocket and one long-polling client; the websocket one subscribes.
  const ws = await sf.connect(srv, '/feed');
  const poll = await sf.connect(srv, '/feed', { transports: ['polling'] });
  const got = [];
  ws.on('prices', (p) => got.push(p));
  assert.deepStrictEqual(await sf.call(ws, 'subscribe', { topic: 'prices' }), { ok: true });
  for (let i = 0; i < 5; i++) assert.strictEqual((await publish({ namespace: '/feed', topic: 'prices', payload: { i } })).status, 200);
  await sf.waitUntil(() => got.length === 5, 5000);
  // At most one snapshot a second: wait for the next one.
  const s1 = await sf.waitUntil(async () => {
    const s = await stats(srv);
    return topicOf(s, '/feed', 'prices').delivered === 5 ? s : null;
  }, 5000, 'delivered never reached 5');
  const feed = nsOf(s1, '/feed');
  assert.deepStrictEqual(feed.connections, { websocket: 1, polling: 1 });
  assert.strictEqual(feed.active, 2);
  const prices = topicOf(s1, '/feed', 'prices');
  assert.strictEqual(prices.published, 5);
  assert.strictEqual(prices.subscribers, 1);
  assert.ok(prices.publishRate > 0, `publishRate ${prices.publishRate}`);
  assert.ok(prices.deliveryRate > 0, `deliveryRate ${prices.deliveryRate}`);
  assert.strictEqual(prices.deliveryMode, 'BEST_EFFORT');
  assert.strictEqual(s1.lanes.total, 1);
  assert.strictEqual(s1.lanes.depthHistogram[0].lanes, 1, 'the reading lane is empty');

  // Two requests in the same second share one snapshot.
  const [a, b] = await Promise.all([stats(srv), stats(srv)]);
  assert.strictEqual(a.takenAt, b.takenAt);

  // Two subscribers that stop reading, one per event loop (consecutive connections go to
  // different loops): each lane fills to the limit, REJECT_NEW refuses the rest, and the
  // merged snapshot shows both.
  const slow = await sf.connect(srv, '/slow');
  const slow2 = await sf.connect(srv, '/slow');
  for (const c of [slow, slow2]) {
    assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 't' }), { ok: true });
    c.io.engine.transport.ws._socket.pause();
  }
  const batch = [];
  for (let i = 0; i < 50; i++) batch.push({ namespace: '/slow', topic: 't', payload: { i, pad: PAD } });
  const s2 = await sf.waitUntil(async () => {
    await publish(batch);
    const s = await stats(srv);
    return s.overflow.length && s.lanes.deepest.length === 2 && s.lanes.deepest.every((l) => l.messages === 64) ? s : null;
  }, 30000, 'the slow lanes never filled');
  assert.deepStrictEqual(s2.lanes.deepest.map((l) => l.clientId).sort(), [slow.id, slow2.id].sort());
  const deep = s2.lanes.deepest.find((l) => l.clientId === slow.id);
  assert.strictEqual(deep.namespace, '/slow');
  assert.strictEqual(deep.topic, 't');
  assert.ok(deep.bytes >= 64 * 2000, `bytes ${deep.bytes}`);
  assert.strictEqual(deep.inFlight, 0);
  const o = s2.overflow.find((r) => r.namespace === '/slow');
  assert.strictEqual(o.policy, 'REJECT_NEW');
  assert.ok(o.reason.length > 0 && o.count > 0, JSON.stringify(o));
  assert.strictEqual(topicOf(s2, '/slow', 't').overflow[o.reason], o.count);
  assert.strictEqual(s2.lanes.depthHistogram[2].lanes, 2, 'two lanes in 11-100');
  assert.strictEqual(topicOf(s2, '/slow', 't').pendingMessages, 128);
  assert.ok(s2.loops.busyUs >= 0 && s2.loops.total === 2);
  // Its oldest message keeps ageing while nothing is read.
  await sf.sleep(1200);
  const s3 = await sf.waitUntil(async () => { const s = await stats(srv); return s.takenAt > s2.takenAt ? s : null; }, 3000);
  const deep3 = s3.lanes.deepest.find((l) => l.clientId === slow.id);
  assert.ok(deep3.oldestAgeMs > deep.oldestAgeMs, `${deep3.oldestAgeMs} > ${deep.oldestAgeMs}`);

  // The stream: one event per snapshot, about a second apart.
  const st = await openStream(srv.controlPort);
  assert.strictEqual(st.status, 200);
  assert.match(st.headers['content-type'], /text\/event-stream/);
  await sf.waitUntil(() => st.events.length >= 3, 6000, () => `stream events: ${st.events.length}`);
  const gaps = st.events.slice(1).map((e, i) => e.takenAt - st.events[i].takenAt);
  for (const g of gaps) assert.ok(g >= 900 && g <= 2500, `snapshots ${g} ms apart`);
  assert.strictEqual(st.events[0].server, 'test');

  // maxConnections 8 allows 2 streams: a third is refused, and publishes still go through.
  const st2 = await openStream(srv.controlPort);
  assert.strictEqual(st2.status, 200);
  const st3 = await openStream(srv.controlPort);
  assert.strictEqual(st3.status, 503);
  assert.ok(st3.headers['retry-after']);
  assert.strictEqual((await publish({ namespace: '/feed', topic: 'news', payload: 1 })).status, 200);
  // A slot comes back once the server notices its viewer left (at the next write, within
  // about a second).
  st.close();
  await sf.sleep(2500);
  const st5 = await openStream(srv.controlPort);
  assert.strictEqual(st5.status, 200, 'the slot of a closed stream is released');
  for (const x of [st2, st3, st5]) x.close();
  await sf.sleep(2500);

  ws.close();
  poll.close();
  for (const c of [slow, slow2]) {
    c.io.engine.transport.ws._socket.resume();  // a paused socket would keep node running
    c.close();
  }
  // Open streams end when the server stops.
  const st4 = await openStream(srv.controlPort);
  assert.strictEqual(st4.status, 200);
  const t0 = Date.now();
  const r = await srv.stop();
  assert.ok(Date.now() - t0 < 4000, `stop took ${Date.now() - t0} ms with a stream open`);
  assert.strictEqual(r.code, 0);
});

test('/v1/stats without a token configured; TLS certificate subject and expiry; refused plugins', async () => {
  const dir = sf.tmpdir();
  const cert = makeCert(dir, 'dash.example');
  // The bundled plugins plus one built for another ABI (tests/plugins), which is refused.
  const badAbi = path.join(process.env.SF_BUILD_DIR || '../build', 'tests', 'badplugins', 'bad_abi.so');
  assert.ok(fs.existsSync(badAbi), `${badAbi} not built`);
  const plugins = path.join(dir, 'plugins');
  fs.mkdirSync(plugins);
  for (const f of fs.readdirSync(sf.PLUGIN_DIR)) if (f.endsWith('.so')) fs.copyFileSync(path.join(sf.PLUGIN_DIR, f), path.join(plugins, f));
  fs.copyFileSync(badAbi, path.join(plugins, 'zz_bad_abi.so'));
  const srv = await sf.start({
    transport: 'WSS',
    tls: { certChainPemPath: cert.crt, privateKeyPemPath: cert.key, watchIntervalMs: 600000 },
    namespaces: [sf.ns('/feed', ['prices'])],
  }, { pluginDir: plugins });
  const s = await stats(srv, {});
  assert.strictEqual(s.plugins.refused.length, 1, JSON.stringify(s.plugins.refused));
  assert.strictEqual(s.plugins.refused[0].file, path.join(plugins, 'zz_bad_abi.so'));
  assert.match(s.plugins.refused[0].reason, /ABI 99/);
  assert.ok(s.plugins.loaded.some((p) => p.name === 'REJECT_NEW'));
  assert.strictEqual(s.tls.enabled, true);
  assert.strictEqual(s.tls.subject, 'CN=dash.example');
  assert.strictEqual(s.tls.certFile, cert.crt);
  assert.match(s.tls.notAfter, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  // makeCert signs for 2 days.
  assert.ok(s.tls.secondsLeft > 86400 && s.tls.secondsLeft <= 2 * 86400, `secondsLeft ${s.tls.secondsLeft}`);
  await srv.stop();
});

'use strict';
// Per-connection caps (conf/README.md "limits") and the control API's request rate:
// namespaces per Engine.IO session, subscriptions per client, pending long-polls per session
// and per server, Engine.IO sessions per HTTP connection, websocket frames per message,
// attachments per packet, control requests per second per address. Each refusal is told to the client as the protocol allows, counted and
// logged. Raw sockets and hand-made websocket frames against the real binary.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const { Manager, io } = require('socket.io-client');
const sf = require('./lib/streamfenced');
const { openWs } = require('./lib/raw_ws');

require('./lib/watchdog')('abuse_protocol_caps', 150000, sf.stopAll);

test.after(async () => { await sf.stopAll(); });

const limitValue = async (srv, limit) =>
  sf.metricValue(await srv.metrics(), 'streamfence_protocol_limit_refused_total', { limit });

// One HTTP request on its own connection (no keep-alive pool): {status, headers, body}.
// req.abort() drops it (and its connection).
function httpOnce(port, method, p, body) {
  let req;
  const done = new Promise((resolve, reject) => {
    req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false,
      headers: body === undefined ? {} : { 'content-type': 'text/plain;charset=UTF-8', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
  done.catch(() => {});
  return { done, abort: () => req.destroy() };
}

async function pollingSession(port) {
  const r = await httpOnce(port, 'GET', '/socket.io/?EIO=4&transport=polling').done;
  assert.strictEqual(r.status, 200, r.body);
  return JSON.parse(r.body.slice(1)).sid;
}
const pollPath = (sid) => `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
// Resolves with the response, or 'held' if none came within ms (a long-poll waiting).
const within = (p, ms) => Promise.race([p, sf.sleep(ms).then(() => 'held')]);

test('a CONNECT past maxNamespacesPerConnection gets CONNECT_ERROR NAMESPACE_LIMIT; endless refused CONNECTs close the session', async () => {
  const srv = await sf.start({
    limits: { maxNamespacesPerConnection: 2 },
    namespaces: [sf.ns('/a', ['t']), sf.ns('/b', ['t']), sf.ns('/c', ['t'])],
  });
  const m = new Manager(srv.url(), { transports: ['websocket'], reconnection: false });
  const join = (nsp) => new Promise((resolve) => {
    const s = m.socket(nsp);
    s.once('connect', () => resolve({ ok: true, s }));
    s.once('connect_error', (e) => resolve({ ok: false, e }));
  }); // the socket connects by itself (the manager's autoConnect)
  assert.ok((await join('/a')).ok);
  assert.ok((await join('/b')).ok);
  const third = await join('/c');
  assert.strictEqual(third.ok, false, 'a third namespace on one session is refused');
  assert.match(third.e.message, /^NAMESPACE_LIMIT: /);
  assert.strictEqual(third.e.data.code, 'NAMESPACE_LIMIT');
  assert.strictEqual(await limitValue(srv, 'namespaces_per_connection'), 1);
  assert.match(srv.logs, /event=namespace_limit .*namespace=\/c joined=2 refused=1 limit=2 action=connect_error count=1/);
  m.engine.close();

  // A raw client sending CONNECTs to unknown namespaces without end is answered a few times, then closed.
  const ws = await openWs(srv.port);
  for (let i = 0; i < 50; i++) ws.send(`40/nope${i},`);
  await sf.waitUntil(() => ws.closed, 3000, 'a session sending 50 refused CONNECTs is still open');
  const answers = ws.messages.filter((t) => typeof t === 'string' && t.startsWith('44/nope')).length;
  assert.ok(answers >= 2 && answers <= 3, `${answers} CONNECT_ERROR answers before the close (cap 2)`);
  assert.match(srv.logs, /event=namespace_limit .*action=close/);
  assert.strictEqual(await limitValue(srv, 'namespaces_per_connection'), 2);
});

test('a subscribe past maxSubscriptionsPerClient is refused with SUBSCRIPTION_LIMIT', async () => {
  const srv = await sf.start({ limits: { maxSubscriptionsPerClient: 3 }, namespaces: [sf.ns('/feed', ['t1', 't2', 't3', 't4', 't5'])] });
  const c = await sf.connect(srv, '/feed');
  for (const t of ['t1', 't2', 't3']) assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: t }), { ok: true });
  const refused = await sf.call(c, 'subscribe', { topic: 't4' });
  assert.strictEqual(refused.ok, false);
  assert.strictEqual(refused.code, 'SUBSCRIPTION_LIMIT');
  // Re-subscribing a held topic is no new subscription; leaving one makes room.
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 't1' }), { ok: true });
  await sf.call(c, 'unsubscribe', { topic: 't1' });
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 't4' }), { ok: true });
  const m = await srv.metrics();
  assert.strictEqual(sf.metricValue(m, 'streamfence_subscription_limit_refused_total', { namespace: '/feed' }), 1);
  assert.match(srv.logs, /event=subscription_limit namespace=\/feed .*limit=3 count=1/);
  // The refused topic really is not delivered; the held ones are.
  const rec = sf.recorder(c);
  await srv.publish([{ namespace: '/feed', topic: 't5', payload: 1 }, { namespace: '/feed', topic: 't4', payload: 2 }]);
  await sf.waitUntil(() => rec.count('t4') === 1, 3000);
  assert.strictEqual(rec.count('t5'), 0);
  c.close();
});

test('long-polls past maxPendingPollsPerSession get 429, past maxPendingPolls 503', async () => {
  const srv = await sf.start({ limits: { maxPendingPollsPerSession: 1 }, namespaces: [sf.ns('/feed', ['t'])] });
  const sid = await pollingSession(srv.port);
  const held = httpOnce(srv.port, 'GET', pollPath(sid));
  assert.strictEqual(await within(held.done, 300), 'held', 'the first GET waits for packets');
  const post = await httpOnce(srv.port, 'POST', pollPath(sid), '40/feed,').done;
  assert.strictEqual(post.status, 429, 'a second request in flight for the session is refused');
  assert.strictEqual(post.headers['retry-after'], '1');
  assert.strictEqual(await limitValue(srv, 'pending_polls_per_session'), 1);
  assert.match(srv.logs, /event=poll_limit .*limit=pending_polls_per_session max=1 count=1/);
  held.abort();

  const srv2 = await sf.start({ limits: { maxPendingPolls: 2 }, namespaces: [sf.ns('/feed', ['t'])] });
  const sids = [await pollingSession(srv2.port), await pollingSession(srv2.port), await pollingSession(srv2.port)];
  const gets = sids.slice(0, 2).map((s) => httpOnce(srv2.port, 'GET', pollPath(s)));
  for (const g of gets) assert.strictEqual(await within(g.done, 300), 'held');
  const third = await within(httpOnce(srv2.port, 'GET', pollPath(sids[2])).done, 2000);
  assert.strictEqual(third.status, 503, 'a third held poll on the server is refused');
  assert.strictEqual(await limitValue(srv2, 'pending_polls'), 1);
  // A poll that ends gives its place back.
  gets[0].abort();
  await sf.sleep(1000);
  const again = httpOnce(srv2.port, 'GET', pollPath(sids[2]));
  assert.strictEqual(await within(again.done, 300), 'held');
  for (const g of [gets[1], again]) g.abort();
});

// One raw keep-alive connection, handshake after handshake, each answer awaited before the
// next request: what a client gets that opens session after session on one connection.
async function handshakesOnOneConnection(port, n) {
  const sock = net.connect({ port, host: '127.0.0.1' });
  let received = '';
  let closed = false;
  sock.on('data', (d) => { received += d; });
  sock.on('close', () => { closed = true; });
  sock.on('error', () => {});
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const statuses = () => [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  for (let i = 0; i < n && !closed; i++) {
    sock.write('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    await sf.waitUntil(() => statuses().length > i || closed, 5000, `no answer to handshake ${i + 1}`);
  }
  await sf.sleep(200);
  const r = { statuses: statuses(), closed, received };
  sock.destroy();
  return r;
}

test('handshakes past maxSessionsPerConnection on one keep-alive connection get 429 and the connection is closed', async () => {
  // The value conf/README.md suggests for direct clients (16): sixteen sessions on one
  // connection, the seventeenth refused.
  const srv = await sf.start({ limits: { maxSessionsPerConnection: 16 }, namespaces: [sf.ns('/feed', ['t'])] });
  const r = await handshakesOnOneConnection(srv.port, 20);
  assert.deepStrictEqual(r.statuses, [...Array(16).fill(200), 429], r.statuses.join(','));
  assert.strictEqual(r.closed, true, 'the connection is closed after the refusal');
  assert.match(r.received, /HTTP\/1\.1 429 [^\r]*\r\n(?:[^\r]+\r\n)*Retry-After: 1\r\n/);
  assert.match(r.received, /"message":"Too many sessions on this connection"/);
  assert.strictEqual(await limitValue(srv, 'sessions_per_connection'), 1);
  assert.match(srv.logs, /event=session_limit .*limit=sessions_per_connection max=16 count=1/);
  // The count is per connection: a new one opens sessions again.
  assert.deepStrictEqual((await handshakesOnOneConnection(srv.port, 1)).statuses, [200]);

  // Configured lower; the default (0) has no cap: a proxy carries many clients on one
  // connection.
  const srv2 = await sf.start({ limits: { maxSessionsPerConnection: 2 }, namespaces: [sf.ns('/feed', ['t'])] });
  assert.deepStrictEqual((await handshakesOnOneConnection(srv2.port, 5)).statuses, [200, 200, 429]);
  const srv3 = await sf.start({ namespaces: [sf.ns('/feed', ['t'])] });
  const off = await handshakesOnOneConnection(srv3.port, 20);
  assert.deepStrictEqual(off.statuses, Array(20).fill(200));
  assert.strictEqual(off.closed, false);
  assert.strictEqual(await limitValue(srv3, 'sessions_per_connection'), 0);
});

test('stock socket.io-client over polling reusing keep-alive connections stays within the suggested cap', async () => {
  // As a browser does: one agent keeps its connections and reuses them for the next
  // session (two sockets, so a held long-poll GET does not block the POSTs).
  const srv = await sf.start({ limits: { maxSessionsPerConnection: 16 }, namespaces: [sf.ns('/feed', ['t'])] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let created = 0;
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (...a) => { created++; return create(...a); };
  const sessions = 8;
  for (let i = 0; i < sessions; i++) {
    const c = await sf.connect(srv, '/feed', { transports: ['polling'], agent });
    assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 't' }), { ok: true });
    c.close();
    await sf.sleep(100);
  }
  agent.destroy();
  assert.ok(created < sessions, `${created} connections for ${sessions} sessions: the agent did not reuse them`);
  assert.strictEqual(await limitValue(srv, 'sessions_per_connection'), 0);
  assert.doesNotMatch(srv.logs, /event=session_limit/);

  // Past a (low) cap the same client is refused once, then reconnects on a new connection.
  const srv2 = await sf.start({ limits: { maxSessionsPerConnection: 1 }, namespaces: [sf.ns('/feed', ['t'])] });
  const agent2 = new http.Agent({ keepAlive: true, maxSockets: 2 });
  for (let i = 0; i < 4; i++) {
    const c = io(srv2.url('/feed'), { transports: ['polling'], agent: agent2, forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    await sf.once(c, 'connect', 8000);
    c.close();
    await sf.sleep(100);
  }
  agent2.destroy();
  assert.ok(await limitValue(srv2, 'sessions_per_connection') >= 1, 'the reused connections met the cap');
});

test('a websocket message of more than maxFramesPerMessage frames is closed with 1008', async () => {
  const srv = await sf.start({ limits: { maxFramesPerMessage: 10 }, namespaces: [sf.ns('/feed', ['t'])] });
  const ws = await openWs(srv.port);
  // Under the cap, a fragmented message is whole: a CONNECT in three frames.
  ws.sendFrame(0x1, '4', { fin: false });
  ws.sendFrame(0x0, '0/fe', { fin: false });
  ws.sendFrame(0x0, 'ed,', { fin: true });
  await sf.waitUntil(() => ws.messages.some((t) => typeof t === 'string' && t.startsWith('40/feed,{"sid"')), 3000, 'fragmented CONNECT not answered');
  // Past it: empty continuation frames without end.
  ws.sendFrame(0x1, '4', { fin: false });
  for (let i = 0; i < 50; i++) ws.sendFrame(0x0, '', { fin: false });
  await sf.waitUntil(() => ws.closed, 3000, 'connection still open after 50 empty continuation frames');
  assert.strictEqual(ws.closeCode, 1008);
  assert.strictEqual(await limitValue(srv, 'frames_per_message'), 1);
  assert.match(srv.logs, /event=ws_frame_limit .*limit=10 count=1/);
});

test('a packet with more than maxAttachmentsPerPacket attachments closes the session', async () => {
  const srv = await sf.start({ limits: { maxAttachmentsPerPacket: 2 }, namespaces: [sf.ns('/feed', ['t'])] });
  const c = await sf.connect(srv, '/feed');
  const rec = sf.recorder(c);
  await sf.call(c, 'subscribe', { topic: 't' });
  const ph = (n) => ({ _placeholder: true, num: n });
  const ws = await openWs(srv.port);
  ws.send('40/feed,');
  await sf.waitUntil(() => ws.messages.some((t) => typeof t === 'string' && t.startsWith('40/feed,')), 3000);
  // Two attachments: allowed, published.
  ws.send(`452-/feed,${JSON.stringify(['publish', { topic: 't', payload: { a: ph(0), b: ph(1) } }])}`);
  ws.sendFrame(0x2, Buffer.from([1]));
  ws.sendFrame(0x2, Buffer.from([2]));
  await sf.waitUntil(() => rec.count('t') === 1, 3000, 'a two-attachment publish was not delivered');
  // Three: refused, the session closed.
  ws.send(`453-/feed,${JSON.stringify(['publish', { topic: 't', payload: { a: ph(0), b: ph(1), c: ph(2) } }])}`);
  await sf.waitUntil(() => ws.closed, 3000, 'a three-attachment packet did not close the session');
  assert.strictEqual(await limitValue(srv, 'attachments_per_packet'), 1);
  assert.match(srv.logs, /event=attachment_limit .*limit=2 count=1/);
  c.close();
});

test('control requests past maxRequestsPerSecond per address get 429 with Retry-After', async () => {
  const srv = await sf.start({ control: { host: '127.0.0.1', port: 0, maxRequestsPerSecond: 5 }, namespaces: [sf.ns('/feed', ['t'])] });
  // 20 at once (refill during the burst is small even on a loaded machine).
  const answers = await Promise.all(Array.from({ length: 20 }, () => sf.request(srv.controlPort, 'GET', '/health')));
  const statuses = answers.map((r) => r.status);
  const retryAfter = (answers.find((r) => r.status === 429) || { headers: {} }).headers['retry-after'];
  const ok = statuses.filter((s) => s === 200).length;
  const limited = statuses.filter((s) => s === 429).length;
  assert.strictEqual(ok + limited, 20, statuses.join(','));
  assert.ok(ok >= 5 && ok <= 9, `${ok} of 20 answered within a bucket of 5 (${statuses.join(',')})`);
  assert.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
  assert.match(srv.logs, /event=control_rate_limited .*limitPerSecond=5 count=1 /);
  await sf.sleep(1100); // refilled
  const m = await srv.metrics();
  assert.strictEqual(sf.metricValue(m, 'streamfence_control_rate_limited_total'), limited);
  // A publish goes through once the bucket has refilled.
  assert.strictEqual((await srv.publish({ namespace: '/feed', topic: 't', payload: 1 })).status, 200);
});

test('every limit counter is exposed at 0 on a fresh server', async () => {
  const srv = await sf.start({ namespaces: [sf.ns('/feed', ['t'])] });
  const samples = sf.parseMetrics(await srv.metrics());
  const has = (name, labels = {}) => samples.some((s) => s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v) && s.value === 0);
  for (const reason of ['max_connections', 'max_connections_per_address', 'connection_rate'])
    assert.ok(has('streamfence_connections_refused_total', { reason }), reason);
  for (const limit of ['namespaces_per_connection', 'pending_polls_per_session', 'pending_polls', 'frames_per_message', 'attachments_per_packet', 'sessions_per_connection'])
    assert.ok(has('streamfence_protocol_limit_refused_total', { limit }), limit);
  for (const name of ['streamfence_handshake_timeouts_total', 'streamfence_control_rate_limited_total', 'streamfence_address_table_entries'])
    assert.ok(has(name), name);
  assert.ok(has('streamfence_subscription_limit_refused_total', { namespace: '/feed' }));
});

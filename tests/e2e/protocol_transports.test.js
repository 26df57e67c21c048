'use strict';
// The stock socket.io-client against sio-conformance-server: transports, upgrade,
// namespaces, acks both ways, binary both ways, server disconnect, WEBSOCKET_ONLY.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const { io, Manager } = require('socket.io-client');
const { startServer, stopAll, conformanceBin, once } = require('./lib/harness');
const { httpGet } = require('./lib/harness');

require('./lib/watchdog')('protocol_transports', 120000, stopAll);

const RELAXED = ['--ping-interval', '2000', '--ping-timeout', '5000', '--connect-timeout', '10000'];
const clients = new Set();
function client(url, opts) {
  const s = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  clients.add(s);
  return s;
}
function closeClients() {
  for (const c of clients) c.disconnect();
  clients.clear();
}

describe('socket.io protocol with the stock client', () => {
  let srv;
  let url;
  before(async () => {
    // Relaxed heartbeat and connect timeout (the conformance defaults are 300/200/1000 ms):
    // these tests are about behaviour, not timing, and must hold on a loaded CI box.
    srv = await startServer(conformanceBin('sio-conformance-server'), ['--port', '0', '--host', '127.0.0.1', ...RELAXED]);
    url = `http://127.0.0.1:${srv.port}`;
  });
  after(async () => {
    closeClients();
    const r = await srv.stop();
    assert.strictEqual(r.code, 0, `server exit: ${JSON.stringify(r)}\n${srv.stderr()}`);
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`connects, gets auth and echoes over ${transports[0]} only`, async () => {
      const s = client(url, { transports, auth: { token: 'abc' } });
      const auth = await once(s, 'auth');
      assert.deepStrictEqual(auth, { token: 'abc' });
      assert.strictEqual(s.io.engine.transport.name, transports[0]);
      s.emit('message', 1, '2', { 3: [true] });
      const back = await new Promise((r) => s.once('message-back', (...a) => r(a)));
      assert.deepStrictEqual(back, [1, '2', { 3: [true] }]);
      const reply = await s.timeout(3000).emitWithAck('message-with-ack', 'x', { y: [1, null] });
      assert.deepStrictEqual(reply, 'x');
      s.disconnect();
    });
  }

  it('upgrades from polling to websocket and keeps the session', async () => {
    const s = client(url, { transports: ['polling', 'websocket'] });
    const upgraded = once(s.io.engine, 'upgrade');
    await once(s, 'connect');
    const sidBefore = s.io.engine.id;
    await upgraded;
    assert.strictEqual(s.io.engine.transport.name, 'websocket');
    assert.strictEqual(s.io.engine.id, sidBefore);
    const who = await s.timeout(3000).emitWithAck('whoami');
    assert.strictEqual(who.websocket, true);
    assert.strictEqual(who.sid, sidBefore);
    const reply = await s.timeout(3000).emitWithAck('message-with-ack', 'after-upgrade');
    assert.strictEqual(reply, 'after-upgrade');
    s.disconnect();
  });

  it('answers server->client acks and times them out', async () => {
    const s = client(url, { transports: ['websocket'] });
    await once(s, 'connect');
    s.on('server-ack', (payload, cb) => cb({ got: payload }));
    const ok = await s.timeout(3000).emitWithAck('request-ack', 'ping-1');
    assert.strictEqual(ok, 'requested');
    const res = await once(s, 'server-ack-result');
    assert.deepStrictEqual(res, { timedOut: false, reply: [{ got: 'ping-1' }] });
    // No answer this time: the server's 2 s ack timeout fires.
    s.off('server-ack');
    s.on('server-ack', () => {});
    s.emit('request-ack', 'ping-2');
    const res2 = await once(s, 'server-ack-result', 5000);
    assert.deepStrictEqual(res2, { timedOut: true, reply: [] });
    s.disconnect();
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`carries binary both ways over ${transports[0]}`, async () => {
      const s = client(url, { transports });
      await once(s, 'connect');
      const a = Buffer.from([1, 2, 3]);
      const b = Buffer.alloc(70000, 7);
      s.emit('message', { first: a, nested: [b, 'text'] }, a);
      const back = await new Promise((r) => s.once('message-back', (...x) => r(x)));
      assert.ok(Buffer.isBuffer(back[0].first) || back[0].first instanceof ArrayBuffer);
      assert.deepStrictEqual(Buffer.from(back[0].first), a);
      assert.deepStrictEqual(Buffer.from(back[0].nested[0]), b);
      assert.strictEqual(back[0].nested[1], 'text');
      assert.deepStrictEqual(Buffer.from(back[1]), a);
      const ackBack = await s.timeout(3000).emitWithAck('message-with-ack', Buffer.from('bin-ack'));
      assert.strictEqual(Buffer.from(ackBack).toString(), 'bin-ack');
      // Server -> client binary with an ack from the client.
      s.on('server-ack', (payload, cb) => cb(Buffer.from([9, 9])));
      s.emit('request-ack', Buffer.from([5]));
      const res = await once(s, 'server-ack-result');
      assert.strictEqual(res.timedOut, false);
      assert.deepStrictEqual(Buffer.from(res.reply[0]), Buffer.from([9, 9]));
      s.disconnect();
    });
  }

  it('multiplexes two namespaces on one engine connection', async () => {
    const m = new Manager(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    const main = m.socket('/');
    const custom = m.socket('/custom', { auth: { who: 'custom' } });
    clients.add(main);
    clients.add(custom);
    const [authMain, authCustom] = await Promise.all([once(main, 'auth'), once(custom, 'auth')]);
    assert.deepStrictEqual(authMain, {});
    assert.deepStrictEqual(authCustom, { who: 'custom' });
    const [w1, w2] = await Promise.all([
      main.timeout(3000).emitWithAck('whoami'),
      custom.timeout(3000).emitWithAck('whoami'),
    ]);
    assert.strictEqual(w1.sid, w2.sid, 'same engine session');
    assert.notStrictEqual(w1.id, w2.id, 'per-namespace socket ids');
    assert.strictEqual(w1.id, main.id);
    assert.strictEqual(w2.id, custom.id);
    assert.strictEqual(w2.nsp, '/custom');
    // Leaving one namespace keeps the other working.
    custom.disconnect();
    const r = await main.timeout(3000).emitWithAck('message-with-ack', 'still-here');
    assert.strictEqual(r, 'still-here');
    main.disconnect();
  });

  it('refuses an unknown namespace with connect_error "Invalid namespace"', async () => {
    const s = client(`${url}/nope`, { transports: ['websocket'] });
    const err = await once(s, 'connect_error');
    assert.strictEqual(err.message, 'Invalid namespace');
  });

  it('server-side disconnect reaches the client as "io server disconnect"', async () => {
    const s = client(url, { transports: ['polling'] });
    await once(s, 'connect');
    s.emit('disconnect-me');
    const reason = await once(s, 'disconnect');
    assert.strictEqual(reason, 'io server disconnect');
  });

  it('answers unknown sids and transports like the Node server', async () => {
    const r1 = await httpGet(`${url}/socket.io/?EIO=4&transport=polling&sid=doesnotexist`);
    assert.strictEqual(r1.status, 400);
    assert.strictEqual(r1.body, '{"code":1,"message":"Session ID unknown"}');
    const r2 = await httpGet(`${url}/socket.io/?EIO=4&transport=carrier-pigeon`);
    assert.strictEqual(r2.status, 400);
    assert.strictEqual(r2.body, '{"code":0,"message":"Transport unknown"}');
    const r3 = await httpGet(`${url}/socket.io/?EIO=3&transport=polling`);
    assert.strictEqual(r3.body, '{"code":5,"message":"Unsupported protocol version"}');
    const r4 = await httpGet(`${url}/elsewhere`);
    assert.strictEqual(r4.status, 404);
  });
});

describe('WEBSOCKET_ONLY', () => {
  let srv;
  let url;
  before(async () => {
    srv = await startServer(conformanceBin('sio-conformance-server'),
      ['--port', '0', '--host', '127.0.0.1', '--websocket-only', ...RELAXED]);
    url = `http://127.0.0.1:${srv.port}`;
  });
  after(async () => {
    closeClients();
    await srv.stop();
  });

  it('refuses polling with the Node error body', async () => {
    const r = await httpGet(`${url}/socket.io/?EIO=4&transport=polling`);
    assert.strictEqual(r.status, 400);
    assert.strictEqual(r.body, '{"code":0,"message":"Transport unknown"}');
    assert.match(r.headers['content-type'], /application\/json/);
  });

  it('still serves websocket clients', async () => {
    const s = client(url, { transports: ['websocket'] });
    await once(s, 'connect');
    assert.strictEqual(await s.timeout(3000).emitWithAck('message-with-ack', 1), 1);
    s.disconnect();
  });

  it('a default (polling-first) client cannot connect', async () => {
    const s = client(url, { transports: ['polling'] });
    const err = await once(s, 'connect_error');
    assert.ok(err);
  });
});

'use strict';
// Heartbeat: idle clients survive many ping intervals; a client that stops answering
// pings is dropped within pingInterval + pingTimeout (raw clients that never pong).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { startServer, stopAll, conformanceBin, once, sleep } = require('./lib/harness');
const { httpGet } = require('./lib/harness');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 400;
const SLACK = 600;  // scheduling slack on a loaded 2-core CI box

require('./lib/watchdog')('protocol_heartbeat', 90000, stopAll);

describe('heartbeat', () => {
  let srv;
  let port;
  const clients = [];
  before(async () => {
    srv = await startServer(conformanceBin('sio-conformance-server'), [
      '--port', '0', '--host', '127.0.0.1',
      '--ping-interval', String(PING_INTERVAL), '--ping-timeout', String(PING_TIMEOUT),
    ]);
    port = srv.port;
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await srv.stop();
  });

  for (const transports of [['websocket'], ['polling']]) {
    it(`keeps an idle ${transports[0]} client past several ping intervals`, async () => {
      const s = io(`http://127.0.0.1:${port}`, { transports, forceNew: true, reconnection: false });
      clients.push(s);
      await once(s, 'connect');
      let pings = 0;
      s.io.engine.on('ping', () => pings++);
      let disconnected = null;
      s.on('disconnect', (r) => (disconnected = r));
      await sleep(PING_INTERVAL * 8);
      assert.strictEqual(disconnected, null);
      assert.ok(pings >= 4, `only ${pings} pings in ${PING_INTERVAL * 8} ms`);
      assert.strictEqual(await s.timeout(2000).emitWithAck('message-with-ack', 'alive'), 'alive');
      s.disconnect();
    });
  }

  it('drops a websocket client that stops answering pings', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    const msgs = [];
    ws.on('message', (d) => msgs.push(d.toString()));
    await once(ws, 'open');
    const opened = Date.now();
    ws.send('40');
    const [code] = await new Promise((r) => ws.once('close', (...a) => r(a)));
    const elapsed = Date.now() - opened;
    assert.ok(msgs[0].startsWith('0{'), msgs[0]);
    assert.ok(msgs.includes('2'), `no ping seen: ${msgs}`);
    assert.ok(elapsed >= PING_INTERVAL + PING_TIMEOUT - 50, `dropped too early (${elapsed} ms)`);
    assert.ok(elapsed <= PING_INTERVAL + PING_TIMEOUT + SLACK, `dropped too late (${elapsed} ms)`);
    assert.ok(code === 1000 || code === 1005 || code === 1006, `close code ${code}`);
  });

  it('drops a polling client that stops answering pings', async () => {
    const r = await httpGet(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`);
    const sid = JSON.parse(r.body.slice(1)).sid;
    await sleep(PING_INTERVAL + PING_TIMEOUT + SLACK);
    const r2 = await httpGet(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.strictEqual(r2.status, 400);
    assert.strictEqual(r2.body, '{"code":1,"message":"Session ID unknown"}');
  });

  it('closes a client that joins no namespace (connect timeout)', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    ws.on('message', (d) => { if (d.toString() === '2') ws.send('3'); });
    await once(ws, 'open');
    const t0 = Date.now();
    await once(ws, 'close', 5000);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 900 && elapsed <= 1000 + SLACK, `closed after ${elapsed} ms`);
  });

  it('a raw client that answers pings stays', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    let pings = 0;
    ws.on('message', (d) => {
      if (d.toString() === '2') {
        pings++;
        ws.send('3');
      }
    });
    await once(ws, 'open');
    ws.send('40');  // join a namespace, or the 1 s connect timeout closes us
    let closed = false;
    ws.on('close', () => (closed = true));
    await sleep((PING_INTERVAL + PING_TIMEOUT) * 3);
    assert.strictEqual(closed, false);
    assert.ok(pings >= 3, `pings=${pings}`);
    ws.close();
  });
});

'use strict';
// 1,000 concurrent stock clients connect, each round-trips an ack, all disconnect; most
// on websocket, some polling-first (they upgrade, often across I/O loops).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const { io } = require('socket.io-client');
const { startServer, stopAll, conformanceBin, once, sleep } = require('./lib/harness');

const TOTAL = 1000;
const POLLING_FIRST = 100;

require('./lib/watchdog')('protocol_scale', 180000, stopAll);

describe('1,000 concurrent clients', () => {
  let srv;
  let url;
  const clients = [];
  before(async () => {
    // Generous heartbeat: this is about concurrency, not about ping timing under load.
    srv = await startServer(conformanceBin('sio-conformance-server'), [
      '--port', '0', '--host', '127.0.0.1', '--ping-interval', '5000', '--ping-timeout', '10000',
      '--connect-timeout', '20000',
    ]);
    url = `http://127.0.0.1:${srv.port}`;
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await srv.stop();
  });

  it('connect, ack, disconnect', async () => {
    const t0 = Date.now();
    for (let i = 0; i < TOTAL; i++) {
      const transports = i < POLLING_FIRST ? ['polling', 'websocket'] : ['websocket'];
      clients.push(io(url, { forceNew: true, reconnection: false, timeout: 20000, transports }));
    }
    await Promise.all(clients.map((c) => (c.connected ? Promise.resolve() : once(c, 'connect', 30000))));
    const connectedMs = Date.now() - t0;
    const ids = new Set(clients.map((c) => c.id));
    assert.strictEqual(ids.size, TOTAL, 'socket ids are unique');
    const replies = await Promise.all(clients.map((c, i) => c.timeout(20000).emitWithAck('message-with-ack', i)));
    replies.forEach((r, i) => assert.strictEqual(r, i));
    const disconnects = clients.map((c) => once(c, 'disconnect', 10000));
    for (const c of clients) c.disconnect();
    await Promise.all(disconnects);
    console.log(`# ${TOTAL} clients connected in ${connectedMs} ms, all acked and disconnected in ${Date.now() - t0} ms`);
    await sleep(200);
    assert.strictEqual(srv.exited(), null);
    // The server is still fine for a new client.
    const s = io(url, { forceNew: true, reconnection: false, transports: ['websocket'] });
    clients.push(s);
    await once(s, 'connect');
    assert.strictEqual(await s.timeout(3000).emitWithAck('message-with-ack', 'last'), 'last');
  });
});

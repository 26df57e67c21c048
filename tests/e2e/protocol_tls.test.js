'use strict';
// wss with a self-signed certificate (websocket, polling, upgrade) and certificate
// rotation under load: the new CN is served to new handshakes (file watch and SIGHUP),
// a bad pair is refused while the old one keeps serving, open connections never drop.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { io } = require('socket.io-client');
const { startServer, stopAll, conformanceBin, once, sleep } = require('./lib/harness');

require('./lib/watchdog')('protocol_tls', 120000, stopAll);

const { makeCert, peerCN } = require('./lib/tls');

async function waitForCN(port, cn, ms = 8000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await peerCN(port);
    if (last === cn) return last;
    await sleep(100);
  }
  throw new Error(`CN still ${last}, wanted ${cn}`);
}

describe('wss', () => {
  let srv;
  let url;
  let dir;
  let live;  // the files the server watches
  const clients = [];
  function client(opts) {
    const s = io(url, { forceNew: true, reconnection: false, rejectUnauthorized: false, ...opts });
    clients.push(s);
    return s;
  }
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sf-proto-tls-'));
    const one = makeCert(dir, 'one');
    live = { key: path.join(dir, 'live.key'), crt: path.join(dir, 'live.crt') };
    fs.copyFileSync(one.key, live.key);
    fs.copyFileSync(one.crt, live.crt);
    srv = await startServer(conformanceBin('sio-conformance-server'), [
      '--port', '0', '--host', '127.0.0.1', '--tls-cert', live.crt, '--tls-key', live.key,
      '--ping-interval', '2000', '--ping-timeout', '5000', '--connect-timeout', '10000',
    ]);
    assert.match(srv.stderr(), /event=listening [^\n]*transport=wss/);
    url = `https://127.0.0.1:${srv.port}`;
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    if (srv) await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const transports of [['websocket'], ['polling'], ['polling', 'websocket']]) {
    it(`serves ${transports.join('+')} over TLS`, async () => {
      const s = client({ transports });
      const upgraded = transports.length === 2 ? once(s.io.engine, 'upgrade') : null;
      await once(s, 'connect');
      if (upgraded) await upgraded;
      const big = Buffer.alloc(200000, 3);
      s.emit('message', big, 'txt');
      const back = await new Promise((r) => s.once('message-back', (...a) => r(a)));
      assert.deepStrictEqual(Buffer.from(back[0]), big);
      assert.strictEqual(await s.timeout(3000).emitWithAck('message-with-ack', 'tls'), 'tls');
      s.disconnect();
    });
  }

  it('rotates the certificate under load without dropping connections', async () => {
    assert.strictEqual(await peerCN(srv.port), 'one');
    const open = [];
    for (let i = 0; i < 20; i++) open.push(client({ transports: i % 4 === 0 ? ['polling'] : ['websocket'] }));
    await Promise.all(open.map((s) => once(s, 'connect')));
    let drops = 0;
    for (const s of open) s.on('disconnect', (reason) => { if (!stop) { drops++; console.log(`# dropped: ${reason}`); } });
    let stop = false;
    let acks = 0;
    let loadError = null;
    const load = Promise.all(open.map(async (s, i) => {
      while (!stop) {
        try {
          await s.timeout(5000).emitWithAck('message-with-ack', i);
          acks++;
        } catch (e) {
          if (!stop) loadError = loadError || e;
          return;
        }
      }
    }));
    try {

    // 1) file watch: replace the files in place.
    const two = makeCert(dir, 'two');
    fs.copyFileSync(two.key, live.key);
    fs.copyFileSync(two.crt, live.crt);
    await waitForCN(srv.port, 'two');

    // 2) a mismatched pair is refused; the old pair keeps serving.
    const three = makeCert(dir, 'three');
    const four = makeCert(dir, 'four');
    fs.copyFileSync(four.key, live.key);
    fs.copyFileSync(three.crt, live.crt);
    srv.proc.kill('SIGHUP');
    await srv.waitForLog(/tls_reload_failed|level=(warn|error)[^\n]*(tls|reload)/i, 8000);
    assert.strictEqual(await peerCN(srv.port), 'two');

    // 3) SIGHUP with a good pair.
    fs.copyFileSync(three.key, live.key);
    srv.proc.kill('SIGHUP');
    await waitForCN(srv.port, 'three');

    // New clients get in; old ones are still there.
    const late = client({ transports: ['websocket'] });
    await once(late, 'connect');
    } finally {
      stop = true;
      await load;
    }
    assert.strictEqual(loadError, null);
    assert.strictEqual(drops, 0);
    assert.ok(acks > 20, `acks=${acks}`);
    assert.ok(open.every((s) => s.connected));
  });
});

'use strict';
// streamfenced with transport: WSS: a stock client over wss, certificate rotation by
// SIGHUP (new handshakes get the new CN, the open connection keeps receiving), and a bad
// pair refused while the old one keeps serving.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const sf = require('./lib/streamfenced');

const { makeCert: makeAnyCert, peerCN } = require('./lib/tls');
const makeCert = (dir, cn) => makeAnyCert(dir, cn, cn, 'ec');

test.after(async () => { await sf.stopAll(); });

test('wss: subscribe and receive, then rotate the certificate with SIGHUP', async () => {
  const dir = sf.tmpdir('sf-wss-');
  const one = makeCert(dir, 'one');
  const two = makeCert(dir, 'two');
  const live = { crt: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
  fs.copyFileSync(one.crt, live.crt);
  fs.copyFileSync(one.key, live.key);
  const srv = await sf.start({
    transport: 'WSS',
    tls: { certChainPemPath: live.crt, privateKeyPemPath: live.key, watchIntervalMs: 600000 }, // no polling; inotify may reload too, the assertions hold either way
    namespaces: [sf.ns('/feed', ['prices'])],
  });
  srv.url = (ns) => `https://127.0.0.1:${srv.port}${ns}`;
  const opts = { rejectUnauthorized: false };
  const ws = await sf.connect(srv, '/feed', opts);
  const polling = await sf.connect(srv, '/feed', Object.assign({ transports: ['polling'] }, opts));
  const rw = sf.recorder(ws);
  const rp = sf.recorder(polling);
  await sf.call(ws, 'subscribe', { topic: 'prices' });
  await sf.call(polling, 'subscribe', { topic: 'prices' });
  await srv.publish({ namespace: '/feed', topic: 'prices', payload: 1 });
  await sf.waitUntil(() => rw.count('prices') === 1 && rp.count('prices') === 1, 5000);
  assert.strictEqual(await peerCN(srv.port), 'one');

  // a mismatched pair is refused: the old certificate keeps serving
  fs.copyFileSync(two.crt, live.crt);
  srv.proc.kill('SIGHUP');
  await sf.waitUntil(() => /tls_reload_failed/.test(srv.logs), 5000, () => srv.logs);
  assert.strictEqual(await peerCN(srv.port), 'one');

  fs.copyFileSync(two.key, live.key);
  srv.proc.kill('SIGHUP');
  await sf.waitUntil(async () => (await peerCN(srv.port)) === 'two', 5000, 'new CN not served');
  await srv.publish({ namespace: '/feed', topic: 'prices', payload: 2 });
  await sf.waitUntil(() => rw.count('prices') === 2 && rp.count('prices') === 2, 5000, 'open connections stopped receiving');
  assert.ok(ws.connected && polling.connected);
  const fresh = await sf.connect(srv, '/feed', opts);
  fresh.close();
  ws.close();
  polling.close();
});

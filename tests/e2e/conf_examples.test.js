'use strict';
// Every config shipped under conf/ and conf/examples/ passes --check and starts with the real
// binary and bundled plugins. Only what ties a file to one machine is changed: ports become 0
// (free ports), 0.0.0.0 becomes 127.0.0.1, and the example certificate paths point to a
// fresh self-signed pair. A stock client then reaches the first namespace of each server.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { io } = require('socket.io-client');
const sf = require('./lib/streamfenced');
const { makeCert } = require('./lib/tls');

const SRC = process.env.SF_SOURCE_DIR || path.resolve(__dirname, '../..');
const CONFIGS = ['conf', 'conf/examples'].flatMap((d) => fs.readdirSync(path.join(SRC, d))
  .filter((f) => /\.(ya?ml|json)$/.test(f)).map((f) => path.join(d, f)));

test('the shipped configs are all found', () => {
  for (const f of ['conf/streamfence.yaml', 'conf/streamfence.json', 'conf/examples/auth-jwt.yaml', 'conf/examples/tls.yaml'])
    assert.ok(CONFIGS.includes(f), `${f} in ${CONFIGS}`);
});

function localize(text, pair) {
  return text
    .replace(/("?port"?\s*:\s*)\d+/g, '$10')
    .replace(/0\.0\.0\.0/g, '127.0.0.1')
    .replace(/\/etc\/streamfence\/tls\/fullchain\.pem/g, pair.crt)
    .replace(/\/etc\/streamfence\/tls\/privkey\.pem/g, pair.key);
}

function connectOnce(url, opts) {
  const s = io(url, Object.assign({ transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 }, opts));
  return new Promise((resolve) => {
    s.once('connect', () => { s.close(); resolve({ ok: true }); });
    s.once('connect_error', (e) => { s.close(); resolve({ ok: false, message: e.message, data: e.data }); });
  });
}

for (const rel of CONFIGS) {
  test(`${rel}: passes --check and starts`, async () => {
    const dir = sf.tmpdir();
    const pair = makeCert(dir, '127.0.0.1', 'example');
    const file = path.join(dir, path.basename(rel));
    const text = localize(fs.readFileSync(path.join(SRC, rel), 'utf8'), pair);
    fs.writeFileSync(file, text);

    const check = spawnSync(sf.BIN, ['--check', '-c', file, '--plugin-dir', sf.PLUGIN_DIR], { cwd: dir, encoding: 'utf8', timeout: 20000 });
    assert.strictEqual(check.status, 0, check.stderr);
    assert.match(check.stdout, /config OK/);

    const proc = spawn(sf.BIN, ['-c', file, '--plugin-dir', sf.PLUGIN_DIR], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let logs = '';
    let exited = null;
    proc.stdout.on('data', (d) => { logs += d; });
    proc.stderr.on('data', (d) => { logs += d; });
    const exit = new Promise((r) => proc.on('exit', (code, sig) => { exited = { code, sig }; r(exited); }));
    try {
      await sf.waitUntil(() => {
        if (exited) throw new Error(`exited ${JSON.stringify(exited)}:\n${logs}`);
        return /event=started/.test(logs);
      }, 10000, () => `did not start:\n${logs}`);

      const listening = [...logs.matchAll(/event=listening server=\S+ host=\S+ port=(\d+) transport=(\w+)/g)];
      assert.ok(listening.length >= 1, logs);
      const firstNs = rel.endsWith('.json')
        ? [null, Object.values(JSON.parse(text).servers)[0].namespaces[0].path]
        : /^\s*-\s*path\s*:\s*"?([^\s"]+)/m.exec(text);  // the first `- path:` is a namespace's
      assert.ok(firstNs, 'a namespace path');
      for (const [, port, transport] of listening) {
        const wss = transport === 'wss';
        const r = await connectOnce(`${wss ? 'https' : 'http'}://127.0.0.1:${port}${firstNs[1]}`, wss ? { rejectUnauthorized: false } : {});
        // connected, or refused by the server for want of a token: either way it serves
        assert.ok(r.ok || /AUTH_REJECTED/.test(`${r.message} ${JSON.stringify(r.data)}`), `${rel} port ${port}: ${JSON.stringify(r)}`);
      }
      for (const [, port] of logs.matchAll(/event=control_listening server=\S+ host=\S+ port=(\d+)/g)) {
        assert.strictEqual((await sf.request(Number(port), 'GET', '/health')).status, 200);
      }
    } finally {
      if (!exited) proc.kill('SIGTERM');
    }
    const e = await exit;
    assert.strictEqual(e.code, 0, logs);
  });
}

'use strict';
// The embeddable C++ API, through examples/embedded-server: server-side publish,
// onMessage for client publishes, publishTo reaching only the sender, listener callbacks.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const net = require('node:net');
const { spawn } = require('node:child_process');
const sf = require('./lib/streamfenced');

const BIN = path.join(process.env.SF_BUILD_DIR || '../build', 'examples', 'embedded-server');

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

test('embedded server: publish, onMessage, publishTo, listener', async () => {
  const port = await freePort();
  const proc = spawn(BIN, ['--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  try {
    await sf.waitUntil(() => out.includes(`started port=${port}`), 10000, () => `not started:\n${out}`);
    const h = { url: (ns) => `http://127.0.0.1:${port}${ns}` };
    const a = await sf.connect(h, '/chat');
    const b = await sf.connect(h, '/chat');
    const ra = sf.recorder(a);
    const rb = sf.recorder(b);
    for (const c of [a, b]) {
      assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'ticks' }), { ok: true });
      assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'messages' }), { ok: true });
    }
    await sf.waitUntil(() => ra.count('ticks') >= 3, 5000, 'no ticks from publish()');
    const ticks = ra.payloads('ticks').map((p) => p.n);
    assert.ok(ticks.every((n, k) => k === 0 || n === ticks[k - 1] + 1), `ticks in order: ${ticks}`);

    assert.deepStrictEqual(await sf.call(a, 'publish', { topic: 'messages', payload: { text: 'hello' } }), { ok: true });
    await sf.waitUntil(() => ra.payloads('messages').some((p) => p.echo), 5000, 'no echo from publishTo()');
    assert.deepStrictEqual(ra.payloads('messages').find((p) => p.echo), { echo: { text: 'hello' } });
    await sf.sleep(200);
    assert.ok(!rb.payloads('messages').some((p) => p.echo), 'publishTo reached another client');
    assert.match(out, new RegExp(`message client=${a.id} payload=\\{"text":"hello"\\}`));
    assert.match(out, new RegExp(`connected ns=/chat client=${a.id}`));
    assert.match(out, new RegExp(`subscribed ns=/chat client=${b.id} topic=ticks`));
    a.close();
    b.close();
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
  assert.match(out, /stopped/);
});

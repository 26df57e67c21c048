'use strict';
// Drives an installed streamfenced with the stock socket.io-client (CommonJS, Node 18+).
//   node client.js publish  -- <command that starts streamfenced...>
//   node client.js auth GOOD_TOKEN -- <command...>
// Starts the command, waits for its listening lines (port 0 configs), then
//   publish: subscribes to /feed "prices" and receives a control-API publish;
//   auth:    /feed requires a token: GOOD_TOKEN connects, subscribes and receives a publish,
//            a wrong and a missing token are refused with AUTH_REJECTED.
// Always stops the daemon (SIGTERM, then SIGKILL) and expects a clean exit.
const { spawn } = require('node:child_process');
const http = require('node:http');
const { io } = require('socket.io-client');

const argv = process.argv.slice(2);
const mode = argv[0];
const dash = argv.indexOf('--');
if (!['publish', 'auth'].includes(mode) || dash < 0 || dash === argv.length - 1) {
  console.error('usage: node client.js publish|auth [GOOD_TOKEN] -- command...');
  process.exit(2);
}
const goodToken = mode === 'auth' ? argv[1] : null;
const cmd = argv.slice(dash + 1);

let logs = '';
let exited = null;
const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
proc.stdout.on('data', (d) => { logs += d; });
proc.stderr.on('data', (d) => { logs += d; });
proc.on('exit', (code, sig) => { exited = { code, sig }; });
proc.on('error', (e) => { exited = { error: e.message }; });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitUntil(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (exited) throw new Error(`streamfenced exited (${JSON.stringify(exited)}) while waiting for ${what}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function post(port, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('request timeout')));
    req.end(data);
  });
}

function connect(url, opts = {}) {
  const s = io(url, Object.assign({ transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 }, opts));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { s.close(); reject(new Error('connect timeout')); }, 8000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(t); s.close(); reject(new Error(`connect_error: ${e.message}`)); });
  });
}

// Subscribe, publish through the control API, and resolve with the received payload.
async function subscribeAndReceive(s, controlPort) {
  const ack = await s.timeout(5000).emitWithAck('subscribe', { topic: 'prices' });
  if (!ack || ack.ok !== true) throw new Error(`subscribe not acknowledged: ${JSON.stringify(ack)}`);
  const payload = { symbol: 'ACME', price: 12.5, nonce: Math.random() };
  const got = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no "prices" event within 5 s of the publish')), 5000);
    s.on('prices', (p) => { if (p && p.nonce === payload.nonce) { clearTimeout(t); resolve(p); } });
  });
  const r = await post(controlPort, '/v1/publish', { namespace: '/feed', topic: 'prices', payload });
  if (r.status < 200 || r.status >= 300) throw new Error(`publish answered ${r.status}: ${r.body}`);
  const p = await got;
  if (JSON.stringify(p) !== JSON.stringify(payload)) throw new Error(`payload differs: ${JSON.stringify(p)}`);
}

async function expectRejected(url, opts, label) {
  try {
    const s = await connect(url, opts);
    s.close();
  } catch (e) {
    if (!/AUTH_REJECTED/.test(e.message)) throw new Error(`${label}: refused, but not with AUTH_REJECTED: ${e.message}`);
    console.log(`ok: ${label} refused (${e.message})`);
    return;
  }
  throw new Error(`${label}: connected although it should have been refused`);
}

async function stopDaemon() {
  if (exited) return exited;
  const done = new Promise((r) => proc.once('exit', (code, sig) => r({ code, sig })));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  const res = await done;
  clearTimeout(t);
  return res;
}

async function main() {
  const port = Number((await waitUntil(() => /event=listening server=\S+ host=\S+ port=(\d+)/.exec(logs), 15000, 'event=listening'))[1]);
  const controlPort = Number((await waitUntil(() => /event=control_listening server=\S+ host=\S+ port=(\d+)/.exec(logs), 15000, 'event=control_listening'))[1]);
  console.log(`ok: listening on 127.0.0.1:${port}, control on ${controlPort}`);
  const url = `http://127.0.0.1:${port}/feed`;
  if (mode === 'publish') {
    const s = await connect(url);
    await subscribeAndReceive(s, controlPort);
    s.close();
    console.log('ok: subscribed to /feed prices and received the control-API publish');
  } else {
    if (!/event=plugin_loaded \S+ name=example kind=token-validator/.test(logs)) throw new Error('the example validator was not loaded');
    const s = await connect(url, { auth: { token: goodToken } });
    await subscribeAndReceive(s, controlPort);
    s.close();
    console.log('ok: the good token connected, subscribed and received a publish');
    await expectRejected(url, { auth: { token: `${goodToken}-wrong` } }, 'a wrong token');
    await expectRejected(url, {}, 'a missing token');
  }
  const st = await stopDaemon();
  if (st.code !== 0) throw new Error(`streamfenced did not exit cleanly on SIGTERM: ${JSON.stringify(st)}`);
  console.log('ok: streamfenced stopped cleanly');
}

main().then(() => process.exit(0), async (e) => {
  await stopDaemon();
  console.error(`FAIL: ${e.message}\n--- streamfenced output ---\n${logs}`);
  process.exit(1);
});

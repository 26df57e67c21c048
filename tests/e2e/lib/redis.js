'use strict';
// A real redis-server for the cluster tests: on a free 127.0.0.1 port, no persistence,
// stopped by stop() (or stopAll at exit). restart() brings it back on the same port.
const { spawn } = require('node:child_process');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const running = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function redisBinary() {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (fs.existsSync(p)) return p;
  return 'redis-server';
}

async function launch(r) {
  const proc = spawn(redisBinary(), ['--port', String(r.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', r.dir, '--daemonize', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
  r.proc = proc;
  r.exited = null;
  proc.on('exit', (code, sig) => { r.exited = { code, sig }; });
  proc.stdout.on('data', (d) => { r.logs += d; });
  proc.stderr.on('data', (d) => { r.logs += d; });
  const end = Date.now() + 10000;
  for (;;) {
    if (r.exited) throw new Error(`redis-server exited: ${JSON.stringify(r.exited)}\n${r.logs}`);
    if (await canConnect(r.port)) return;
    if (Date.now() > end) throw new Error(`redis-server did not start:\n${r.logs}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.write('PING\r\n');
      s.once('data', (d) => { s.destroy(); resolve(String(d).startsWith('+PONG')); });
    });
    s.once('error', () => resolve(false));
  });
}

async function start(port) {
  const r = { port: port || await freePort(), dir: fs.mkdtempSync(path.join(os.tmpdir(), 'sf-redis-')), logs: '' };
  await launch(r);
  running.add(r);
  r.url = `redis://127.0.0.1:${r.port}/0`;
  r.stop = () => stop(r);
  r.restart = () => launch(r);
  r.command = (...args) => command(r.port, args);
  return r;
}

function stop(r, signal = 'SIGKILL') {
  if (!r.proc || r.exited) return Promise.resolve();
  return new Promise((resolve) => {
    r.proc.once('exit', () => resolve());
    r.proc.kill(signal);
  });
}

async function stopAll() {
  await Promise.all([...running].map((r) => stop(r)));
  running.clear();
}

// One command over RESP, answer parsed minimally (enough for integers, strings, arrays).
function command(port, args) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    s.once('error', reject);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(buf, 0);
      if (r) { s.destroy(); resolve(r.value); }
    });
    let out = `*${args.length}\r\n`;
    for (const a of args) { const b = Buffer.from(String(a)); out += `$${b.length}\r\n${b.toString('binary')}\r\n`; }
    s.write(Buffer.from(out, 'binary'));
  });
}

function parse(buf, i) {
  const nl = buf.indexOf('\r\n', i);
  if (nl < 0) return null;
  const t = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, nl);
  if (t === '+' ) return { value: line, next: nl + 2 };
  if (t === '-') return { value: new Error(line), next: nl + 2 };
  if (t === ':') return { value: Number(line), next: nl + 2 };
  if (t === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, next: nl + 2 };
    if (buf.length < nl + 2 + n + 2) return null;
    return { value: buf.toString('utf8', nl + 2, nl + 2 + n), next: nl + 2 + n + 2 };
  }
  if (t === '*') {
    const n = Number(line);
    if (n < 0) return { value: null, next: nl + 2 };
    const arr = [];
    let j = nl + 2;
    for (let k = 0; k < n; k++) {
      const r = parse(buf, j);
      if (!r) return null;
      arr.push(r.value);
      j = r.next;
    }
    return { value: arr, next: j };
  }
  throw new Error(`unexpected RESP type ${t}`);
}

module.exports = { start, stopAll, freePort };

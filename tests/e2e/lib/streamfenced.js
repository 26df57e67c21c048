'use strict';
// Starts the real streamfenced on a config written to a temp file, waits for its listening
// lines, and offers small helpers for tests: socket.io-client connections, control-API
// publishes, metric scrapes. Every server started here is stopped by stopAll().
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { io } = require('socket.io-client');

const BIN = process.env.STREAMFENCED || path.join(process.env.SF_BUILD_DIR || '../build', 'host', 'streamfenced');
const PLUGIN_DIR = process.env.SF_PLUGIN_DIR || path.join(process.env.SF_BUILD_DIR || '../build', 'plugins');
const running = new Set();

function tmpdir(prefix = 'sf-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// A namespace entry with streamfence-js defaults unless overridden.
function ns(pathName, topics, extra = {}) {
  return Object.assign({ path: pathName, topics, deliveryMode: 'BEST_EFFORT', overflowAction: 'REJECT_NEW' }, extra);
}

// server: fields of one server (host/port/namespaces/...); top: top-level keys (plugins, metrics...).
async function start(server, top = {}, opts = {}) {
  const dir = tmpdir();
  const cfg = Object.assign({ pluginDir: PLUGIN_DIR, logLevel: 'info' }, top, {
    servers: {
      test: Object.assign({ host: '127.0.0.1', port: 0, control: { host: '127.0.0.1', port: 0 }, spillRootPath: path.join(dir, 'spill') }, server),
    },
  });
  const file = path.join(dir, 'streamfence.json');
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  const proc = spawn(opts.bin || BIN, ['-c', file, ...(opts.args || [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const h = { proc, dir, file, cfg, logs: '', port: 0, controlPort: 0, exited: null };
  running.add(h);
  proc.stdout.on('data', (d) => { h.logs += d; });
  proc.stderr.on('data', (d) => { h.logs += d; if (process.env.SF_E2E_VERBOSE) process.stderr.write(d); });
  proc.on('exit', (code, sig) => { h.exited = { code, sig }; });
  const wantControl = cfg.servers.test.control !== undefined && cfg.servers.test.control.enabled !== false;
  await waitUntil(() => {
    if (h.exited) throw new Error(`streamfenced exited (${JSON.stringify(h.exited)}):\n${h.logs}`);
    const m = /event=listening server=\S+ host=\S+ port=(\d+)/.exec(h.logs);
    if (m) h.port = Number(m[1]);
    const c = /event=control_listening server=\S+ host=\S+ port=(\d+)/.exec(h.logs);
    if (c) h.controlPort = Number(c[1]);
    return h.port && (!wantControl || h.controlPort);
  }, opts.startTimeoutMs || 10000, () => `streamfenced did not start:\n${h.logs}`);
  h.url = (nsPath = '/') => `http://127.0.0.1:${h.port}${nsPath}`;
  h.stop = () => stop(h);
  h.publish = (body, headers) => request(h.controlPort, 'POST', '/v1/publish', body, headers);
  h.metrics = async () => (await request(h.controlPort, 'GET', '/metrics')).body;
  return h;
}

function stop(h, signal = 'SIGTERM') {
  running.delete(h);
  if (h.exited) return Promise.resolve(h.exited);
  return new Promise((resolve) => {
    const t = setTimeout(() => h.proc.kill('SIGKILL'), 5000);
    h.proc.once('exit', (code, sig) => { clearTimeout(t); resolve({ code, sig }); });
    h.proc.kill(signal);
  });
}

async function stopAll() {
  await Promise.all([...running].map((h) => stop(h)));
}

function request(port, method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: Object.assign(
      data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}, headers) }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(b); } catch (_) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: b, json });
      });
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('request timeout')));
    if (data !== undefined) req.write(data);
    req.end();
  });
}

async function waitUntil(fn, timeoutMs = 5000, msg = 'condition not met') {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(typeof msg === 'function' ? msg() : msg);
    await sleep(20);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Connect and resolve once connected (rejects on connect_error with its message).
function connect(h, nsPath, opts = {}) {
  const s = io(h.url(nsPath), Object.assign({ transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 }, opts));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { s.close(); reject(new Error('connect timeout')); }, 8000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(t); s.close(); const err = new Error(e.message); err.data = e.data; reject(err); });
  });
}

// Record every event a socket receives: rec.events[name] = [[args...], ...]
function recorder(s) {
  const rec = { all: [], events: {} };
  s.onAny((name, ...args) => {
    rec.all.push([name, ...args]);
    (rec.events[name] = rec.events[name] || []).push(args);
  });
  rec.count = (name) => (rec.events[name] || []).length;
  rec.payloads = (name) => (rec.events[name] || []).map((a) => a[0]);
  return rec;
}

function once(s, event, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs);
    s.once(event, (...args) => { clearTimeout(t); resolve(args); });
  });
}

// emit with a socket.io ack callback, as a promise.
function call(s, event, payload, timeoutMs = 5000) {
  return s.timeout(timeoutMs).emitWithAck(event, payload);
}

// Parse Prometheus text into [{name, labels, value}].
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const kv of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function metricSamples(text, name, labels) {
  return parseMetrics(text).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

// The sum of the samples named `name` whose labels include `labels`. Throws when no sample
// matches: a metric that vanished (or was renamed) must fail a test, not read as 0.
function metricValue(text, name, labels = {}) {
  const found = metricSamples(text, name, labels);
  if (found.length === 0) throw new Error(`metric ${name} ${JSON.stringify(labels)} is not exposed`);
  return found.reduce((a, s) => a + s.value, 0);
}

// Only for a sample that is legitimately absent until its first event (e.g. a labelled
// series while waiting for it to appear); `dflt` when none matches.
function metricValueOr(text, name, labels, dflt) {
  const found = metricSamples(text, name, labels);
  return found.length === 0 ? dflt : found.reduce((a, s) => a + s.value, 0);
}

module.exports = { BIN, PLUGIN_DIR, start, stop, stopAll, request, waitUntil, sleep, connect, recorder, once, call, ns, tmpdir, parseMetrics, metricValue, metricValueOr };

'use strict';
const http = require('node:http');
// Spawns a server binary for an e2e test and tears it down (CommonJS, Node 18+).
//   const { startServer, conformanceBin } = require('./lib/harness');
//   const srv = await startServer(conformanceBin('sio-conformance-server'), ['--port', '0']);
//   srv.port / srv.ports   ports from the `event=listening ... port=N` log line(s)
//   srv.stderr()           everything logged so far
//   await srv.waitForLog(/event=tls_reloaded/)
//   await srv.stop()       SIGTERM, SIGKILL after 3 s; resolves { code, signal }
// Always call stop() in an after() hook; stopAll() stops whatever is still running.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const running = new Set();

function buildDir() {
  return process.env.SF_BUILD_DIR || path.join(__dirname, '..', '..', '..', 'build');
}

function conformanceBin(name) {
  return path.join(buildDir(), 'tests', 'conformance', name);
}

function startServer(bin, args = [], { listening = 1, timeoutMs = 10000, env } = {}) {
  if (!fs.existsSync(bin)) {
    return Promise.reject(new Error(`binary not found: ${bin} (build it, set SF_BUILD_DIR)`));
  }
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...(env || {}) } });
  let log = '';
  let exited = null;
  const waiters = [];
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(srv);
      resolve(exited);
    });
  });
  const srv = {
    proc,
    ports: [],
    port: 0,
    stderr: () => log,
    exited: () => exited,
    waitForLog(re, ms = 10000) {
      if (re.test(log)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const w = { re, resolve, timer: null };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`log did not match ${re} within ${ms} ms; log:\n${log}`));
        }, ms);
        waiters.push(w);
      });
    },
    async stop() {
      if (exited) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, 3000);
      const r = await exitPromise;
      clearTimeout(t);
      return r;
    },
  };
  running.add(srv);
  proc.stderr.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${path.basename(bin)} did not report listening within ${timeoutMs} ms; log:\n${log}`));
    }, timeoutMs);
    let started = false;
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      if (log.length > 4 << 20) log = log.slice(-(2 << 20));  // bounded, keeps the tail
      for (const w of waiters.slice()) {
        if (w.re.test(log)) {
          clearTimeout(w.timer);
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
      if (started) return;
      const ports = [...log.matchAll(/event=listening [^\n]*?\bport=(\d+)/g)].map((m) => Number(m[1]));
      if (ports.length >= listening) {
        started = true;
        clearTimeout(timer);
        srv.ports = ports.slice(0, listening);
        srv.port = ports[0];
        resolve(srv);
      }
    });
    proc.on('exit', (code, signal) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`${path.basename(bin)} exited (code=${code} signal=${signal}) before listening; log:\n${log}`));
      }
    });
  });
}

async function stopAll() {
  await Promise.all([...running].map((s) => s.stop()));
}

// Resolves with the first argument when `emitter` emits `event`; rejects after ms.
function once(emitter, event, ms = 5000) {
  return onceAll(emitter, event, ms).then((a) => a[0]);
}

// Same, with all the arguments as an array.
function onceAll(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout waiting for '${event}'`)), ms);
    emitter.once(event, (...a) => {
      clearTimeout(t);
      resolve(a);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// GET a URL with no keep-alive: {status, headers, body}.
function httpGet(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

module.exports = { startServer, stopAll, conformanceBin, buildDir, once, onceAll, sleep, httpGet };

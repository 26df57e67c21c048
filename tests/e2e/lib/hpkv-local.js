'use strict';
// Starts and stops tools/hpkv-local for e2e tests (CommonJS, Node 18+).
//   const { startHpkvLocal } = require('./lib/hpkv-local');
//   const srv = await startHpkvLocal({ apiKeys: ['test-key'], dataDir });
//   srv.baseUrl  -> 'http://127.0.0.1:PORT'  (give this to @hpkv/websocket-client)
//   await srv.stop()  (SIGTERM, then SIGKILL) / await srv.kill9()
const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

function hpkvLocalBinary() {
  const buildDir = process.env.SF_BUILD_DIR || path.join(__dirname, '..', '..', '..', 'build');
  return process.env.HPKV_LOCAL_BIN || path.join(buildDir, 'tools', 'hpkv-local', 'hpkv-local');
}

function startHpkvLocal({ apiKeys = ['test-key'], dataDir, rateLimit, extraArgs = [], timeoutMs = 10000 } = {}) {
  const bin = hpkvLocalBinary();
  if (!fs.existsSync(bin)) {
    return Promise.reject(new Error(`hpkv-local binary not found at ${bin} (build target hpkv-local, set SF_BUILD_DIR)`));
  }
  const args = ['--port', '0'];
  for (const k of apiKeys) args.push('--api-key', k);
  if (dataDir) args.push('--data', dataDir);
  if (rateLimit) args.push('--rate-limit', String(rateLimit));
  args.push(...extraArgs);
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`hpkv-local did not report listening within ${timeoutMs} ms; log:\n${log}`));
    }, timeoutMs);
    let started = false;
    proc.stderr.on('data', (chunk) => {
      log += chunk.toString();
      if (process.env.HPKV_LOCAL_VERBOSE) process.stderr.write(chunk);
      const m = !started && /event=listening port=(\d+)/.exec(log);
      if (m) {
        started = true;
        clearTimeout(timer);
        const port = Number(m[1]);
        const stopWith = async (signal, graceMs) => {
          if (exited) return exited;
          proc.kill(signal);
          const t = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, graceMs);
          const r = await exitPromise;
          clearTimeout(t);
          return r;
        };
        resolve({
          proc,
          port,
          baseUrl: `http://127.0.0.1:${port}`,
          logs: () => log,
          exited: () => exited,
          stop: () => stopWith('SIGTERM', 5000),
          kill9: () => stopWith('SIGKILL', 5000),
        });
      }
    });
    proc.on('exit', (code, signal) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`hpkv-local exited early (code ${code}, signal ${signal}); log:\n${log}`));
      }
    });
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

module.exports = { startHpkvLocal, hpkvLocalBinary };

'use strict';
// The jwt validator with keys from a JWKS URL: a local HTTP(S) server on 127.0.0.1 serves
// the set, the plugin fetches it on its own thread, refreshes it every jwksRefreshMs and
// follows a key rotation; a slow JWKS server never delays a connect.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const sf = require('./lib/streamfenced');
const { makeCert } = require('./lib/tls');

function b64url(x) { return Buffer.from(x).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'); }
const now = () => Math.floor(Date.now() / 1000);
const newKey = (kid) => Object.assign({ kid }, crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }));
const jwk = (k) => Object.assign(k.publicKey.export({ format: 'jwk' }), { kid: k.kid, use: 'sig', alg: 'RS256' });
function token(k, claims = {}, header = {}) {
  const head = b64url(JSON.stringify(Object.assign({ alg: 'RS256', typ: 'JWT', kid: k.kid }, header)));
  const body = b64url(JSON.stringify(Object.assign({ sub: 'alice', aud: 'feeds', iss: 'tests', exp: now() + 600 }, claims)));
  const sig = b64url(crypto.sign('sha256', Buffer.from(`${head}.${body}`), k.privateKey));
  return `${head}.${body}.${sig}`;
}

// A JWKS endpoint whose key set and response delay the test changes as it goes.
async function jwksServer(tlsPair) {
  const state = { keys: [], delayMs: 0, requests: 0, pending: 0, raw: null };
  const handler = (req, res) => {
    state.requests++;
    state.pending++;
    const [status, body] = state.raw || [200, JSON.stringify({ keys: state.keys.map(jwk) })];
    setTimeout(() => {
      state.pending--;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(body);
    }, state.delayMs);
  };
  const server = tlsPair
    ? https.createServer({ key: fs.readFileSync(tlsPair.key), cert: fs.readFileSync(tlsPair.crt) }, handler)
    : http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.url = `${tlsPair ? 'https' : 'http'}://127.0.0.1:${server.address().port}/.well-known/jwks.json`;
  state.close = () => { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); };
  return state;
}

async function startWith(jwtOptions) {
  return sf.start({
    auth: 'TOKEN', tokenValidator: 'jwt', authRateLimit: { windowMs: 60000, maxFailures: 1000 },
    namespaces: [sf.ns('/secure', ['t'], { authRequired: true })],
  }, { plugins: { jwt: Object.assign({ algorithms: ['RS256'], audience: 'feeds', issuer: 'tests' }, jwtOptions) } });
}

const connects = async (srv, tok) => { (await sf.connect(srv, '/secure', { auth: { token: tok } })).close(); return true; };
async function rejectedWith(srv, tok) {
  try {
    (await sf.connect(srv, '/secure', { auth: { token: tok } })).close();
  } catch (e) {
    assert.match(e.message, /AUTH_REJECTED/);
    return `${e.message} ${JSON.stringify(e.data || '')}`;
  }
  assert.fail('connect with this token was accepted');
}

const servers = [];
test.after(async () => { await sf.stopAll(); for (const s of servers) await s.close(); });

test('keys come from jwksUrl, are refreshed, and a rotation is followed', async () => {
  const a = newKey('key-a');
  const b = newKey('key-b');
  const jwks = await jwksServer();
  servers.push(jwks);
  jwks.keys = [a];
  const srv = await startWith({ jwksUrl: jwks.url, jwksRefreshMs: 1000 });
  await sf.waitUntil(() => /event=jwks_loaded .*kids key-a/.test(srv.logs), 5000, () => srv.logs);

  assert.ok(await connects(srv, token(a)));
  assert.match(await rejectedWith(srv, token(b)), /AUTH_REJECTED/);                        // not in the set
  assert.match(await rejectedWith(srv, token(b, {}, { kid: 'key-a' })), /AUTH_REJECTED/);  // a's kid, b's signature
  assert.match(await rejectedWith(srv, token(a, { aud: 'other' })), /AUTH_REJECTED/);      // claims still checked

  // Rotate: the set now holds only b. Within a refresh period b is accepted and a is not.
  const before = jwks.requests;
  jwks.keys = [b];
  await sf.waitUntil(async () => { try { return await connects(srv, token(b)); } catch { return false; } }, 5000);
  assert.ok(jwks.requests > before);
  await sf.waitUntil(() => /event=jwks_loaded .*kids key-b/.test(srv.logs), 3000);
  assert.match(await rejectedWith(srv, token(a)), /AUTH_REJECTED/);

  // Refreshed periodically (every 1000 ms), not once.
  const r0 = jwks.requests;
  await sf.sleep(2500);
  assert.ok(jwks.requests - r0 >= 2, `requests in 2.5 s: ${jwks.requests - r0}`);
});

test('a bad JWKS answer is logged and keeps the keys already loaded', async () => {
  const a = newKey('keep-a');
  const jwks = await jwksServer();
  servers.push(jwks);
  jwks.keys = [a];
  const srv = await startWith({ jwksUrl: jwks.url, jwksRefreshMs: 1000 });
  await sf.waitUntil(() => /event=jwks_loaded/.test(srv.logs), 5000, () => srv.logs);
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
  const answers = [
    [[200, 'not json'], /not JSON/],
    [[200, '{"no":"keys"}'], /no \\?"keys\\?" array/],
    [[200, JSON.stringify({ keys: [Object.assign(ec, { kid: 'ec' })] })], /no RS256 signing key/],
    [[200, JSON.stringify({ keys: [Object.assign(small, { kid: 'small' })] })], /shorter than 2048 bits/],
    [[200, JSON.stringify({ keys: [{ kty: 'RSA', kid: 'junk', n: '!!!', e: 'AQAB' }] })], /bad base64url/],
    [[404, 'nope'], /HTTP status 404/],
  ];
  for (const [raw, re] of answers) {
    const from = srv.logs.length;
    jwks.raw = raw;
    await sf.waitUntil(() => re.test(srv.logs.slice(from)), 5000, () => `${re}: ${srv.logs.slice(from)}`);
    assert.ok(await connects(srv, token(a)), 'the previous set still serves');
  }
  assert.strictEqual(srv.exited, null);
});

test('a slow JWKS server never delays token checks (the fetch is off the event loop)', async () => {
  const a = newKey('slow-a');
  const jwks = await jwksServer();
  servers.push(jwks);
  jwks.keys = [a];
  const srv = await startWith({ jwksUrl: jwks.url, jwksRefreshMs: 1000, jwksTimeoutMs: 10000 });
  await sf.waitUntil(() => /event=jwks_loaded/.test(srv.logs), 5000, () => srv.logs);
  jwks.delayMs = 4000;
  await sf.waitUntil(() => jwks.pending > 0, 3000);  // a refresh is now hanging on the server
  const t0 = Date.now();
  for (let i = 0; i < 5; i++) assert.ok(await connects(srv, token(a)));
  assert.ok(jwks.pending > 0, 'the refresh was still in flight');
  assert.ok(Date.now() - t0 < 2000, `5 connects took ${Date.now() - t0} ms`);
  // Stopping does not wait for the hanging fetch either.
  const s0 = Date.now();
  await srv.stop();
  assert.ok(Date.now() - s0 < 3000, `stop took ${Date.now() - s0} ms`);
});

test('https JWKS: verified against jwksCaPemPath; an untrusted certificate loads no keys', async () => {
  const dir = sf.tmpdir();
  const pair = makeCert(dir, '127.0.0.1', 'jwks');
  const a = newKey('tls-a');
  const jwks = await jwksServer(pair);
  servers.push(jwks);
  jwks.keys = [a];
  const trusted = await startWith({ jwksUrl: jwks.url, jwksRefreshMs: 60000, jwksCaPemPath: pair.crt });
  await sf.waitUntil(() => /event=jwks_loaded/.test(trusted.logs), 5000, () => trusted.logs);
  assert.ok(await connects(trusted, token(a)));

  const untrusted = await startWith({ jwksUrl: jwks.url, jwksRefreshMs: 60000 });
  await sf.waitUntil(() => /event=jwks_fetch_failed .*certificate/.test(untrusted.logs), 5000, () => untrusted.logs);
  assert.match(await rejectedWith(untrusted, token(a)), /AUTH_REJECTED/);
});

test('bad jwt options fail --check and start alike, naming the option', () => {
  const { spawnSync } = require('node:child_process');
  const path = require('node:path');
  const cases = [
    [{ secret: 'x'.repeat(32), algorithms: ['ES256'] }, /unsupported algorithm \\?"ES256/],
    [{ secret: 'x'.repeat(32), audiance: 'feeds' }, /unknown option audiance/],
    [{ jwksUrl: 'ftp://127.0.0.1/jwks' }, /option jwksUrl: expected an http:\/\/ or https:\/\/ URL/],
    [{ algorithms: ['RS256'], secret: 'x'.repeat(32) }, /RS256 needs publicKeyPem, publicKeyPemPath or jwksUrl/],
    [{ jwksUrl: 'http://127.0.0.1:9/jwks', jwksRefreshMs: 10 }, /option jwksRefreshMs: must be >= 1000/],
  ];
  for (const [opts, re] of cases) {
    const dir = sf.tmpdir();
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({
      pluginDir: sf.PLUGIN_DIR,
      plugins: { jwt: opts },
      servers: { s: { host: '127.0.0.1', port: 0, auth: 'TOKEN', tokenValidator: 'jwt', namespaces: [{ path: '/a', topics: ['t'] }] } },
    }));
    for (const args of [['--check', '-c', file], ['-c', file]]) {
      const r = spawnSync(sf.BIN, args, { encoding: 'utf8', timeout: 10000 });
      assert.strictEqual(r.status, 1, `${args.join(' ')} ${JSON.stringify(opts)}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  }
});

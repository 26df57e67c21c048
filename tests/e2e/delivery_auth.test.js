'use strict';
// Token auth with the validator plugins (static, jwt): every token source, rejection,
// brute-force limiting, and expiry ending what the token authorised.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const sf = require('./lib/streamfenced');

const SECRET = 'jwt-test-secret-0123456789';
function b64url(x) { return Buffer.from(x).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'); }
function jwt(claims, secret = SECRET, alg = 'HS256') {
  const head = b64url(JSON.stringify({ alg, typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);

let stat;
let jwtSrv;
let limited;
test.before(async () => {
  const staticTop = { plugins: { static: { tokens: { alice: 'alice-token', bob: 'bob-token' } } } };
  stat = await sf.start({
    auth: 'TOKEN', tokenValidator: 'static', authRateLimit: { windowMs: 60000, maxFailures: 1000 },
    namespaces: [sf.ns('/secure', ['t'], { authRequired: true }), sf.ns('/open', ['t'])],
  }, staticTop);
  jwtSrv = await sf.start({
    auth: 'TOKEN', tokenValidator: 'jwt', authRateLimit: { windowMs: 60000, maxFailures: 1000 },
    namespaces: [sf.ns('/secure', ['t', 'u'], { authRequired: true })],
  }, { plugins: { jwt: { secret: SECRET, audience: 'feeds', issuer: 'tests' } } });
  limited = await sf.start({
    auth: 'TOKEN', tokenValidator: 'static', authRateLimit: { windowMs: 60000, maxFailures: 3 },
    namespaces: [sf.ns('/secure', ['t'], { authRequired: true })],
  }, staticTop);
});
test.after(async () => { await sf.stopAll(); });

test('static: a good token in the CONNECT auth payload is accepted', async () => {
  const c = await sf.connect(stat, '/secure', { auth: { token: 'alice-token' } });
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 't' }), { ok: true });
  c.close();
});

test('static: Authorization: Bearer header and ?token= query are token sources', async () => {
  const viaHeader = await sf.connect(stat, '/secure', { extraHeaders: { Authorization: 'Bearer bob-token' } });
  viaHeader.close();
  const viaQuery = await sf.connect(stat, '/secure', { query: { token: 'bob-token' } });
  viaQuery.close();
});

test('static: a wrong or missing token is a connect_error naming AUTH_REJECTED, and counted', async () => {
  const before = sf.metricValue(await stat.metrics(), 'streamfence_auth_rejected_total', { namespace: '/secure' });
  await assert.rejects(sf.connect(stat, '/secure', { auth: { token: 'wrong' } }), /AUTH_REJECTED/);
  await assert.rejects(sf.connect(stat, '/secure'), /AUTH_REJECTED/);
  const after = sf.metricValue(await stat.metrics(), 'streamfence_auth_rejected_total', { namespace: '/secure' });
  assert.strictEqual(after - before, 2);
});

test('a namespace without authRequired needs no token', async () => {
  const c = await sf.connect(stat, '/open');
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 't' }), { ok: true });
  c.close();
});

test('jwt: valid HS256 token accepted; expired, wrong audience, wrong issuer, bad signature rejected', async () => {
  const good = jwt({ sub: 'carol', aud: 'feeds', iss: 'tests', exp: now() + 60 });
  (await sf.connect(jwtSrv, '/secure', { auth: { token: good } })).close();
  for (const bad of [
    jwt({ sub: 'c', aud: 'feeds', iss: 'tests', exp: now() - 10 }),
    jwt({ sub: 'c', aud: 'other', iss: 'tests', exp: now() + 60 }),
    jwt({ sub: 'c', aud: 'feeds', iss: 'evil', exp: now() + 60 }),
    jwt({ sub: 'c', aud: 'feeds', iss: 'tests', exp: now() + 60 }, 'another-secret'),
    jwt({ sub: 'c', aud: 'feeds', iss: 'tests', nbf: now() + 600, exp: now() + 900 }),
    'not.a.jwt',
  ]) {
    await assert.rejects(sf.connect(jwtSrv, '/secure', { auth: { token: bad } }), /AUTH_REJECTED/, bad);
  }
});

test('jwt: an expired connect token ends the connection', async () => {
  const short = jwt({ sub: 'dave', aud: 'feeds', iss: 'tests', exp: now() + 2 });
  const c = await sf.connect(jwtSrv, '/secure', { auth: { token: short } });
  await sf.call(c, 'subscribe', { topic: 't' });
  const t0 = Date.now();
  await sf.waitUntil(() => !c.connected, 6000, 'socket still connected after its token expired');
  assert.ok(Date.now() - t0 < 5000);
  c.close();
});

test('brute force: after maxFailures rejections the address is RATE_LIMITED and counted', async () => {
  for (let k = 0; k < 3; k++) await assert.rejects(sf.connect(limited, '/secure', { auth: { token: 'bad' } }), /AUTH_REJECTED/);
  await assert.rejects(sf.connect(limited, '/secure', { auth: { token: 'alice-token' } }), /RATE_LIMITED/);
  const m = await limited.metrics();
  assert.ok(sf.metricValue(m, 'streamfence_auth_rate_limited_total', { namespace: '/secure' }) >= 1);
});

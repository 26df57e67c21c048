'use strict';
// e2e for tools/hpkv-local: the official @hpkv/websocket-client (API client,
// token manager, subscription client) against the local server, plus a few
// raw-socket checks for inputs the official client never sends.
// Run: SF_BUILD_DIR=<build> node tests/e2e/hpkv_local.test.js
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const {
  HPKVClientFactory,
  WebsocketTokenManager,
  HPKVError,
} = require('@hpkv/websocket-client');
const { startHpkvLocal } = require('./lib/hpkv-local');

const API_KEY = 'test-key';
const servers = new Set();
const clients = new Set();
const tmpDirs = [];

// Never hang: whatever is still open after 4 minutes is torn down.
const watchdog = setTimeout(() => {
  console.error('hpkv_local.test.js: watchdog fired, killing servers');
  for (const s of servers) s.proc.kill('SIGKILL');
  process.exit(1);
}, 240000);
watchdog.unref();

async function start(opts = {}) {
  const srv = await startHpkvLocal({ apiKeys: [API_KEY], ...opts });
  servers.add(srv);
  return srv;
}

async function stopServer(srv, how = 'stop') {
  const r = await srv[how]();
  servers.delete(srv);
  return r;
}

function tmpDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hpkv-local-test-'));
  tmpDirs.push(d);
  return d;
}

// Client-side throttling (10 req/s by default) would only slow the tests down.
const FAST = { throttling: { enabled: false }, maxReconnectAttempts: 1, connectionTimeout: 3000 };

async function apiClient(srv, key = API_KEY, config = FAST) {
  const c = HPKVClientFactory.createApiClient(key, srv.baseUrl, config);
  clients.add(c);
  await c.connect();
  return c;
}

async function subscriptionClient(srv, tokenConfig, config = FAST) {
  const token = await new WebsocketTokenManager(API_KEY, srv.baseUrl).generateToken(tokenConfig);
  const c = HPKVClientFactory.createSubscriptionClient(token, srv.baseUrl, config);
  clients.add(c);
  await c.connect();
  return { client: c, token };
}

async function closeClient(c) {
  if (!clients.has(c)) return;
  clients.delete(c);
  try {
    await c.disconnect();
  } finally {
    c.destroy(); // clears the client's 60 s cleanup interval, or node never exits
  }
}

async function closeAll() {
  for (const c of [...clients]) await closeClient(c).catch(() => {});
}

async function expectHpkvError(promise, code, messageRe) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof HPKVError, `expected HPKVError, got ${err && err.name}: ${err && err.message}`);
    assert.strictEqual(err.code, code, `expected code ${code}, got ${err.code} (${err.message})`);
    if (messageRe) assert.match(err.message, messageRe);
    return true;
  });
}

async function waitFor(pred, timeoutMs = 3000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Raw socket for protocol-level checks. Resolves with helpers once open.
function rawSocket(srv, query = `apiKey=${API_KEY}`) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws?${query}`);
    const inbox = [];
    let closeInfo = null;
    ws.on('message', (d) => inbox.push(d.toString()));
    ws.on('close', (code) => { closeInfo = { code }; });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('open', () => resolve({
      ws,
      inbox,
      closed: () => closeInfo,
      async next(timeoutMs = 3000) {
        await waitFor(() => inbox.length > 0, timeoutMs, 'a frame');
        return JSON.parse(inbox.shift());
      },
      close() { ws.terminate(); },
    }));
  });
}

function upgradeStatus(srv, query) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws${query}`);
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode); ws.terminate(); });
    ws.on('open', () => { resolve(101); ws.terminate(); });
    ws.on('error', () => {});
  });
}

// Per-describe cleanup for whatever a failed test left behind; open clients
// would keep node alive (their interval timers) and servers would leak.
async function cleanupAll() {
  await closeAll();
  for (const srv of [...servers]) await stopServer(srv, 'kill9').catch(() => {});
}

// Last resort (also covers a failure inside a hook).
process.on('exit', () => {
  for (const srv of servers) srv.proc.kill('SIGKILL');
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('hpkv-local with the official client', () => {
  let srv;
  let api;
  before(async () => {
    srv = await start({ dataDir: tmpDir() });
    api = await apiClient(srv);
  });
  after(async () => {
    await closeAll();
    if (srv && servers.has(srv)) {
      const r = await stopServer(srv);
      assert.strictEqual(r.code, 0, `graceful stop should exit 0, got ${JSON.stringify(r)}\n${srv.logs()}`);
    }
  });

  it('SET / GET / overwrite / DELETE', async () => {
    const set = await api.set('crud:1', 'hello');
    assert.strictEqual(set.code, 200);
    assert.strictEqual(set.success, true);
    const got = await api.get('crud:1');
    assert.strictEqual(got.code, 200);
    assert.strictEqual(got.key, 'crud:1');
    assert.strictEqual(got.value, 'hello');

    await api.set('crud:obj', { name: 'test', value: 123 });
    assert.strictEqual((await api.get('crud:obj')).value, '{"name":"test","value":123}');

    await api.set('crud:1', 'ünïcødé ✓ "quoted" \\ \n');
    assert.strictEqual((await api.get('crud:1')).value, 'ünïcødé ✓ "quoted" \\ \n');

    const del = await api.delete('crud:1');
    assert.strictEqual(del.code, 200);
    assert.strictEqual(del.success, true);
    await expectHpkvError(api.get('crud:1'), 404, /Record not found/);
    await expectHpkvError(api.delete('crud:1'), 404, /Record not found/);
  });

  it('PATCH merges JSON objects (RFC 7396), appends otherwise, creates missing keys', async () => {
    await api.set('patch:obj', { a: 1, nested: { x: 1, y: 2 }, arr: [1, 2], gone: true });
    const r = await api.set('patch:obj', { b: 2, nested: { y: 3, z: 4 }, arr: [9], gone: null }, true);
    assert.strictEqual(r.code, 200);
    assert.strictEqual(r.success, true);
    assert.deepStrictEqual(JSON.parse((await api.get('patch:obj')).value), {
      a: 1, nested: { x: 1, y: 3, z: 4 }, arr: [9], b: 2,
    });

    await api.set('patch:str', 'Hello ');
    await api.set('patch:str', 'World!', true);
    assert.strictEqual((await api.get('patch:str')).value, 'Hello World!');

    await api.set('patch:new', { first: true }, true);
    assert.deepStrictEqual(JSON.parse((await api.get('patch:new')).value), { first: true });
  });

  it('RANGE is inclusive, byte-ordered, limited and paginates', async () => {
    const keys = ['rg:111', 'rg:001', 'rg:101', 'rg:010', 'rg:100'];
    await Promise.all(keys.map((k) => api.set(k, `v-${k}`)));
    await api.set('rh:outside', 'x');

    const all = await api.range('rg:', 'rg:~');
    assert.strictEqual(all.code, 200);
    assert.deepStrictEqual(all.records.map((r) => r.key), ['rg:001', 'rg:010', 'rg:100', 'rg:101', 'rg:111']);
    assert.strictEqual(all.records[0].value, 'v-rg:001');
    assert.strictEqual(all.count, 5);
    assert.strictEqual(all.truncated, false);

    const inner = await api.range('rg:010', 'rg:101');
    assert.deepStrictEqual(inner.records.map((r) => r.key), ['rg:010', 'rg:100', 'rg:101']);

    const limited = await api.range('rg:', 'rg:~', { limit: 2 });
    assert.strictEqual(limited.count, 2);
    assert.strictEqual(limited.truncated, true);
    assert.deepStrictEqual(limited.records.map((r) => r.key), ['rg:001', 'rg:010']);

    // zustand-multiplayer pagination idiom: restart after lastKey + '\0'.
    const seen = [];
    let start = 'rg:';
    for (let page = 0; page < 10; page++) {
      const res = await api.range(start, 'rg:\xff', { limit: 2 });
      seen.push(...res.records.map((r) => r.key));
      if (!res.truncated) break;
      start = res.records[res.records.length - 1].key + '\0';
    }
    assert.deepStrictEqual(seen, ['rg:001', 'rg:010', 'rg:100', 'rg:101', 'rg:111']);

    const empty = await api.range('nothing:', 'nothing:~');
    assert.strictEqual(empty.code, 200);
    assert.deepStrictEqual(empty.records, []);
    assert.strictEqual(empty.count, 0);
    assert.strictEqual(empty.truncated, false);

    const reversed = await api.range('rg:~', 'rg:');
    assert.strictEqual(reversed.count, 0);
  });

  it('ATOMIC increments from 0, decrements, works on numeric strings, rejects non-numbers', async () => {
    let r = await api.atomicIncrement('ctr:a', 1);
    assert.strictEqual(r.code, 200);
    assert.strictEqual(r.success, true);
    assert.strictEqual(r.newValue, 1);
    assert.strictEqual((await api.atomicIncrement('ctr:a', 5)).newValue, 6);
    assert.strictEqual((await api.atomicIncrement('ctr:a', -10)).newValue, -4);
    assert.strictEqual((await api.get('ctr:a')).value, '-4');

    await api.set('ctr:b', '10');
    assert.strictEqual((await api.atomicIncrement('ctr:b', 5)).newValue, 15);
    assert.strictEqual((await api.atomicIncrement('ctr:b', -3)).newValue, 12);

    await api.set('ctr:text', 'abc');
    await expectHpkvError(api.atomicIncrement('ctr:text', 1), 400);

    // Concurrent increments on one key must not lose updates.
    await Promise.all(Array.from({ length: 50 }, () => api.atomicIncrement('ctr:par', 1)));
    assert.strictEqual((await api.get('ctr:par')).value, '50');
  });

  it('correlates many concurrent requests by messageId', async () => {
    const n = 100;
    await Promise.all(Array.from({ length: n }, (_, i) => api.set(`mid:${i}`, `value-${i}`)));
    const got = await Promise.all(Array.from({ length: n }, (_, i) => api.get(`mid:${i}`)));
    got.forEach((g, i) => {
      assert.strictEqual(g.key, `mid:${i}`);
      assert.strictEqual(g.value, `value-${i}`);
    });
  });

  it('answers 400 for empty key, empty value, oversize key and value', async () => {
    await expectHpkvError(api.set('', 'x'), 400);
    await expectHpkvError(api.get(''), 400);
    await expectHpkvError(api.set('bad:empty', ''), 400);
    await expectHpkvError(api.set('k'.repeat(513), 'x'), 400);
    await api.set('k'.repeat(512), 'x'); // exactly at the limit
    await expectHpkvError(api.set('bad:big', 'v'.repeat(102401)), 400);
    await api.set('ok:big', 'v'.repeat(102400));
    assert.strictEqual((await api.get('ok:big')).value.length, 102400);
    // The socket is still usable after the errors.
    assert.strictEqual((await api.get('crud:obj')).code, 200);
  });

  it('refuses bad credentials with 403 at the upgrade and 401 at the token endpoint', async () => {
    const bad = HPKVClientFactory.createApiClient('wrong-key', srv.baseUrl, FAST);
    clients.add(bad);
    await assert.rejects(bad.connect(), /403/);
    await closeClient(bad);

    const badToken = HPKVClientFactory.createSubscriptionClient('eyJhbGciOiJIUzI1NiJ9.e30.bm90LWEtc2ln', srv.baseUrl, FAST);
    clients.add(badToken);
    await assert.rejects(badToken.connect(), /403/);
    await closeClient(badToken);

    await assert.rejects(
      new WebsocketTokenManager('wrong-key', srv.baseUrl).generateToken({ subscribePatterns: ['x'] }),
      (err) => err.name === 'AuthenticationError' && /401/.test(err.message),
    );
    assert.strictEqual(await upgradeStatus(srv, ''), 401);
    assert.strictEqual(await upgradeStatus(srv, '?apiKey=nope'), 403);
    assert.strictEqual(await upgradeStatus(srv, `?apiKey=${API_KEY}`), 101);

    // A token of ours with one claim changed, or re-signed with "alg":"none", is refused.
    const good = await new WebsocketTokenManager(API_KEY, srv.baseUrl).generateToken({ subscribePatterns: ['x'] });
    assert.strictEqual(await upgradeStatus(srv, `?token=${good}`), 101);
    const [, body] = good.split('.');
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, sp: ['*'] })).toString('base64url');
    assert.strictEqual(await upgradeStatus(srv, `?token=${good.replace(body, forged)}`), 403);
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    assert.strictEqual(await upgradeStatus(srv, `?token=${none}.${body}.`), 403);

    // A trailing slash in the base URL makes the official client ask for //ws.
    assert.strictEqual((await fetch(`${srv.baseUrl}//ws?apiKey=${API_KEY}`)).status, 404);
    assert.strictEqual((await fetch(`${srv.baseUrl}/ping`)).status, 200);
  });

  it('issues tokens whose iat and exp are both seconds since the epoch', async () => {
    const token = await new WebsocketTokenManager(API_KEY, srv.baseUrl).generateToken({ subscribePatterns: ['t:*'] });
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    const nowS = Date.now() / 1000;
    assert.ok(Math.abs(claims.iat - nowS) < 60, `iat ${claims.iat} is not now in seconds`);
    assert.strictEqual(claims.exp - claims.iat, 7200, `exp ${claims.exp} is not iat + the default 7200 s ttl`);
  });

  it('notifies subscription clients and enforces the token access pattern', async () => {
    const tokenConfig = { subscribePatterns: ['sub:*', 'exact-key'], accessPattern: '^sub:' };
    const { client: sub1 } = await subscriptionClient(srv, tokenConfig);
    // Older clients send subscribeKeys; accept both names.
    const { client: sub2 } = await subscriptionClient(srv, { subscribeKeys: ['sub:*'] });
    const got1 = [];
    const got2 = [];
    sub1.subscribe((n) => got1.push(n));
    sub2.subscribe((n) => got2.push(n));

    await api.set('sub:1', { a: 1 });
    await api.set('sub:1', { b: 2 }, true);
    await api.set('other:1', 'not subscribed');
    await api.atomicIncrement('sub:ctr', 2);
    await api.delete('sub:1');
    await api.set('exact-key', 'yes');

    await waitFor(() => got1.length >= 5, 3000, 'notifications on sub1');
    await waitFor(() => got2.length >= 4, 3000, 'notifications on sub2');
    await sleep(100); // anything extra (e.g. for other:1) would arrive by now
    for (const n of got1) {
      assert.strictEqual(n.type, 'notification');
      assert.strictEqual(typeof n.timestamp, 'number');
      assert.ok(Math.abs(n.timestamp - Date.now()) < 60000, 'timestamp is epoch ms');
    }
    assert.deepStrictEqual(got1.map((n) => n.key), ['sub:1', 'sub:1', 'sub:ctr', 'sub:1', 'exact-key']);
    assert.deepStrictEqual(got2.map((n) => n.key), ['sub:1', 'sub:1', 'sub:ctr', 'sub:1']);
    assert.strictEqual(got1[0].value, '{"a":1}');
    assert.deepStrictEqual(JSON.parse(got1[1].value), { a: 1, b: 2 }); // full stored value after PATCH
    assert.strictEqual(got1[2].value, '2');
    assert.strictEqual(got1[3].value, null); // deletion
    assert.strictEqual(got1[4].value, 'yes');

    // Token connection CRUD: allowed inside the access pattern ...
    await sub1.set('sub:own', 'mine');
    assert.strictEqual((await sub1.get('sub:own')).value, 'mine');
    // ... its own write is echoed back as a notification ...
    await waitFor(() => got1.some((n) => n.key === 'sub:own'), 3000, 'own-write notification');
    // ... and 403 outside it, with the socket staying open.
    await expectHpkvError(sub1.get('other:1'), 403);
    await expectHpkvError(sub1.set('exact-key', 'no'), 403);
    await expectHpkvError(sub1.range('other:', 'other:~'), 403);
    assert.strictEqual((await sub1.get('sub:own')).code, 200);

    // API-key connections get no notifications (the api client has no handler
    // to show that, so check the raw socket stays silent).
    const raw = await rawSocket(srv);
    await api.set('sub:quiet', 'x');
    await sleep(150);
    assert.deepStrictEqual(raw.inbox, []);
    raw.close();

    await closeClient(sub1);
    await closeClient(sub2);
  });

  it('survives malformed frames and answers them with code 400', async () => {
    const raw = await rawSocket(srv);
    raw.ws.send('this is not json');
    let r = await raw.next();
    assert.strictEqual(r.code, 400);
    raw.ws.send(JSON.stringify({ op: 42, key: 'x', messageId: 7 }));
    r = await raw.next();
    assert.deepStrictEqual([r.code, r.messageId], [400, 7]);
    raw.ws.send(JSON.stringify({ op: 2, key: 'x', value: 5, messageId: 8 }));
    r = await raw.next();
    assert.deepStrictEqual([r.code, r.messageId], [400, 8]);
    raw.ws.send(JSON.stringify({ op: 5, key: 'a', endKey: 'b', limit: -1, messageId: 9 }));
    r = await raw.next();
    assert.deepStrictEqual([r.code, r.messageId], [400, 9]);
    raw.ws.send('['.repeat(100000));
    r = await raw.next();
    assert.strictEqual(r.code, 400);
    raw.ws.send('[1,2,3]');
    assert.strictEqual((await raw.next()).code, 400);
    raw.ws.send(Buffer.from(JSON.stringify({ op: 1, key: 'crud:obj', messageId: 10 }))); // binary frame
    r = await raw.next();
    assert.deepStrictEqual([r.code, r.messageId, r.value], [200, 10, '{"name":"test","value":123}']);
    // Numeric-string increments (clients <= 1.2.6) and an unknown messageId type.
    raw.ws.send(JSON.stringify({ op: 6, key: 'ctr:str', value: '7', messageId: 'abc' }));
    r = await raw.next();
    assert.deepStrictEqual([r.code, r.newValue, r.messageId], [200, 7, 'abc']);
    // Oversized frame: the connection is closed with 1009, the server lives on.
    raw.ws.send('x'.repeat(2 * 1024 * 1024));
    await waitFor(() => raw.closed() !== null, 3000, 'close after oversized frame');
    assert.strictEqual(raw.closed().code, 1009);
    assert.strictEqual((await api.get('crud:obj')).code, 200);
  });
});

describe('hpkv-local notifications right after connect', () => {
  after(closeAll);

  it('a write made as soon as the subscription client is connected is notified', async () => {
    // Each connection is held 400 ms after its upgrade answer (a loaded machine, made
    // certain): the write below lands before the subscriber's connection is served.
    const srv = await start({ extraArgs: ['--upgrade-delay-ms', '400'] });
    try {
      const api = await apiClient(srv);
      await api.get('warm').catch(() => {});  // past its own delay
      const { client: sub } = await subscriptionClient(srv, { subscribePatterns: ['early:*'] });
      const got = [];
      sub.subscribe((n) => got.push(n.key));
      await api.set('early:1', 'x');
      await api.set('early:2', 'y');
      await waitFor(() => got.length >= 2, 3000, 'notifications for writes made during the upgrade gap');
      assert.deepStrictEqual(got, ['early:1', 'early:2']);
    } finally {
      await closeAll();
      await stopServer(srv);
    }
  });
});

describe('hpkv-local persistence', () => {
  after(cleanupAll);
  it('keeps every acknowledged write across kill -9, drops a torn tail, keeps tokens valid', async () => {
    const dataDir = tmpDir();
    let srv = await start({ dataDir });
    let api = await apiClient(srv);
    await Promise.all(Array.from({ length: 200 }, (_, i) => api.set(`p:${String(i).padStart(3, '0')}`, `v${i}`)));
    await api.set('p:json', { a: 1 });
    await api.set('p:json', { b: 2 }, true);
    await api.delete('p:000');
    await api.atomicIncrement('p:ctr', 41);
    await api.atomicIncrement('p:ctr', 1);
    const { token } = await subscriptionClient(srv, { subscribePatterns: ['p:*'], accessPattern: '^p:' });
    await closeAll();
    const r = await stopServer(srv, 'kill9');
    assert.strictEqual(r.signal, 'SIGKILL');

    // Simulate a crash in the middle of writing the next record.
    fs.appendFileSync(path.join(dataDir, 'hpkv.log'), Buffer.from([0x12, 0x34, 0x56, 0x78, 0x01, 0x05, 0x00]));

    srv = await start({ dataDir });
    assert.match(srv.logs(), /event=log_tail_dropped/);
    api = await apiClient(srv);
    await expectHpkvError(api.get('p:000'), 404);
    assert.strictEqual((await api.get('p:199')).value, 'v199');
    assert.deepStrictEqual(JSON.parse((await api.get('p:json')).value), { a: 1, b: 2 });
    assert.strictEqual((await api.get('p:ctr')).value, '42');
    const all = await api.range('p:', 'p:~', { limit: 1000 });
    assert.strictEqual(all.count, 199 + 2);

    // The token secret lives in the data dir, so the old token still connects.
    const sub = HPKVClientFactory.createSubscriptionClient(token, srv.baseUrl, FAST);
    clients.add(sub);
    await sub.connect();
    const seen = [];
    sub.subscribe((n) => seen.push(n));
    assert.strictEqual((await sub.get('p:001')).value, 'v1');
    await api.set('p:after', 'restart');
    await waitFor(() => seen.some((n) => n.key === 'p:after'), 3000, 'notification after restart');

    // Writes after the truncated tail are replayed too.
    await closeAll();
    await stopServer(srv, 'kill9');
    srv = await start({ dataDir });
    api = await apiClient(srv);
    assert.strictEqual((await api.get('p:after')).value, 'restart');
    assert.doesNotMatch(srv.logs(), /log_tail_dropped/);
    await closeAll();
    await stopServer(srv);
  });

  it('compacts the log and still replays the latest values', async () => {
    const dataDir = tmpDir();
    let srv = await start({ dataDir, extraArgs: ['--compact-bytes', '20000', '--fsync'] });
    let api = await apiClient(srv);
    for (let round = 0; round < 30; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => api.set(`c:${i}`, `round-${round}-${'x'.repeat(100)}`)));
    }
    await api.delete('c:9');
    assert.match(srv.logs(), /event=log_compacted/);
    const size = fs.statSync(path.join(dataDir, 'hpkv.log')).size;
    assert.ok(size < 20000 * 2, `log should stay small after compaction, is ${size}`);
    await closeAll();
    await stopServer(srv, 'kill9');

    srv = await start({ dataDir });
    api = await apiClient(srv);
    assert.strictEqual((await api.get('c:3')).value, `round-29-${'x'.repeat(100)}`);
    await expectHpkvError(api.get('c:9'), 404);
    await closeAll();
    await stopServer(srv);
  });
});

describe('hpkv-local rate limit', () => {
  after(cleanupAll);
  it('answers 429 beyond --rate-limit and the official client backs off', async () => {
    const srv = await start({ rateLimit: 5 });
    try {
      // Unthrottled burst: the first ~5 pass, the rest get 429 "Rate limit exceeded".
      const api = await apiClient(srv);
      const results = await Promise.allSettled(Array.from({ length: 30 }, () => api.get('rl:none')));
      const codes = results.map((r) => (r.status === 'fulfilled' ? r.value.code : r.reason.code));
      const n429 = codes.filter((c) => c === 429).length;
      const n404 = codes.filter((c) => c === 404).length; // passed the limiter, key missing
      assert.ok(n429 >= 15, `expected most requests limited, codes: ${codes.join(',')}`);
      assert.ok(n404 >= 5 && n404 <= 12, `expected about 5 (burst) to pass, codes: ${codes.join(',')}`);
      const limited = results.find((r) => r.status === 'rejected' && r.reason.code === 429);
      assert.match(limited.reason.message, /Rate limit exceeded/);

      // After the bucket refills, requests pass again.
      await sleep(1100);
      await api.set('rl:key', 'v');
      assert.strictEqual((await api.get('rl:key')).value, 'v');

      // With throttling on, the client reacts to 429 by halving its rate.
      await sleep(1100);
      const throttled = await apiClient(srv, API_KEY, { throttling: { enabled: true, rateLimit: 100 } });
      await Promise.allSettled(Array.from({ length: 20 }, () => throttled.get('rl:key')));
      const rate = throttled.getThrottlingStatus().metrics.currentRate;
      assert.ok(rate < 100, `client rate should drop after 429, is ${rate}`);

      // The token endpoint shares the per-key budget.
      const status = await fetch(`${srv.baseUrl}/token/websocket`, {
        method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: '{}',
      }).then((r) => r.status);
      assert.ok(status === 200 || status === 429);
    } finally {
      await closeAll();
      await stopServer(srv);
    }
  });
});

describe('hpkv-local config file and token expiry', () => {
  after(cleanupAll);

  it('reads API keys from --config and refuses expired tokens with 403', async () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'hpkv.json');
    fs.writeFileSync(cfg, JSON.stringify({ apiKeys: ['cfg-key'], tokenTtlSeconds: 2 }));
    const srv = await start({ extraArgs: ['--config', cfg] }); // plus --api-key test-key
    const viaConfig = await apiClient(srv, 'cfg-key');
    await viaConfig.set('cfg:1', 'ok');
    const viaFlag = await apiClient(srv, API_KEY);
    assert.strictEqual((await viaFlag.get('cfg:1')).value, 'ok');

    const token = await new WebsocketTokenManager(API_KEY, srv.baseUrl).generateToken({ subscribePatterns: ['cfg:*'] });
    assert.strictEqual(await upgradeStatus(srv, `?token=${token}`), 101);
    await sleep(2100);
    assert.strictEqual(await upgradeStatus(srv, `?token=${token}`), 403);
    await closeAll();
    await stopServer(srv);
  });

  it('rejects a bad command line with exit code 2', async () => {
    const { spawnSync } = require('node:child_process');
    const { hpkvLocalBinary } = require('./lib/hpkv-local');
    const noKey = spawnSync(hpkvLocalBinary(), ['--port', '0'], { timeout: 5000 });
    assert.strictEqual(noKey.status, 2);
    assert.match(noKey.stderr.toString(), /api-key/);
    const badPort = spawnSync(hpkvLocalBinary(), ['--port', 'x', '--api-key', 'k'], { timeout: 5000 });
    assert.strictEqual(badPort.status, 2);
  });
});

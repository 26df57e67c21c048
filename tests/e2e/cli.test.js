'use strict';
// streamfenced as a user runs it: --help/--version, --check, config errors with
// file:line:col, plugin resolution and refusals, clean stop on SIGTERM/SIGINT.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const sf = require('./lib/streamfenced');

const SRC = process.env.SF_SOURCE_DIR || path.resolve(__dirname, '../..');
const BAD_PLUGINS = path.join(process.env.SF_BUILD_DIR || '../build', 'tests', 'badplugins');
const run = (args) => spawnSync(sf.BIN, args, { encoding: 'utf8', timeout: 20000 });

test.after(async () => { await sf.stopAll(); });

test('--help and --version', () => {
  const h = run(['--help']);
  assert.strictEqual(h.status, 0);
  assert.match(h.stdout, /--check/);
  const v = run(['--version']);
  assert.strictEqual(v.status, 0);
  assert.match(v.stdout, /^streamfenced \d+\.\d+\.\d+ \(plugin ABI 2\.\d+\)/);
  const bad = run(['--bogus']);
  assert.strictEqual(bad.status, 2);
  assert.match(bad.stderr, /unknown argument "--bogus"/);
});

test('--check accepts the shipped configs', () => {
  for (const f of ['conf/streamfence.yaml', 'conf/streamfence.json']) {
    const r = run(['--check', '-c', path.join(SRC, f), '--plugin-dir', sf.PLUGIN_DIR]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /config OK/);
  }
});

test('--check reports file:line:col, the key and a hint, and exits 1', () => {
  const dir = sf.tmpdir();
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, [
    'servers:',
    '  s:',
    '    port: 3000',
    '    pingIntervalMS: 100',
    '    namespaces:',
    '      - path: /feed',
    '        topics: [a]',
    '        overflowAction: DROP_NEWEST',
    '',
  ].join('\n'));
  const r = run(['--check', '-c', file, '--plugin-dir', sf.PLUGIN_DIR]);
  assert.strictEqual(r.status, 1);
  assert.match(r.stderr, /bad\.yaml:4:5: servers\.s\.pingIntervalMS: unknown key "pingIntervalMS" \(did you mean "pingIntervalMs"\?\)/);
  assert.match(r.stderr, /config check FAILED/);
  // once the schema is right, plugin names are resolved too
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('pingIntervalMS', 'pingIntervalMs'));
  const r2 = run(['--check', '-c', file, '--plugin-dir', sf.PLUGIN_DIR]);
  assert.strictEqual(r2.status, 1);
  assert.match(r2.stderr, /bad\.yaml:8:9: servers\.s\.namespaces\[0\]\.overflowAction: invalid value "DROP_NEWEST" \(expected one of DROP_OLDEST, REJECT_NEW, COALESCE, SNAPSHOT_ONLY, SPILL_TO_DISK or an installed overflow-policy plugin\)/);
});

test('a config naming a plugin that is not installed fails to start, naming plugin and line', () => {
  const dir = sf.tmpdir();
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, [
    `pluginDir: ${sf.PLUGIN_DIR}`,
    'servers:',
    '  s:',
    '    host: 127.0.0.1',
    '    port: 0',
    '    namespaces:',
    '      - path: /feed',
    '        topics: [a]',
    '        overflowAction: my_policy',
    '',
  ].join('\n'));
  for (const args of [['--check', '-c', file], ['-c', file]]) {
    const r = run(args);
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, /c\.yaml:9:\d+: servers\.s\.namespaces\[0\]\.overflowAction: .*"my_policy"/);
  }
});

test('a control listener off loopback without a token is a config error at --check and at start', () => {
  const dir = sf.tmpdir();
  const file = path.join(dir, 'c.yaml');
  const lines = (control) => [
    `pluginDir: ${sf.PLUGIN_DIR}`,
    'servers:',
    '  s:',
    '    host: 127.0.0.1',
    '    port: 0',
    `    control: ${control}`,
    '    namespaces:',
    '      - path: /feed',
    '        topics: [a]',
    '',
  ].join('\n');
  fs.writeFileSync(file, lines('{host: 0.0.0.0, port: 0}'));
  for (const args of [['--check', '-c', file], ['-c', file]]) {
    const r = run(args);
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, /c\.yaml:6:\d+: servers\.s\.control\.host: control listener on non-loopback host "0\.0\.0\.0" requires a token/);
  }
  fs.writeFileSync(file, lines('{host: 0.0.0.0, port: 0, token: s3cret}'));
  const ok = run(['--check', '-c', file]);
  assert.strictEqual(ok.status, 0, ok.stderr);
});

test('bad plugins in the plugin dir are refused with one line each; the server still serves', async () => {
  // tests/plugins always builds them with the tests: missing means a broken tree, not a skip.
  assert.ok(fs.existsSync(BAD_PLUGINS), `bad plugins not built (${BAD_PLUGINS})`);
  const dir = sf.tmpdir();
  const plugins = path.join(dir, 'plugins');
  fs.mkdirSync(plugins);
  for (const f of fs.readdirSync(sf.PLUGIN_DIR)) if (f.endsWith('.so')) fs.copyFileSync(path.join(sf.PLUGIN_DIR, f), path.join(plugins, f));
  for (const f of fs.readdirSync(BAD_PLUGINS)) if (f.endsWith('.so') && !/^dup_/.test(f)) fs.copyFileSync(path.join(BAD_PLUGINS, f), path.join(plugins, `zz_${f}`));
  fs.writeFileSync(path.join(plugins, 'x.so'), 'this is not a shared object\n');
  const srv = await sf.start({ namespaces: [sf.ns('/feed', ['a'])] }, { pluginDir: plugins });
  const refused = srv.logs.split('\n').filter((l) => l.includes('event=plugin_refused'));
  assert.ok(refused.some((l) => l.includes('x.so') && /not|ELF|shared/i.test(l)), refused.join('\n'));
  assert.ok(refused.some((l) => /ABI 99/.test(l)), refused.join('\n'));
  assert.ok(refused.some((l) => /streamfence_plugin_entry/.test(l)), refused.join('\n'));
  const c = await sf.connect(srv, '/feed');
  assert.deepStrictEqual(await sf.call(c, 'subscribe', { topic: 'a' }), { ok: true });
  c.close();
});

test('SIGTERM and SIGINT stop cleanly with exit code 0', async () => {
  for (const sig of ['SIGTERM', 'SIGINT']) {
    const srv = await sf.start({ namespaces: [sf.ns('/feed', ['a'])] });
    const c = await sf.connect(srv, '/feed');
    const res = await sf.stop(srv, sig);
    c.close();
    assert.deepStrictEqual(res, { code: 0, sig: null }, srv.logs);
    assert.match(srv.logs, /event=stopped/);
  }
});

test('--check initialises the spill backend with its options, without touching the spill root', () => {
  const dir = sf.tmpdir();
  const root = path.join(dir, 'spill');
  // stale spill a running server might own: --check must leave it alone
  const lane = path.join(root, 's', 'feed', 'client', 'a');
  fs.mkdirSync(lane, { recursive: true });
  fs.writeFileSync(path.join(lane, '0000000000000001.seg'), 'x');
  const file = path.join(dir, 'c.json');
  const write = (disk) => fs.writeFileSync(file, JSON.stringify({
    pluginDir: sf.PLUGIN_DIR,
    plugins: { disk },
    servers: { s: { host: '127.0.0.1', port: 0, spillRootPath: root,
      namespaces: [{ path: '/feed', topics: ['a'], overflowAction: 'SPILL_TO_DISK' }] } },
  }));
  write({ staleSpill: 'remove' });
  const ok = run(['--check', '-c', file]);
  assert.strictEqual(ok.status, 0, ok.stderr);
  assert.ok(fs.existsSync(path.join(lane, '0000000000000001.seg')), 'stale spill untouched');
  write({ staleSpill: 'bogus' });
  for (const args of [['--check', '-c', file], ['-c', file]]) {
    const r = run(args);
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, /option staleSpill: expected \\?"recover\\?" or \\?"remove\\?"/);
  }
});

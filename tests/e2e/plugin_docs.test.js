'use strict';
// Every bundled plugin folder has a README.md (conf/README.md sends readers there for the
// options), and it names every option the plugin's source reads, so docs cannot fall behind.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const SRC = process.env.SF_SOURCE_DIR || path.resolve(__dirname, '../..');
const PLUGINS = path.join(SRC, 'plugins');

// Option names a plugin reads through the SDK's Options (get/getInt/getBool/has/children,
// parseSize(o, ...)) or lists as known (validator-jwt's kOptions).
function optionsRead(dir) {
  const names = new Set();
  for (const f of fs.readdirSync(dir).filter((n) => /\.(cpp|hpp)$/.test(n) && !/^test_/.test(n))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/\bo(?:pts)?\.(?:get|getInt|getBool|has|children)\("([A-Za-z][A-Za-z0-9]*)"/g)) names.add(m[1]);
    for (const m of src.matchAll(/parseSize\(o, "([A-Za-z][A-Za-z0-9]*)"/g)) names.add(m[1]);
    const known = /kOptions = \{([^}]*)\}/.exec(src);
    if (known) for (const m of known[1].matchAll(/"([A-Za-z0-9]+)"/g)) names.add(m[1]);
  }
  return names;
}

const folders = fs.readdirSync(PLUGINS).filter((d) => fs.existsSync(path.join(PLUGINS, d, 'CMakeLists.txt')));

test('the plugin folders are found', () => {
  for (const d of ['validator-jwt', 'validator-static', 'sink-statsd', 'sink-prometheus', 'storage-disk', 'storage-hpkv',
    'overflow-coalesce', 'overflow-drop-oldest', 'overflow-reject-new', 'overflow-snapshot-only', 'overflow-spill'])
    assert.ok(folders.includes(d), d);
});

for (const d of folders) {
  test(`plugins/${d}: README.md names every option the plugin reads`, () => {
    const dir = path.join(PLUGINS, d);
    const readme = path.join(dir, 'README.md');
    const options = optionsRead(dir);
    assert.ok(fs.existsSync(readme), `plugins/${d}/README.md is missing`);
    const text = fs.readFileSync(readme, 'utf8');
    assert.match(text, /^# /, 'a title');
    assert.match(text, /```/, 'an example');
    const missing = [...options].filter((o) => !new RegExp(`\\b${o}\\b`).test(text));
    assert.deepStrictEqual(missing, [], `options not in plugins/${d}/README.md`);
  });
}

'use strict';
// The dashboard (GET /dashboard, docs/dashboard.md) in a real headless browser: Debian's
// chromium driven by puppeteer-core (both installed by scripts/setup.sh). The page asks for
// the control token, then shows what a publisher and a subscriber that stopped reading do:
// rates and counters, the overflow and the deep lane. Saves a screenshot
// (SF_DASHBOARD_SCREENSHOT, default <build>/dashboard.png; docs/img/dashboard.png is made
// with SF_DASHBOARD_SCREENSHOT=docs/img/dashboard.png).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const puppeteer = require('puppeteer-core');
const sf = require('./lib/streamfenced');

require('./lib/watchdog')('dashboard_browser', 180000, sf.stopAll);

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'dash-s3cret';
const PAD = 'x'.repeat(2000);

let browser;
test.after(async () => {
  if (browser) await browser.close();
  await sf.stopAll();
});

// Text of the first element matching selector, or null.
const text = (page, selector) => page.$eval(selector, (e) => e.textContent).catch(() => null);
// The page shows numbers formatted ("12.3 k"); compare the plain ones.
const num = (s) => (s === null ? NaN : Number(s));

test('dashboard: token prompt, live rates and counters, overflow and the deep lane', async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing (scripts/setup.sh --test installs chromium)`);
  const srv = await sf.start({
    control: { host: '127.0.0.1', port: 0, token: TOKEN },
    namespaces: [
      sf.ns('/feed', ['prices', 'news'], { overflowAction: 'DROP_OLDEST' }),
      sf.ns('/slow', ['ticks'], { overflowAction: 'REJECT_NEW', maxQueuedMessagesPerClient: 64, maxQueuedBytesPerClient: 1 << 20 }),
    ],
  });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // CI runs as root, where chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1100 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const url = `http://127.0.0.1:${srv.controlPort}/dashboard`;
  await page.goto(url);

  // A token is configured: the page asks for it, refuses a wrong one, keeps the right one.
  await page.waitForSelector('#auth-prompt.shown', { timeout: 10000 });
  await page.type('#token', 'wrong');
  await page.click('#auth-form button');
  await page.waitForFunction(() => document.querySelector('#auth-error').textContent.includes('refused'), { timeout: 10000 });
  await page.$eval('#token', (e) => { e.value = ''; });
  await page.type('#token', TOKEN);
  await page.click('#auth-form button');
  await page.waitForFunction(() => !document.querySelector('#auth-prompt').classList.contains('shown') &&
    document.querySelector('#status').className === 'live', { timeout: 10000 });
  assert.strictEqual(await page.evaluate(() => sessionStorage.getItem('sfControlToken')), TOKEN);
  assert.strictEqual(await text(page, '#server'), 'test');

  // A reader on /feed and a publisher through the control API, 20 messages every 100 ms.
  const reader = await sf.connect(srv, '/feed');
  let got = 0;
  reader.on('prices', () => { got++; });
  assert.deepStrictEqual(await sf.call(reader, 'subscribe', { topic: 'prices' }), { ok: true });
  let sent = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      const batch = [];
      for (let i = 0; i < 20; i++) batch.push({ namespace: '/feed', topic: 'prices', payload: { i: sent + i } });
      const r = await srv.publish(batch, { authorization: `Bearer ${TOKEN}` });
      assert.strictEqual(r.status, 200);
      sent += 20;
      await sf.sleep(100);
    }
  })();
  let slow;
  try {
    const row = 'tr[data-topic="/feed prices"]';
    let seen = '';  // what the page showed last, for the failure message
    await sf.waitUntil(async () => {
      seen = await text(page, row);
      return num(await text(page, `${row} .publish-rate`)) > 0 && num(await text(page, `${row} .delivery-rate`)) > 0 &&
        num(await text(page, `${row} .published`)) >= 100 && num(await text(page, `${row} .delivered`)) >= 100;
    }, 15000, () => `page row: ${seen}`);
    assert.strictEqual(num(await text(page, `${row} .subscribers`)), 1);
    assert.strictEqual(num(await text(page, 'tr[data-namespace="/feed"] .websocket')), 1);
    // The sparkline draws the rate history.
    assert.ok(await page.$(`${row} svg.spark polyline`), 'sparkline drawn');
    // The page keeps up: one snapshot a second, so a second later the count has grown.
    const before = num(await text(page, `${row} .published`));
    await sf.waitUntil(async () => num(await text(page, `${row} .published`)) > before, 5000, 'page stopped updating');

    // A subscriber that stops reading: REJECT_NEW overflows, its lane is the deepest.
    slow = await sf.connect(srv, '/slow');
    assert.deepStrictEqual(await sf.call(slow, 'subscribe', { topic: 'ticks' }), { ok: true });
    slow.io.engine.transport.ws._socket.pause();
    assert.strictEqual(await page.$('#overflow tr[data-reason]'), null, 'no overflow before the slow client');
    const batch = [];
    for (let i = 0; i < 50; i++) batch.push({ namespace: '/slow', topic: 'ticks', payload: { i, pad: PAD } });
    await sf.waitUntil(async () => {
      await srv.publish(batch, { authorization: `Bearer ${TOKEN}` });
      seen = `overflow: ${await text(page, '#overflow')}; deepest: ${await text(page, '#deepest')}`;
      return (await page.$('#overflow tr[data-reason]')) !== null &&
        num(await text(page, `#deepest tr[data-client="${slow.id}"] .messages`)) === 64;
    }, 30000, () => seen);
    const overflowRow = await page.$eval('#overflow tr[data-reason]', (tr) => [...tr.cells].map((c) => c.textContent));
    assert.strictEqual(overflowRow[0], '/slow ticks');
    assert.strictEqual(overflowRow[1], 'REJECT_NEW');
    assert.ok(Number(overflowRow[3]) > 0 || /k|M/.test(overflowRow[3]), `count ${overflowRow[3]}`);
    const deepRow = await page.$eval(`#deepest tr[data-client="${slow.id}"]`, (tr) => [...tr.cells].map((c) => c.textContent));
    assert.deepStrictEqual(deepRow.slice(0, 3), [slow.id, '/slow', 'ticks']);
    // The histogram counts it among 11-100.
    await page.waitForFunction(() => Number(document.querySelector('#histogram rect[data-bucket="11-100"]').getAttribute('data-lanes')) >= 1, { timeout: 5000 });
    const shot = process.env.SF_DASHBOARD_SCREENSHOT || path.join(process.env.SF_BUILD_DIR || '.', 'dashboard.png');
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10000, 'screenshot written');
    // Plugins: the bundled policies, with kind and ABI.
    const plugins = await page.$$eval('#plugins tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    const reject = plugins.find((p) => p[0] === 'REJECT_NEW');
    assert.ok(reject, JSON.stringify(plugins));
    assert.strictEqual(reject[1], 'overflow-policy');
    assert.match(reject[3], /^\d+\.\d+$/, 'ABI major.minor');
  } finally {
    publishing = false;
    await publisher.catch(() => {});  // it stops at its next turn; a failure above is the one to report
  }
  assert.ok(got > 0);
  assert.deepStrictEqual(errors, [], 'no script errors on the page');
  reader.close();
  slow.io.engine.transport.ws._socket.resume();  // a paused socket would keep node running
  slow.close();
  await page.close();
  await srv.stop();
});

test('dashboard: without a token configured the page asks for none', async () => {
  const srv = await sf.start({ namespaces: [sf.ns('/feed', ['prices'])] });
  if (!browser) {
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${srv.controlPort}/dashboard`);
  await page.waitForFunction(() => document.querySelector('#status').className === 'live', { timeout: 10000 });
  assert.strictEqual(await page.$('#auth-prompt.shown'), null);
  assert.strictEqual(await text(page, 'tr[data-namespace="/feed"] .websocket'), '0');
  assert.match(await text(page, '#tls'), /plain/);
  assert.match(await text(page, '#cluster-self'), /not clustered/);
  await page.close();
  await srv.stop();
});

'use strict';
// Fault injection: a storage-backend plugin that fails its calls (tests/faults/faulty_storage.cpp,
// built against the SDK like any third-party plugin). Appends failed later (the completion
// reports SF_ERR) or refused at the call, reads failing, removes failing, behind a subscriber
// whose lane is full (it does not ack yet) so every new message goes to the backend: the server stays up
// and keeps serving other namespaces, every refusal is counted and logged, and every message
// is delivered once, in order, or counted as refused. Nothing silently vanishes, nothing comes twice.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const sf = require('./lib/streamfenced');
const { pluginDirWithFaults, holdingSubscriber, waitQuiet, publishRange } = require('./lib/faults');

test.after(async () => { await sf.stopAll(); });

test('failing storage plugin: server stays up, refusals counted and logged, nothing lost or doubled', async (t) => {
  const failFile = path.join(sf.tmpdir('sf-faulty-'), 'fail');
  const srv = await sf.start({
    namespaces: [
      sf.ns('/f', ['t'], { deliveryMode: 'AT_LEAST_ONCE', overflowAction: 'SPILL_TO_DISK', spillBackend: 'faulty',
        maxQueuedMessagesPerClient: 16, maxInFlight: 1, ackTimeoutMs: 60000, maxRetries: 3 }),
      sf.ns('/other', ['t']),
    ],
  }, { pluginDir: pluginDirWithFaults(), plugins: { faulty: { failFile } } });
  const L = { namespace: '/f', topic: 't' };
  const refusedNow = async () => {
    const m = await srv.metrics();
    return sf.metricValue(m, 'streamfence_queue_overflow_total', L) -
      sf.metricValue(m, 'streamfence_queue_overflow_total', Object.assign({ reason: 'spilled to disk' }, L));
  };
  const logCount = (re) => (srv.logs.match(new RegExp(re, 'g')) || []).length;
  const sub = await holdingSubscriber(srv, '/f');
  const got = sub.got;
  const other = await sf.connect(srv, '/other');
  const otherGot = [];
  other.on('t', (p) => otherGot.push(p.i));
  await sf.call(other, 'subscribe', { topic: 't' });
  let otherSent = 0;
  const otherStillServed = async (phase) => {
    await publishRange(srv, '/other', 't', otherSent + 1, otherSent + 20, 10);
    otherSent += 20;
    await sf.waitUntil(() => otherGot.length === otherSent, 5000, () => `${phase}: /other received ${otherGot.length}/${otherSent}`);
  };

  // The lane holds 16; the rest of these go to the backend.
  let sent = 200;
  await publishRange(srv, '/f', 't', 1, sent, 2000);
  await sf.waitUntil(async () => sf.metricValue(await srv.metrics(), 'streamfence_messages_spilled_total', L) === sent - 16, 5000, 'the lane did not spill');
  assert.strictEqual(await refusedNow(), 0, 'a healthy backend refuses nothing');

  // Appends accepted by the plugin, failed later.
  fs.writeFileSync(failFile, 'append');
  await publishRange(srv, '/f', 't', sent + 1, sent + 300, 2000);
  sent += 300;
  let seen = 0;
  await sf.waitUntil(async () => (seen = await refusedNow()) === 300, 5000, () => `failed appends: ${seen} of 300 counted`);
  assert.strictEqual(sf.metricValue(await srv.metrics(), 'streamfence_messages_spilled_total', L), 200 - 16,
    'a failed append is not counted as spilled');
  assert.ok(logCount('event=spill_append_failed') > 0, 'failed appends are logged');
  await otherStillServed('appends failing');

  // Appends refused at the call.
  fs.writeFileSync(failFile, 'append refuse');
  const before = await refusedNow();
  await publishRange(srv, '/f', 't', sent + 1, sent + 300, 2000);
  sent += 300;
  await sf.waitUntil(async () => (await refusedNow()) - before === 300, 5000, 'refused appends were not counted');
  assert.match(srv.logs, /event=spill_append_refused/, 'refused appends are logged');
  await otherStillServed('appends refused');

  // Reads failing: the subscriber reads again, gets what memory held, the spill waits.
  fs.writeFileSync(failFile, 'read');
  sub.startAcking();
  await sf.waitUntil(() => logCount('event=spill_read_failed') >= 2, 5000, 'failed reads are not logged (and retried)');
  await otherStillServed('reads failing');

  // Removes failing: records read into memory must not come again once removes work.
  fs.writeFileSync(failFile, 'remove');
  await sf.waitUntil(() => logCount('event=spill_remove_failed') >= 1, 5000, 'failed removes are not logged');
  await otherStillServed('removes failing');

  fs.unlinkSync(failFile);
  const TOTAL = sent + 300;
  await publishRange(srv, '/f', 't', sent + 1, TOTAL, 2000);
  await waitQuiet(got, 30000);
  const refused = await refusedNow();
  const dups = got.filter((x, k) => got.indexOf(x) !== k);
  assert.deepStrictEqual(dups.slice(0, 10), [], 'no message delivered twice');
  assert.ok(got.every((x, k) => k === 0 || x > got[k - 1]), `in order: ${got.slice(0, 40).join(',')}...`);
  assert.ok(got.includes(TOTAL), 'spill works again once the faults stop');
  assert.strictEqual(got.length + refused, TOTAL, `received ${got.length} + refused ${refused} != published ${TOTAL}`);
  assert.strictEqual(srv.exited, null, 'the server is still running');
  t.diagnostic(`${TOTAL} published, ${got.length} delivered, ${refused} refused; log lines: ${['append_failed', 'append_refused', 'read_failed', 'remove_failed'].map((e) => `${e} ${logCount(`event=spill_${e}`)}`).join(', ')}`);
  sub.client.close(); other.close();
});

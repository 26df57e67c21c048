'use strict';
// Every streamfence_* metric's exact value after a known sequence of client actions.
const test = require('node:test');
const assert = require('node:assert');
const sf = require('./lib/streamfenced');

const REFERENCE_COUNTERS = ['streamfence_connections_total', 'streamfence_disconnections_total',
  'streamfence_messages_published_total', 'streamfence_messages_published_bytes_total',
  'streamfence_messages_received_total', 'streamfence_messages_received_bytes_total',
  'streamfence_queue_overflow_total', 'streamfence_retries_total', 'streamfence_retries_exhausted_total',
  'streamfence_messages_dropped_total', 'streamfence_messages_coalesced_total', 'streamfence_messages_spilled_total',
  'streamfence_auth_rejected_total', 'streamfence_auth_rate_limited_total'];

test.after(async () => { await sf.stopAll(); });

// The 14 counters, under their reference names (without the streamfence_ prefix).
const COUNTERS = ['connections_total', 'disconnections_total', 'messages_published_total', 'messages_published_bytes_total',
  'messages_received_total', 'messages_received_bytes_total', 'retries_total', 'retries_exhausted_total',
  'messages_dropped_total', 'messages_coalesced_total', 'messages_spilled_total', 'auth_rejected_total',
  'auth_rate_limited_total', 'queue_overflow_total'];

function assertCountersExposed(text, names) {
  const exposed = new Set(sf.parseMetrics(text).map((s) => s.name));
  for (const n of names) assert.ok(exposed.has(`streamfence_${n}`), `counter streamfence_${n} is not exposed`);
}

test('metric values follow a known sequence exactly', async () => {
  const srv = await sf.start({
    namespaces: [
      sf.ns('/m', ['p']),
      sf.ns('/a', ['q'], { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 200, maxRetries: 1, maxInFlight: 1, maxQueuedMessagesPerClient: 4 }),
    ],
  });
  const value = async (name, labels) => sf.metricValue(await srv.metrics(), name, labels);
  const M = { namespace: '/m' };
  const MP = { namespace: '/m', topic: 'p' };
  const AQ = { namespace: '/a', topic: 'q' };

  const c1 = await sf.connect(srv, '/m');
  const c2 = await sf.connect(srv, '/m');
  const r1 = sf.recorder(c1);
  const r2 = sf.recorder(c2);
  await sf.call(c1, 'subscribe', { topic: 'p' });
  await sf.call(c2, 'subscribe', { topic: 'p' });
  assert.strictEqual(await value('streamfence_connections_total', M), 2);
  assert.strictEqual(await value('streamfence_connections_active', M), 2);

  await srv.publish([1, 2, 3].map((i) => ({ namespace: '/m', topic: 'p', payload: { i } }))); // {"i":1} = 7 bytes
  await sf.waitUntil(() => r1.count('p') === 3 && r2.count('p') === 3, 3000);
  assert.strictEqual(await value('streamfence_messages_published_total', MP), 3);
  assert.strictEqual(await value('streamfence_messages_published_bytes_total', MP), 21);
  assert.strictEqual(await value('streamfence_messages_received_total', MP), 0);

  assert.deepStrictEqual(await sf.call(c1, 'publish', { topic: 'p', payload: { x: 'ab' } }), { ok: true }); // 10 bytes
  await sf.waitUntil(() => r2.count('p') === 4, 3000);
  assert.strictEqual(await value('streamfence_messages_received_total', MP), 1);
  assert.strictEqual(await value('streamfence_messages_received_bytes_total', MP), 10);
  assert.strictEqual(await value('streamfence_messages_published_total', MP), 4);
  assert.strictEqual(await value('streamfence_messages_published_bytes_total', MP), 31);

  c2.close();
  await sf.waitUntil(async () => (await value('streamfence_disconnections_total', M)) === 1, 3000);
  assert.strictEqual(await value('streamfence_connections_active', M), 1);

  const c3 = await sf.connect(srv, '/a');
  const r3 = sf.recorder(c3);
  await sf.call(c3, 'subscribe', { topic: 'q' });
  await srv.publish({ namespace: '/a', topic: 'q', payload: 'never-acked' });
  await sf.waitUntil(async () => (await value('streamfence_retries_exhausted_total', AQ)) === 1, 3000);
  assert.strictEqual(r3.count('q'), 2); // 1 + maxRetries
  assert.strictEqual(await value('streamfence_retries_total', AQ), 1);
  assert.strictEqual(await value('streamfence_inflight', AQ), 0);

  // nothing overflowed, was dropped, coalesced, spilled or refused (metricValue throws if a
  // counter is missing, so each of these must be exposed, at 0)
  for (const name of ['streamfence_messages_dropped_total', 'streamfence_messages_coalesced_total',
    'streamfence_messages_spilled_total', 'streamfence_auth_rejected_total', 'streamfence_auth_rate_limited_total']) {
    assert.strictEqual(sf.metricValue(await srv.metrics(), name), 0, name);
  }
  // all 14 counters are exposed under their reference names, each with a sample per topic or
  // namespace (overflow too, as a zero sample without `reason` before the first overflow)
  const samples = sf.parseMetrics(await srv.metrics());
  const names = new Set(samples.map((s) => s.name));
  for (const n of ['connections_total', 'disconnections_total', 'messages_published_total', 'messages_published_bytes_total',
    'messages_received_total', 'messages_received_bytes_total', 'queue_overflow_total', 'retries_total', 'retries_exhausted_total',
    'messages_dropped_total', 'messages_coalesced_total', 'messages_spilled_total', 'auth_rejected_total',
    'auth_rate_limited_total']) assert.ok(names.has(`streamfence_${n}`), n);
  assert.deepStrictEqual(samples.filter((s) => s.name === 'streamfence_queue_overflow_total').map((s) => s.labels),
    [{ namespace: '/a', topic: 'q' }, { namespace: '/m', topic: 'p' }]);
  c1.close();
  c3.close();
});

test('a fresh server lists all 14 counters in /metrics', async () => {
  const srv = await sf.start({ namespaces: [sf.ns('/f', ['t'])] });
  const text = await srv.metrics();
  const names = new Set(sf.parseMetrics(text).map((s) => s.name));
  // The 14 of the reference plus ours: publishes refused under overload (docs/message-path.md)
  // clients disconnected at maxClientErrorsPerMinute (conf/README.md), and connection-state
  // recovery's (docs/recovery.md; zero while it is off, so the schema is the same), and the
  // abuse limits' (conf/README.md, limits).
  assert.deepStrictEqual([...names].filter((n) => n.endsWith('_total')).sort(),
    [...REFERENCE_COUNTERS, 'streamfence_publish_refused_total', 'streamfence_client_error_limit_disconnects_total',
      'streamfence_sessions_recovered_total', 'streamfence_sessions_expired_total', 'streamfence_recovery_gaps_total',
      'streamfence_connections_refused_total', 'streamfence_handshake_timeouts_total', 'streamfence_protocol_limit_refused_total',
      'streamfence_subscription_limit_refused_total', 'streamfence_control_rate_limited_total'].sort(), text);
  assert.match(text, /^# TYPE streamfence_queue_overflow_total counter$/m);
  assert.match(text, /^streamfence_queue_overflow_total\{namespace="\/f",topic="t"\} 0$/m);
});

test('queue overflow is counted per reason and the lane gauges show the backlog', async () => {
  const srv = await sf.start({
    namespaces: [sf.ns('/o', ['t'], { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 10000, maxRetries: 1, maxInFlight: 1, maxQueuedMessagesPerClient: 2 })],
  });
  const c = await sf.connect(srv, '/o');
  await sf.call(c, 'subscribe', { topic: 't' });
  await srv.publish([1, 2, 3, 4, 5].map((i) => ({ namespace: '/o', topic: 't', payload: i })));
  const labels = { namespace: '/o', topic: 't' };
  // The labelled series appears with the first overflow, so the wait tolerates its absence.
  await sf.waitUntil(async () => sf.metricValueOr(await srv.metrics(), 'streamfence_queue_overflow_total', labels, 0) === 3, 3000);
  const m = await srv.metrics();
  assertCountersExposed(m, COUNTERS);  // all 14, queue_overflow_total included now
  assert.strictEqual(sf.metricValue(m, 'streamfence_queue_overflow_total', Object.assign({ reason: 'queue full with REJECT_NEW' }, labels)), 3);
  await sf.waitUntil(async () => sf.metricValue(await srv.metrics(), 'streamfence_lane_depth_max', labels) === 2, 3000);
  assert.strictEqual(sf.metricValue(await srv.metrics(), 'streamfence_inflight', labels), 1);
  c.close();
});

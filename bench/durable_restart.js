'use strict';
// Durable restart cost (docs/recovery.md): one held session with HELD_MB of unacked
// AT_LEAST_ONCE messages in its lane, kill -9, restart on the same port and journal; reports
// the time from spawn to listening (journal replayed, sessions rebuilt: serving again), to a
// recovered CONNECT, and to the first and last resent message.
//   cd tests && node ../bench/durable_restart.js [HELD_MB=1024] [PAYLOAD_BYTES=2048]
// RESTARTS=n first restarts n times more on the same journal, each only until listening,
// then kill -9 (nothing connects, so the journal stays the same); with COMPARE_BIN=<another
// streamfenced> each round restarts that binary and this build in turn (ABBA order), so a
// before/after comparison sees the same journal, page cache and machine load.
const path = require('node:path');
const { io } = require(path.join(process.cwd(), 'node_modules', 'socket.io-client'));
process.env.SF_BUILD_DIR = process.env.SF_BUILD_DIR || path.resolve(__dirname, '../build');
const sf = require('../tests/e2e/lib/streamfenced');

const heldMb = Number(process.argv[2] || 1024);
const payloadBytes = Number(process.argv[3] || 2048);
const count = Math.ceil((heldMb << 20) / payloadBytes);

(async () => {
  const spill = path.join(sf.tmpdir('sf-durable-restart-'), 'spill');
  const server = (port) => ({
    port, ioThreads: 1, spillRootPath: spill, connectionStateRecovery: { maxDisconnectionDurationMs: 600000 },
    namespaces: [sf.ns('/d', ['t'], {
      deliveryMode: 'AT_LEAST_ONCE', durable: true, maxRetries: 1, ackTimeoutMs: 600000, maxInFlight: 1,
      maxQueuedMessagesPerClient: count + 10, maxQueuedBytesPerClient: (heldMb + 64) << 20,
      maxBufferedMessagesPerTopic: 65536, maxBufferedBytesPerTopic: 256 << 20,
    })],
  });
  let srv = await sf.start(server(0));
  const port = srv.port;
  const c = io(srv.url('/d'), { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise((r) => c.once('connect', r));
  const firstId = c.id;
  await c.timeout(5000).emitWithAck('subscribe', { topic: 't' });
  const pid = c._pid;
  c.io.engine.close();  // abnormal end: the session is held
  await sf.sleep(300);
  const pad = 'x'.repeat(payloadBytes - 30);
  const t0 = Date.now();
  // A control API array is published message by message (one sync each): many requests at
  // once are what share a sync (group commit).
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const batch = [];
      for (let j = 0; j < 8 && next < count; j++, next++) batch.push({ namespace: '/d', topic: 't', payload: { seq: next, pad } });
      const r = await srv.publish(batch);
      if (r.status !== 200) throw new Error(`publish ${r.status} ${r.body.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  const pubS = (Date.now() - t0) / 1000;
  srv.proc.kill('SIGKILL');
  await sf.waitUntil(() => srv.exited !== null, 5000);
  const fs = require('node:fs');
  let bytes = 0;
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else bytes += fs.statSync(p).size; } };
  walk(spill);

  const ready = (logs) => (/event=durable_namespace_ready (.*)/.exec(logs) || [])[1];
  const restarts = Number(process.env.RESTARTS || 0);
  const bins = process.env.COMPARE_BIN ? [['compare', process.env.COMPARE_BIN], ['this', undefined]] : [['this', undefined]];
  for (let round = 0; round < restarts; round++) {
    for (const [label, bin] of round % 2 ? [...bins].reverse() : bins) {
      const load = require('node:os').loadavg()[0].toFixed(1);
      const t = Date.now();
      const h = await sf.start(server(port), {}, { startTimeoutMs: 600000, bin });
      const ms = Date.now() - t;
      h.proc.kill('SIGKILL');
      await sf.waitUntil(() => h.exited !== null, 5000);
      console.log(`RESTART held_mb=${heldMb} bin=${label} listening_ms=${ms} load=${load} ${ready(h.logs)}`);
    }
  }

  const s0 = Date.now();
  srv = await sf.start(server(port), {}, { startTimeoutMs: 600000 });
  const listenMs = Date.now() - s0;
  const c2 = io(srv.url('/d'), { transports: ['websocket'], forceNew: true, reconnection: false, auth: { pid, offset: '' } });
  let first = 0, got = 0, last = 0;
  c2.on('t', (p, meta) => {
    if (!first) first = Date.now();
    got++;
    last = Date.now();
    c2.emit('ack', { topic: 't', messageId: meta.messageId });
  });
  await new Promise((r) => c2.once('connect', r));
  const recoveredMs = Date.now() - s0;
  await sf.waitUntil(() => got >= count, 600000, () => `got ${got} of ${count}`);
  const rss = fs.readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1];
  console.log(`RESULT held_mb=${heldMb} messages=${count} payload=${payloadBytes} journal_bytes=${bytes} publish_s=${pubS.toFixed(1)} ` +
    `listening_ms=${listenMs} recovered_connect_ms=${recoveredMs} same_id=${c2.id === firstId} first_message_ms=${first - s0} ` +
    `all_resent_ms=${last - s0} server_peak_rss_kb=${rss} ${ready(srv.logs)}`);
  if (process.env.SHOW_LOGS) console.log(srv.logs.split('\n').filter((l) => !/plugin_loaded/.test(l)).join('\n'));
  c2.close();
  await srv.stop();
  fs.rmSync(path.dirname(spill), { recursive: true, force: true });
})().catch((e) => { console.error(e); process.exit(1); });

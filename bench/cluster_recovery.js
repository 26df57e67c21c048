'use strict';
// Recovery across cluster nodes (docs/cluster.md "Recovery across nodes"): CLIENTS stock
// socket.io-client sockets reach node-b through a TCP proxy (the load balancer) and
// subscribe to a BEST_EFFORT topic; an open-loop publisher on node-a sends RATE messages/s
// throughout. The proxy then cuts every connection at once and sends the reconnects to
// node-c. Reported: time from the cut until each client is recovered (p50, p99, all), how
// many recovered, and gaps or duplicates in what each received. With MODE=kill node-b is
// killed with -9 at the cut, and the topic is AT_LEAST_ONCE (replayed from the stream).
// No peer to compare with: socket.io's Redis adapter does not recover across nodes.
//   cd tests && node ../bench/cluster_recovery.js [CLIENTS=500] [RATE=50] [MODE=handover|kill|local|storm|storm-local]
const path = require('node:path');
const { io } = require(path.join(process.cwd(), 'node_modules', 'socket.io-client'));
process.env.SF_BUILD_DIR = process.env.SF_BUILD_DIR || path.resolve(__dirname, '../build');
const sf = require('../tests/e2e/lib/streamfenced');
const cl = require('../tests/e2e/lib/cluster');

const clients = Number(process.argv[2] || 500);
const rate = Number(process.argv[3] || 50);
const mode = process.argv[4] || 'handover';
const ack = mode === 'kill';

const pct = (xs, q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];

(async () => {
  const r = await cl.redis.start();
  const server = {
    connectionStateRecovery: { maxDisconnectionDurationMs: 60000 },
    namespaces: [sf.ns('/feed', ['t'], ack
      ? { deliveryMode: 'AT_LEAST_ONCE', ackTimeoutMs: 5000, maxRetries: 5, maxInFlight: 64, maxQueuedMessagesPerClient: 4096 }
      : { maxQueuedMessagesPerClient: 4096 })],
  };
  const [a, b, c] = await cl.startNodes(r, 3, server, { socketioEmitterKey: null });
  if (mode.startsWith('storm')) {
    // bench/storm.cpp's clients (one epoll thread): they cut themselves (RST) and reconnect
    // to node-c (storm) or node-b again (storm-local), publisher on node-a.
    const { execFile } = require('node:child_process');
    const args = ['--port', String(b.port), '--control', String(a.controlPort), '--conns', String(clients), '--rate', String(rate),
      '--label', mode, '--server-pid', String(c.proc.pid)];
    if (mode === 'storm') args.push('--reconnect-port', String(c.port));
    // Asynchronously: the nodes' log pipes must keep draining while it runs.
    const out = await new Promise((resolve, reject) => {
      const child = execFile(path.join(process.env.SF_BUILD_DIR, 'bench', 'storm'), args, { encoding: 'utf8', maxBuffer: 1 << 24 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)));
      child.stderr.pipe(process.stderr);
    });
    console.log(out.trim().split('\n').filter((l) => l.startsWith('RESULT')).join('\n'));
    if (process.env.SF_BENCH_LOGS) {
      for (const n of [a, b, c]) {
        const counts = {};
        for (const m of n.logs.matchAll(/level=(\w+) event=(\S+)/g)) counts[m[2]] = (counts[m[2]] || 0) + 1;
        console.log(n.nodeId, JSON.stringify(counts));
      }
    }
    await sf.stopAll();
    await cl.redis.stopAll();
    process.exit(0);
  }
  const p = await cl.proxy();
  p.target = b.port;
  const socks = [];
  for (let i = 0; i < clients; i++) {
    const s = io(`http://127.0.0.1:${p.port}/feed`, {
      transports: ['websocket'], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100, randomizationFactor: 0.5,
    });
    s.got = [];
    s.on('t', (payload, meta) => {
      s.got.push(payload.seq);
      if (ack) s.emit('ack', { topic: 't', messageId: meta.messageId });
    });
    await new Promise((resolve) => s.once('connect', resolve));
    await s.timeout(5000).emitWithAck('subscribe', { topic: 't' });
    socks.push(s);
  }
  await sf.sleep(1500);  // records written, floors synced
  let seq = 0;
  let stop = false;
  const pub = (async () => {
    const every = 1000 / rate;
    const t0 = Date.now();
    while (!stop) {
      const due = Math.floor((Date.now() - t0) / every) + 1;
      const msgs = [];
      while (seq < due) msgs.push({ namespace: '/feed', topic: 't', payload: { seq: seq++ } });
      if (msgs.length) await a.publish(msgs);
      await sf.sleep(5);
    }
  })();
  await sf.sleep(1000);
  const times = [];
  let recovered = 0;
  const cutAt = Date.now();
  const all = Promise.all(socks.map((s) => new Promise((resolve) => s.once('connect', () => {
    times.push(Date.now() - cutAt);
    if (s.recovered) recovered++;
    resolve();
  }))));
  if (mode === 'kill') b.proc.kill('SIGKILL');
  if (mode !== 'local') p.target = c.port;  // local: back to the same node (recovery on one node, for comparison)
  p.cut();
  await Promise.race([all, sf.sleep(60000)]);
  await sf.sleep(1000);
  stop = true;
  await pub;
  await sf.sleep(1500);
  times.sort((x, y) => x - y);
  let gaps = 0;
  let dups = 0;
  for (const s of socks) {
    const seen = new Set(s.got);
    dups += s.got.length - seen.size;
    const first = s.got[0] || 0;
    for (let i = first; i < seq; i++) if (!seen.has(i)) gaps++;
  }
  const line = {
    mode, clients, rate, back: times.length, recovered,
    p50_ms: pct(times, 0.5), p99_ms: pct(times, 0.99), all_ms: times[times.length - 1],
    published: seq, missing_deliveries: gaps, duplicate_deliveries: dups,
  };
  console.log(JSON.stringify(line));
  if (process.env.SF_BENCH_LOGS) console.log('deciles', [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95].map((q) => pct(times, q)).join(' '));
  if (process.env.SF_BENCH_LOGS) {
    for (const n of [a, b, c]) {
      const counts = {};
      for (const m of n.logs.matchAll(/level=(\w+) event=(\S+)/g)) counts[m[2]] = (counts[m[2]] || 0) + 1;
      counts.ownerAnsweredFalse = (n.logs.match(/previous_node_answered=false/g) || []).length;
      console.log(n.nodeId, JSON.stringify(counts));
    }
  }
  for (const s of socks) s.close();
  p.close();
  await sf.stopAll();
  await cl.redis.stopAll();
  process.exit(0);
})().catch(async (e) => { console.error(e.message.slice(0, 3000)); await sf.stopAll(); await cl.redis.stopAll(); process.exit(1); });

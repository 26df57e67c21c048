'use strict';
// Node socket.io@4.8 peer for the StreamFence benchmarks: the same fan-out with rooms.
//
//   node server.js [--port 0] [--control-port 0] [--ns /feed] [--ack] [--recovery]
//
// Clients: emit('subscribe', {topic}, ack) -> ack({ok: true}), emit('subscribed', {topic}),
// socket joins room <topic>. Publish path: POST /v1/publish on a second HTTP listener in this
// process with the same JSON as streamfenced's control API: one {namespace, topic, payload} or
// an array of them. Each message is emitted to the room as event <topic> with the payload;
// with --ack a third argument {namespace, topic, messageId, ackRequired: true} is added and the
// clients' 'ack' events are counted (no redelivery: socket.io has no AT_LEAST_ONCE of its own).
// --recovery turns on socket.io's connectionStateRecovery (2 minutes, as streamfenced's default;
// bench/storm.sh).
// Logs `event=listening server=node ... port=N` and `event=control_listening ... port=M`
// on stderr, like streamfenced.
const http = require('http');
const { Server } = require('socket.io');

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const port = Number(opt('--port', '0'));
const controlPort = Number(opt('--control-port', '0'));
const nsName = opt('--ns', '/feed');
const withAck = args.includes('--ack');
const withRecovery = args.includes('--recovery');

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 1e6,
  ...(withRecovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } } : {}),
});

let acks = 0;
let nextId = 0;
const nsp = io.of(nsName);
nsp.on('connection', (socket) => {
  socket.on('subscribe', (data, cb) => {
    const topic = data && typeof data.topic === 'string' ? data.topic : null;
    if (!topic) {
      if (typeof cb === 'function') cb({ ok: false, error: 'topic required' });
      return;
    }
    socket.join(topic);
    if (typeof cb === 'function') cb({ ok: true });
    socket.emit('subscribed', { topic });
  });
  socket.on('ack', () => {
    acks++;
  });
});

function publishOne(m) {
  if (!m || typeof m.namespace !== 'string' || typeof m.topic !== 'string' || !('payload' in m)) return false;
  const target = io.of(m.namespace).to(m.topic);
  if (withAck) {
    const messageId = 'msg-' + ++nextId;
    target.emit(m.topic, m.payload, { namespace: m.namespace, topic: m.topic, messageId, ackRequired: true });
  } else {
    target.emit(m.topic, m.payload);
  }
  return true;
}

const control = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, acks }));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/publish') {
    res.writeHead(404);
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let doc;
    try {
      doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad json' }));
      return;
    }
    const list = Array.isArray(doc) ? doc : [doc];
    let ok = 0;
    for (const m of list) if (publishOne(m)) ok++;
    const body = JSON.stringify({ published: ok });
    res.writeHead(ok === list.length ? 200 : 400, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});
control.keepAliveTimeout = 60000;

httpServer.listen(port, '127.0.0.1', () => {
  process.stderr.write(`event=listening server=node host=127.0.0.1 port=${httpServer.address().port}\n`);
  control.listen(controlPort, '127.0.0.1', () => {
    process.stderr.write(`event=control_listening server=node host=127.0.0.1 port=${control.address().port}\n`);
  });
});

function stop() {
  process.stderr.write(`node peer: acks received ${acks}\n`);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

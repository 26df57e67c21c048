'use strict';
// Oversize payloads are refused cleanly on both transports, and garbage (random bytes,
// broken HTTP, broken websocket frames, truncated/malformed socket.io packets) only ever
// costs the sender its connection: the server keeps serving everyone else.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');
const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { startServer, stopAll, conformanceBin, once, sleep } = require('./lib/harness');

const MAX_PAYLOAD = 20000;

require('./lib/watchdog')('protocol_robustness', 120000, stopAll);

function request(port, { method = 'GET', path, body, headers = {} }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// Raw TCP: send bytes, collect everything until the server closes (or ms pass).
function rawExchange(port, chunks, ms = 3000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let closedByServer = false;
    const t = setTimeout(() => { sock.destroy(); resolve({ data, closedByServer }); }, ms);
    sock.on('data', (d) => (data = Buffer.concat([data, d])));
    sock.on('error', () => {});
    sock.on('close', () => { closedByServer = true; clearTimeout(t); resolve({ data, closedByServer }); });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (typeof c === 'number') await sleep(c);
        else if (!sock.destroyed) sock.write(c);
      }
    });
  });
}

function wsUpgradeRequest(query = 'EIO=4&transport=websocket') {
  return `GET /socket.io/?${query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

function clientFrame(opcode, payload, { fin = true, mask = true, lenOverride } = {}) {
  const p = Buffer.from(payload);
  const head = [((fin ? 0x80 : 0) | opcode)];
  const len = lenOverride !== undefined ? lenOverride : p.length;
  const m = mask ? 0x80 : 0;
  const parts = [];
  if (len < 126) head.push(m | len);
  else if (len <= 0xffff) head.push(m | 126, len >> 8, len & 0xff);
  else {
    head.push(m | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(...b);
  }
  parts.push(Buffer.from(head));
  if (mask) {
    const key = crypto.randomBytes(4);
    parts.push(key);
    parts.push(Buffer.from(p.map((x, i) => x ^ key[i & 3])));
  } else parts.push(p);
  return Buffer.concat(parts);
}

// Server close frame code in what we got back, or null.
function closeCodeIn(buf) {
  const i = buf.indexOf('\r\n\r\n');
  let b = i >= 0 ? buf.subarray(i + 4) : buf;
  while (b.length >= 2) {
    const op = b[0] & 0x0f;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) { len = b.readUInt16BE(2); off = 4; }
    else if (len === 127) { len = Number(b.readBigUInt64BE(2)); off = 10; }
    if (op === 8) return len >= 2 ? b.readUInt16BE(off) : 1005;
    b = b.subarray(off + len);
  }
  return null;
}

describe('robustness', () => {
  let srv;
  let port;
  let url;
  const clients = [];
  function client(opts) {
    const s = io(url, { forceNew: true, reconnection: false, ...opts });
    clients.push(s);
    return s;
  }
  async function healthy(transports = ['websocket']) {
    const s = client({ transports });
    await once(s, 'connect');
    const r = await s.timeout(3000).emitWithAck('message-with-ack', 'ok?');
    s.disconnect();
    assert.strictEqual(r, 'ok?');
  }
  before(async () => {
    srv = await startServer(conformanceBin('sio-conformance-server'),
      ['--port', '0', '--host', '127.0.0.1', '--max-payload', String(MAX_PAYLOAD),
        '--ping-interval', '2000', '--ping-timeout', '5000', '--connect-timeout', '10000']);
    port = srv.port;
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    const r = await srv.stop();
    assert.strictEqual(r.code, 0, `server did not exit cleanly: ${JSON.stringify(r)}`);
  });

  it('refuses an oversize websocket message with close 1009 and keeps serving', async () => {
    const s = client({ transports: ['websocket'] });
    await once(s, 'connect');
    s.emit('message', 'x'.repeat(MAX_PAYLOAD + 100));
    const reason = await once(s, 'disconnect');
    assert.match(reason, /transport (close|error)/);
    const raw = await rawExchange(port, [wsUpgradeRequest(), 50,
      clientFrame(1, '4' + 'y'.repeat(MAX_PAYLOAD + 10))]);
    assert.strictEqual(closeCodeIn(raw.data), 1009);
    assert.ok(raw.closedByServer);
    await healthy();
  });

  it('refuses an oversize polling POST with 413 and keeps serving', async () => {
    const hs = await request(port, { path: '/socket.io/?EIO=4&transport=polling' });
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const r = await request(port, {
      method: 'POST', path: `/socket.io/?EIO=4&transport=polling&sid=${sid}`, body: '4' + 'z'.repeat(MAX_PAYLOAD + 10),
    });
    assert.strictEqual(r.status, 413);
    const s = client({ transports: ['polling'] });
    await once(s, 'connect');
    s.emit('message', 'x'.repeat(MAX_PAYLOAD + 100));
    const reason = await once(s, 'disconnect');
    assert.match(reason, /transport (close|error)/);
    await healthy(['polling']);
  });

  it('survives garbage while a good client keeps getting acks', async () => {
    const good = client({ transports: ['websocket'] });
    await once(good, 'connect');
    let acks = 0;
    let failures = 0;
    let stop = false;
    const pinger = (async () => {
      while (!stop) {
        try {
          await good.timeout(3000).emitWithAck('message-with-ack', acks);
          acks++;
        } catch (e) {
          failures++;
        }
        await sleep(5);
      }
    })();

    const placeholder = '451-["message",{"_placeholder":true,"num":0}]';
    const cases = [
      { name: 'random bytes', chunks: [crypto.randomBytes(65536)], expectClose: true },
      { name: 'binary junk then CRLFs', chunks: [Buffer.from([0, 1, 2, 255, 254]), '\r\n\r\n'], expectClose: true },
      { name: 'bad http version', chunks: ['GET / HTTP/9.9\r\n\r\n'], expectClose: true },
      { name: 'oversized headers', chunks: ['GET /socket.io/ HTTP/1.1\r\nX: ' + 'a'.repeat(40000)], expectClose: true },
      { name: 'chunked body', chunks: ['POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'], expectClose: true },
      { name: 'huge content-length', chunks: ['POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n'], expectClose: true },
      { name: 'bad websocket key', chunks: ['GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n'], expectClose: true },
      { name: 'unmasked frame', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40', { mask: false })], code: 1002 },
      { name: 'reserved opcode', chunks: [wsUpgradeRequest(), 30, clientFrame(3, 'x')], code: 1002 },
      { name: 'fragmented ping', chunks: [wsUpgradeRequest(), 30, clientFrame(9, 'x', { fin: false })], code: 1002 },
      { name: 'continuation first', chunks: [wsUpgradeRequest(), 30, clientFrame(0, 'x')], code: 1002 },
      { name: '2^62 length claim', chunks: [wsUpgradeRequest(), 30, clientFrame(2, '', { lenOverride: 2 ** 53 })], code: 1009 },
      { name: 'invalid utf-8', chunks: [wsUpgradeRequest(), 30, clientFrame(1, Buffer.from([0x34, 0xff, 0xfe]))], code: 1007 },
      { name: 'truncated frame then silence', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40').subarray(0, 3)], expectClose: false },
      { name: 'unknown eio packet', chunks: [wsUpgradeRequest(), 30, clientFrame(1, 'x')], expectClose: true },
      { name: 'malformed sio packet', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40'), clientFrame(1, '42["message",')], expectClose: true },
      { name: 'bad sio ack id', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40'), clientFrame(1, '42abc["x"]')], expectClose: true },
      { name: 'text instead of attachment', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40'), clientFrame(1, placeholder), clientFrame(1, '42["x"]')], expectClose: true },
      { name: 'attachment without packet', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40'), clientFrame(2, 'bin')], expectClose: true },
      { name: 'bad placeholder index', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40'), clientFrame(1, '451-["m",{"_placeholder":true,"num":7}]'), clientFrame(2, 'b')], expectClose: true },
      { name: 'event before connect', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '42["message","x"]')], expectClose: true },
      { name: 'deep json', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '40'), clientFrame(1, '42["m",' + '['.repeat(5000) + ']'.repeat(5000) + ']')], expectClose: true },
      { name: 'client ping packet', chunks: [wsUpgradeRequest(), 30, clientFrame(1, '2')], expectClose: true },
    ];
    const results = await Promise.all(cases.map((c) => rawExchange(port, c.chunks, 4000).then((r) => ({ c, r }))));
    for (const { c, r } of results) {
      if (c.code) {
        assert.strictEqual(closeCodeIn(r.data), c.code, `${c.name}: close code`);
        assert.ok(r.closedByServer, `${c.name}: not closed`);
      } else if (c.expectClose) {
        assert.ok(r.closedByServer, `${c.name}: not closed by the server`);
      }
    }
    // A bad polling body closes that session only.
    const hs = await request(port, { path: '/socket.io/?EIO=4&transport=polling' });
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const bad = await request(port, { method: 'POST', path: `/socket.io/?EIO=4&transport=polling&sid=${sid}`, body: 'zzz' });
    assert.strictEqual(bad.status, 400);
    const after = await request(port, { path: `/socket.io/?EIO=4&transport=polling&sid=${sid}` });
    assert.strictEqual(after.status, 400);

    stop = true;
    await pinger;
    assert.strictEqual(failures, 0);
    assert.ok(acks > 0, `acks=${acks}`);
    assert.strictEqual(srv.exited(), null, 'server died');
    assert.match(srv.stderr(), /event=sio_protocol_error .*reason=/);
    assert.match(srv.stderr(), /event=ws_protocol_error .*code=1002/);
    good.disconnect();
    await healthy(['polling', 'websocket']);
  });
});

'use strict';
// A hand-made websocket client for tests that must send what no stock client sends (endless
// continuation frames, packets past a limit): raw TCP, our own masked frames, the server's
// frames parsed as they come (text and binary messages, the close code).
const crypto = require('node:crypto');
const net = require('node:net');

function clientFrame(opcode, payload, { fin = true } = {}) {
  const p = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | opcode];
  if (p.length < 126) head.push(0x80 | p.length);
  else if (p.length <= 0xffff) head.push(0x80 | 126, p.length >> 8, p.length & 0xff);
  else {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(p.length));
    head.push(0x80 | 127, ...b);
  }
  const key = crypto.randomBytes(4);
  return Buffer.concat([Buffer.from(head), key, Buffer.from(p.map((x, i) => x ^ key[i & 3]))]);
}

// Opens an Engine.IO websocket session (EIO=4, no sid): resolves once the 101 arrived.
// ws.messages: the server's text messages (strings); ws.closeCode: its close frame's code;
// ws.closed: the TCP connection ended.
function openWs(port, { query = 'EIO=4&transport=websocket' } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const ws = { sock, messages: [], closeCode: null, closed: false, upgraded: false };
    let buf = Buffer.alloc(0);
    ws.send = (text) => sock.write(clientFrame(0x1, text));
    ws.sendFrame = (opcode, payload, opts) => sock.write(clientFrame(opcode, payload, opts));
    ws.destroy = () => sock.destroy();
    sock.on('error', () => {});
    sock.on('close', () => { ws.closed = true; if (!ws.upgraded) reject(new Error('closed before the upgrade')); });
    sock.on('connect', () => {
      sock.write(`GET /socket.io/?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!ws.upgraded) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        if (!/^HTTP\/1\.1 101/.test(buf.subarray(0, i).toString())) return reject(new Error(`no upgrade: ${buf}`));
        ws.upgraded = true;
        buf = buf.subarray(i + 4);
        resolve(ws);
      }
      while (buf.length >= 2) {
        const op = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 0x1) ws.messages.push(payload.toString());
        else if (op === 0x2) ws.messages.push(Buffer.from(payload));
        else if (op === 0x8) ws.closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
      }
    });
  });
}

module.exports = { clientFrame, openWs };

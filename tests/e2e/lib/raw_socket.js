'use strict';
// A raw TCP socket to a server on 127.0.0.1, optionally from another loopback source
// address (all of 127.0.0.0/8 is local on Linux); resolves once connected. sock.closedAt is
// set when the server ends it, sock.received collects what it sent.
const net = require('node:net');

module.exports = function rawSocket(port, from) {
  return new Promise((resolve, reject) => {
    const opts = { port, host: '127.0.0.1' };
    if (from) opts.localAddress = from;
    const sock = net.connect(opts);
    sock.closedAt = 0;
    sock.received = '';
    sock.on('data', (d) => { sock.received += d; });
    sock.on('close', () => { sock.closedAt = Date.now(); });
    sock.on('error', () => {});
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
};

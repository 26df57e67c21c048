'use strict';
// Certificates for TLS tests (made with the openssl CLI) and the CN a server presents.
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const tls = require('node:tls');

// A self-signed pair in dir: {key, crt}. keyType 'rsa' (2048) or 'ec' (P-256).
function makeCert(dir, cn, tag = cn, keyType = 'rsa') {
  const key = path.join(dir, `${tag}.key`);
  const crt = path.join(dir, `${tag}.crt`);
  const alg = keyType === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  execFileSync('openssl', ['req', '-x509', ...alg, '-nodes', '-keyout', key, '-out', crt,
    '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key, crt };
}

// The subject CN of the certificate a fresh handshake gets.
function peerCN(port) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.end();
      resolve(cn);
    });
    s.on('error', reject);
  });
}

module.exports = { makeCert, peerCN };

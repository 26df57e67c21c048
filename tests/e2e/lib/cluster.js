'use strict';
// Three (or n) streamfenced nodes of one logical server sharing a real redis-server
// (docs/cluster.md), for the cluster tests and the cluster benchmark.
const net = require('node:net');
const sf = require('./streamfenced');
const redis = require('./redis');

async function health(node) {
  const r = await sf.request(node.controlPort, 'GET', '/health');
  return r.json;
}

// Start n nodes named node-a, node-b, ... on one server config; cluster: extra keys.
async function startNodes(r, n, server, cluster = {}) {
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const nodeId = `node-${String.fromCharCode(97 + i)}`;
    const c = Object.assign({ redis: { url: r.url, commandTimeoutMs: 1000, connectTimeoutMs: 1000 }, nodeId, heartbeatMs: 200, nodeTtlMs: 1500 }, cluster);
    const h = await sf.start(server, { cluster: c });
    h.nodeId = nodeId;
    h.health = () => health(h);
    nodes.push(h);
  }
  await waitLink(nodes, 'UP');
  await sf.waitUntil(async () => {
    for (const h of nodes) if ((await h.health()).cluster.nodes.length !== n) return false;
    return true;
  }, 10000, 'nodes did not see each other');
  return nodes;
}

async function waitLink(nodes, state, ms = 10000) {
  await sf.waitUntil(async () => {
    for (const h of nodes) if ((await health(h)).cluster.link !== state) return false;
    return true;
  }, ms, () => `cluster link did not become ${state}`);
}

// Wait until Redis confirmed `count` topic subscriptions on a node (pub/sub topics and
// emitter channels; streams are read without subscribing).
async function waitSubscriptions(node, count, ms = 5000) {
  let last;
  await sf.waitUntil(async () => (last = (await health(node)).cluster).subscriptions === count, ms,
    () => `node ${node.nodeId}: ${JSON.stringify(last)}: subscriptions != ${count}`);
}

// The load balancer in front of the nodes: forwards each connection to p.target (a port,
// changeable at any time); cut() ends every connection it carries. delayMs: every chunk is
// held that long in each direction, in order (a slow link).
function proxy({ delayMs = 0 } = {}) {
  const conns = new Set();
  const p = { target: 0, port: 0 };
  const forward = (from, to) => {
    if (!delayMs) return from.pipe(to);
    from.on('data', (d) => setTimeout(() => { if (!to.destroyed) to.write(d); }, delayMs));
  };
  const server = net.createServer((c) => {
    const up = net.connect(p.target, '127.0.0.1');
    conns.add(c); conns.add(up);
    forward(c, up); forward(up, c);
    const end = () => { c.destroy(); up.destroy(); conns.delete(c); conns.delete(up); };
    c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
  });
  p.cut = () => { for (const s of conns) s.destroy(); conns.clear(); };
  p.close = () => { p.cut(); server.close(); };
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => { p.port = server.address().port; resolve(p); }));
}

module.exports = { startNodes, waitLink, waitSubscriptions, health, redis, proxy };

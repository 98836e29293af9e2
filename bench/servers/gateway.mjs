// (c) this library on the memory bus; (d) with `--filter`: a per-event filter (clients ask for 5 channels);
// (e) with `--redis=<url>`: on the Redis bus (the orchestrator starts two of these, publishes on one).

import http from 'node:http';
import { createRequire } from 'node:module';
import express from 'express';
import { listen, serve } from './common.mjs';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v = 'true'] = a.replace(/^--/, '').split('=');
    return [k, v];
  }),
);
// The orchestrator points this at a private copy of dist/, so a rebuild in the shared tree mid-run
// cannot pull the library out from under a running server.
const dist = process.env.BENCH_DIST ?? '../../dist';
const lib = createRequire(import.meta.url)(dist);

let bus;
if (args.has('redis')) {
  bus = lib.createRedisBus({ url: args.get('redis') });
}
const options = { channels: ['bench'], heartbeatMs: 25000 };
if (bus) options.bus = bus;
if (args.has('filter')) {
  // Cheap on purpose: what is measured is the gateway's cost of calling a filter, not the filter.
  options.filter = (_principal, event) => event.channel.length > 0;
}
if (args.has('ops')) {
  // (f) operations on: an audit callback that keeps entries (as a log shipper's queue would) and Prometheus
  // metrics scraped once a second, as a BFF would run.
  const entries = [];
  options.audit = (entry) => {
    if (entries.push(entry) > 1000) entries.length = 0;
  };
}
const gateway = lib.sseMiddleware(options);
if (args.has('ops')) {
  const { Registry } = createRequire(import.meta.url)('prom-client');
  const { registerMetrics } = createRequire(import.meta.url)(`${dist.replace(/\/index\.js$/, '')}/ops/metrics`);
  const registry = new Registry();
  registerMetrics(gateway, { registry });
  setInterval(() => void registry.metrics(), 1000).unref();
}

const app = express();
app.use(gateway);
const server = http.createServer(app);
server.on('clientError', (_e, socket) => socket.destroy());

if (bus) {
  // The Redis bus connects asynchronously; report ready only once it can publish and receive.
  const deadline = Date.now() + 10000;
  while (!bus.status().connected) {
    if (Date.now() > deadline) throw new Error('redis bus did not connect within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const port = await listen(server);
serve({
  port,
  connections: () => gateway.stats().connections,
  publish: (channel, payload) => gateway.publish(channel, payload),
  async prepareReplay(n) {
    const first = await gateway.publish('bench:room1', { marker: true });
    for (let i = 0; i < n; i++) await gateway.publish('bench:room1', { ts: 0, seq: i, pad: 'replayed' });
    return first.id;
  },
  async close() {
    await gateway.close();
    await bus?.close();
    server.closeAllConnections();
    server.close();
  },
});

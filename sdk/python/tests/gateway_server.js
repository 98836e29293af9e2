// A real gateway for the Python SDK tests: the built package (dist/) on an Express app, publishers with
// fixed test tokens, and a bus that can be told to fail after publishing (an acknowledgement lost on the way,
// which is when a retry without an idempotency key would publish twice).
// Usage: node gateway_server.js [port]; prints {"port": N} once listening.
'use strict';
const path = require('node:path');
const root = path.join(__dirname, '..', '..', '..');
const express = require(require.resolve('express', { paths: [root] }));
const { createMemoryBus, sseMiddleware } = require(path.join(root, 'dist', 'index.js'));

const inner = createMemoryBus();
let failAfterPublish = 0;
const bus = {
  id: inner.id,
  publish(channel, data, options) {
    const published = inner.publish(channel, data, options);
    if (failAfterPublish === 0) return published;
    failAfterPublish--;
    return published.then(() => {
      throw new Error('simulated: published, but the acknowledgement was lost');
    });
  },
  listen: (listener) => inner.listen(listener),
  watch: (topic) => inner.watch(topic),
  replay: (id, query) => inner.replay(id, query),
  retain: (window) => inner.retain?.(window),
  status: () => inner.status(),
  close: () => inner.close(),
};

const gateway = sseMiddleware({
  channels: ['logs', 'metrics', 'alerts'],
  bus,
  heartbeatMs: 1000,
  limits: { retryAfterSeconds: 1 },
  publishers: {
    etl: { token: ['py-etl-token-0123456789', 'py-etl-token-rotated-0123'], channels: ['logs:*', 'metrics:*'] },
    alerter: { token: 'py-alerts-token-0123456789', channels: ['alerts:*'] },
  },
  logger: { warn: (...args) => console.error('warn', ...args), error: (...args) => console.error('error', ...args) },
});

const app = express();
app.post('/control/fail-after-publish', (req, res) => {
  failAfterPublish = Number(req.query.n ?? 1);
  res.status(204).end();
});
app.get('/control/stats', (_req, res) => res.json(gateway.stats()));
app.use(gateway);

const server = app.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
const stop = () => {
  gateway.close().finally(() => process.exit(0));
  server.closeAllConnections?.();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

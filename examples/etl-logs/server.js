// Example BFF: a React app (app/, bundled here with esbuild) with live ETL logs, workspace metrics and the
// user's alerts over one stream; two users who see different workspaces.
// Run with `npm run example` (embedded memory bus), then open http://localhost:3000.
// In a container (examples/deploy/): HOST, PORT, REDIS_URL (several instances), ALLOWED_ORIGINS (micro frontends
// on other origins), APP_BUNDLE (the app bundled at image build time), DRAIN_MS (the SIGTERM drain window).

const { readFile } = require('node:fs/promises');
const path = require('node:path');
const express = require('express');
const { createRedisBus, sseMiddleware, publishEvent } = require('@datashop/sse-gateway');

const RETRY_MS = 2000; // browsers come back within 2 s after a deploy or a dropped connection

// The BFF's own users and permissions (a real BFF has a session store and an entitlement service).
const USERS = {
  alice: { id: 'alice', name: 'Alice', workspaces: ['ws1'] },
  bob: { id: 'bob', name: 'Bob', workspaces: ['ws2'] },
};
const WORKFLOWS = { ws1: ['ingest-orders', 'build-cube'], ws2: ['sync-crm', 'score-leads'] };

const app = express();

// Stand-in for the BFF's authentication middleware: a cookie names the signed-in user.
app.use((req, _res, next) => {
  const match = /(?:^|;\s*)demo_user=(\w+)/.exec(req.headers.cookie ?? '');
  req.user = match ? USERS[match[1]] : undefined;
  next();
});

app.get('/login/:user', (req, res) => {
  if (!USERS[req.params.user]) return res.status(404).send('unknown user');
  res.cookie('demo_user', req.params.user, { httpOnly: true, sameSite: 'strict' }).redirect('/');
});

app.get('/api/me', (req, res) => {
  if (!req.user) return res.status(401).json({ error: 'sign in' });
  res.json({
    ...req.user,
    workflows: Object.fromEntries(req.user.workspaces.map((ws) => [ws, WORKFLOWS[ws]])),
    retryMs: RETRY_MS, // the page's retry countdown
  });
});

const gateway = sseMiddleware({
  path: '/events',
  channels: { logs: {}, metrics: {}, alerts: { userScoped: true } },
  authentication: true, // the principal is req.user; 401 without it
  userScoping: true,
  // Connect-time ACL: logs:<workspace>:… and metrics:<workspace> only for members of that workspace.
  authorize: (user, channel) => {
    const [namespace, workspace] = channel.split(':');
    return namespace === 'alerts' || user.workspaces.includes(workspace);
  },
  heartbeatMs: 15_000,
  retryMs: RETRY_MS,
  // Several instances share events and replay history through Redis; one instance needs nothing.
  ...(process.env.REDIS_URL ? { bus: createRedisBus({ url: process.env.REDIS_URL }) } : {}),
});
if (process.env.ALLOWED_ORIGINS) app.use(require('../deploy/cors.js').corsForGateway(process.env.ALLOWED_ORIGINS));
app.use(gateway);

// Prometheus, when prom-client is installed (an optional peer of the package).
try {
  const { Registry } = require('prom-client');
  const { registerMetrics } = require('@datashop/sse-gateway/metrics');
  const registry = new Registry();
  registerMetrics(gateway, { registry, prefix: 'sse_' });
  app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
} catch (error) {
  if (error.code !== 'MODULE_NOT_FOUND') throw error;
}

// The React app, bundled once at start (React, the bindings and the client; no CDN), or at image build time.
const bundle = process.env.APP_BUNDLE
  ? readFile(process.env.APP_BUNDLE, 'utf8')
  : require('esbuild')
      .build({
        entryPoints: [path.join(__dirname, 'app/app.tsx')],
        bundle: true,
        write: false,
        minify: true,
        format: 'iife',
        jsx: 'automatic',
        define: { 'process.env.NODE_ENV': '"production"' },
        logLevel: 'warning',
      })
      .then((result) => result.outputFiles[0].text);
app.get('/app.js', async (_req, res) => {
  res.type('js').send(await bundle);
});
app.use(express.static(path.join(__dirname, 'public')));

// Signing out ends the user's open streams at once, on every instance sharing the bus; each tab's EventSource
// then reconnects, gets 401 from `authentication: true` and stops for good.
app.post('/logout', async (req, res) => {
  if (req.user) {
    await gateway.disconnectEverywhere(req.user.id).catch((error) => console.error('sign-out signal failed', error));
  }
  res.clearCookie('demo_user').redirect(303, '/');
});

// A simulated ETL scheduler publishing log lines; it needs no req/res, only publishEvent().
const LEVELS = ['INFO', 'INFO', 'INFO', 'WARN', 'DEBUG'];
let tick = 0;
const timer = setInterval(
  () => {
    tick++;
    for (const [workspace, workflows] of Object.entries(WORKFLOWS)) {
      const workflow = workflows[tick % workflows.length];
      const level = LEVELS[tick % LEVELS.length];
      publishEvent(`metrics:${workspace}`, {
        time: new Date().toISOString(),
        rowsPerSecond: 200 + Math.floor(Math.random() * 800),
        lagMs: Math.floor(Math.random() * 120),
      }).catch((error) => console.error('publish failed', error));
      publishEvent(`logs:${workspace}:${workflow}`, {
        time: new Date().toISOString(),
        level,
        message: `${workflow}: step ${tick} processed ${Math.floor(Math.random() * 1000)} rows`,
      }).catch((error) => console.error('publish failed', error));
    }
    if (tick % 10 === 0) {
      for (const user of Object.values(USERS)) {
        publishEvent(`alerts:${user.id}`, { message: `Hello ${user.name}, ${tick} steps ran` });
      }
    }
  },
  Number(process.env.TICK_MS ?? 700),
);

const port = Number(process.env.PORT ?? 3000);
let server;
bundle.then(() => {
  server = app.listen(port, process.env.HOST ?? '127.0.0.1', () => {
    console.log(`Example BFF on http://localhost:${server.address().port} (sign in as /login/alice or /login/bob)`);
  });
});

function shutdown() {
  clearInterval(timer);
  gateway.close().then(() => (server ? server.close(() => process.exit(0)) : process.exit(0)));
}
process.on('SIGINT', shutdown);
// Kubernetes sends SIGTERM on a rolling update: readiness turns 503 and the streams move to the other
// instances in waves over DRAIN_MS (terminationGracePeriodSeconds leaves room for it), then the process ends.
process.on('SIGTERM', async () => {
  await gateway.drain({ timeoutMs: Number(process.env.DRAIN_MS ?? 10_000) });
  shutdown();
});

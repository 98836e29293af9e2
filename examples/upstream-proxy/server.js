// Example: the Datashop L5-ETL case. Pages may only open same-origin streams (CSP), so the BFF forwards
// them to the L5-ETL service's own SSE endpoint under a service token.
//
//   npm run build && node examples/upstream-proxy/server.js
//   open http://localhost:3000/?workspace_id=ws1&workflow_id=wf1
//
// Two ways are shown:
//   1. sseProxy: one upstream connection per page, the upstream's events passed through re-framed.
//      GET /api/dapadmin/l5-etl/sse/logs/stream?workspace_id=ws1&workflow_id=wf1
//   2. bridgeUpstream: one upstream connection for every page, republished through the gateway (its ACL,
//      replay and Redis fan-out apply). GET /events?channels=logs:etl:ws1:wf1
//
// Environment: PORT (BFF, default 3000), UPSTREAM_PORT (fake L5-ETL, default 4001), TICK_MS (default 1000);
// a port of 0 picks a free one (the BFF's is printed).

const express = require('express');
const { sseMiddleware, sseProxy, bridgeUpstream, SseError, isSegment } = require('@datashop/sse-gateway');

const SERVICE_TOKEN = 'l5-etl-service-token'; // a real BFF gets this from its secret store or an OAuth client

// ---------------------------------------------------------------------------------------------------
// A fake L5-ETL service: GET /logs/stream?channels=logs:etl:<ws>:<wf> (or logs:etl:* for everything),
// Bearer-protected, with ids and Last-Event-ID resume, like the real one.
// ---------------------------------------------------------------------------------------------------
function startFakeL5Etl(port) {
  const app = express();
  const history = []; // { id, channel, line }
  const streams = new Set();
  let seq = 0;

  app.get('/logs/stream', (req, res) => {
    if (req.headers.authorization !== `Bearer ${SERVICE_TOKEN}`) return res.status(401).json({ error: 'unauthorized' });
    const wanted = String(req.query.channels ?? '');
    const matches = wanted.endsWith(':*')
      ? (channel) => channel.startsWith(wanted.slice(0, -1))
      : (channel) => channel === wanted;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const write = (entry) =>
      res.write(
        `id: ${entry.id}\nevent: log\ndata: ${JSON.stringify({ channel: entry.channel, line: entry.line })}\n\n`,
      );
    const from = history.findIndex((entry) => entry.id === req.headers['last-event-id']);
    if (from !== -1) for (const entry of history.slice(from + 1)) if (matches(entry.channel)) write(entry);
    const stream = { matches, write };
    streams.add(stream);
    res.on('close', () => streams.delete(stream));
  });

  const timer = setInterval(
    () => {
      for (const [ws, wf] of [
        ['ws1', 'wf1'],
        ['ws1', 'wf2'],
        ['ws2', 'wf1'],
      ]) {
        const entry = { id: String(++seq), channel: `logs:etl:${ws}:${wf}`, line: `${wf}: step ${seq} done` };
        history.push(entry);
        if (history.length > 1000) history.shift();
        for (const stream of streams) if (stream.matches(entry.channel)) stream.write(entry);
      }
    },
    Number(process.env.TICK_MS ?? 1000),
  );
  timer.unref();
  return new Promise((resolve, reject) => {
    const server = app.listen(port, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${server.address().port}`, timer }),
    );
    server.once('error', reject);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

async function main() {
  const upstream = await startFakeL5Etl(Number(process.env.UPSTREAM_PORT ?? 4001));

  // ---------------------------------------------------------------------------------------------------
  // The BFF.
  // ---------------------------------------------------------------------------------------------------
  const app = express();

  // Stand-in for the BFF's own authentication: every request is Alice, member of ws1 only.
  app.use((req, _res, next) => {
    req.user = { id: 'alice', workspaces: ['ws1'] };
    next();
  });

  // 1. sseProxy: the page's query becomes the upstream's; the BFF checks access, then forwards.
  app.get(
    '/api/dapadmin/l5-etl/sse/logs/stream',
    (req, res, next) => {
      const { workspace_id: ws } = req.query;
      if (typeof ws === 'string' && !req.user.workspaces.includes(ws)) {
        return res.status(403).json({ error: { code: 'ERR_SSE_FORBIDDEN', message: `No access to workspace ${ws}.` } });
      }
      next();
    },
    sseProxy({
      target: (req) => {
        const { workspace_id: ws, workflow_id: wf } = req.query;
        // Each value is one channel segment: `wf1,logs:etl:ws2:*` would otherwise read another workspace.
        if (!isSegment(ws) || !isSegment(wf)) {
          // Thrown before the stream starts: answered as 400 JSON.
          throw new SseError('ERR_SSE_BAD_REQUEST', 'workspace_id and workflow_id are required ([A-Za-z0-9_.-]).', 400);
        }
        const url = new URL('/logs/stream', upstream.url);
        url.searchParams.set('channels', `logs:etl:${ws}:${wf}`);
        return url;
      },
      // Computed per request, so a token that rotates is picked up; the browser's Cookie is never sent.
      headers: async () => ({ authorization: `Bearer ${SERVICE_TOKEN}` }),
      heartbeatMs: 15_000,
    }),
  );

  // 2. bridgeUpstream: one upstream subscription for logs:etl:*, fanned out by the gateway, connected only
  //    while some page watches a logs:etl:… channel.
  const gateway = sseMiddleware({
    channels: ['logs'],
    authentication: true,
    authorize: (user, channel) => {
      const [, source, ws] = channel.split(':');
      return source === 'etl' && user.workspaces.includes(ws);
    },
  });
  app.use(gateway);
  const bridge = bridgeUpstream({
    target: `${upstream.url}/logs/stream?channels=logs:etl:*`,
    headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
    bus: gateway.bus,
    channel: (event) => JSON.parse(event.data).channel,
    data: (event) => ({ upstreamId: event.id, line: JSON.parse(event.data).line }),
    channels: ['logs:etl:*'],
    gateway,
  });
  bridge.start();

  app.get('/bridge/status', (_req, res) => res.json(bridge.status()));

  app.get('/', (req, res) => {
    const ws = String(req.query.workspace_id ?? 'ws1');
    const wf = String(req.query.workflow_id ?? 'wf1');
    const qs = new URLSearchParams({ workspace_id: ws, workflow_id: wf });
    res.type('html').send(`<!doctype html><meta charset="utf-8"><title>L5-ETL logs</title>
<h1>L5-ETL logs ${ws}/${wf}</h1>
<h2>via sseProxy</h2><pre id="proxy"></pre>
<h2>via bridgeUpstream + gateway</h2><pre id="bridge"></pre>
<script>
  const show = (id, text) => { document.getElementById(id).textContent += text + '\\n'; };
  const proxied = new EventSource('/api/dapadmin/l5-etl/sse/logs/stream?${qs}');
  proxied.addEventListener('log', (e) => show('proxy', e.lastEventId + ' ' + JSON.parse(e.data).line));
  proxied.addEventListener('sse:error', (e) => show('proxy', 'upstream error: ' + e.data));
  const bridged = new EventSource('/events?channels=logs:etl:${ws}:${wf}');
  bridged.addEventListener('logs', (e) => show('bridge', JSON.parse(e.data).data.line));
</script>`);
  });

  const port = Number(process.env.PORT ?? 3000);
  const server = app.listen(port, '127.0.0.1', () => {
    console.log(
      `BFF on http://localhost:${server.address().port}/?workspace_id=ws1&workflow_id=wf1 (fake L5-ETL at ${upstream.url})`,
    );
  });

  async function shutdown() {
    await bridge.stop();
    await gateway.close();
    clearInterval(upstream.timer);
    upstream.server.closeAllConnections();
    upstream.server.close();
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

// (a) The floor: node:http, a channel → responses index, one pre-serialised Buffer per event written to
// every response. The same bytes on the wire as the gateway sends, so only the work differs.
// With `--express` (diagnostic server `raw-express`) the same loop is mounted as an Express 5 route,
// which separates what Express's response objects cost per write from what the gateway itself costs.
// With `--socket` (diagnostic server `raw-socket`) each event is framed once as an HTTP chunk
// (`<hex len>\r\n<frame>\r\n`) and that one Buffer is written to every `res.socket`, bypassing
// ServerResponse#write: an upper bound for what the gateway could gain by doing the same.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { channelsOf, listen, serve } from './common.mjs';

const subs = new Map();
let connections = 0;
const epoch = Date.now().toString(36) + randomBytes(4).toString('hex');
let seq = 0;
const CRLF = Buffer.from('\r\n');

function onEvents(req, res) {
  const channels = channelsOf(req.url);
  req.socket.setNoDelay(true);
  req.socket.setTimeout(0);
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  });
  res.write(`retry: 5000\nevent: sse:ready\ndata: ${JSON.stringify({ channels })}\n\n`);
  for (const ch of channels) {
    let set = subs.get(ch);
    if (!set) {
      set = new Set();
      subs.set(ch, set);
    }
    set.add(res);
  }
  connections++;
  res.on('close', () => {
    connections--;
    for (const ch of channels) {
      const set = subs.get(ch);
      set?.delete(res);
      if (set?.size === 0) subs.delete(ch);
    }
  });
}

let handler = (req, res) => {
  if (req.url.startsWith('/events')) onEvents(req, res);
  else res.writeHead(404).end();
};
if (process.argv.includes('--express')) {
  const { default: express } = await import('express');
  const app = express();
  app.get('/events', onEvents);
  handler = app;
}
const server = http.createServer(handler);
const direct = process.argv.includes('--socket');
server.on('clientError', (_e, socket) => socket.destroy());

const port = await listen(server);
serve({
  port,
  connections: () => connections,
  publish(channel, payload) {
    const id = `${epoch}-${++seq}`;
    const frame = Buffer.from(
      `id: ${id}\nevent: bench\ndata: {"channel":${JSON.stringify(channel)},"data":${JSON.stringify(payload)}}\n\n`,
    );
    const set = subs.get(channel);
    if (!set) return;
    if (direct) {
      const chunk = Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, CRLF]);
      for (const res of set) res.socket?.write(chunk);
    } else for (const res of set) res.write(frame);
  },
  // Replay is out of scope for a hand-written loop: the figure is n/a.
  prepareReplay: null,
  close() {
    server.closeAllConnections();
    server.close();
  },
});

// (b) better-sse on Express 5: one better-sse Channel per channel name, broadcast per event.
// better-sse serialises the payload once per session (Session#push); that is its real cost, kept as is.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { createChannel, createSession } from 'better-sse';
import express from 'express';
import { channelsOf, listen, serve } from './common.mjs';

const channels = new Map();
let connections = 0;
const epoch = Date.now().toString(36) + randomBytes(4).toString('hex');
let seq = 0;

function channelNamed(name) {
  let ch = channels.get(name);
  if (!ch) {
    ch = createChannel();
    channels.set(name, ch);
  }
  return ch;
}

const app = express();
app.get('/events', async (req, res) => {
  // Same transport settings the gateway and the raw server use, so only the SSE layer differs.
  req.socket.setNoDelay(true);
  req.socket.setTimeout(0);
  const names = channelsOf(req.originalUrl);
  try {
    const session = await createSession(req, res, { keepAlive: 25000, retry: 5000 });
    connections++;
    session.once('disconnected', () => connections--);
    for (const name of names) channelNamed(name).register(session);
  } catch {
    res.destroy();
  }
});

const server = http.createServer(app);
server.on('clientError', (_e, socket) => socket.destroy());
const port = await listen(server);
serve({
  port,
  connections: () => connections,
  publish(channel, payload) {
    const id = `${epoch}-${++seq}`;
    channels.get(channel)?.broadcast({ channel, data: payload }, 'bench', { eventId: id });
  },
  prepareReplay: null,
  close() {
    server.closeAllConnections();
    server.close();
  },
});

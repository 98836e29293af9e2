/**
 * Starting an SSE response: the one place that decides the stream's headers and socket settings.
 */
import type { Request, Response } from 'express';

/**
 * Send 200 with the contract's SSE headers and flush them at once, before any event exists. The socket
 * is set for a long-lived stream: no idle timeout, no Nagle delay on small frames, TCP keep-alive.
 * No `Connection` header is set: it is illegal in HTTP/2 and Node manages it for HTTP/1.1. From here on the
 * route has answered: nothing after it may call `next()`.
 */
export function startEventStream(req: Request, res: Response): void {
  req.socket.setTimeout(0);
  req.socket.setNoDelay(true);
  // Probes start after 30 s of silence (the OS default is 2 h), so a peer gone without a FIN is found sooner.
  req.socket.setKeepAlive(true, 30_000);
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  // Express keeps its routers' `next` chain on the request until the request ends, which for a stream is its
  // whole life. A stream never calls it, so let it go: about 1.5 KB of heap per open stream.
  req.next = undefined;
}

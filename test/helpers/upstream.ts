import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createGzip, type Gzip } from 'node:zlib';
import express from 'express';

/** An event the fake upstream sends. */
export interface UpstreamEventInput {
  id?: string;
  event?: string;
  /** May hold line breaks: each line becomes its own `data:` line. */
  data: string;
}

/** A request as the upstream received it. */
export interface RecordedRequest {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** How the upstream answers new requests; change it between tests. */
export interface UpstreamMode {
  /** Answer with this status and a text body instead of a stream. Defaults to `200`. */
  status: number;
  /** Content type of a 200 answer; anything but `text/event-stream` is sent as a finished HTML page. */
  contentType: string;
  /** Compress the stream with gzip (flushing after every write), whatever Accept-Encoding says. */
  gzip: boolean;
  /** Never answer: headers are not sent (for connect timeouts). */
  hang: boolean;
  /** Replay events after a Last-Event-ID from the history, as a resuming SSE server would. */
  replay: boolean;
}

/** A real Express SSE server on port 0 that records what it receives and sends what a test tells it to. */
export interface FakeUpstream {
  readonly url: string;
  readonly port: number;
  /** Streams currently open (requests whose response has not closed). */
  readonly open: number;
  readonly requests: RecordedRequest[];
  readonly mode: UpstreamMode;
  /** Record `event` in the history (when it has an id) and write it to every open stream. */
  send(event: UpstreamEventInput): void;
  /** Write bytes as they are to every open stream. */
  writeRaw(chunk: string | Buffer): void;
  /** End every open stream from the server side (an upstream closing mid-stream). */
  endStreams(): void;
  /** Put {@link FakeUpstream.mode} back to what {@link startUpstream} was given (after a test changed it). */
  resetMode(): void;
  /** Resolve when `predicate` holds; checked whenever a stream opens or closes or a request arrives. */
  waitFor(predicate: (upstream: FakeUpstream) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Stop listening and destroy every socket. The port stays reserved in this object for `restart()`. */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
}

interface OpenStream {
  readonly res: ServerResponse;
  readonly gzip: Gzip | undefined;
}

/** Format an event as an SSE server would, one `data:` line per line of data. */
export function frame(event: UpstreamEventInput): string {
  let out = '';
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  for (const line of event.data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** Start a fake SSE upstream on a free loopback port. */
export async function startUpstream(initial: Partial<UpstreamMode> = {}): Promise<FakeUpstream> {
  const initialMode: UpstreamMode = {
    status: 200,
    contentType: 'text/event-stream',
    gzip: false,
    hang: false,
    replay: true,
    ...initial,
  };
  const mode: UpstreamMode = { ...initialMode };
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const streams = new Set<OpenStream>();
  const requests: RecordedRequest[] = [];
  const history: UpstreamEventInput[] = [];
  const sockets = new Set<Socket>();
  let open = 0;

  const write = (stream: OpenStream, chunk: string | Buffer) => {
    if (stream.gzip === undefined) stream.res.write(chunk);
    else {
      stream.gzip.write(chunk);
      stream.gzip.flush();
    }
  };

  const app = express();
  app.use((req, res) => {
    requests.push({ url: req.originalUrl, headers: { ...req.headers } });
    open++;
    res.on('close', () => {
      open--;
      changes.emit('change');
    });
    changes.emit('change');
    if (mode.hang) return;
    if (mode.status !== 200) {
      res.status(mode.status).type('text/plain').send('upstream says no');
      return;
    }
    if (mode.contentType !== 'text/event-stream') {
      res.status(200).type(mode.contentType).send('<!doctype html><title>login</title>');
      return;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('Cache-Control', 'no-cache');
    let gzip: Gzip | undefined;
    if (mode.gzip) {
      res.setHeader('Content-Encoding', 'gzip');
      gzip = createGzip();
      gzip.pipe(res);
    }
    res.flushHeaders();
    const stream: OpenStream = { res, gzip };
    streams.add(stream);
    res.on('close', () => streams.delete(stream));
    const lastEventId = req.headers['last-event-id'];
    if (mode.replay && typeof lastEventId === 'string') {
      const from = history.findIndex((e) => e.id === lastEventId);
      for (const event of from === -1 ? [] : history.slice(from + 1)) write(stream, frame(event));
    }
    write(stream, ': open\n\n');
  });

  let server: Server;
  let port = 0;
  const listen = async () => {
    server = createServer(app);
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  };
  await listen();

  const upstream: FakeUpstream = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get open() {
      return open;
    },
    requests,
    mode,
    send(event) {
      if (event.id !== undefined) history.push(event);
      const text = frame(event);
      for (const stream of streams) write(stream, text);
    },
    writeRaw(chunk) {
      for (const stream of streams) write(stream, chunk);
    },
    endStreams() {
      for (const stream of streams) {
        if (stream.gzip === undefined) stream.res.end();
        else stream.gzip.end();
      }
    },
    resetMode() {
      Object.assign(mode, initialMode);
    },
    waitFor(predicate, timeoutMs = 5000, what = 'a condition on the upstream') {
      return new Promise((resolve, reject) => {
        if (predicate(upstream)) return resolve();
        const timer = setTimeout(() => {
          changes.off('change', check);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${what} (open: ${open}, requests: ${requests.length})`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (!predicate(upstream)) return;
          clearTimeout(timer);
          changes.off('change', check);
          resolve();
        };
        changes.on('change', check);
      });
    },
    stop() {
      return new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
    },
    restart: listen,
  };
  return upstream;
}

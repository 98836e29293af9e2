/**
 * The upstream HTTP client of `sseProxy` and `bridgeUpstream`: its own agents (never pooled), TLS, one GET
 * toward an SSE endpoint, the check that the answer is an event stream, and decoding of a compressed body.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { pipeline, type Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, constants as zlibConstants } from 'node:zlib';
import type { UpstreamTlsOptions } from '../types';

/** Why an upstream connection did not yield an event stream; sent as `reason` in `sse:error`. */
export type UpstreamFailureReason =
  | 'upstream-unreachable'
  | 'upstream-timeout'
  | 'upstream-status'
  | 'upstream-content-type'
  | 'upstream-encoding'
  | 'upstream-headers'
  | 'aborted';

/** @internal The outcome of {@link connectUpstream}. */
export type UpstreamAnswer =
  | { readonly ok: true; readonly body: Readable; readonly response: IncomingMessage }
  | { readonly ok: false; readonly reason: UpstreamFailureReason; readonly status?: number; readonly cause?: unknown };

/** @internal One upstream request. */
export interface UpstreamConnection {
  /** Settles once: the decoded body of a 200 `text/event-stream` answer, or why there is none. */
  readonly answer: Promise<UpstreamAnswer>;
  /** Abort the request and release its socket. Idempotent. */
  close(): void;
}

/** @internal Sockets of one proxy or bridge, never pooled: a stream ends by destroying its socket. */
export interface UpstreamAgents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}

/** TCP keep-alive probes find an upstream that vanished without a FIN, which an idle stream would not. */
const TCP_KEEPALIVE_MS = 30_000;

/**
 * @internal The agents of one proxy or bridge.
 *
 * @param tls - TLS settings for `https:` upstreams, already checked.
 */
export function createUpstreamAgents(tls: UpstreamTlsOptions = {}): UpstreamAgents {
  return { http: new HttpAgent({ keepAlive: false }), https: new HttpsAgent({ ...tls, keepAlive: false }) };
}

/**
 * @internal Open a GET toward an SSE upstream and check its answer: status 200, `text/event-stream`, and
 * a body decoded by its `Content-Encoding` (an upstream may compress even when asked not to).
 *
 * @param url - http: or https: URL.
 * @param headers - request headers, final.
 * @param agents - where sockets come from.
 * @param connectTimeoutMs - time allowed until the response headers; the stream itself has no timeout.
 */
export function connectUpstream(
  url: URL,
  headers: OutgoingHttpHeaders,
  agents: UpstreamAgents,
  connectTimeoutMs: number,
): UpstreamConnection {
  let settle: (answer: UpstreamAnswer) => void = () => {};
  let settled = false;
  const answer = new Promise<UpstreamAnswer>((resolve) => {
    settle = (value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
  });
  const https = url.protocol === 'https:';
  const req = (https ? httpsRequest : httpRequest)(url, {
    method: 'GET',
    headers,
    agent: https ? agents.https : agents.http,
  });
  let body: Readable | undefined;
  const timer = setTimeout(() => {
    settle({ ok: false, reason: 'upstream-timeout' });
    req.destroy();
  }, connectTimeoutMs);
  timer.unref();

  req.on('socket', (socket) => {
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    socket.setNoDelay(true);
  });
  req.on('error', (cause) => {
    settle({ ok: false, reason: 'upstream-unreachable', cause });
  });
  req.on('response', (res) => {
    const outcome = readResponse(res);
    if (!outcome.ok) req.destroy();
    else body = outcome.body;
    settle(outcome);
  });
  req.end();

  return {
    answer,
    close(): void {
      settle({ ok: false, reason: 'aborted' });
      req.destroy();
      body?.destroy();
    },
  };
}

/** The answer for a response: its decoded body, or why it is not an event stream. */
function readResponse(res: IncomingMessage): UpstreamAnswer {
  if (res.statusCode !== 200) return { ok: false, reason: 'upstream-status', status: res.statusCode ?? 0 };
  const mediaType = (res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'text/event-stream') return { ok: false, reason: 'upstream-content-type', status: 200 };
  const decoders = decodersFor(res.headers);
  if (decoders === null) return { ok: false, reason: 'upstream-encoding' };
  let decoded: Readable = res;
  // pipeline() destroys both ends when either fails or closes early, so the body always ends.
  for (const decoder of decoders) decoded = pipeline(decoded, decoder, noop);
  // Until the caller attaches its own listeners, an early socket error must not go unhandled.
  decoded.on('error', noop);
  return { ok: true, body: decoded, response: res };
}

/** The decompressors for `Content-Encoding`, outermost first; `null` for one we cannot undo. */
function decodersFor(headers: IncomingHttpHeaders): Transform[] | null {
  const codings = (headers['content-encoding'] ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  const decoders: Transform[] = [];
  // Codings are listed in the order they were applied, so they are undone from the last one.
  for (const coding of codings.reverse()) {
    // Z_SYNC_FLUSH at the end: an upstream closing mid-stream truncates the body; what arrived still counts.
    if (coding === 'gzip' || coding === 'x-gzip')
      decoders.push(createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH }));
    else if (coding === 'deflate') decoders.push(createInflate({ finishFlush: zlibConstants.Z_SYNC_FLUSH }));
    else if (coding === 'br')
      decoders.push(createBrotliDecompress({ finishFlush: zlibConstants.BROTLI_OPERATION_FLUSH }));
    else return null;
  }
  return decoders;
}

function noop(): void {}

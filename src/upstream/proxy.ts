/**
 * The upstream proxy: a page's stream forwarded to an upstream SSE service under the BFF's own
 * credentials. Upstream bytes are parsed and re-framed, never copied, so nothing upstream sends can break
 * the client's framing; failures before the stream starts become an `sse:error` event on a 200 stream,
 * because a non-200 answer would stop a browser's EventSource for good.
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
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { SseError } from '../protocol/errors';
import { formatComment, formatEvent, formatRetry } from '../protocol/framing';
import { createSseParser, DEFAULT_MAX_EVENT_SIZE, type ParsedSseEvent } from '../protocol/sse-parser';
import { startEventStream } from '../server/event-stream';
import type { Logger, MaybePromise, ProxyOptions, UpstreamTlsOptions } from '../types';

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

/**
 * @internal
 * @param tls - TLS settings for `https:` upstreams (checked by {@link tlsOption}).
 */
export function createUpstreamAgents(tls: UpstreamTlsOptions = {}): UpstreamAgents {
  return { http: new HttpAgent({ keepAlive: false }), https: new HttpsAgent({ ...tls, keepAlive: false }) };
}

const TLS_KEYS = new Set([
  'ca',
  'cert',
  'key',
  'passphrase',
  'pfx',
  'servername',
  'rejectUnauthorized',
  'minVersion',
  'ciphers',
]);

/**
 * @internal Check a `tls` option: an object of the TLS settings an upstream connection may take.
 *
 * @throws TypeError naming the unknown key.
 */
export function tlsOption(value: unknown, name: string): UpstreamTlsOptions {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object such as { ca: fs.readFileSync('ca.pem') }.`);
  }
  for (const key of Object.keys(value)) {
    if (!TLS_KEYS.has(key)) {
      throw new TypeError(`${name} does not take \`${key}\`; it takes ${[...TLS_KEYS].join(', ')}.`);
    }
  }
  return value as UpstreamTlsOptions;
}

const DEFAULT_HEARTBEAT_MS = 25_000;
const DEFAULT_RETRY_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** TCP keep-alive probes find an upstream that vanished without a FIN, which an idle stream would not. */
const TCP_KEEPALIVE_MS = 30_000;

/** RFC 9110 §7.6.1 hop-by-hop headers, plus ones a proxy must set itself. */
const NEVER_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
  'content-length',
  'expect',
  // The BFF's own credentials for the browser; the upstream gets a service credential through `headers`.
  'authorization',
  'cookie',
  // Set below: a proxy that negotiated these for the browser would have to honour them itself.
  'accept',
  'accept-encoding',
  'cache-control',
  'last-event-id',
]);

const HEARTBEAT = formatComment('heartbeat');

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
    const failure = checkResponse(res);
    if (failure !== undefined) {
      settle(failure);
      req.destroy();
      return;
    }
    const decoders = decodersFor(res.headers);
    if (decoders === null) {
      settle({ ok: false, reason: 'upstream-encoding' });
      req.destroy();
      return;
    }
    let decoded: Readable = res;
    // pipeline() destroys both ends when either fails or closes early, so the body always ends.
    for (const decoder of decoders) decoded = pipeline(decoded, decoder, noop);
    body = decoded;
    // Until the caller attaches its own listeners, an early socket error must not go unhandled.
    decoded.on('error', noop);
    settle({ ok: true, body: decoded, response: res });
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

function checkResponse(res: IncomingMessage): UpstreamAnswer | undefined {
  if (res.statusCode !== 200) return { ok: false, reason: 'upstream-status', status: res.statusCode ?? 0 };
  const mediaType = (res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'text/event-stream') return { ok: false, reason: 'upstream-content-type', status: 200 };
  return undefined;
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

/** @internal Header values that cannot travel in an HTTP header (a `lastEventId` query parameter might). */
export function isHeaderSafe(value: string): boolean {
  return !/[\r\n\0]/.test(value);
}

/** @internal Lower-cased, validated extra headers from a `headers` option's answer. */
export function normaliseHeaders(headers: unknown, optionName: string): Record<string, string> {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new TypeError(
      `${optionName} must be an object of header names to string values (received ${describe(headers)}).`,
    );
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (typeof value !== 'string' || !isHeaderSafe(value)) {
      throw new TypeError(`${optionName}: header ${JSON.stringify(name)} must be a string without CR, LF or NUL.`);
    }
    out[name.toLowerCase()] = value;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

/** @internal Check a target and turn it into a URL. */
export function toUpstreamUrl(target: unknown, optionName: string): URL {
  let url: URL;
  try {
    url = target instanceof URL ? target : new URL(String(target));
  } catch {
    throw new TypeError(`${optionName} must be an absolute http(s) URL (received ${describe(target)}).`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`${optionName} must be an http: or https: URL (received ${url.protocol}).`);
  }
  return url;
}

/** @internal Validate a non-negative or positive integer option. */
export function integerOption(value: unknown, name: string, fallback: number, min: 0 | 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(
      `${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer (received ${describe(value)}).`,
    );
  }
  return value;
}

/** @internal Check an injected logger. */
export function loggerOption(value: unknown, name: string): Logger {
  if (value === undefined) return console;
  const candidate = value as Partial<Logger> | null;
  if (candidate === null || typeof candidate.warn !== 'function' || typeof candidate.error !== 'function') {
    throw new TypeError(`${name} must have warn() and error() methods, like console.`);
  }
  return candidate as Logger;
}

/** @internal Reject unknown keys with a hint. */
export function checkKeys(
  options: object,
  known: readonly string[],
  hints: Readonly<Record<string, string>>,
  what: string,
): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const hint = hints[key] ?? known.find((k) => k.toLowerCase() === key.toLowerCase());
    throw new TypeError(`${what}: unknown option \`${key}\`${hint === undefined ? '' : `; did you mean \`${hint}\`?`}`);
  }
}

interface ProxyConfig {
  readonly target: (req: Request) => URL;
  readonly headers: (req: Request) => MaybePromise<Record<string, string>>;
  readonly forwardCookies: boolean;
  readonly heartbeatMs: number;
  readonly retryFrame: string;
  readonly connectTimeoutMs: number;
  readonly maxEventSize: number;
  readonly logger: Logger;
}

const PROXY_KEYS = [
  'target',
  'headers',
  'forwardCookies',
  'heartbeatMs',
  'retryMs',
  'connectTimeoutMs',
  'maxEventSize',
  'tls',
  'logger',
] as const;
const PROXY_HINTS = {
  url: 'target',
  upstream: 'target',
  heartbeat: 'heartbeatMs',
  retry: 'retryMs',
  connectTimeout: 'connectTimeoutMs',
  timeout: 'connectTimeoutMs',
  forwardCookie: 'forwardCookies',
  cookies: 'forwardCookies',
};

function parseProxyOptions(options: ProxyOptions): ProxyConfig {
  checkKeys(options, PROXY_KEYS, PROXY_HINTS, 'sseProxy()');
  const { target } = options;
  let resolveTarget: (req: Request) => URL;
  if (typeof target === 'function') {
    resolveTarget = (req) => toUpstreamUrl(target(req), 'sseProxy() target(req)');
  } else {
    const url = toUpstreamUrl(target, 'sseProxy() option `target`');
    resolveTarget = () => url;
  }
  const { headers } = options;
  let resolveHeaders: (req: Request) => MaybePromise<Record<string, string>>;
  if (headers === undefined) resolveHeaders = () => ({});
  else if (typeof headers === 'function') {
    resolveHeaders = async (req) => normaliseHeaders(await headers(req), 'sseProxy() headers(req)');
  } else {
    const fixed = normaliseHeaders(headers, 'sseProxy() option `headers`');
    resolveHeaders = () => fixed;
  }
  if (options.forwardCookies !== undefined && typeof options.forwardCookies !== 'boolean') {
    throw new TypeError(
      `sseProxy() option \`forwardCookies\` must be a boolean (received ${describe(options.forwardCookies)}).`,
    );
  }
  return {
    target: resolveTarget,
    headers: resolveHeaders,
    forwardCookies: options.forwardCookies ?? false,
    heartbeatMs: integerOption(options.heartbeatMs, 'sseProxy() option `heartbeatMs`', DEFAULT_HEARTBEAT_MS, 0),
    retryFrame: `${formatRetry(integerOption(options.retryMs, 'sseProxy() option `retryMs`', DEFAULT_RETRY_MS, 0))}\n`,
    connectTimeoutMs: integerOption(
      options.connectTimeoutMs,
      'sseProxy() option `connectTimeoutMs`',
      DEFAULT_CONNECT_TIMEOUT_MS,
      1,
    ),
    maxEventSize: integerOption(options.maxEventSize, 'sseProxy() option `maxEventSize`', DEFAULT_MAX_EVENT_SIZE, 1),
    logger: loggerOption(options.logger, 'sseProxy() option `logger`'),
  };
}

/** The Last-Event-ID a client resumes from: the header, else the `lastEventId` query parameter. */
function clientLastEventId(req: Request): string | undefined {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string') return header;
  const query = (req.query as Record<string, unknown> | undefined)?.lastEventId;
  if (typeof query === 'string' && isHeaderSafe(query)) return query;
  return undefined;
}

function upstreamHeaders(req: Request, config: ProxyConfig, extra: Record<string, string>): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  // Headers the client named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
  const named = new Set(
    String(req.headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase()),
  );
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || NEVER_FORWARDED.has(name) || named.has(name)) continue;
    headers[name] = value;
  }
  if (config.forwardCookies && req.headers.cookie !== undefined) headers.cookie = req.headers.cookie;
  headers.accept = 'text/event-stream';
  headers['accept-encoding'] = 'identity';
  headers['cache-control'] = 'no-cache';
  const lastEventId = clientLastEventId(req);
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
  // The configured headers win: they carry the service's credentials and deliberate overrides.
  for (const [name, value] of Object.entries(extra)) {
    if (name === 'host' || name === 'connection' || name === 'transfer-encoding' || name === 'content-length') continue;
    headers[name] = value;
  }
  return headers;
}

/** One client's proxied stream, with a single idempotent close path. */
class ProxiedStream {
  private upstream: UpstreamConnection | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastWrite = Date.now();
  private closed = false;

  constructor(
    private readonly req: Request,
    private readonly res: Response,
    private readonly config: ProxyConfig,
    private readonly agents: UpstreamAgents,
  ) {}

  async run(target: URL): Promise<void> {
    const { req, res, config } = this;
    res.on('close', () => this.close());
    startEventStream(req, res);
    this.write(config.retryFrame);
    this.startHeartbeat();

    let extra: Record<string, string>;
    try {
      extra = await config.headers(req);
    } catch (cause) {
      config.logger.error(`sse-gateway: sseProxy headers(req) failed for ${target.origin}${target.pathname}`, cause);
      return this.fail('upstream-headers');
    }
    if (this.closed) return;
    const upstream = connectUpstream(target, upstreamHeaders(req, config, extra), this.agents, config.connectTimeoutMs);
    this.upstream = upstream;
    const answer = await upstream.answer;
    if (this.closed) return;
    if (!answer.ok) {
      config.logger.warn(
        `sse-gateway: sseProxy upstream ${target.origin}${target.pathname} failed: ${answer.reason}${answer.status === undefined ? '' : ` (status ${answer.status})`}`,
        ...(answer.cause === undefined ? [] : [answer.cause]),
      );
      return this.fail(answer.reason, answer.status);
    }
    this.pump(answer.body, target);
  }

  private pump(body: Readable, target: URL): void {
    const { res, config } = this;
    const parser = createSseParser({
      onEvent: (event) => this.relay(event),
      onBareId: (id) => this.write(`id: ${id}\n\n`),
      onError: (error) =>
        config.logger.warn(`sse-gateway: sseProxy upstream ${target.origin}${target.pathname}: ${error.message}`),
      maxEventSize: config.maxEventSize,
    });
    let draining = false;
    body.on('data', (chunk: Buffer) => {
      parser.feed(chunk);
      // A slow client slows the upstream through TCP instead of growing our buffers.
      if (res.writableNeedDrain && !draining && !this.closed) {
        draining = true;
        body.pause();
        res.once('drain', () => {
          draining = false;
          body.resume();
        });
      }
    });
    // The upstream ending, failing or resetting all end the client's stream; the browser then reconnects
    // with its Last-Event-ID, which the next upstream request carries.
    body.once('end', () => this.close());
    body.once('close', () => this.close());
    body.once('error', () => this.close());
  }

  private relay(event: ParsedSseEvent): void {
    let frame: string;
    try {
      frame = formatEvent({ id: event.id, event: event.event, data: event.data });
    } catch {
      // Only a NUL in the event name gets here (the parser cannot yield CR or LF); a browser would accept
      // it, but it cannot be framed safely, so it is dropped.
      this.config.logger.warn('sse-gateway: sseProxy dropped an upstream event whose name contains NUL');
      return;
    }
    this.write(frame);
  }

  private write(text: string): void {
    if (this.closed) return;
    this.lastWrite = Date.now();
    this.res.write(text);
  }

  private startHeartbeat(): void {
    const { heartbeatMs } = this.config;
    if (heartbeatMs === 0) return;
    // One timer, re-armed for the remaining silence, instead of one reset per event.
    const tick = () => {
      const silent = Date.now() - this.lastWrite;
      if (silent >= heartbeatMs) this.write(HEARTBEAT);
      if (this.closed) return;
      this.heartbeat = setTimeout(tick, silent >= heartbeatMs ? heartbeatMs : heartbeatMs - silent);
      this.heartbeat.unref();
    };
    this.heartbeat = setTimeout(tick, heartbeatMs);
    this.heartbeat.unref();
  }

  private fail(reason: UpstreamFailureReason, status?: number): void {
    const data = JSON.stringify(status === undefined ? { reason } : { reason, status });
    this.write(formatEvent({ event: 'sse:error', data }));
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.heartbeat);
    this.upstream?.close();
    if (!this.res.writableEnded) this.res.end();
  }
}

/**
 * Forward a page's stream to an upstream SSE endpoint, re-framing every upstream event.
 * The client always gets a 200 `text/event-stream`: when the upstream cannot be reached, answers non-200
 * or is not an event stream, the client receives an `sse:error` event (`{"reason", "status"?}`) and the
 * stream ends, so the browser retries after `retry:`. Defaults to a heartbeat every `25000` ms, `retry: 5000`,
 * and `10000` ms to get upstream headers.
 *
 * Forwarded toward upstream: the client's end-to-end headers except `Cookie` (unless `forwardCookies`),
 * `Authorization` and hop-by-hop ones; `Last-Event-ID` from the header or the `lastEventId` query parameter;
 * then the `headers` option, which wins. Upstream comments and `retry:` are not forwarded.
 *
 * @param options - the upstream `target` and how to talk to it.
 * @returns an Express request handler; mount it on a GET route.
 * @throws TypeError for a missing or malformed option.
 * @example
 * app.get('/api/dapadmin/l5-etl/sse/logs/stream', requireUser, sseProxy({
 *   target: (req) => `${L5_ETL_URL}/logs/stream?channels=logs:etl:${req.query.workspace_id}:${req.query.workflow_id}`,
 *   headers: async () => ({ authorization: `Bearer ${await serviceToken()}` }),
 * }));
 */
export function sseProxy(options: ProxyOptions): RequestHandler {
  // Express passes (req, res, next) when the factory itself was mounted: app.get(path, sseProxy).
  // biome-ignore lint/complexity/noArguments: the declared signature stays (options) for users.
  if (arguments.length > 1 || (typeof options === 'object' && options !== null && 'socket' in options)) {
    throw new TypeError(
      'sseProxy is a factory: write `app.get(path, sseProxy({ target }))`, not `app.get(path, sseProxy)`.',
    );
  }
  if (options === null || typeof options !== 'object' || options.target === undefined) {
    throw new TypeError('sseProxy() needs `{ target }`: the upstream URL, or a function of the request returning one.');
  }
  const config = parseProxyOptions(options);
  const agents = createUpstreamAgents(tlsOption(options.tls, 'sseProxy() option `tls`'));
  return (req: Request, res: Response, next: NextFunction): void => {
    let target: URL;
    try {
      target = config.target(req);
    } catch (error) {
      // A target function may reject a request (a missing query parameter) with an SseError before the
      // stream starts; anything else is a bug for the app's error handler.
      if (error instanceof SseError) {
        res.status(error.status).json(error.toJSON());
        return;
      }
      next(error);
      return;
    }
    const running = new ProxiedStream(req, res, config, agents).run(target);
    // run() sends the headers before its first await; keep `next` (and with it Express's router chain) only
    // in the unlikely case it did not, so an open stream does not hold it for its whole life.
    const fail = res.headersSent ? undefined : next;
    running.catch((cause: unknown) => {
      config.logger.error('sse-gateway: sseProxy failed', cause);
      if (fail !== undefined && !res.headersSent) fail(cause);
      else res.end();
    });
  };
}

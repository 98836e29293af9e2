/**
 * The upstream proxy: a page's stream forwarded to an upstream SSE service under the BFF's own
 * credentials. Upstream bytes are parsed and re-framed, never copied, so nothing upstream sends can break
 * the client's framing; failures before the stream starts become an `sse:error` event on a 200 stream,
 * because a non-200 answer would stop a browser's EventSource for good.
 */
import type { Readable } from 'node:stream';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { SseError } from '../protocol/errors';
import { formatComment, formatEvent } from '../protocol/framing';
import { createSseParser, type ParsedSseEvent } from '../protocol/sse-parser';
import { startEventStream } from '../server/event-stream';
import { sendError } from '../server/http-errors';
import type { ProxyOptions } from '../types';
import { OptionError } from '../util/validate';
import {
  connectUpstream,
  createUpstreamAgents,
  type UpstreamAgents,
  type UpstreamConnection,
  type UpstreamFailureReason,
} from './client';
import { clientLastEventId, forwardedHeaders, streamHeaders } from './headers';
import { type ProxyConfig, parseProxyOptions } from './options';

export type { UpstreamFailureReason } from './client';

const HEARTBEAT = formatComment('heartbeat');

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
    let extra: Record<string, string>;
    try {
      extra = await config.headers(req);
    } catch (cause) {
      config.logger.error(`sse-gateway: sseProxy headers(req) failed for ${target.origin}${target.pathname}`, cause);
      return this.fail('upstream-headers');
    }
    if (this.closed) return;
    const headers = streamHeaders(forwardedHeaders(req, config), clientLastEventId(req), extra);
    const upstream = connectUpstream(target, headers, this.agents, config.connectTimeoutMs);
    this.upstream = upstream;
    // The stream starts once the upstream answered, so that an upstream 204 ("stop reconnecting", in the
    // EventSource spec) reaches the browser as a 204 and stops it, instead of a stream it would retry for ever.
    const answer = await upstream.answer;
    if (this.closed) return;
    if (!answer.ok && answer.status === 204) {
      res.status(204).end();
      return this.close();
    }
    if (!answer.ok) {
      config.logger.warn(
        `sse-gateway: sseProxy upstream ${target.origin}${target.pathname} failed: ${answer.reason}${answer.status === undefined ? '' : ` (status ${answer.status})`}`,
        ...(answer.cause === undefined ? [] : [answer.cause]),
      );
      return this.fail(answer.reason, answer.status);
    }
    this.start();
    this.pump(answer.body, target);
  }

  /** Headers, `retry:` and the heartbeat: the client's stream begins. */
  private start(): void {
    if (this.res.headersSent) return;
    startEventStream(this.req, this.res);
    this.write(this.config.retryFrame);
    this.startHeartbeat();
  }

  private pump(body: Readable, target: URL): void {
    const { res, config } = this;
    const parser = createSseParser({
      onEvent: (event) => this.relay(event),
      // The upstream knows its own reconnect pace, unless the app set `retryMs`.
      onRetry: (ms) => {
        if (!config.retryFixed) this.write(`retry: ${ms}\n\n`);
      },
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
    this.start();
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
 * Sent toward upstream: an allow-list of the client's headers (`Accept-Language`, `User-Agent`,
 * `traceparent`, `tracestate`, `baggage`, `X-Request-Id`, plus `forwardHeaders`), `Cookie` only with
 * `forwardCookies`; `Last-Event-ID` from the header or the `lastEventId` query parameter; `X-Forwarded-For`,
 * `-Proto` and `-Host` from `req.ip`, `req.protocol` and `req.hostname`; then the `headers` option, which
 * wins. Upstream comments are not forwarded; the upstream's `retry:` is, unless `retryMs` is set. An upstream 204 is
 * answered 204, which stops an EventSource.
 *
 * @param options - the upstream `target` and how to talk to it.
 * @returns an Express request handler; mount it on a GET route.
 * @throws TypeError for a missing or malformed option.
 * @example
 * app.get('/api/dapadmin/l5-etl/sse/logs/stream', requireUser, requireWorkspaceAccess, sseProxy({
 *   target: (req) => {
 *     const { workspace_id: ws, workflow_id: wf } = req.query;
 *     // Each value is one channel segment: `wf1,logs:etl:ws2:*` would otherwise add another workspace.
 *     if (!isSegment(ws) || !isSegment(wf)) {
 *       throw new SseError('ERR_SSE_BAD_REQUEST', 'workspace_id and workflow_id must be ids.', 400);
 *     }
 *     const url = new URL('/logs/stream', L5_ETL_URL);
 *     url.searchParams.set('channels', `logs:etl:${ws}:${wf}`);
 *     return url;
 *   },
 *   headers: async () => ({ authorization: `Bearer ${await serviceToken()}` }),
 * }));
 */
export function sseProxy(options: ProxyOptions): RequestHandler {
  // Express passes (req, res, next) when the factory itself was mounted: app.get(path, sseProxy).
  // biome-ignore lint/complexity/noArguments: the declared signature stays (options) for users.
  if (arguments.length > 1 || (typeof options === 'object' && options !== null && 'socket' in options)) {
    throw new OptionError(
      'sseProxy is a factory: write `app.get(path, sseProxy({ target }))`, not `app.get(path, sseProxy)`.',
    );
  }
  if (options === null || typeof options !== 'object' || options.target === undefined) {
    throw new OptionError(
      'sseProxy() needs `{ target }`: the upstream URL, or a function of the request returning one.',
    );
  }
  const config = parseProxyOptions(options);
  const agents = createUpstreamAgents(config.tls);
  return (req: Request, res: Response, next: NextFunction): void => {
    let target: URL;
    try {
      target = config.target(req);
    } catch (error) {
      // A target function may reject a request (a missing query parameter) with an SseError before the
      // stream starts; anything else is a bug for the app's error handler.
      if (error instanceof SseError) {
        sendError(res, error);
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

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
import { FailureTally } from './failures';
import { clientLastEventId, forwardedHeaders, streamHeaders } from './headers';
import { type ProxyConfig, parseProxyOptions } from './options';
import type { ProxyStats, UpstreamProxy } from './types';

export type { UpstreamFailureReason } from './client';
export type { ProxyStats, UpstreamProxy } from './types';

const HEARTBEAT = formatComment('heartbeat');

/** The figures of one `sseProxy()` handler, shared by its streams: plain counters, bumped in place. */
interface ProxyCounters {
  open: number;
  connecting: number;
  opened: number;
  events: number;
  skipped: number;
  readonly failures: FailureTally;
}

/** One client's proxied stream, with a single idempotent close path. */
class ProxiedStream {
  private upstream: UpstreamConnection | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastWrite = Date.now();
  private closed = false;
  /** Counted in `counters.open`: the upstream answered with a stream, and close() has not run yet. */
  private counted = false;

  constructor(
    private readonly req: Request,
    private readonly res: Response,
    private readonly config: ProxyConfig,
    private readonly agents: UpstreamAgents,
    private readonly counters: ProxyCounters,
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
    this.counters.connecting++;
    const answer = await upstream.answer;
    this.counters.connecting--;
    if (this.closed) return;
    if (!answer.ok && answer.status === 204) {
      this.counters.failures.count('upstream-status', 204);
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
    this.counted = true;
    this.counters.open++;
    this.counters.opened++;
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
      onError: (error) => {
        this.counters.skipped++;
        config.logger.warn(`sse-gateway: sseProxy upstream ${target.origin}${target.pathname}: ${error.message}`);
      },
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
    // with its Last-Event-ID, which the next upstream request carries. After close() (the client left) the
    // body closes too, and that is not the upstream's doing.
    const ended = () => {
      if (!this.closed) this.counters.failures.count('upstream-ended');
      this.close();
    };
    body.once('end', ended);
    body.once('close', ended);
    body.once('error', ended);
  }

  private relay(event: ParsedSseEvent): void {
    let frame: string;
    try {
      frame = formatEvent({ id: event.id, event: event.event, data: event.data });
    } catch {
      // Only a NUL in the event name gets here (the parser cannot yield CR or LF); a browser would accept
      // it, but it cannot be framed safely, so it is dropped.
      this.counters.skipped++;
      this.config.logger.warn('sse-gateway: sseProxy dropped an upstream event whose name contains NUL');
      return;
    }
    this.counters.events++;
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
    if (reason !== 'aborted') this.counters.failures.count(reason, status);
    this.start();
    const data = JSON.stringify(status === undefined ? { reason } : { reason, status });
    this.write(formatEvent({ event: 'sse:error', data }));
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.counted) this.counters.open--;
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
 * The handler's `stats()` counts its streams (open, opened, waiting for upstream), relayed and dropped
 * events, and failures by reason and HTTP status; give it a `name` to register them with
 * `registerUpstreamMetrics` (`@datashop/sse-gateway/metrics`).
 *
 * @param options - the upstream `target` and how to talk to it.
 * @returns an Express request handler with `stats()`; mount it on a GET route.
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
export function sseProxy(options: ProxyOptions): UpstreamProxy {
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
  const counters: ProxyCounters = {
    open: 0,
    connecting: 0,
    opened: 0,
    events: 0,
    skipped: 0,
    failures: new FailureTally(),
  };
  const stats = (): ProxyStats => ({
    name: config.name,
    open: counters.open,
    connecting: counters.connecting,
    opened: counters.opened,
    events: counters.events,
    skipped: counters.skipped,
    ...counters.failures.snapshot(),
  });
  const handler: RequestHandler = (req: Request, res: Response, next: NextFunction): void => {
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
    const running = new ProxiedStream(req, res, config, agents, counters).run(target);
    // run() sends the headers before its first await; keep `next` (and with it Express's router chain) only
    // in the unlikely case it did not, so an open stream does not hold it for its whole life.
    const fail = res.headersSent ? undefined : next;
    running.catch((cause: unknown) => {
      config.logger.error('sse-gateway: sseProxy failed', cause);
      if (fail !== undefined && !res.headersSent) fail(cause);
      else res.end();
    });
  };
  return Object.assign(handler, { stats });
}

/**
 * The public types of `bridgeUpstream()` and `sseProxy()`'s handler: options, status figures, and what a
 * bridge needs from a gateway.
 */
import type { RequestHandler } from 'express';
import type { ParsedSseEvent } from '../protocol/sse-parser';
import type { Bus, Logger, MaybePromise, UpstreamTlsOptions } from '../types';
import type { UpstreamErrorCounts } from './failures';

export type { UpstreamErrorCounts, UpstreamErrorReason } from './failures';

/**
 * What the bridge needs from a gateway to follow its subscriptions: `sseMiddleware()`'s gateway fits.
 * `activeTopics()`, when present, lets a bridge started late see the topics already open.
 */
export interface SubscriptionSource {
  /** Called when a channel or pattern gains its first local connection (`active`) or loses its last. */
  onSubscription(listener: (topic: string, active: boolean) => void): () => void;
  /** The channels and patterns that have local connections now. */
  activeTopics?(): Iterable<string>;
}

/** Backoff between upstream connection attempts. */
export interface BridgeReconnectOptions {
  /** First delay, in ms; an upstream `retry:` replaces it. Defaults to `1000`. */
  initialDelayMs?: number;
  /** Largest delay, in ms; each failed attempt doubles the previous one up to it. Defaults to `30000`. */
  maxDelayMs?: number;
}

/** Options of {@link bridgeUpstream}. */
export interface BridgeOptions {
  /**
   * A fixed name for operations (1-64 characters of `[A-Za-z0-9_.-]`, e.g. `'etl-logs'`): the `name` label of
   * `registerUpstreamMetrics` and `status().name`. Never an id or a URL. Defaults to none (required only to
   * register metrics).
   */
  name?: string;
  /** The upstream SSE URL. */
  target: string | URL;
  /** Where events are republished. */
  bus: Bus;
  /**
   * The channel of every event, or a function choosing it per upstream event; `null` or `undefined` skips
   * the event.
   */
  channel: string | ((event: ParsedSseEvent) => string | null | undefined);
  /**
   * The channels or `prefix:*` patterns this bridge feeds, and the only ones it publishes to: an upstream
   * event whose `channel(event)` falls outside them is dropped (logged once per channel, counted as
   * `refused`). In lazy mode the bridge runs while a local subscription overlaps one of them. Defaults to
   * `[channel]` when `channel` is a string; without it a `channel` function may publish anywhere (warned).
   */
  channels?: readonly string[];
  /**
   * Follow a gateway's subscriptions: connect upstream on the first local subscriber of a fed channel and
   * disconnect after the last. Without it the bridge stays connected from `start()` to `stop()`.
   */
  gateway?: SubscriptionSource;
  /** The payload published for an upstream event. Defaults to its data parsed as JSON, or the string itself. */
  data?: (event: ParsedSseEvent) => unknown;
  /** Request headers toward upstream (e.g. a service token), computed before every connection attempt. */
  headers?: Record<string, string> | (() => MaybePromise<Record<string, string>>);
  /** Resume from this upstream event id on the first connection. Defaults to none. */
  lastEventId?: string;
  /** Backoff between attempts. Defaults to `{ initialDelayMs: 1000, maxDelayMs: 30000 }`. */
  reconnect?: BridgeReconnectOptions;
  /** Time allowed to get upstream response headers, in ms. Defaults to `10000`. */
  connectTimeoutMs?: number;
  /**
   * Reconnect when upstream sends nothing (not even a comment) for this long, in ms; `0` relies on TCP
   * keep-alive alone. Defaults to `0`.
   */
  idleTimeoutMs?: number;
  /** In lazy mode, how long to stay connected after the last subscriber left, in ms. Defaults to `5000`. */
  stopDelayMs?: number;
  /** Largest upstream line or event, in characters; a larger one is skipped and logged. Defaults to `1048576`. */
  maxEventSize?: number;
  /** TLS settings for an `https:` upstream (private CA, client certificate); see `ProxyOptions.tls`. */
  tls?: UpstreamTlsOptions;
  /** Where upstream and publish failures are reported. Defaults to `console`. */
  logger?: Logger;
}

/**
 * What a bridge is doing. `connecting`: an attempt is under way (waiting for `headers()`, the previous
 * connection's publishes, or the upstream's answer); `open`: an upstream event stream is open; `retrying`:
 * waiting out the backoff after a failure or a drop; `idle`: started, but in lazy mode with no local
 * subscriber, so deliberately disconnected; `stopped`: before `start()` or after `stop()`.
 */
export type BridgeState = 'connecting' | 'open' | 'retrying' | 'idle' | 'stopped';

/** Figures from {@link UpstreamBridge.status}. */
export interface BridgeStatus extends UpstreamErrorCounts {
  /** The `name` option. */
  readonly name: string | undefined;
  /** What the bridge is doing now. */
  readonly state: BridgeState;
  /** The upstream's origin and path: no credentials, no query string (which may carry ids or secrets). */
  readonly url: string;
  /** While `open`: when this upstream connection opened (ms since the epoch). */
  readonly connectedSince: number | undefined;
  /**
   * While `connecting` or `retrying`: since when the bridge has been without a connection it wants (the drop
   * of the last open one, or the first attempt after `start()` or idling), unchanged through retries (ms
   * since the epoch).
   */
  readonly disconnectedSince: number | undefined;
  /** Between `start()` and `stop()`. */
  readonly running: boolean;
  /** An upstream event stream is open now (`state === 'open'`). */
  readonly connected: boolean;
  /** Upstream event streams opened (200 `text/event-stream` answers). */
  readonly opened: number;
  /** Id of the last upstream event published (the next connection's Last-Event-ID). */
  readonly lastEventId: string | undefined;
  /** Connection attempts after the first one. */
  readonly reconnects: number;
  /** Upstream events received. */
  readonly events: number;
  /** Events published on the bus. */
  readonly published: number;
  /** Events skipped: no channel, an invalid channel or payload, or larger than `maxEventSize`. */
  readonly skipped: number;
  /** Events dropped because their channel is outside `channels`. */
  readonly refused: number;
  /** Fed topics with local subscribers (lazy mode). */
  readonly subscribers: number;
  /** The last failure, for health pages: a reason of `errors`, with the HTTP status for `upstream-status`. */
  readonly lastError: string | undefined;
}

/** A running bridge from one upstream SSE endpoint into a bus. */
export interface UpstreamBridge {
  /** Connect (or, with `gateway`, start following its subscriptions). Idempotent. */
  start(): void;
  /** Disconnect, stop following the gateway, and wait for events being published. Idempotent. */
  stop(): Promise<void>;
  /** Current figures: a snapshot, cheap to take (a health page or a scrape may call it often). */
  status(): BridgeStatus;
}

/** Figures from {@link UpstreamProxy.stats}, over every stream of one `sseProxy()` handler. */
export interface ProxyStats extends UpstreamErrorCounts {
  /** The `name` option. */
  readonly name: string | undefined;
  /** Proxied streams open now: the upstream answered with an event stream and the client is still there. */
  readonly open: number;
  /** Requests waiting for the upstream's answer now. */
  readonly connecting: number;
  /** Proxied streams opened (200 `text/event-stream` answers from upstream). */
  readonly opened: number;
  /** Upstream events relayed to clients. */
  readonly events: number;
  /** Upstream events dropped: larger than `maxEventSize`, or an event name that cannot be framed. */
  readonly skipped: number;
}

/**
 * What `sseProxy()` returns: an Express request handler that also reports its figures. Failures counted in
 * `errors` are those a client saw as `sse:error` (or a 204), plus `upstream-ended` for an upstream that ended
 * an open stream; a client leaving is not a failure.
 */
export interface UpstreamProxy extends RequestHandler {
  /** Current figures: a snapshot, cheap to take. */
  stats(): ProxyStats;
}

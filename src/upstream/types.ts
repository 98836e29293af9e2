/**
 * The public types of `bridgeUpstream()`: its options, its status figures, and what it needs from a gateway.
 */
import type { ParsedSseEvent } from '../protocol/sse-parser';
import type { Bus, Logger, MaybePromise, UpstreamTlsOptions } from '../types';

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

/** Figures from {@link UpstreamBridge.status}. */
export interface BridgeStatus {
  /** Between `start()` and `stop()`. */
  readonly running: boolean;
  /** An upstream event stream is open now. */
  readonly connected: boolean;
  /** Id of the last upstream event published (the next connection's Last-Event-ID). */
  readonly lastEventId: string | undefined;
  /** Connection attempts after the first one. */
  readonly reconnects: number;
  /** Upstream events received. */
  readonly events: number;
  /** Events published on the bus. */
  readonly published: number;
  /** Events skipped: no channel, an invalid channel or payload, or too large. */
  readonly skipped: number;
  /** Events dropped because their channel is outside `channels`. */
  readonly refused: number;
  /** Fed topics with local subscribers (lazy mode). */
  readonly subscribers: number;
  /** The last failure, for health pages. */
  readonly lastError: string | undefined;
}

/** A running bridge from one upstream SSE endpoint into a bus. */
export interface UpstreamBridge {
  /** Connect (or, with `gateway`, start following its subscriptions). Idempotent. */
  start(): void;
  /** Disconnect, stop following the gateway, and wait for events being published. Idempotent. */
  stop(): Promise<void>;
  /** Current figures. */
  status(): BridgeStatus;
}

/**
 * The upstream bridge: one upstream SSE subscription shared by every client, republished into a bus.
 * Five hundred browsers watching one workflow then cost one upstream connection, and the gateway's ACL,
 * replay and Redis fan-out apply to upstream events like to any other.
 *
 * Delivery is in upstream order and resumable: the bridge remembers the id of the last event it published
 * (not merely received), reconnects with it as Last-Event-ID, and never starts a new connection while
 * events of the previous one are still being published.
 */
import type { Readable } from 'node:stream';
import { matchChannel, parseTopic, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { createSseParser, DEFAULT_MAX_EVENT_SIZE, type ParsedSseEvent } from '../protocol/sse-parser';
import type { Bus, Logger, MaybePromise, UpstreamTlsOptions } from '../types';
import {
  checkKeys,
  connectUpstream,
  createUpstreamAgents,
  integerOption,
  loggerOption,
  normaliseHeaders,
  tlsOption,
  toUpstreamUrl,
  type UpstreamAgents,
  type UpstreamConnection,
} from './proxy';

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
   * The channels or `prefix:*` patterns this bridge feeds, for lazy mode: the bridge runs while a local
   * subscription overlaps one of them. Defaults to `[channel]` when `channel` is a string.
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

const DEFAULT_INITIAL_DELAY_MS = 1000;
const DEFAULT_MAX_DELAY_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_STOP_DELAY_MS = 5000;
/** Events waiting for the bus before the upstream socket is paused, and when it resumes. */
const HIGH_WATER = 1000;
const LOW_WATER = 100;

const BRIDGE_KEYS = [
  'target',
  'bus',
  'channel',
  'channels',
  'gateway',
  'data',
  'headers',
  'lastEventId',
  'reconnect',
  'connectTimeoutMs',
  'idleTimeoutMs',
  'stopDelayMs',
  'maxEventSize',
  'tls',
  'logger',
] as const;
const BRIDGE_HINTS = {
  url: 'target',
  upstream: 'target',
  transform: 'data',
  topic: 'channel',
  retry: 'reconnect',
  connectTimeout: 'connectTimeoutMs',
  idleTimeout: 'idleTimeoutMs',
  stopDelay: 'stopDelayMs',
};

/** The default payload: JSON when the data is JSON, else the string. */
function defaultData(event: ParsedSseEvent): unknown {
  try {
    return JSON.parse(event.data);
  } catch {
    return event.data;
  }
}

/** Do two topics (channels or `prefix:*` patterns) share at least one channel? */
function overlaps(a: Topic, b: Topic): boolean {
  if (!a.pattern && !b.pattern) return a.name === b.name;
  if (a.pattern && !b.pattern) return matchChannel(a, b.name);
  if (!a.pattern && b.pattern) return matchChannel(b, a.name);
  return a.key === b.key || a.key.startsWith(`${b.key}:`) || b.key.startsWith(`${a.key}:`);
}

/** The current attempt or connection; callbacks of a replaced one see `link !== this.link`. */
interface Link {
  conn: UpstreamConnection | undefined;
  body: Readable | undefined;
  connected: boolean;
  openedAt: number;
  events: number;
  /** A publish failed: the rest of this connection's events are dropped and fetched again. */
  failed: boolean;
  paused: boolean;
  idle: NodeJS.Timeout | undefined;
}

class Bridge implements UpstreamBridge {
  private readonly url: URL;
  private readonly bus: Bus;
  private readonly channelOf: (event: ParsedSseEvent) => string | null | undefined;
  private readonly feeds: readonly Topic[];
  private readonly gateway: SubscriptionSource | undefined;
  private readonly dataOf: (event: ParsedSseEvent) => unknown;
  private readonly headers: () => MaybePromise<Record<string, string>>;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly stopDelayMs: number;
  private readonly maxEventSize: number;
  private readonly logger: Logger;
  private readonly agents: UpstreamAgents;

  private running = false;
  private link: Link | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopTimer: NodeJS.Timeout | undefined;
  private detach: (() => void) | undefined;
  private readonly active = new Set<string>();
  private attempts = 0;
  private baseDelayMs: number;
  private lastEventId: string | undefined;
  /** Publishes run one after another, so the bus sees upstream order. */
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private readonly counters = { reconnects: 0, events: 0, published: 0, skipped: 0 };
  private lastError: string | undefined;
  private connections = 0;

  constructor(options: BridgeOptions) {
    checkKeys(options, BRIDGE_KEYS, BRIDGE_HINTS, 'bridgeUpstream()');
    this.url = toUpstreamUrl(options.target, 'bridgeUpstream() option `target`');
    const { bus, channel, gateway } = options;
    if (bus === null || typeof bus !== 'object' || typeof bus.publish !== 'function') {
      throw new TypeError(
        'bridgeUpstream() needs `bus`: the Bus to publish into, e.g. createMemoryBus() or gateway.bus.',
      );
    }
    this.bus = bus;
    if (typeof channel === 'string') {
      const topic = parseTopic(channel);
      if (topic === null) {
        throw new TypeError(
          `bridgeUpstream() option \`channel\` must be a channel (namespace(:segment)*, no wildcard); received ${JSON.stringify(channel)}.`,
        );
      }
      this.channelOf = () => channel;
    } else if (typeof channel === 'function') {
      this.channelOf = channel;
    } else {
      throw new TypeError(
        'bridgeUpstream() needs `channel`: a channel name, or a function of the upstream event returning one.',
      );
    }
    const feeds = options.channels ?? (typeof channel === 'string' ? [channel] : []);
    if (!Array.isArray(feeds))
      throw new TypeError('bridgeUpstream() option `channels` must be an array of channels or patterns.');
    this.feeds = feeds.map((name: unknown) => {
      const topic = typeof name === 'string' ? parseTopic(name, true) : null;
      if (topic === null) {
        throw new TypeError(
          `bridgeUpstream() option \`channels\`: ${JSON.stringify(name)} is not a channel or a \`prefix:*\` pattern.`,
        );
      }
      return topic;
    });
    if (gateway !== undefined) {
      if (gateway === null || typeof gateway.onSubscription !== 'function') {
        throw new TypeError(
          'bridgeUpstream() option `gateway` must have onSubscription(listener), like the gateway of sseMiddleware().',
        );
      }
      if (this.feeds.length === 0) {
        throw new TypeError(
          'bridgeUpstream() with `gateway` and a `channel` function needs `channels`: the channels or patterns it feeds.',
        );
      }
    }
    this.gateway = gateway;
    if (options.data !== undefined && typeof options.data !== 'function') {
      throw new TypeError('bridgeUpstream() option `data` must be a function of the upstream event.');
    }
    this.dataOf = options.data ?? defaultData;
    const { headers } = options;
    if (headers === undefined) this.headers = () => ({});
    else if (typeof headers === 'function') {
      this.headers = async () => normaliseHeaders(await headers(), 'bridgeUpstream() headers()');
    } else {
      const fixed = normaliseHeaders(headers, 'bridgeUpstream() option `headers`');
      this.headers = () => fixed;
    }
    if (
      options.lastEventId !== undefined &&
      (typeof options.lastEventId !== 'string' || /[\r\n\0]/.test(options.lastEventId))
    ) {
      throw new TypeError('bridgeUpstream() option `lastEventId` must be a string without CR, LF or NUL.');
    }
    this.lastEventId = options.lastEventId === '' ? undefined : options.lastEventId;
    const reconnect = options.reconnect ?? {};
    checkKeys(reconnect, ['initialDelayMs', 'maxDelayMs'], {}, 'bridgeUpstream() option `reconnect`');
    this.initialDelayMs = integerOption(
      reconnect.initialDelayMs,
      'reconnect.initialDelayMs',
      DEFAULT_INITIAL_DELAY_MS,
      0,
    );
    this.maxDelayMs = integerOption(reconnect.maxDelayMs, 'reconnect.maxDelayMs', DEFAULT_MAX_DELAY_MS, 1);
    this.baseDelayMs = this.initialDelayMs;
    this.connectTimeoutMs = integerOption(options.connectTimeoutMs, 'connectTimeoutMs', DEFAULT_CONNECT_TIMEOUT_MS, 1);
    this.idleTimeoutMs = integerOption(options.idleTimeoutMs, 'idleTimeoutMs', 0, 0);
    this.stopDelayMs = integerOption(options.stopDelayMs, 'stopDelayMs', DEFAULT_STOP_DELAY_MS, 0);
    this.maxEventSize = integerOption(options.maxEventSize, 'maxEventSize', DEFAULT_MAX_EVENT_SIZE, 1);
    this.agents = createUpstreamAgents(tlsOption(options.tls, 'bridgeUpstream() option `tls`'));
    this.logger = loggerOption(options.logger, 'bridgeUpstream() option `logger`');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.gateway === undefined) {
      this.connect();
      return;
    }
    const listener = (topic: string, active: boolean) => this.onTopic(topic, active);
    this.detach = this.gateway.onSubscription(listener);
    for (const topic of this.gateway.activeTopics?.() ?? []) this.onTopic(topic, true);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.detach?.();
    this.detach = undefined;
    this.active.clear();
    clearTimeout(this.stopTimer);
    this.stopTimer = undefined;
    this.disconnect();
    await this.chain;
  }

  status(): BridgeStatus {
    return {
      running: this.running,
      connected: this.link?.connected ?? false,
      lastEventId: this.lastEventId,
      reconnects: this.counters.reconnects,
      events: this.counters.events,
      published: this.counters.published,
      skipped: this.counters.skipped,
      subscribers: this.active.size,
      lastError: this.lastError,
    };
  }

  private get wanted(): boolean {
    return this.running && (this.gateway === undefined || this.active.size > 0 || this.stopTimer !== undefined);
  }

  private onTopic(topic: string, active: boolean): void {
    if (!this.running) return;
    const parsed = parseTopic(topic, true);
    if (parsed === null || !this.feeds.some((feed) => overlaps(feed, parsed))) return;
    if (active) {
      this.active.add(topic);
      clearTimeout(this.stopTimer);
      this.stopTimer = undefined;
      this.connect();
      return;
    }
    this.active.delete(topic);
    if (this.active.size > 0 || this.stopTimer !== undefined) return;
    const idle = () => {
      this.stopTimer = undefined;
      if (this.active.size === 0) this.disconnect();
    };
    if (this.stopDelayMs === 0) {
      idle();
      return;
    }
    // A page reload drops the last subscriber for a moment; lingering avoids a reconnect per reload.
    this.stopTimer = setTimeout(idle, this.stopDelayMs);
    this.stopTimer.unref();
  }

  private connect(): void {
    if (!this.wanted || this.link !== undefined || this.retryTimer !== undefined) return;
    const link: Link = {
      conn: undefined,
      body: undefined,
      connected: false,
      openedAt: 0,
      events: 0,
      failed: false,
      paused: false,
      idle: undefined,
    };
    this.link = link;
    if (this.connections++ > 0) this.counters.reconnects++;
    this.open(link).catch((cause: unknown) => {
      this.logger.error('sse-gateway: bridgeUpstream failed', cause);
      this.dropped(link, false);
    });
  }

  private async open(link: Link): Promise<void> {
    // Events of the previous connection may still be publishing; resuming before they are done would
    // ask upstream for them again.
    await this.chain;
    let extra: Record<string, string>;
    try {
      extra = await this.headers();
    } catch (cause) {
      this.lastError = 'upstream-headers';
      this.logger.error(`sse-gateway: bridgeUpstream headers() failed for ${this.where}`, cause);
      return this.dropped(link, false);
    }
    if (link !== this.link) return;
    const headers: Record<string, string> = {
      ...extra,
      accept: 'text/event-stream',
      'accept-encoding': 'identity',
      'cache-control': 'no-cache',
    };
    if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId;
    const conn = connectUpstream(this.url, headers, this.agents, this.connectTimeoutMs);
    link.conn = conn;
    const answer = await conn.answer;
    if (link !== this.link) return;
    if (!answer.ok) {
      this.lastError = answer.status === undefined ? answer.reason : `${answer.reason} (${answer.status})`;
      this.logger.warn(
        `sse-gateway: bridgeUpstream ${this.where}: ${this.lastError}; retrying.`,
        ...(answer.cause === undefined ? [] : [answer.cause]),
      );
      return this.dropped(link, false);
    }
    const body = answer.body;
    link.body = body;
    link.connected = true;
    link.openedAt = Date.now();
    const parser = createSseParser({
      onEvent: (event) => this.received(link, event),
      onBareId: (id) => this.enqueue(link, () => id),
      onRetry: (ms) => {
        this.baseDelayMs = ms;
      },
      onError: (error) => {
        this.counters.skipped++;
        this.logger.warn(`sse-gateway: bridgeUpstream ${this.where}: ${error.message}`);
      },
      maxEventSize: this.maxEventSize,
    });
    // The spec keeps the last event id across reconnections; events without an id resume from it.
    parser.reset(this.lastEventId);
    this.armIdle(link);
    body.on('data', (chunk: Buffer) => {
      this.armIdle(link);
      parser.feed(chunk);
      if (this.queued >= HIGH_WATER && !link.paused) {
        // The bus is slower than upstream: let TCP hold the backlog rather than our memory.
        link.paused = true;
        body.pause();
      }
    });
    const ended = () => this.dropped(link, true);
    body.once('end', ended);
    body.once('close', ended);
    body.once('error', ended);
  }

  private get where(): string {
    return `${this.url.origin}${this.url.pathname}`;
  }

  private armIdle(link: Link): void {
    if (this.idleTimeoutMs === 0) return;
    clearTimeout(link.idle);
    link.idle = setTimeout(() => {
      this.lastError = 'upstream-idle';
      this.logger.warn(
        `sse-gateway: bridgeUpstream ${this.where}: nothing received for ${this.idleTimeoutMs} ms; reconnecting.`,
      );
      this.dropped(link, false);
    }, this.idleTimeoutMs);
    link.idle.unref();
  }

  private received(link: Link, event: ParsedSseEvent): void {
    this.counters.events++;
    link.events++;
    let channel: string | null | undefined;
    let data: unknown;
    try {
      channel = this.channelOf(event);
      if (channel !== null && channel !== undefined) data = this.dataOf(event);
    } catch (cause) {
      this.logger.error('sse-gateway: bridgeUpstream channel() or data() threw; the event is skipped.', cause);
      channel = null;
    }
    const target = channel;
    this.enqueue(link, async () => {
      if (target === null || target === undefined) {
        this.counters.skipped++;
        return event.lastEventId;
      }
      try {
        await this.bus.publish(target, data);
        this.counters.published++;
      } catch (error) {
        if (
          error instanceof SseError &&
          (error.code === 'ERR_SSE_INVALID_CHANNEL' || error.code === 'ERR_SSE_INVALID_DATA')
        ) {
          // The event itself is unpublishable: fetching it again would fail again.
          this.counters.skipped++;
          this.logger.warn(`sse-gateway: bridgeUpstream skipped an upstream event: ${error.message}`);
          return event.lastEventId;
        }
        throw error;
      }
      return event.lastEventId;
    });
  }

  /** Run `task` after every earlier one; its answer becomes the last event id. */
  private enqueue(link: Link, task: () => MaybePromise<string>): void {
    this.queued++;
    this.chain = this.chain.then(async () => {
      try {
        if (link.failed) return;
        const id = await task();
        this.lastEventId = id === '' ? undefined : id;
      } catch (cause) {
        link.failed = true;
        this.lastError = 'publish-failed';
        this.logger.error(
          `sse-gateway: bridgeUpstream could not publish to the bus; reconnecting upstream from ${this.lastEventId ?? 'the start'}.`,
          cause,
        );
        this.dropped(link, false);
      } finally {
        this.queued--;
        if (link.paused && this.queued <= LOW_WATER) {
          link.paused = false;
          link.body?.resume();
        }
      }
    });
  }

  /** The link is over: close it and, when still wanted, schedule the next attempt. */
  private dropped(link: Link, ended: boolean): void {
    if (link !== this.link) return;
    const healthy = link.connected && (link.events > 0 || Date.now() - link.openedAt >= this.maxDelayMs);
    this.closeLink(link);
    if (ended) this.lastError = 'upstream-ended';
    if (!this.wanted) return;
    this.attempts = healthy ? 1 : this.attempts + 1;
    // Jitter spreads the reconnects of many BFF instances after an upstream restart.
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (this.attempts - 1)) * (0.8 + Math.random() * 0.4);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  private closeLink(link: Link): void {
    clearTimeout(link.idle);
    link.connected = false;
    link.conn?.close();
    if (this.link === link) this.link = undefined;
  }

  private disconnect(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.attempts = 0;
    if (this.link !== undefined) this.closeLink(this.link);
  }
}

/**
 * Share one upstream SSE subscription among every client by republishing its events into a bus.
 * Each upstream event becomes `bus.publish(channel, data)`: data is the upstream data parsed as JSON when
 * it is JSON, else the string. The bridge resumes with its own Last-Event-ID after any drop, with
 * exponential backoff (an upstream `retry:` sets the first delay). Defaults to reconnecting after
 * `1000` ms, doubling up to `30000` ms. Nothing happens until `start()`.
 *
 * @param options - the upstream `target`, the `bus`, and the `channel` (fixed or per event).
 * @returns the bridge; call `start()`.
 * @throws TypeError for a missing or malformed option.
 * @example
 * const gateway = sseMiddleware({ channels: ['logs'] });
 * const bridge = bridgeUpstream({
 *   target: `${L5_ETL_URL}/logs/stream?channels=logs:etl:*`,
 *   headers: async () => ({ authorization: `Bearer ${await serviceToken()}` }),
 *   bus: gateway.bus,
 *   channel: (event) => JSON.parse(event.data).channel,
 *   channels: ['logs:etl:*'],
 *   gateway, // connect while someone watches logs:etl:…
 * });
 * bridge.start();
 */
export function bridgeUpstream(options: BridgeOptions): UpstreamBridge {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('bridgeUpstream() needs `{ target, bus, channel }`.');
  }
  return new Bridge(options);
}

/**
 * The upstream bridge: one upstream SSE subscription shared by every client, republished into a bus.
 * Five hundred browsers watching one workflow then cost one upstream connection, and the gateway's ACL,
 * replay and Redis fan-out apply to upstream events like to any other.
 *
 * Delivery is in upstream order and resumable: the bridge remembers the id of the last event it published
 * (not merely received), reconnects with it as Last-Event-ID, and never starts a new connection while
 * events of the previous one are still being published.
 *
 * Its state (`BridgeState`) is read from the one current link and the retry timer rather than kept as a flag
 * beside them, so it cannot disagree with what the bridge does; the last one reported is kept only to notice
 * a change, which is traced (`NODE_DEBUG=sse-gateway`) and reported on the `sse-gateway:upstream`
 * diagnostics channel.
 */
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import { reportUpstream } from '../ops/diagnostics';
import { matchChannel, parseTopic, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { createSseParser, type ParsedSseEvent } from '../protocol/sse-parser';
import type { MaybePromise } from '../types';
import {
  connectUpstream,
  createUpstreamAgents,
  type UpstreamAgents,
  type UpstreamConnection,
  type UpstreamFailureReason,
} from './client';
import { FailureTally, type UpstreamErrorReason } from './failures';
import { streamHeaders } from './headers';
import { allows, type BridgeConfig, parseBridgeOptions } from './options';
import type { BridgeOptions, BridgeState, BridgeStatus, UpstreamBridge } from './types';

export type {
  BridgeOptions,
  BridgeReconnectOptions,
  BridgeState,
  BridgeStatus,
  SubscriptionSource,
  UpstreamBridge,
} from './types';

/** Events waiting for the bus before the upstream socket is paused, and when it resumes. */
const HIGH_WATER = 1000;
const LOW_WATER = 100;
/** Distinct refused channels that are logged; the rest are only counted. */
const MAX_REFUSALS_LOGGED = 100;

const trace = debuglog('sse-gateway');

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
  private readonly counters = { reconnects: 0, opened: 0, events: 0, published: 0, skipped: 0, refused: 0 };
  private readonly failures = new FailureTally();
  /** The last state reported, to notice changes; {@link Bridge.changed} brings it up to date. */
  private state: BridgeState = 'stopped';
  private disconnectedSince: number | undefined;
  /** Channels already logged as refused; bounded, since the upstream chooses them. */
  private readonly refusedChannels = new Set<string>();
  private lastError: string | undefined;
  private connections = 0;

  constructor(private readonly config: BridgeConfig) {
    this.agents = createUpstreamAgents(config.tls);
    this.baseDelayMs = config.initialDelayMs;
    this.lastEventId = config.lastEventId;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.config.gateway === undefined) {
      this.connect();
      return;
    }
    const listener = (topic: string, active: boolean) => this.onTopic(topic, active);
    this.detach = this.config.gateway.onSubscription(listener);
    for (const topic of this.config.gateway.activeTopics?.() ?? []) this.onTopic(topic, true);
    this.changed();
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
    const link = this.link;
    const connected = link?.connected ?? false;
    return {
      name: this.config.name,
      state: this.currentState(),
      url: this.where,
      connectedSince: connected ? link?.openedAt : undefined,
      disconnectedSince: this.disconnectedSince,
      running: this.running,
      connected,
      opened: this.counters.opened,
      lastEventId: this.lastEventId,
      reconnects: this.counters.reconnects,
      events: this.counters.events,
      published: this.counters.published,
      skipped: this.counters.skipped,
      refused: this.counters.refused,
      subscribers: this.active.size,
      lastError: this.lastError,
      ...this.failures.snapshot(),
    };
  }

  /** What the bridge is doing, read from the link and the retry timer. */
  private currentState(): BridgeState {
    if (!this.running) return 'stopped';
    if (this.link !== undefined) return this.link.connected ? 'open' : 'connecting';
    return this.retryTimer === undefined ? 'idle' : 'retrying';
  }

  /** Call after anything that may change {@link Bridge.currentState}: reports a change, once. */
  private changed(): void {
    const state = this.currentState();
    const previous = this.state;
    if (state === previous) return;
    this.state = state;
    if (state === 'connecting' || state === 'retrying') this.disconnectedSince ??= Date.now();
    else this.disconnectedSince = undefined;
    trace('bridgeUpstream %s: %s → %s (%s)', this.config.name ?? this.where, previous, state, this.lastError ?? '');
    reportUpstream({ upstream: this, name: this.config.name, state, previous, lastError: this.lastError });
  }

  /** Book a failure: the status's `lastError` and the tally behind `errors`. */
  private failed(reason: UpstreamErrorReason | UpstreamFailureReason, status?: number): void {
    this.lastError = status === undefined ? reason : `${reason} (${status})`;
    if (reason !== 'aborted') this.failures.count(reason, status);
  }

  private get wanted(): boolean {
    return this.running && (this.config.gateway === undefined || this.active.size > 0 || this.stopTimer !== undefined);
  }

  private onTopic(topic: string, active: boolean): void {
    if (!this.running) return;
    const parsed = parseTopic(topic, true);
    if (parsed === null || !this.config.feeds.some((feed) => overlaps(feed, parsed))) return;
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
    if (this.config.stopDelayMs === 0) {
      idle();
      return;
    }
    // A page reload drops the last subscriber for a moment; lingering avoids a reconnect per reload.
    this.stopTimer = setTimeout(idle, this.config.stopDelayMs);
    this.stopTimer.unref();
  }

  private connect(): void {
    if (!this.wanted || this.link !== undefined || this.retryTimer !== undefined) {
      this.changed();
      return;
    }
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
    this.changed();
    this.open(link).catch((cause: unknown) => {
      this.config.logger.error('sse-gateway: bridgeUpstream failed', cause);
      this.dropped(link, false);
    });
  }

  private async open(link: Link): Promise<void> {
    // Events of the previous connection may still be publishing; resuming before they are done would
    // ask upstream for them again.
    await this.chain;
    let extra: Record<string, string>;
    try {
      extra = await this.config.headers();
    } catch (cause) {
      this.failed('upstream-headers');
      this.config.logger.error(`sse-gateway: bridgeUpstream headers() failed for ${this.where}`, cause);
      return this.dropped(link, false);
    }
    if (link !== this.link) return;
    const headers = streamHeaders({}, this.lastEventId, extra);
    const conn = connectUpstream(this.config.url, headers, this.agents, this.config.connectTimeoutMs);
    link.conn = conn;
    const answer = await conn.answer;
    if (link !== this.link) return;
    if (!answer.ok) {
      this.failed(answer.reason, answer.reason === 'upstream-status' ? answer.status : undefined);
      this.config.logger.warn(
        `sse-gateway: bridgeUpstream ${this.where}: ${this.lastError}; retrying.`,
        ...(answer.cause === undefined ? [] : [answer.cause]),
      );
      return this.dropped(link, false);
    }
    this.read(link, answer.body);
  }

  /** Parse an open upstream body into the publish chain, pausing it while the bus lags. */
  private read(link: Link, body: Readable): void {
    link.body = body;
    link.connected = true;
    link.openedAt = Date.now();
    this.counters.opened++;
    this.changed();
    const parser = createSseParser({
      onEvent: (event) => this.received(link, event),
      onBareId: (id) => this.enqueue(link, () => id),
      onRetry: (ms) => {
        this.baseDelayMs = ms;
      },
      onError: (error) => {
        this.counters.skipped++;
        this.config.logger.warn(`sse-gateway: bridgeUpstream ${this.where}: ${error.message}`);
      },
      maxEventSize: this.config.maxEventSize,
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
    return `${this.config.url.origin}${this.config.url.pathname}`;
  }

  private armIdle(link: Link): void {
    if (this.config.idleTimeoutMs === 0) return;
    clearTimeout(link.idle);
    link.idle = setTimeout(() => {
      this.failed('upstream-idle');
      this.config.logger.warn(
        `sse-gateway: bridgeUpstream ${this.where}: nothing received for ${this.config.idleTimeoutMs} ms; reconnecting.`,
      );
      this.dropped(link, false);
    }, this.config.idleTimeoutMs);
    link.idle.unref();
  }

  private received(link: Link, event: ParsedSseEvent): void {
    this.counters.events++;
    link.events++;
    let channel: string | null | undefined;
    let data: unknown;
    try {
      channel = this.config.channelOf(event);
      if (channel !== null && channel !== undefined) data = this.config.dataOf(event);
    } catch (cause) {
      this.config.logger.error('sse-gateway: bridgeUpstream channel() or data() threw; the event is skipped.', cause);
      channel = null;
    }
    if (typeof channel === 'string' && this.config.restricted && !allows(this.config.feeds, channel)) {
      this.refuse(link, event, channel);
      return;
    }
    const target = channel;
    this.enqueue(link, async () => {
      if (target === null || target === undefined) {
        this.counters.skipped++;
        return event.lastEventId;
      }
      try {
        await this.config.bus.publish(target, data);
        this.counters.published++;
      } catch (error) {
        if (
          error instanceof SseError &&
          (error.code === 'ERR_SSE_INVALID_CHANNEL' || error.code === 'ERR_SSE_INVALID_DATA')
        ) {
          // The event itself is unpublishable: fetching it again would fail again.
          this.counters.skipped++;
          this.config.logger.warn(`sse-gateway: bridgeUpstream skipped an upstream event: ${error.message}`);
          return event.lastEventId;
        }
        throw error;
      }
      return event.lastEventId;
    });
  }

  /**
   * Drop an event whose channel is outside `channels`: an upstream must not reach channels the app did not
   * give it (a user-scoped `alerts:u1`). It still moves the last event id on, so it is not fetched again.
   */
  private refuse(link: Link, event: ParsedSseEvent, channel: string): void {
    if (this.refusedChannels.size < MAX_REFUSALS_LOGGED && !this.refusedChannels.has(channel)) {
      this.refusedChannels.add(channel);
      this.config.logger.warn(
        `sse-gateway: bridgeUpstream ${this.where}: an upstream event names channel ${JSON.stringify(channel)}, outside \`channels\` (${this.config.feeds.map((f) => f.name).join(', ')}); dropped${this.refusedChannels.size === MAX_REFUSALS_LOGGED ? '. Further refused channels are counted, not logged' : ''}.`,
      );
    }
    this.enqueue(link, () => {
      this.counters.refused++;
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
        this.failed('publish-failed');
        this.config.logger.error(
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
    const healthy = link.connected && (link.events > 0 || Date.now() - link.openedAt >= this.config.maxDelayMs);
    this.closeLink(link);
    if (ended) this.failed('upstream-ended');
    if (!this.wanted) {
      this.changed();
      return;
    }
    this.attempts = healthy ? 1 : this.attempts + 1;
    // Jitter spreads the reconnects of many BFF instances after an upstream restart.
    const delay =
      Math.min(this.config.maxDelayMs, this.baseDelayMs * 2 ** (this.attempts - 1)) * (0.8 + Math.random() * 0.4);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    this.retryTimer.unref();
    this.changed();
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
    this.changed();
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
  return new Bridge(parseBridgeOptions(options));
}

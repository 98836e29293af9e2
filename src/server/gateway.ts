/**
 * `sseMiddleware()`: the stream route, its lifecycle and the fan-out from the bus to connections.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { LRUCache } from 'lru-cache';
import { processMemoryBus, pushDefaultBus } from '../bus/default-bus';
import { type EncodedFrame, encodeEvent, encodeFrame } from '../bus/event';
import { matchChannel, namespaceOf, parseTopic, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { formatComment, formatEvent, formatRetry } from '../protocol/framing';
import { mountPublishApi } from '../publish-api/router';
import type {
  Bus,
  Principal,
  PublishOptions,
  ReplayResetReason,
  SseEvent,
  SseGateway,
  SseOptions,
  SseStats,
} from '../types';
import { ANONYMOUS, Authorizer, createGate, resolvePrincipal } from './access';
import { mountAdminRoutes } from './admin-routes';
import { ChannelIndex } from './channel-index';
import { Connection, type ConnectionHost } from './connection';
import { startEventStream } from './event-stream';
import { internalError, sendError } from './http-errors';
import { type GatewayConfig, parseOptions } from './options';

const HEARTBEAT = encodeFrame(formatComment('heartbeat'));
/** Listed names in an error are cut to this many, each to 140 characters, so a 10 KB query is not echoed back. */
const MAX_NAMED = 10;

function preview(names: readonly string[]): string[] {
  return names.slice(0, MAX_NAMED).map((name) => (name.length > 140 ? `${name.slice(0, 140)}…` : name));
}

/** The channel names a request asks for: `channels=a,b` (repeatable) and `channel=a` (repeatable). */
function requestedChannels(params: URLSearchParams): string[] {
  const names: string[] = [];
  for (const value of params.getAll('channels')) {
    for (const name of value.split(',')) {
      const trimmed = name.trim();
      if (trimmed !== '') names.push(trimmed);
    }
  }
  for (const value of params.getAll('channel')) {
    const trimmed = value.trim();
    if (trimmed !== '') names.push(trimmed);
  }
  return [...new Set(names)];
}

class Gateway implements ConnectionHost {
  readonly bus: Bus;
  readonly gate;
  readonly maxBufferedBytes: number;
  private readonly connections = new Set<Connection>();
  private readonly perUser = new Map<string, number>();
  private readonly index: ChannelIndex;
  /** Parsed subscriptions, shared by every connection that asks for the same name; bounded by total length. */
  private readonly topicCache = new LRUCache<string, Topic>({
    max: 10_000,
    maxSize: 1_000_000,
    sizeCalculation: (topic) => 2 * topic.name.length + 64,
  });
  private readonly watches = new Map<string, () => void>();
  private readonly topicListeners = new Set<(topic: string, active: boolean) => void>();
  private readonly authorizer: Authorizer;
  private readonly unlisten: () => void;
  private readonly unsignal: (() => void) | undefined;
  private readonly releaseDefault: () => void;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Ends streams past `limits.maxConnectionAgeMs`; runs only while streams are open and the limit is set. */
  private ageTimer: NodeJS.Timeout | undefined;
  private readonly retryLine: string;
  private closing = false;
  batching = false;
  private eventsThisTick = 0;
  private corked: Connection[] = [];
  private readonly endTick = (): void => {
    this.eventsThisTick = 0;
    this.batching = false;
    const corked = this.corked;
    this.corked = [];
    for (const connection of corked) connection.uncork();
  };
  private pending = 0;
  private counters = { events: 0, delivered: 0, slowClosed: 0, expired: 0 };

  constructor(readonly config: GatewayConfig) {
    this.bus = config.bus ?? processMemoryBus();
    if (config.replay) this.bus.retain?.(config.replay);
    this.gate = createGate(config);
    this.maxBufferedBytes = config.limits.maxBufferedBytes;
    this.authorizer = new Authorizer(config);
    this.retryLine = formatRetry(config.retryMs);
    this.index = new ChannelIndex((topic, active) => this.onTopic(topic, active));
    this.unlisten = this.bus.listen((event) => this.onEvent(event));
    this.unsignal = this.bus.onSignal?.((signal) => {
      if (signal.type === 'disconnect') this.disconnect(signal.principalId);
    });
    this.releaseDefault = pushDefaultBus(this.bus);
  }

  delivered(): void {
    this.counters.delivered++;
  }

  uncorkLater(connection: Connection): void {
    this.corked.push(connection);
  }

  overflowed(connection: Connection): void {
    this.counters.slowClosed++;
    this.config.logger.warn(
      `sse-gateway: closed connection ${connection.id} of ${connection.principal.id}: more than ${this.maxBufferedBytes} bytes waiting; it resumes with Last-Event-ID.`,
    );
  }

  onSubscription(listener: (topic: string, active: boolean) => void): () => void {
    this.topicListeners.add(listener);
    return () => {
      this.topicListeners.delete(listener);
    };
  }

  activeTopics(): string[] {
    return this.index.topics();
  }

  private onTopic(topic: string, active: boolean): void {
    if (active) this.watches.set(topic, this.bus.watch(topic));
    else {
      this.watches.get(topic)?.();
      this.watches.delete(topic);
    }
    for (const listener of this.topicListeners) {
      try {
        listener(topic, active);
      } catch (cause) {
        this.config.logger.error('sse-gateway: an onSubscription listener threw', cause);
      }
    }
  }

  /** Fan-out: the index finds the audience; each connection only runs its ACL and writes the shared frame. */
  private onEvent(event: SseEvent): void {
    this.counters.events++;
    if (++this.eventsThisTick === 1) process.nextTick(this.endTick);
    else this.batching = true;
    let encoded: EncodedFrame | undefined;
    this.index.forEachSubscriber(event.channel, (connection) => {
      encoded ??= encodeEvent(event);
      connection.offer(event, encoded);
    });
  }

  async handle(req: Request, res: Response): Promise<void> {
    const { config } = this;
    if (this.closing) {
      return sendError(
        res,
        new SseError('ERR_SSE_CLOSING', 'The stream endpoint is shutting down; reconnect shortly.', 503),
        config.limits.retryAfterSeconds,
      );
    }
    const params = new URL(req.originalUrl ?? req.url, 'http://localhost').searchParams;
    const names = requestedChannels(params);
    const topics = this.parseTopics(names, res);
    if (topics === null) return;
    if (this.connections.size + this.pending >= config.limits.maxConnections) {
      return this.tooMany('ERR_SSE_TOO_MANY_CONNECTIONS', 'The server has reached its stream limit; retry later.', res);
    }

    this.pending++;
    let principal: Principal;
    try {
      principal = await resolvePrincipal(config, req);
      const denied = await this.authorizer.denied(principal, topics, req);
      if (denied.length > 0) {
        const shown = preview(denied);
        return sendError(
          res,
          new SseError(
            'ERR_SSE_FORBIDDEN_CHANNEL',
            `Not allowed to subscribe to ${shown.join(', ')}${denied.length > shown.length ? ', …' : ''}; nothing was subscribed.`,
            403,
            { channels: shown },
          ),
        );
      }
    } catch (error) {
      return sendError(res, error instanceof SseError ? error : internalError());
    } finally {
      this.pending--;
    }

    // The client may have gone, or the gateway closed, while callbacks ran.
    if (res.destroyed || req.destroyed || res.writableEnded) return;
    if (this.closing) {
      return sendError(
        res,
        new SseError('ERR_SSE_CLOSING', 'The stream endpoint is shutting down; reconnect shortly.', 503),
        config.limits.retryAfterSeconds,
      );
    }
    if (this.connections.size >= config.limits.maxConnections) {
      return this.tooMany('ERR_SSE_TOO_MANY_CONNECTIONS', 'The server has reached its stream limit; retry later.', res);
    }
    if (principal !== ANONYMOUS && (this.perUser.get(principal.id) ?? 0) >= config.limits.maxConnectionsPerUser) {
      return this.tooMany(
        'ERR_SSE_TOO_MANY_USER_CONNECTIONS',
        `You have ${config.limits.maxConnectionsPerUser} open streams already; close a tab or retry later.`,
        res,
      );
    }
    const lastEventId = req.get('last-event-id') ?? params.get('lastEventId') ?? undefined;
    this.open(principal, topics, req, res, lastEventId);
  }

  private parseTopics(names: readonly string[], res: Response): Topic[] | null {
    const { limits, namespaces } = this.config;
    if (names.length === 0) {
      sendError(
        res,
        new SseError('ERR_SSE_NO_CHANNELS', 'Name at least one channel: ?channels=logs:ws1,metrics:ws1', 400, {
          channels: [],
        }),
      );
      return null;
    }
    if (names.length > limits.maxChannelsPerConnection) {
      sendError(
        res,
        new SseError(
          'ERR_SSE_TOO_MANY_CHANNELS',
          `${names.length} channels requested; at most ${limits.maxChannelsPerConnection} per stream. Use a pattern such as dashboards:* instead.`,
          400,
          { limit: limits.maxChannelsPerConnection },
        ),
      );
      return null;
    }
    const topics: Topic[] = [];
    const invalid: string[] = [];
    for (const name of names) {
      let topic = this.topicCache.get(name) ?? null;
      if (topic === null) {
        topic = parseTopic(name, true);
        if (topic !== null && namespaces.has(topic.namespace)) this.topicCache.set(name, topic);
      }
      if (topic === null || !namespaces.has(topic.namespace)) invalid.push(name);
      else topics.push(topic);
    }
    if (invalid.length > 0) {
      const shown = preview(invalid);
      sendError(
        res,
        new SseError(
          'ERR_SSE_INVALID_CHANNEL',
          `Malformed or unknown channel(s): ${shown.join(', ')}${invalid.length > shown.length ? ', …' : ''}. A channel is namespace(:segment)* with segments of 1-128 [A-Za-z0-9_.-], optionally ending in :*; namespaces are ${[...namespaces.keys()].join(', ')}.`,
          400,
          { channels: shown },
        ),
      );
      return null;
    }
    return topics;
  }

  private tooMany(
    code: 'ERR_SSE_TOO_MANY_CONNECTIONS' | 'ERR_SSE_TOO_MANY_USER_CONNECTIONS',
    message: string,
    res: Response,
  ): void {
    sendError(res, new SseError(code, message, 429), this.config.limits.retryAfterSeconds);
  }

  private open(
    principal: Connection['principal'],
    topics: Topic[],
    req: Request,
    res: Response,
    lastEventId: string | undefined,
  ): void {
    startEventStream(req, res);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }

    const connection = new Connection(randomUUID(), principal, topics, res, this);
    this.connections.add(connection);
    if (principal !== ANONYMOUS) this.perUser.set(principal.id, (this.perUser.get(principal.id) ?? 0) + 1);
    this.index.add(connection);
    res.on('close', () => this.cleanup(connection));
    this.startHeartbeat();
    const { maxConnectionAgeMs } = this.config.limits;
    if (maxConnectionAgeMs !== Number.POSITIVE_INFINITY) {
      connection.expiresAt = Date.now() + maxConnectionAgeMs * (0.9 + 0.1 * Math.random());
      this.startAgeCheck(maxConnectionAgeMs);
    }

    connection.writeRaw(this.retryLine);
    const ready = formatEvent({
      event: 'sse:ready',
      data: JSON.stringify({ connectionId: connection.id, channels: topics.map((t) => t.name) }),
    });
    const watched = this.bus.watched?.();
    if (watched === undefined && lastEventId === undefined) {
      connection.writeRaw(ready);
      return;
    }
    connection.hold();
    void this.start(connection, ready, watched, lastEventId);
  }

  /**
   * `sse:ready` promises that later publishes arrive, so it waits until the bus has the subscriptions in
   * effect; live events meanwhile are held, then follow the replay (if any) in order.
   */
  private async start(
    connection: Connection,
    ready: string,
    watched: Promise<void> | undefined,
    lastEventId: string | undefined,
  ): Promise<void> {
    if (watched !== undefined) {
      await watched.catch((cause: unknown) => {
        this.config.logger.error('sse-gateway: the bus could not confirm a subscription', cause);
      });
    }
    connection.writeRaw(ready);
    if (lastEventId === undefined) connection.release([], undefined);
    else await this.replay(connection, lastEventId);
  }

  /** Live events are held while the history is read, then deduplicated against it by sequence. */
  private async replay(connection: Connection, lastEventId: string): Promise<void> {
    const { replay, namespaces } = this.config;
    let reason: ReplayResetReason | undefined;
    if (replay === false) reason = 'replay-disabled';
    else {
      try {
        const result = await this.bus.replay(lastEventId, {
          maxCount: replay.size,
          maxAgeMs: replay.ttlMs,
          match: (channel) =>
            namespaces.get(namespaceOf(channel))?.replay !== false &&
            connection.topics.some((t) => matchChannel(t, channel)),
        });
        if (result.ok) return connection.release(result.events, result.head);
        reason = result.reason;
      } catch (cause) {
        this.config.logger.error('sse-gateway: replay failed; sending sse:reset', cause);
        reason = 'unavailable';
      }
    }
    connection.writeRaw(formatEvent({ event: 'sse:reset', data: JSON.stringify({ reason }) }));
    connection.release([], undefined);
  }

  private cleanup(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    connection.dispose();
    this.index.remove(connection);
    const { id } = connection.principal;
    if (connection.principal !== ANONYMOUS) {
      const count = (this.perUser.get(id) ?? 1) - 1;
      if (count <= 0) this.perUser.delete(id);
      else this.perUser.set(id, count);
    }
    if (this.connections.size === 0) this.stopTimers();
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) return;
    this.heartbeatTimer = setInterval(() => {
      for (const connection of this.connections) connection.heartbeat(HEARTBEAT);
    }, this.config.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private stopTimers(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    if (this.ageTimer !== undefined) clearInterval(this.ageTimer);
    this.heartbeatTimer = undefined;
    this.ageTimer = undefined;
  }

  /** One sweep timer for every stream, at a quarter of the age limit (between 10 ms and a minute). */
  private startAgeCheck(maxAgeMs: number): void {
    if (this.ageTimer !== undefined) return;
    this.ageTimer = setInterval(
      () => {
        const now = Date.now();
        for (const connection of [...this.connections]) {
          if (connection.expiresAt > now) continue;
          this.counters.expired++;
          connection.end();
        }
      },
      Math.min(60_000, Math.max(10, Math.floor(maxAgeMs / 4))),
    );
    this.ageTimer.unref();
  }

  publish<T>(channel: string, data: T, options: Omit<PublishOptions, 'bus'> = {}): Promise<SseEvent<T>> {
    // The bus checks the grammar; here only the namespace, so a valid channel is parsed once per publish.
    const namespace = typeof channel === 'string' ? namespaceOf(channel) : '';
    if (!this.config.namespaces.has(namespace) && parseTopic(channel) !== null) {
      return Promise.reject(
        new SseError(
          'ERR_SSE_INVALID_CHANNEL',
          `Cannot publish to ${channel}: namespace ${namespace} is not one of ${[...this.config.namespaces.keys()].join(', ')}.`,
          400,
          { channels: [channel] },
        ),
      );
    }
    return this.bus.publish(channel, data, options) as Promise<SseEvent<T>>;
  }

  disconnect(principalId: string): number {
    if (typeof principalId !== 'string') throw new TypeError('gateway.disconnect(principalId) needs a string id.');
    this.authorizer.forget(principalId);
    let ended = 0;
    for (const connection of [...this.connections]) {
      if (connection.principal === ANONYMOUS || connection.principal.id !== principalId) continue;
      connection.end();
      ended++;
    }
    return ended;
  }

  async disconnectEverywhere(principalId: string): Promise<void> {
    this.disconnect(principalId);
    await this.bus.signal?.({ type: 'disconnect', principalId });
  }

  stats(): SseStats {
    let bufferedBytes = 0;
    for (const connection of this.connections) bufferedBytes += connection.bufferedBytes;
    return {
      connections: this.connections.size,
      users: this.perUser.size,
      channels: this.index.size,
      subscriptions: this.index.subscriptions,
      timers: (this.heartbeatTimer === undefined ? 0 : 1) + (this.ageTimer === undefined ? 0 : 1),
      bufferedBytes,
      ...this.counters,
      closing: this.closing,
      bus: this.bus.status(),
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.releaseDefault();
    this.unlisten();
    this.unsignal?.();
    for (const connection of [...this.connections]) {
      connection.end();
      this.cleanup(connection);
    }
    this.stopTimers();
  }
}

/**
 * Mount a multiplexed Server-Sent Events stream on an Express app.
 *
 * The returned router serves `GET {path}?channels=a,b` (and, with `admin`, `GET {path}/stats` and
 * `POST {path}/publish`); it also publishes, reports figures and shuts down.
 *
 * @param options - see {@link SseOptions}; only `channels` is required.
 * @returns the gateway: an Express router with `publish`, `stats`, `close` and `bus`.
 * @throws TypeError when an option is wrong, saying how to fix it.
 * @example
 * const gateway = sseMiddleware({
 *   channels: { logs: {}, alerts: { userScoped: true } },
 *   authentication: true, // req.user, set by the BFF's own auth middleware
 *   userScoping: true,
 *   authorize: (user, channel) => canSee(user, channel),
 * });
 * app.use(gateway);
 * await gateway.publish('logs:ws1:wf2', { line: 'done' });
 */
export function sseMiddleware(options: SseOptions): SseGateway {
  // Express passes (req, res, next) when the factory itself was mounted: app.use(sseMiddleware).
  // biome-ignore lint/complexity/noArguments: the declared signature stays (options) for users.
  if (arguments.length >= 2 && isExpressCall(options, arguments[1], arguments[2])) {
    // biome-ignore lint/complexity/noArguments: see above.
    const next = arguments[2] as NextFunction;
    const misuse = new TypeError(
      "sseMiddleware must be called with options: app.use(sseMiddleware({ channels: ['logs'] })), not app.use(sseMiddleware).",
    );
    next(misuse);
    return undefined as unknown as SseGateway;
  }
  const gateway = new Gateway(parseOptions(options));
  const router = express.Router();
  const { path } = gateway.config;
  router.get(path, (req, res) => {
    gateway.handle(req, res).catch((cause: unknown) => {
      gateway.config.logger.error('sse-gateway: unexpected error while opening a stream', cause);
      sendError(res, internalError());
    });
  });
  if (gateway.config.admin) mountAdminRoutes(router, gateway, gateway.config);
  mountPublishApi(router, gateway, gateway.config);

  return Object.assign(router, {
    publish: gateway.publish.bind(gateway),
    stats: gateway.stats.bind(gateway),
    close: gateway.close.bind(gateway),
    onSubscription: gateway.onSubscription.bind(gateway),
    activeTopics: () => gateway.activeTopics(),
    disconnect: gateway.disconnect.bind(gateway),
    disconnectEverywhere: gateway.disconnectEverywhere.bind(gateway),
    bus: gateway.bus,
  }) as SseGateway;
}

function isExpressCall(req: unknown, res: unknown, next: unknown): boolean {
  return (
    typeof next === 'function' &&
    typeof req === 'object' &&
    req !== null &&
    'method' in req &&
    'url' in req &&
    typeof res === 'object' &&
    res !== null &&
    'setHeader' in res
  );
}

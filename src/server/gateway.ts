/**
 * `sseMiddleware()`: the gateway as a small facade. It wires the parts, each with one job: the routes
 * (stream-route, subscriptions-route, admin-routes), admission, access, the channel index, the connections
 * and their writers, replay, keep-alive; and it keeps the public API.
 *
 * Data flow: bus → {@link Gateway.onEvent} (fan-out) → channel index → Connection.offer → StreamWriter → wire.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { processMemoryBus, pushDefaultBus } from '../bus/default-bus';
import { type EncodedFrame, encodeEvent } from '../bus/event';
import { mountAdminViews } from '../ops/admin-views';
import { reportReplay, reportStream } from '../ops/diagnostics';
import { drainConnections } from '../ops/drain';
import { mountHealthRoutes } from '../ops/health';
import { namespaceOf, parseTopic, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { formatEvent, formatRetry } from '../protocol/framing';
import type { ResetReason } from '../protocol/wire';
import { ControlEvent, type ReadyPayload, SUBSCRIPTIONS_PATH } from '../protocol/wire';
import { mountPublishApi } from '../publish-api/router';
import type {
  AuditEntry,
  Bus,
  DrainOptions,
  Principal,
  PublishOptions,
  SseEvent,
  SseGateway,
  SseOptions,
  SseStats,
} from '../types';
import { integer } from '../util/validate';
import { ANONYMOUS, Authorizer, createGate } from './access';
import { adminGuard, mountAdminRoutes } from './admin-routes';
import { Admission } from './admission';
import { ChannelIndex } from './channel-index';
import { Connection, type ConnectionHost } from './connection';
import { destroyTransport, unwatchPeer, watchPeer } from './dead-peer';
import { startEventStream } from './event-stream';
import { internalError, sendError } from './http-errors';
import { KeepAlive } from './keepalive';
import { OBSERVE_EVENTS } from './observe';
import { type GatewayConfig, parseOptions } from './options';
import { below } from './paths';
import { type ReplaySource, startStream } from './replay';
import { handleStreamRequest } from './stream-route';
import { WriteBatch } from './stream-writer';
import { applySubscriptionChange, handleSubscriptionChange } from './subscriptions-route';
import { preview, TopicParser } from './topics';

/** The gateway behind the router: state and wiring. The routes and parts reach it through this class. */
export class Gateway implements ConnectionHost, ReplaySource {
  readonly bus: Bus;
  readonly gate;
  readonly maxBufferedBytes: number;
  readonly batch = new WriteBatch();
  readonly logger;
  readonly window;
  readonly connections = new Set<Connection>();
  readonly byId = new Map<string, Connection>();
  readonly index: ChannelIndex<Connection>;
  readonly admission: Admission;
  readonly authorizer: Authorizer;
  readonly topics: TopicParser;
  private readonly keepAlive: KeepAlive;
  private readonly unlisten: () => void;
  private readonly unsignal: (() => void) | undefined;
  private readonly releaseDefault: () => void;
  private readonly retryLine: string;
  closing = false;
  draining = false;
  /** The key of {@link Gateway.subscriptionToken}, new for each gateway. */
  private readonly tokenKey = randomBytes(32);
  /** What diagnostics messages name as their gateway: the router users hold. Set by `sseMiddleware`. */
  identity: object = this;
  private counters = {
    events: 0,
    delivered: 0,
    slowClosed: 0,
    deadPeersClosed: 0,
    expired: 0,
    opened: 0,
    replayedEvents: 0,
    oversized: 0,
  };
  /** Told of every event from the bus, when something (registerMetrics) asked; otherwise one check per event. */
  eventObserver: ((event: SseEvent) => void) | undefined;
  /** Channels whose oversized events were already reported (bounded: the first hundred). */
  private readonly oversizedChannels = new Set<string>();
  private readonly replays = { replayed: 0, reset: 0 };
  private readonly rejected: Record<string, number> = {};
  private readonly denied: Record<string, number> = {};

  constructor(readonly config: GatewayConfig) {
    this.bus = config.bus ?? processMemoryBus();
    if (config.replay) this.bus.retain?.(config.replay);
    this.logger = config.logger;
    this.window = config.replay;
    this.gate = createGate(config);
    this.maxBufferedBytes = config.limits.maxBufferedBytes;
    this.authorizer = new Authorizer(config);
    this.admission = new Admission(config.limits);
    this.topics = new TopicParser(config.namespaces, config.limits.maxChannelsPerConnection);
    this.retryLine = formatRetry(config.retryMs);
    this.index = new ChannelIndex(this.bus, config.logger);
    this.keepAlive = new KeepAlive(this.connections, config.heartbeatMs, config.limits.maxConnectionAgeMs, () => {
      this.counters.expired++;
    });
    this.unlisten = this.bus.listen((event) => this.onEvent(event));
    this.unsignal = this.bus.onSignal?.((signal) => {
      if (signal.type === 'disconnect') this.disconnect(signal.principalId);
      else void applySubscriptionChange(this, signal);
    });
    this.releaseDefault = pushDefaultBus(this.bus, new Set(config.namespaces.keys()), config.logger);
  }

  delivered(): void {
    this.counters.delivered++;
  }

  overflowed(connection: Connection): void {
    this.counters.slowClosed++;
    this.logger.warn(
      `sse-gateway: closed connection ${connection.id} of ${connection.principal.id}: more than ${this.maxBufferedBytes} bytes waiting; it resumes with Last-Event-ID.`,
    );
  }

  /**
   * The stream's peer has not acknowledged data for `deadPeerTimeoutMs`: count it, label its close, destroy its
   * transport. A stream already ended (a drain, its age) whose end could not reach the peer counts too: this
   * frees its slot.
   */
  private readonly peerGone = (owner: object): void => {
    const connection = owner as Connection;
    this.counters.deadPeersClosed++;
    connection.closeReason = 'dead-peer';
    destroyTransport(connection.res.req);
  };

  /**
   * The secret a subscription change of stream `connectionId` must carry: an HMAC of the id under this
   * gateway's key, so nothing is stored per stream and only the instance holding the stream can check it.
   */
  subscriptionToken(connectionId: string): string {
    return createHmac('sha256', this.tokenKey).update(connectionId).digest('base64url').slice(0, 32);
  }

  replayable(channel: string): boolean {
    return this.config.namespaces.get(namespaceOf(channel))?.replay !== false;
  }

  replayDone(outcome: { readonly events: number } | { readonly reset: ResetReason }): void {
    if ('reset' in outcome) {
      this.replays.reset++;
      reportReplay({ gateway: this.identity, result: 'reset', events: 0, reason: outcome.reset });
    } else {
      this.replays.replayed++;
      this.counters.replayedEvents += outcome.events;
      reportReplay({ gateway: this.identity, result: 'replayed', events: outcome.events });
    }
  }

  busConnected(): boolean {
    return this.bus.status().connected;
  }

  /** Record an entry of the audit trail: the `audit` option and the `sse-gateway:stream` diagnostics channel. */
  audit(entry: AuditEntry): void {
    reportStream({ gateway: this.identity, entry });
    const { audit } = this.config;
    if (audit === undefined) return;
    try {
      audit(entry);
    } catch (cause) {
      this.logger.error('sse-gateway: the audit callback threw', cause);
    }
  }

  /** Refuse a stream request: count it, audit it, answer it. */
  reject(req: Request, res: Response, error: SseError, channels: readonly string[], principal?: Principal): void {
    this.rejected[error.code] = (this.rejected[error.code] ?? 0) + 1;
    if (error.code === 'ERR_SSE_FORBIDDEN_CHANNEL') {
      for (const name of (error.details.channels as string[] | undefined) ?? []) {
        const namespace = namespaceOf(name);
        this.denied[namespace] = (this.denied[namespace] ?? 0) + 1;
      }
    }
    this.audit({
      type: 'reject',
      time: Date.now(),
      ...(principal === undefined ? {} : { principalId: principal.id }),
      channels: preview(channels),
      ip: req.ip,
      status: error.status,
      code: error.code,
    });
    const retryAfter = error.status === 429 || error.status === 503 ? this.config.limits.retryAfterSeconds : undefined;
    sendError(res, error, retryAfter);
  }

  /** Fan-out: the index finds the audience; each connection only runs its ACL and writes the shared frame. */
  private onEvent(event: SseEvent): void {
    this.counters.events++;
    this.batch.noteEvent();
    this.eventObserver?.(event);
    // Encoded (and its size checked) once, when the first subscriber is found; `null`: too large for any stream.
    let encoded: EncodedFrame | null | undefined;
    this.index.forEachSubscriber(event.channel, (connection) => {
      encoded ??= this.encodeForStreams(event);
      if (encoded !== null) connection.offer(event, encoded);
    });
  }

  /**
   * The frame of `event`, or `null` when it exceeds `limits.maxEventBytes` (from another publisher): then it
   * is dropped, counted, and reported once per channel.
   */
  private encodeForStreams(event: SseEvent): EncodedFrame | null {
    const encoded = encodeEvent(event);
    if (encoded.frame.length <= this.config.limits.maxEventBytes) return encoded;
    this.counters.oversized++;
    if (this.oversizedChannels.size >= 100 || this.oversizedChannels.has(event.channel)) return null;
    this.oversizedChannels.add(event.channel);
    this.logger.warn(
      `sse-gateway: dropped event ${event.id} on ${event.channel}: ${encoded.frame.length} bytes exceed limits.maxEventBytes (${this.config.limits.maxEventBytes}); no stream receives it.`,
    );
    return null;
  }

  /** Open a stream that passed every check: headers, `retry:`, `sse:ready`, then the replay if asked. */
  open(principal: Principal, topics: Topic[], req: Request, res: Response, lastEventId: string | undefined): void {
    startEventStream(req, res);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const connection = new Connection(randomUUID(), principal, res, this);
    this.connections.add(connection);
    this.byId.set(connection.id, connection);
    this.admission.opened(principal);
    this.index.add(connection, topics);
    res.on('close', () => this.cleanup(connection));
    this.keepAlive.opened(connection);
    const { deadPeerTimeoutMs } = this.config;
    if (deadPeerTimeoutMs !== false) {
      watchPeer(connection, req, deadPeerTimeoutMs, this.peerGone, this.logger);
    }
    this.counters.opened++;
    connection.ip = req.ip;
    const channels = topics.map((t) => t.name);
    this.audit({
      type: 'connect',
      time: Date.now(),
      connectionId: connection.id,
      principalId: principal.id,
      channels,
      ip: req.ip,
    });

    connection.writeRaw(this.retryLine);
    const ready: ReadyPayload = {
      connectionId: connection.id,
      channels,
      subscriptionToken: this.subscriptionToken(connection.id),
    };
    const data = JSON.stringify(ready);
    const frame = (id: string | undefined) =>
      formatEvent(id === undefined ? { event: ControlEvent.ready, data } : { id, event: ControlEvent.ready, data });
    void startStream(this, connection, frame, lastEventId, (channel) => this.index.covers(connection, channel));
  }

  private cleanup(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    this.byId.delete(connection.id);
    unwatchPeer(connection);
    connection.dispose();
    const now = Date.now();
    this.audit({
      type: 'disconnect',
      time: now,
      connectionId: connection.id,
      principalId: connection.principal.id,
      channels: this.index.topicsOf(connection).map((t) => t.name),
      ip: connection.ip,
      durationMs: now - connection.openedAt,
      ...(connection.closeReason === undefined ? {} : { reason: connection.closeReason }),
    });
    this.index.remove(connection);
    this.admission.closed(connection.principal);
    if (this.connections.size === 0) this.keepAlive.stop();
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
    return this.bus.publish(channel, data, { ...options, maxBytes: this.config.limits.maxEventBytes }) as Promise<
      SseEvent<T>
    >;
  }

  /** End the oldest stream of `principal` now, to make room for its newest (`limits.onUserLimit: 'end-oldest'`). */
  endOldest(principal: Principal): void {
    for (const connection of this.connections) {
      if (connection.principal.id !== principal.id || connection.principal === ANONYMOUS) continue;
      connection.end();
      this.cleanup(connection);
      return;
    }
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
      users: this.admission.users,
      channels: this.index.size,
      subscriptions: this.index.subscriptions,
      timers: this.keepAlive.timers,
      bufferedBytes,
      ...this.counters,
      rejected: { ...this.rejected },
      replays: { ...this.replays },
      denied: { ...this.denied },
      closing: this.closing,
      draining: this.draining,
      replay: this.window === false ? false : { size: this.window.size, ttlMs: this.window.ttlMs },
      bus: this.bus.status(),
    };
  }

  drain(options: DrainOptions = {}): Promise<void> {
    const timeoutMs = integer('gateway.drain: `timeoutMs`', options.timeoutMs, 10_000, 0);
    this.draining = true;
    return drainConnections(this.connections, timeoutMs, this.config.retryMs);
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
    this.keepAlive.stop();
  }
}

/**
 * Mount a multiplexed Server-Sent Events stream on an Express app.
 *
 * The returned router serves `GET {path}?channels=a,b`, `POST {path}/subscriptions` (changing an open
 * stream's channels) and, with `admin`, `GET {path}/stats` and `POST {path}/publish`; it also publishes,
 * reports figures and shuts down.
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
export function sseMiddleware<P extends Principal = Principal>(options: SseOptions<P>): SseGateway {
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
  // Inside, a principal is any `{ id }`: the app's type matters only to the app's own callbacks.
  const gateway = new Gateway(parseOptions(options as SseOptions));
  const router = express.Router();
  const { path } = gateway.config;
  const guarded =
    (handler: (gateway: Gateway, req: Request, res: Response) => Promise<void>) => (req: Request, res: Response) => {
      handler(gateway, req, res).catch((cause: unknown) => {
        gateway.logger.error('sse-gateway: unexpected error while answering a request', cause);
        sendError(res, internalError());
      });
    };
  router.get(path, guarded(handleStreamRequest));
  router.post(below(path, SUBSCRIPTIONS_PATH), guarded(handleSubscriptionChange));
  if (gateway.config.health) mountHealthRoutes(router, path, gateway);
  if (gateway.config.admin) {
    mountAdminRoutes(router, gateway, gateway.config);
    mountAdminViews(router, path, gateway, adminGuard(gateway.config));
  }
  mountPublishApi(router, gateway, gateway.config);

  const facade = Object.assign(router, {
    publish: gateway.publish.bind(gateway),
    stats: gateway.stats.bind(gateway),
    close: gateway.close.bind(gateway),
    onSubscription: (listener: (topic: string, active: boolean) => void) => gateway.index.onTopic(listener),
    activeTopics: () => gateway.index.topics(),
    disconnect: gateway.disconnect.bind(gateway),
    disconnectEverywhere: gateway.disconnectEverywhere.bind(gateway),
    drain: gateway.drain.bind(gateway),
    bus: gateway.bus,
    [OBSERVE_EVENTS]: (observer: ((event: SseEvent) => void) | undefined) => {
      gateway.eventObserver = observer;
    },
  }) as SseGateway;
  gateway.identity = facade;
  return facade;
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

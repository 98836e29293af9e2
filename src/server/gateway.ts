/**
 * `sseMiddleware()`: the gateway as a small facade. It wires the parts, each with one job: the routes
 * (stream-route, subscriptions-route, admin-routes), admission, access, the channel index, the connections
 * and their writers, replay, keep-alive; and it keeps the public API.
 *
 * Data flow: bus → {@link Gateway.onEvent} (fan-out) → channel index → Connection.offer → StreamWriter → wire.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { processMemoryBus, pushDefaultBus } from '../bus/default-bus';
import { type EncodedFrame, encodeEvent } from '../bus/event';
import { namespaceOf, parseTopic, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { formatEvent, formatRetry } from '../protocol/framing';
import { ControlEvent, type ReadyPayload, SUBSCRIPTIONS_PATH } from '../protocol/wire';
import type { Bus, Principal, PublishOptions, SseEvent, SseGateway, SseOptions, SseStats } from '../types';
import { ANONYMOUS, Authorizer, createGate } from './access';
import { mountAdminRoutes } from './admin-routes';
import { Admission } from './admission';
import { ChannelIndex } from './channel-index';
import { Connection, type ConnectionHost } from './connection';
import { startEventStream } from './event-stream';
import { internalError, sendError } from './http-errors';
import { KeepAlive } from './keepalive';
import { type GatewayConfig, parseOptions } from './options';
import { type ReplaySource, startStream } from './replay';
import { handleStreamRequest } from './stream-route';
import { WriteBatch } from './stream-writer';
import { applySubscriptionChange, handleSubscriptionChange } from './subscriptions-route';
import { TopicParser } from './topics';

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
  private counters = { events: 0, delivered: 0, slowClosed: 0, expired: 0 };

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
    this.releaseDefault = pushDefaultBus(this.bus);
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

  replayable(channel: string): boolean {
    return this.config.namespaces.get(namespaceOf(channel))?.replay !== false;
  }

  /** Fan-out: the index finds the audience; each connection only runs its ACL and writes the shared frame. */
  private onEvent(event: SseEvent): void {
    this.counters.events++;
    this.batch.noteEvent();
    let encoded: EncodedFrame | undefined;
    this.index.forEachSubscriber(event.channel, (connection) => {
      encoded ??= encodeEvent(event);
      connection.offer(event, encoded);
    });
  }

  /** Open a stream that passed every check: headers, `retry:`, `sse:ready`, then the replay if asked. */
  open(principal: Principal, topics: Topic[], req: Request, res: Response, lastEventId: string | undefined): void {
    startEventStream(req, res);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const token = randomBytes(18).toString('base64url');
    const connection = new Connection(randomUUID(), principal, res, this, token);
    this.connections.add(connection);
    this.byId.set(connection.id, connection);
    this.admission.opened(principal);
    this.index.add(connection, topics);
    res.on('close', () => this.cleanup(connection));
    this.keepAlive.opened(connection);

    connection.writeRaw(this.retryLine);
    const ready: ReadyPayload = {
      connectionId: connection.id,
      channels: topics.map((t) => t.name),
      subscriptionToken: token,
    };
    const frame = formatEvent({ event: ControlEvent.ready, data: JSON.stringify(ready) });
    void startStream(this, connection, frame, lastEventId, (channel) => this.index.covers(connection, channel));
  }

  private cleanup(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    this.byId.delete(connection.id);
    connection.dispose();
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
      users: this.admission.users,
      channels: this.index.size,
      subscriptions: this.index.subscriptions,
      timers: this.keepAlive.timers,
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
  const guarded =
    (handler: (gateway: Gateway, req: Request, res: Response) => Promise<void>) => (req: Request, res: Response) => {
      handler(gateway, req, res).catch((cause: unknown) => {
        gateway.logger.error('sse-gateway: unexpected error while answering a request', cause);
        sendError(res, internalError());
      });
    };
  router.get(path, guarded(handleStreamRequest));
  router.post(`${path === '/' ? '' : path}${SUBSCRIPTIONS_PATH}`, guarded(handleSubscriptionChange));
  if (gateway.config.admin) mountAdminRoutes(router, gateway, gateway.config);

  return Object.assign(router, {
    publish: gateway.publish.bind(gateway),
    stats: gateway.stats.bind(gateway),
    close: gateway.close.bind(gateway),
    onSubscription: (listener: (topic: string, active: boolean) => void) => gateway.index.onTopic(listener),
    activeTopics: () => gateway.index.topics(),
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

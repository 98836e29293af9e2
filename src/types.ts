/**
 * Public types of `@datashop/sse-gateway`.
 *
 * Everything a user names in code lives here, so a reader can see the whole surface in one file.
 */

import type { ConnectionOptions } from 'node:tls';
import type { Request, RequestHandler, Router } from 'express';

/**
 * The authenticated party behind a connection: any object with a string `id` (an app's own `interface User
 * { id: string; … }` is one). Give `sseMiddleware<User>()` the app's type to see its other fields in
 * `authorize` and `filter`.
 */
export interface Principal {
  /** Stable identifier of the user (or service) the connection belongs to. */
  readonly id: string;
}

/**
 * One published event, as `publishEvent()` resolves it and as `filter` receives it.
 *
 * @typeParam T - the payload type.
 */
export interface SseEvent<T = unknown> {
  /** Opaque id, `<epoch>-<sequence>`; one sequence covers every channel of a bus. */
  readonly id: string;
  /** Concrete channel, e.g. `logs:ws123:wf456`. */
  readonly channel: string;
  /** The payload, JSON-serialisable. */
  readonly data: T;
  /** When set, only these principals' connections receive the event. */
  readonly users?: readonly string[];
  /** Publish time, milliseconds since the epoch. */
  readonly time: number;
}

/** Options of a single publish. */
export interface PublishOptions {
  /** Restrict the event to these principal ids. */
  users?: readonly string[];
  /**
   * Makes retrying a publish safe: a second publish with the same key on the same bus, within the bus's
   * history age, publishes nothing and resolves to the first event (same id). Use one key per logical event,
   * e.g. `${jobId}:${step}`. 1-200 characters. The memory bus remembers the last 10,000 keys.
   */
  idempotencyKey?: string;
  /** Publish on this bus instead of the default one. */
  bus?: Bus;
}

/** What a bus's `publish()` takes besides channel and data (a custom bus may ignore `idempotencyKey`). */
export type BusPublishOptions = Pick<PublishOptions, 'users' | 'idempotencyKey'> & {
  /**
   * The largest event the caller's streams accept (a gateway's `limits.maxEventBytes`): the built-in buses
   * reject a larger one with `ERR_SSE_EVENT_TOO_LARGE` before sequencing it. A custom bus may ignore it.
   */
  maxBytes?: number;
};

/** What a bus is asked to replay after a Last-Event-ID. */
export interface ReplayQuery {
  /** Which channels the caller wants; events of other channels are skipped (not a reason to reset). */
  match(channel: string): boolean;
  /**
   * At most this many events that `match` accepts (the ones the stream would have received) may lie between
   * the id and the head; more means `sse:reset`. Events of other channels do not count, however many, but
   * every event between the id and the head must still be held: a bus never replays part of a gap.
   */
  maxCount: number;
  /** Events older than this (ms) are outside the window; needing one means `sse:reset`. */
  maxAgeMs: number;
}

/** Why a replay cannot be served; the gateway then sends `sse:reset` with this reason. */
export type ReplayResetReason = 'malformed-id' | 'unknown-id' | 'expired' | 'replay-disabled' | 'unavailable';

/** Why the gateway sent `sse:reset`: a {@link ReplayResetReason}, or `too-large` for a replay over the stream's buffer. */
export type StreamResetReason = ReplayResetReason | 'too-large';

/** The answer of {@link Bus.replay}. */
export type ReplayResult =
  | {
      readonly ok: true;
      /** Every event after the id, up to `head`, whose channel matched, in publish order. */
      readonly events: readonly SseEvent[];
      /** The id of the newest event on the bus when the snapshot was taken (or the id replayed from). */
      readonly head: string;
    }
  | { readonly ok: false; readonly reason: ReplayResetReason };

/**
 * A control message between the gateways that share a bus. Not an event: it is never sequenced, stored
 * or replayed, and delivery is best effort (a process whose link to the bus is down misses it).
 */
export type BusSignal = DisconnectSignal | SubscriptionSignal;

/** End the streams of `principalId` and forget its cached `authorize` decisions. */
export interface DisconnectSignal {
  readonly type: 'disconnect';
  readonly principalId: string;
}

/**
 * Change the subscriptions of stream `connectionId`, wherever it is open: sent by the instance that
 * received `POST {path}/subscriptions` (which authenticated and authorised it) when the stream is not its
 * own. The instance holding the stream applies it if the token and the principal match.
 */
export interface SubscriptionSignal {
  readonly type: 'subscriptions';
  readonly connectionId: string;
  readonly subscriptionToken: string;
  readonly principalId: string;
  readonly requestId: string;
  /** Authorised channels to add, each with the id to replay after, if any. */
  readonly add: readonly { readonly channel: string; readonly since?: string }[];
  readonly remove: readonly string[];
}

/** Receives {@link BusSignal}s. */
export type BusSignalListener = (signal: BusSignal) => void;

/** A bus listener: called once per event, in publish order. */
export type BusListener = (event: SseEvent) => void;

/**
 * A bus's replay history, reported by `gateway.stats().bus.history`: its bounds (the oldest event goes as
 * soon as one is reached) and how full it is.
 */
export interface BusHistoryStatus {
  /** Most events kept, over every channel of the bus. */
  readonly size: number;
  /** Most estimated bytes kept (the memory bus; a Redis stream is bounded by count only). */
  readonly maxBytes?: number;
  /** Oldest event kept or replayed, in ms. */
  readonly ttlMs: number;
  /** Events held now (the Redis bus: as of its last watchdog ping; absent before the first). */
  readonly events?: number;
  /** Estimated bytes held now (the memory bus). */
  readonly bytes?: number;
  /** Age of the oldest event held, in ms: how far back a reconnect can resume. Absent when empty. */
  readonly oldestAgeMs?: number;
}

/** Health of a bus, reported by `gateway.stats().bus`. */
export interface BusStatus {
  /** `memory` or `redis` (other adapters name themselves). */
  readonly kind: string;
  /** False while a networked bus cannot publish or receive. */
  readonly connected: boolean;
  /** Id of the newest event this bus has seen, if any. */
  readonly head?: string;
  /** The replay history's bounds and fill, or `false` when the bus keeps none. */
  readonly history?: BusHistoryStatus | false;
  /** Further adapter-specific figures (lag, reconnects, …). */
  readonly [key: string]: unknown;
}

/**
 * The transport between publishers and gateways. The memory bus and the Redis bus implement it;
 * the gateway never asks which one it has.
 */
export interface Bus {
  /** Unique id of this bus instance (the origin of what it publishes). */
  readonly id: string;
  /**
   * Sequence, record and fan out one event. Rejects (never drops silently) when it cannot.
   * @param channel - a concrete channel (no wildcard).
   * @param data - a JSON-serialisable payload.
   */
  publish(channel: string, data: unknown, options?: BusPublishOptions): Promise<SseEvent>;
  /** Receive every event this bus delivers to this process. Returns the unsubscribe function. */
  listen(listener: BusListener): () => void;
  /**
   * Declare that this process needs `topic` (a channel or a `prefix:*` pattern). Reference-counted;
   * buses that deliver everything may ignore it. Returns the release function.
   */
  watch(topic: string): () => void;
  /**
   * Resolves once every `watch()` made so far is in effect (e.g. Redis confirmed the SUBSCRIBE), so that
   * `sse:ready` can promise that later publishes arrive. Buses that deliver everything omit it.
   */
  watched?(): Promise<void>;
  /** Events after `lastEventId` that match `query`, or why they cannot be replayed. */
  replay(lastEventId: string, query: ReplayQuery): Promise<ReplayResult>;
  /**
   * Ask the bus to keep at least this much history (count and age): a gateway asks for its `replay` window.
   * Buses with fixed history may ignore it.
   */
  retain?(window: { size: number; ttlMs: number }): void;
  /**
   * Deliver `signal` to every process on this bus, this one included (best effort). Optional: without it,
   * `gateway.disconnectEverywhere()` acts on the local gateway only.
   */
  signal?(signal: BusSignal): Promise<void>;
  /** Receive the signals sent on this bus. Returns the unsubscribe function. Present when `signal` is. */
  onSignal?(listener: BusSignalListener): () => void;
  /** Current health. */
  status(): BusStatus;
  /** Stop delivering and release every resource. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createMemoryBus}. */
export interface MemoryBusOptions {
  /**
   * History kept for Last-Event-ID replay, over every channel: at most `size` events, `maxBytes` of their
   * estimated memory (about 3 × their JSON plus 400 bytes each) and `ttlMs` of age; the oldest event goes
   * when any bound is reached. A replay needs the whole gap after its id, so size it for the time a client
   * may be away (a reconnect, a deploy) at the bus's rate. Defaults to
   * `{ size: 100000, maxBytes: 33554432, ttlMs: 600000 }` (32 MiB: about 9,000 events of 1 KB).
   */
  history?: { size?: number; maxBytes?: number; ttlMs?: number } | false;
}

/**
 * An ioredis client, `Redis` or `Cluster`, described by the little that recognises one: this package's types
 * then load without ioredis installed (it is an optional peer, needed only by the Redis bus).
 */
export interface IoRedisClient {
  duplicate(...args: never[]): unknown;
  readonly status: string;
}

/** Options of `createRedisBus()`. */
export interface RedisBusOptions {
  /** Connection URL, e.g. `redis://localhost:6379`. Ignored when `redis` is given. */
  url?: string;
  /**
   * An existing ioredis client (or Cluster). The bus duplicates it for its subscriber connection and
   * leaves the client itself open on `close()`.
   */
  redis?: IoRedisClient;
  /** Key and channel prefix. Defaults to `sse`. */
  prefix?: string;
  /**
   * Shared history in a Redis stream, over every channel: the last `size` events (trimmed with `MAXLEN ~`,
   * so a little more may stay) up to `ttlMs` old (older ones are never replayed). There is no byte bound: a
   * stream trims by count, so the count is what Redis spends, about 1.15 × (payload + 150) bytes per event.
   * A replay needs the whole gap after its id, so size it for the time a client may be away (a deploy) at
   * the bus's rate. Defaults to `{ size: 50000, ttlMs: 600000 }` (about 65 MB in Redis with 1 KB events).
   */
  history?: { size?: number; ttlMs?: number };
  /** Where connection errors are reported. Defaults to `console`. */
  logger?: Logger;
  /** Interval of the pub/sub watchdog ping in ms. Defaults to `5000`. */
  watchdogMs?: number;
  /**
   * Fan out with sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+): each message stays inside the shard that
   * owns the `{prefix}` slot instead of crossing the cluster bus to every node. Defaults to `true` when
   * `redis` is a Cluster and `false` otherwise; set `false` for a Cluster of Redis 6.
   */
  sharded?: boolean;
  /**
   * Also PSUBSCRIBE pattern watches the way earlier releases did (they publish to the exact channel only), so
   * that their events reach this instance's pattern subscribers during a rolling deploy from such a release.
   * Costs what PSUBSCRIBE costs (Redis matches every PUBLISH against every pattern); turn it off once every
   * instance runs this release. Classic pub/sub only. Defaults to `false`.
   */
  legacyPatterns?: boolean;
  /**
   * How long a publish may wait for Redis, in ms (at most 60,000). While Redis is unreachable publishes are
   * held (up to 10,000 or 32 MB) and sent in order, each applied once, when it is back; a publish not
   * confirmed by then rejects with `ERR_SSE_BUS_UNAVAILABLE`. Defaults to `5000`.
   */
  publishTimeoutMs?: number;
}

/** Where the library reports odd-but-valid options and runtime errors. */
export interface Logger {
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

/** A synchronous or asynchronous answer. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Per-namespace settings; every field is optional.
 *
 * @typeParam P - the app's principal type, as `authentication` resolves it.
 */
export interface ChannelPolicy<P extends Principal = Principal> {
  /** Connect-time ACL for this namespace, after the gateway-wide `authorize`. */
  authorize?(principal: P, channel: string, req: Request): MaybePromise<boolean>;
  /** Per-event ACL for this namespace, after user scoping and before the gateway-wide `filter`. */
  filter?(principal: P, event: SseEvent): MaybePromise<boolean>;
  /** `alerts:u1` (and `alerts:u1:…`) are open only to principal `u1`. */
  userScoped?: boolean;
  /** `false`: events of this namespace are not replayed after a reconnect. Defaults to `true`. */
  replay?: boolean;
}

/** Connection and size limits. */
export interface SseLimits {
  /** Open streams per gateway; more answer 429. Defaults to `Infinity`. */
  maxConnections?: number;
  /** Open streams per principal id (anonymous ones are not counted); more answer 429. Defaults to `Infinity`. */
  maxConnectionsPerUser?: number;
  /** Channels and patterns one stream may ask for; more answer 400. Defaults to `100`. */
  maxChannelsPerConnection?: number;
  /** Bytes one stream may have waiting for a slow client before it is closed. Defaults to `1048576` (1 MiB). */
  maxBufferedBytes?: number;
  /**
   * Largest event a stream is sent, in bytes of its frame. `gateway.publish` rejects larger ones with
   * `ERR_SSE_EVENT_TOO_LARGE`, and larger ones arriving from the bus (another publisher) are dropped and
   * counted, never sent: one oversized event must not close every stream that would receive it, again after
   * each reconnect. At most `maxBufferedBytes`. Defaults to `262144` (256 KiB) or `maxBufferedBytes` if smaller.
   */
  maxEventBytes?: number;
  /** `Retry-After` seconds sent with 429. Defaults to `retryMs` rounded up to seconds. */
  retryAfterSeconds?: number;
  /**
   * End each stream after about this long (between 90 % and 100 % of it, so tabs do not all come back at
   * once). The browser reconnects by itself with its Last-Event-ID, missing nothing, and goes through
   * `authentication` and `authorize` again: an expired session then ends in 401, and after a scale-out the
   * load balancer spreads the reconnects over the new instances. Defaults to `Infinity` (never).
   */
  maxConnectionAgeMs?: number;
  /**
   * What a new stream of a principal at `maxConnectionsPerUser` gets: `refuse` answers it 429; `end-oldest`
   * ends that principal's oldest stream and opens the new one, since the newest is the tab a person is looking
   * at and the oldest may be a half-open connection whose peer vanished without a FIN. Defaults to `refuse`.
   */
  onUserLimit?: 'refuse' | 'end-oldest';
}

/** Options of {@link SseGateway}'s opt-in admin routes below `path`. */
export interface SseAdminOptions {
  /** Decides who may use `GET {path}/stats` and `POST {path}/publish`. */
  authorize(req: Request): MaybePromise<boolean>;
  /** Largest accepted publish body. Defaults to `65536`. */
  maxBodyBytes?: number;
}

/**
 * One record of the audit trail (the `audit` option): a stream opened, ended, or was refused. It never holds
 * a token, a cookie or a header value.
 */
export interface AuditEntry {
  readonly type: 'connect' | 'disconnect' | 'reject';
  /** When it happened, milliseconds since the epoch. */
  readonly time: number;
  /** The stream's id (`connect`, `disconnect`). */
  readonly connectionId?: string;
  /** Who, when known (a request refused before authentication has none). */
  readonly principalId?: string;
  /** The channels and patterns the stream had or asked for. */
  readonly channels: readonly string[];
  /** The client's address as Express sees it (`req.ip`, which honours `trust proxy`). */
  readonly ip: string | undefined;
  /** `disconnect`: how long the stream was open. */
  readonly durationMs?: number;
  /**
   * `disconnect`: why the gateway ended the stream, when it did so for a limit: `slow-consumer`
   * (`limits.maxBufferedBytes`), `dead-peer` (`deadPeerTimeoutMs`), `max-age` (`limits.maxConnectionAgeMs`).
   * Absent when the client left, or the stream was ended by `close()`, `drain()` or `disconnect()`.
   */
  readonly reason?: 'slow-consumer' | 'dead-peer' | 'max-age';
  /** `reject`: the HTTP status sent. */
  readonly status?: number;
  /** `reject`: the `ERR_SSE_*` code sent. */
  readonly code?: string;
}

/** Options of `gateway.drain()`. */
export interface DrainOptions {
  /** Spread the ends of open streams over this many ms. Defaults to `10000`. */
  timeoutMs?: number;
}

/** One service allowed to `POST {path}/publish` (see {@link SseOptions.publishers}). */
export interface PublisherOptions {
  /**
   * Its Bearer token, or several while a rotation is under way (the old and the new one both work until
   * the old one is removed). Each is 16-4096 visible ASCII characters; no two publishers share one.
   */
  token: string | readonly string[];
  /** The channels and trailing-`*` patterns it may publish to, e.g. `['logs:*', 'metrics:*']`. */
  channels: readonly string[];
  /** Largest accepted publish body, in bytes. Defaults to `1048576`. */
  maxBodyBytes?: number;
}

/**
 * Options of `sseMiddleware()`.
 *
 * @typeParam P - the app's principal type: `sseMiddleware<User>({ … })` (or an annotated `authentication`)
 *   types `authorize`, `filter`, the policies and `authorizeCacheKey` with it. Any object with a string `id`.
 */
export interface SseOptions<P extends Principal = Principal> {
  /** Route of the stream. Defaults to `/events`. */
  path?: string;
  /** Allowed namespaces: a list, or a map of namespace to {@link ChannelPolicy}. */
  channels: readonly string[] | Readonly<Record<string, ChannelPolicy<P>>>;
  /**
   * `false`: anonymous allowed; `true`: the principal is `req.user`, 401 when absent;
   * a function: resolves the principal (or `null` for 401). Defaults to `false`.
   */
  authentication?: boolean | ((req: Request) => MaybePromise<P | null | undefined>);
  /** Honour `users` on events and `userScoped` namespaces. Defaults to `false`. */
  userScoping?: boolean;
  /** Connect-time ACL, once per requested channel or pattern. */
  authorize?(principal: P, channel: string, req: Request): MaybePromise<boolean>;
  /** Per-event ACL, for every event before it is written to a connection. */
  filter?(principal: P, event: SseEvent): MaybePromise<boolean>;
  /**
   * How long an `authorize` allow is cached, in ms; `0` disables. Denials are never cached. Defaults to `5000`.
   */
  authorizeCacheMs?: number;
  /**
   * What besides the principal's id a cached `authorize` decision is keyed by; return `undefined` to not cache
   * this request's decisions. Use it when `authorize` reads the request (a tenant header, a session) and the
   * principal object does not say it. Defaults to a digest of the whole principal object, so principals that
   * differ in any field (tenant, roles, session) never share a decision.
   */
  authorizeCacheKey?(principal: P, req: Request): string | undefined;
  /** The bus. Defaults to the process-wide memory bus. */
  bus?: Bus;
  /** Heartbeat comment interval in ms. Defaults to `25000`. */
  heartbeatMs?: number;
  /** `retry:` sent on connect, in ms. Defaults to `5000`. */
  retryMs?: number;
  /**
   * Destroy a stream whose data its peer has not acknowledged for this long, in ms (at least `1000`), or
   * `false` to never do so. It frees the slot (`limits.maxConnectionsPerUser`) of a client that vanished
   * without a FIN, which the kernel would hold for ~15 minutes: heartbeats keep unacknowledged data on such a
   * socket, so TCP keep-alive never fires. Read from the kernel's TCP tables (`/proc/net/tcp`), so Linux only;
   * elsewhere it does nothing. A client that merely stops reading is `limits.maxBufferedBytes`'s business.
   * Defaults to `60000`.
   */
  deadPeerTimeoutMs?: number | false;
  /**
   * Replay window for Last-Event-ID, or `false`: a stream resumes if at most `size` events of its own
   * channels were missed (events of other channels do not count) and none is older than `ttlMs`, and the
   * bus still holds every event since its id (see the bus's `history`); otherwise it gets `sse:reset`.
   * Defaults to `{ size: 1000, ttlMs: 600000 }`.
   */
  replay?: { size?: number; ttlMs?: number } | false;
  /** Connection and size limits. */
  limits?: SseLimits;
  /** Opt-in `GET {path}/stats` and `POST {path}/publish`. Defaults to off. */
  admin?: SseAdminOptions;
  /**
   * Services that may `POST {path}/publish` with `Authorization: Bearer <token>`, by name (the name is
   * what logs show, never the token). Defaults to none (the route then exists only with `admin`).
   */
  publishers?: Readonly<Record<string, PublisherOptions>>;
  /** Where warnings and callback errors go. Defaults to `console`. */
  logger?: Logger;
  /**
   * `GET {path}/health/live` and `GET {path}/health/ready` for probes; `false` turns both off. Defaults to `true`.
   */
  health?: boolean;
  /**
   * Called once per stream `connect`, `disconnect` and `reject`, synchronously; keep it fast (queue to your log
   * pipeline). A throw is logged and ignored.
   */
  audit?: (entry: AuditEntry) => void;
}

/** Figures from `gateway.stats()`. */
export interface SseStats {
  /** Open streams. */
  readonly connections: number;
  /** Distinct principals with at least one open stream. */
  readonly users: number;
  /** Entries in the channel index (exact channels plus patterns). */
  readonly channels: number;
  /** Subscriptions over all connections. */
  readonly subscriptions: number;
  /** Timers the gateway currently owns. */
  readonly timers: number;
  /** Bytes waiting for slow clients, over all connections. */
  readonly bufferedBytes: number;
  /** Events received from the bus since creation. */
  readonly events: number;
  /** Event writes to connections since creation. */
  readonly delivered: number;
  /** Connections closed for exceeding `maxBufferedBytes`. */
  readonly slowClosed: number;
  /** Connections destroyed because their peer had not acknowledged data for `deadPeerTimeoutMs`. */
  readonly deadPeersClosed: number;
  /** Events from the bus dropped for exceeding `limits.maxEventBytes`. */
  readonly oversized: number;
  /** Connections ended for reaching `limits.maxConnectionAgeMs`. */
  readonly expired: number;
  /** Streams opened since creation. */
  readonly opened: number;
  /** Stream requests refused since creation, by `ERR_SSE_*` code. */
  readonly rejected: Readonly<Record<string, number>>;
  /** Last-Event-ID replays since creation: served (`replayed`) or answered with `sse:reset` (`reset`). */
  readonly replays: { readonly replayed: number; readonly reset: number };
  /** Events written by replays since creation. */
  readonly replayedEvents: number;
  /** Channels refused by `authorize` (or user scoping) since creation, by namespace. */
  readonly denied: Readonly<Record<string, number>>;
  /** True after `close()`. */
  readonly closing: boolean;
  /** True from `drain()` on. */
  readonly draining: boolean;
  /** The replay window (`replay` option): missed events of a stream's own channels and their age, or `false`. */
  readonly replay: { readonly size: number; readonly ttlMs: number } | false;
  /** Bus health, with its history's bounds and fill in `bus.history`. */
  readonly bus: BusStatus;
}

/** The Express router returned by `sseMiddleware()`, with publishing and lifecycle. */
export interface SseGateway extends Router {
  /** Publish on this gateway's bus. The namespace must be one of `channels`. */
  publish<T>(channel: string, data: T, options?: Omit<PublishOptions, 'bus'>): Promise<SseEvent<T>>;
  /** Current figures. */
  stats(): SseStats;
  /**
   * End every stream at once and refuse later requests: an EventSource request (one that accepts
   * `text/event-stream`) gets 200, a jittered `retry:` and an immediate end, so it comes back through the load
   * balancer instead of stopping for good; any other request gets 503 `ERR_SSE_CLOSING`. Idempotent. Follow it
   * with `server.close()`; for a deploy, `drain()` first.
   */
  close(): Promise<void>;
  /**
   * Move every stream to another instance before a shutdown: readiness turns 503 at once, new stream requests
   * are sent away (an EventSource gets 200, a jittered `retry:` and an immediate end, so it comes back through
   * the load balancer; other requests get 503 with `Retry-After`), and open streams are ended spread over
   * `timeoutMs`, each told to come back after a jittered `retry:`; their browsers resume elsewhere with
   * Last-Event-ID. Resolves when the last stream has ended. Follow it with `close()` and `server.close()`.
   */
  drain(options?: DrainOptions): Promise<void>;
  /**
   * Be told when a channel or pattern gains its first local stream (`active: true`) or loses its last,
   * e.g. to start an upstream bridge on demand. Returns the unsubscribe function.
   */
  onSubscription(listener: (topic: string, active: boolean) => void): () => void;
  /** Channels and patterns with at least one local stream right now. */
  activeTopics(): string[];
  /**
   * End every stream of principal `principalId` on this gateway and forget its cached `authorize`
   * decisions: after a logout or a permission change, the browser reconnects through `authentication` and
   * `authorize` again (a 401 or 403 then stops it). Returns how many streams were ended. Local to this
   * instance: with several instances, call it on each (for example from a listener on a shared bus).
   */
  disconnect(principalId: string): number;
  /**
   * {@link SseGateway.disconnect} on every gateway that shares this gateway's bus, this one included: with
   * the Redis bus, on every instance. Resolves once the signal is sent (best effort: an instance whose
   * link to Redis is down at that moment misses it, and its cached decisions expire after
   * `authorizeCacheMs`). Rejects with `ERR_SSE_BUS_UNAVAILABLE` when it cannot be sent; the local streams
   * are ended either way.
   */
  disconnectEverywhere(principalId: string): Promise<void>;
  /** The bus this gateway listens to. */
  readonly bus: Bus;
}

/** Options of `sseProxy()`. */
export interface ProxyOptions {
  /**
   * A fixed name for operations (1-64 characters of `[A-Za-z0-9_.-]`, e.g. `'etl-run-logs'`): the `name` label
   * of `registerUpstreamMetrics` and `stats().name`. Never an id or a URL. Defaults to none (required only to
   * register metrics).
   */
  name?: string;
  /** Upstream SSE URL, or a function mapping the request to one. */
  target: string | URL | ((req: Request) => string | URL);
  /** Extra request headers toward upstream (e.g. a service token), computed per request. */
  headers?: Record<string, string> | ((req: Request) => MaybePromise<Record<string, string>>);
  /**
   * Client headers forwarded to the upstream besides the default allow-list (`Accept-Language`,
   * `User-Agent`, `traceparent`, `tracestate`, `baggage`, `X-Request-Id`, `Last-Event-ID`), any case.
   * Hop-by-hop headers, `Cookie` (see `forwardCookies`), `Forwarded` and `X-Forwarded-*` (set from the BFF's
   * own view) are refused. Defaults to `[]`.
   */
  forwardHeaders?: readonly string[];
  /** Forward the browser's Cookie header. Defaults to `false`. */
  forwardCookies?: boolean;
  /** Heartbeat interval toward the client while upstream is silent, in ms. Defaults to `25000`. */
  heartbeatMs?: number;
  /** `retry:` sent to the client, in ms. Defaults to `5000`. */
  retryMs?: number;
  /** Time allowed to get upstream response headers, in ms. Defaults to `10000`. */
  connectTimeoutMs?: number;
  /**
   * Largest upstream line or event, in characters; a larger one is dropped (and logged) instead of being
   * buffered. Defaults to `1048576`.
   */
  maxEventSize?: number;
  /**
   * TLS settings for `https:` upstreams: a private CA (`ca`), a client certificate for mutual TLS (`cert`,
   * `key`), `servername`. Defaults to Node's (the system CAs plus `NODE_EXTRA_CA_CERTS`).
   */
  tls?: UpstreamTlsOptions;
  /** Where upstream errors are reported. Defaults to `console`. */
  logger?: Logger;
}

/** The TLS settings an upstream connection may take (a subset of Node's `tls.ConnectionOptions`). */
export type UpstreamTlsOptions = Pick<
  ConnectionOptions,
  'ca' | 'cert' | 'key' | 'passphrase' | 'pfx' | 'servername' | 'rejectUnauthorized' | 'minVersion' | 'ciphers'
>;

/** An Express request handler; re-exported for convenience in signatures. */
export type SseRequestHandler = RequestHandler;

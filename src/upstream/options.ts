/**
 * Options of `sseProxy()` and `bridgeUpstream()`, each parsed once by a function into a complete config in
 * the dialect of `util/validate`: unknown keys get a "did you mean", every mistake is an `OptionError`
 * thrown at creation, and defaults come from the table shared with the gateway.
 */
import type { Request } from 'express';
import { DEFAULTS } from '../defaults';
import { matchChannel, parseTopic, type Topic } from '../protocol/channels';
import { formatRetry } from '../protocol/framing';
import { DEFAULT_MAX_EVENT_SIZE, type ParsedSseEvent } from '../protocol/sse-parser';
import type { Bus, Logger, MaybePromise, ProxyOptions, UpstreamTlsOptions } from '../types';
import {
  boolean,
  checkKeys,
  describe,
  integer,
  isPlainObject,
  OptionError,
  optionalFunction,
  logger as parseLogger,
  suggest,
} from '../util/validate';
import { forwardList, isHeaderSafe, normaliseHeaders } from './headers';
import type { BridgeOptions, SubscriptionSource } from './types';

const TLS_KEYS = [
  'ca',
  'cert',
  'key',
  'passphrase',
  'pfx',
  'servername',
  'rejectUnauthorized',
  'minVersion',
  'ciphers',
] as const;

/** A `tls` option: an object of the TLS settings an upstream connection may take. */
function tlsOption(where: string, value: unknown): UpstreamTlsOptions {
  if (value === undefined) return {};
  if (!isPlainObject(value))
    throw new OptionError(`${where} must be an object such as { ca: fs.readFileSync('ca.pem') }.`);
  for (const key of Object.keys(value)) {
    if (!(TLS_KEYS as readonly string[]).includes(key)) {
      throw new OptionError(`${where} does not take \`${key}\`${suggest(key, TLS_KEYS)}`);
    }
  }
  return value as UpstreamTlsOptions;
}

/** A target: an absolute `http:` or `https:` URL. */
function upstreamUrl(where: string, target: unknown): URL {
  let url: URL;
  try {
    url = target instanceof URL ? target : new URL(String(target));
  } catch {
    throw new OptionError(`${where} must be an absolute http(s) URL (received ${describe(target)}).`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OptionError(`${where} must be an http: or https: URL (received ${url.protocol}).`);
  }
  return url;
}

/** A `headers` option: a fixed object, checked now, or a function whose answers are checked each time. */
function headersOption<A extends unknown[]>(
  where: string,
  value: unknown,
  called: string,
): (...args: A) => MaybePromise<Record<string, string>> {
  if (value === undefined) return () => ({});
  if (typeof value === 'function') {
    return async (...args: A) => normaliseHeaders(await value(...args), called);
  }
  const fixed = normaliseHeaders(value, where);
  return () => fixed;
}

/**
 * A `name` option: the `name` label of an upstream's metrics and the name in its status, so a short fixed
 * string of the app's, never a URL or an id (which would make one time series per workflow).
 */
function nameOption(where: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    throw new OptionError(
      `${where} must be 1-64 characters of [A-Za-z0-9_.-], a fixed name such as 'etl-logs' (received ${describe(value)}); it becomes a metric label, so keep ids and URLs out of it.`,
    );
  }
  return value;
}

/** @internal The complete configuration of one `sseProxy()`. */
export interface ProxyConfig {
  readonly name: string | undefined;
  readonly target: (req: Request) => URL;
  readonly headers: (req: Request) => MaybePromise<Record<string, string>>;
  readonly forward: ReadonlySet<string>;
  readonly forwardCookies: boolean;
  readonly heartbeatMs: number;
  /** The `retry:` line, framed once. */
  readonly retryFrame: string;
  /** True when the app set `retryMs`: the upstream's own `retry:` is then not forwarded. */
  readonly retryFixed: boolean;
  readonly connectTimeoutMs: number;
  readonly maxEventSize: number;
  readonly tls: UpstreamTlsOptions;
  readonly logger: Logger;
}

const PROXY_KEYS = [
  'name',
  'target',
  'headers',
  'forwardHeaders',
  'forwardCookies',
  'heartbeatMs',
  'retryMs',
  'connectTimeoutMs',
  'maxEventSize',
  'tls',
  'logger',
] as const;
const PROXY_HINTS = { forwardCookie: 'forwardCookies', cookies: 'forwardCookies' };

/**
 * @internal Validate `sseProxy()` options and fill in every default.
 *
 * @throws OptionError (a TypeError) with a fix-it message for wrong values or unknown keys.
 */
export function parseProxyOptions(options: ProxyOptions): ProxyConfig {
  checkKeys('sseProxy', options, PROXY_KEYS, PROXY_HINTS);
  const { target } = options;
  let resolveTarget: (req: Request) => URL;
  if (typeof target === 'function') {
    resolveTarget = (req) => upstreamUrl('sseProxy: `target(req)`', target(req));
  } else {
    const url = upstreamUrl('sseProxy: `target`', target);
    resolveTarget = () => url;
  }
  const retryMs = integer('sseProxy: `retryMs`', options.retryMs, DEFAULTS.retryMs, 0);
  return {
    name: nameOption('sseProxy: `name`', options.name),
    target: resolveTarget,
    headers: headersOption<[Request]>('sseProxy: `headers`', options.headers, 'sseProxy: `headers(req)`'),
    forward: forwardList('sseProxy: `forwardHeaders`', options.forwardHeaders),
    forwardCookies: boolean('sseProxy: `forwardCookies`', options.forwardCookies, false),
    heartbeatMs: integer('sseProxy: `heartbeatMs`', options.heartbeatMs, DEFAULTS.heartbeatMs, 0),
    retryFrame: `${formatRetry(retryMs)}\n`,
    retryFixed: options.retryMs !== undefined,
    connectTimeoutMs: integer('sseProxy: `connectTimeoutMs`', options.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 1),
    maxEventSize: integer('sseProxy: `maxEventSize`', options.maxEventSize, DEFAULT_MAX_EVENT_SIZE, 1),
    tls: tlsOption('sseProxy: `tls`', options.tls),
    logger: parseLogger('sseProxy', options.logger),
  };
}

/** @internal The complete configuration of one `bridgeUpstream()`. */
export interface BridgeConfig {
  readonly name: string | undefined;
  readonly url: URL;
  readonly bus: Bus;
  readonly channelOf: (event: ParsedSseEvent) => string | null | undefined;
  /** The declared `channels`: what lazy mode follows. */
  readonly feeds: readonly Topic[];
  /** `feeds` is an allow-list for per-event channels; false only for a `channel` function without `channels`. */
  readonly restricted: boolean;
  readonly gateway: SubscriptionSource | undefined;
  readonly dataOf: (event: ParsedSseEvent) => unknown;
  readonly headers: () => MaybePromise<Record<string, string>>;
  readonly lastEventId: string | undefined;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly stopDelayMs: number;
  readonly maxEventSize: number;
  readonly tls: UpstreamTlsOptions;
  readonly logger: Logger;
}

const BRIDGE_KEYS = [
  'name',
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
// `channel` is a real option here, so the shared alias channel → channels must not apply.
const BRIDGE_HINTS = { transform: 'data', topic: 'channel', retry: 'reconnect', idleTimeout: 'idleTimeoutMs' };
const RECONNECT_KEYS = ['initialDelayMs', 'maxDelayMs'] as const;

/** The default payload: JSON when the data is JSON, else the string. */
function defaultData(event: ParsedSseEvent): unknown {
  try {
    return JSON.parse(event.data);
  } catch {
    return event.data;
  }
}

/**
 * @internal Validate `bridgeUpstream()` options and fill in every default.
 *
 * @throws OptionError (a TypeError) with a fix-it message for wrong values or unknown keys.
 */
export function parseBridgeOptions(options: BridgeOptions): BridgeConfig {
  if (!isPlainObject(options)) throw new OptionError('bridgeUpstream() needs `{ target, bus, channel }`.');
  checkKeys('bridgeUpstream', options, BRIDGE_KEYS, BRIDGE_HINTS);
  const { bus, channel } = options;
  if (!hasMethod(bus, 'publish')) {
    throw new OptionError(
      'bridgeUpstream() needs `bus`: the Bus to publish into, e.g. createMemoryBus() or gateway.bus.',
    );
  }
  const feeds = feedsOption(options);
  const restricted = options.channels !== undefined || typeof channel === 'string';
  const reconnect = options.reconnect ?? {};
  if (!isPlainObject(reconnect))
    throw new OptionError('bridgeUpstream: `reconnect` must be { initialDelayMs?, maxDelayMs? }.');
  checkKeys('bridgeUpstream: reconnect', reconnect, RECONNECT_KEYS);
  const where = (name: string) => `bridgeUpstream: \`${name}\``;
  const config: BridgeConfig = {
    name: nameOption(where('name'), options.name),
    url: upstreamUrl(where('target'), options.target),
    bus,
    channelOf: typeof channel === 'string' ? () => channel : channel,
    feeds,
    restricted,
    gateway: gatewayOption(options.gateway, feeds),
    dataOf: optionalFunction<(event: ParsedSseEvent) => unknown>(where('data'), options.data) ?? defaultData,
    headers: headersOption<[]>(where('headers'), options.headers, where('headers()')),
    lastEventId: lastEventIdOption(options.lastEventId),
    initialDelayMs: integer(where('reconnect.initialDelayMs'), reconnect.initialDelayMs, 1000, 0),
    maxDelayMs: integer(where('reconnect.maxDelayMs'), reconnect.maxDelayMs, 30_000, 1),
    connectTimeoutMs: integer(where('connectTimeoutMs'), options.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 1),
    idleTimeoutMs: integer(where('idleTimeoutMs'), options.idleTimeoutMs, 0, 0),
    stopDelayMs: integer(where('stopDelayMs'), options.stopDelayMs, 5000, 0),
    maxEventSize: integer(where('maxEventSize'), options.maxEventSize, DEFAULT_MAX_EVENT_SIZE, 1),
    tls: tlsOption(where('tls'), options.tls),
    logger: parseLogger('bridgeUpstream', options.logger),
  };
  if (!restricted) {
    config.logger.warn(
      'sse-gateway: bridgeUpstream has a `channel` function and no `channels`, so the upstream may name any channel of the bus (a user-scoped one too); declare `channels` to limit it.',
    );
  }
  return config;
}

/** `channel` checked, and `channels` (default `[channel]` for a fixed channel) parsed into topics. */
function feedsOption(options: BridgeOptions): Topic[] {
  const { channel } = options;
  if (typeof channel === 'string') {
    if (parseTopic(channel) === null) {
      throw new OptionError(
        `bridgeUpstream: \`channel\` must be a channel (namespace(:segment)*, no wildcard); received ${JSON.stringify(channel)}.`,
      );
    }
  } else if (typeof channel !== 'function') {
    throw new OptionError(
      'bridgeUpstream() needs `channel`: a channel name, or a function of the upstream event returning one.',
    );
  }
  const names: unknown = options.channels ?? (typeof channel === 'string' ? [channel] : []);
  if (!Array.isArray(names)) {
    throw new OptionError('bridgeUpstream: `channels` must be an array of channels or `prefix:*` patterns.');
  }
  const feeds = names.map((name: unknown) => {
    const topic = typeof name === 'string' ? parseTopic(name, true) : null;
    if (topic === null) {
      throw new OptionError(
        `bridgeUpstream: \`channels\`: ${describe(name)} is not a channel or a \`prefix:*\` pattern.`,
      );
    }
    return topic;
  });
  if (typeof channel === 'string' && !allows(feeds, channel)) {
    throw new OptionError(
      `bridgeUpstream: \`channel\` ${JSON.stringify(channel)} is not among \`channels\` (${names.join(', ')}); add it, or drop \`channels\`.`,
    );
  }
  return feeds;
}

/** @internal Does `channel` fall under one of `topics`? The bridge's allow-list check. */
export function allows(topics: readonly Topic[], channel: string): boolean {
  return topics.some((topic) => matchChannel(topic, channel));
}

/** True when `value` has a method `name` (a gateway is a function: an Express Router). */
function hasMethod(value: unknown, name: string): boolean {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  return typeof (value as Record<string, unknown>)[name] === 'function';
}

function gatewayOption(gateway: unknown, feeds: readonly Topic[]): SubscriptionSource | undefined {
  if (gateway === undefined) return undefined;
  if (!hasMethod(gateway, 'onSubscription')) {
    throw new OptionError(
      'bridgeUpstream: `gateway` must have onSubscription(listener), like the gateway of sseMiddleware().',
    );
  }
  if (feeds.length === 0) {
    throw new OptionError(
      'bridgeUpstream() with `gateway` and a `channel` function needs `channels`: the channels or patterns it feeds.',
    );
  }
  return gateway as SubscriptionSource;
}

function lastEventIdOption(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !isHeaderSafe(value)) {
    throw new OptionError('bridgeUpstream: `lastEventId` must be a string without CR, LF or NUL.');
  }
  return value === '' ? undefined : value;
}

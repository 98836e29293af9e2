/**
 * Options of `sseMiddleware()`: parsed once at creation into a complete internal config, in the dialect of
 * `util/validate` (wrong values throw an `OptionError`, a TypeError saying how to fix them); odd-but-valid
 * ones are reported through the logger.
 */
import type { Request } from 'express';
import { parseHistoryWindow } from '../bus/history';
import { DEFAULTS } from '../defaults';
import { isSegment } from '../protocol/channels';
import { type PublisherTable, parsePublishers } from '../publish-api/tokens';
import type { AuditEntry, Bus, ChannelPolicy, Logger, MaybePromise, Principal, SseEvent, SseOptions } from '../types';
import {
  boolean as booleanOption,
  checkKeys,
  describe as describeValue,
  integer,
  isPlainObject,
  OptionError,
  optionalFunction,
  logger as parseLogger,
} from '../util/validate';

/** The complete, validated configuration a gateway runs on. */
export interface GatewayConfig {
  readonly path: string;
  readonly namespaces: ReadonlyMap<string, Readonly<ChannelPolicy>>;
  readonly authentication: boolean | ((req: Request) => MaybePromise<Principal | null | undefined>);
  readonly userScoping: boolean;
  readonly authorize: ((principal: Principal, channel: string, req: Request) => MaybePromise<boolean>) | undefined;
  readonly filter: ((principal: Principal, event: SseEvent) => MaybePromise<boolean>) | undefined;
  readonly authorizeCacheMs: number;
  readonly authorizeCacheKey: ((principal: Principal, req: Request) => string | undefined) | undefined;
  readonly bus: Bus | undefined;
  readonly heartbeatMs: number;
  readonly retryMs: number;
  /** `false`: no dead-peer detection. */
  readonly deadPeerTimeoutMs: number | false;
  readonly replay: { readonly size: number; readonly ttlMs: number } | false;
  readonly limits: {
    readonly maxConnections: number;
    readonly maxConnectionsPerUser: number;
    readonly maxChannelsPerConnection: number;
    readonly maxBufferedBytes: number;
    readonly maxEventBytes: number;
    readonly retryAfterSeconds: number;
    readonly maxConnectionAgeMs: number;
    readonly onUserLimit: 'refuse' | 'end-oldest';
  };
  readonly admin:
    | { readonly authorize: (req: Request) => MaybePromise<boolean>; readonly maxBodyBytes: number }
    | undefined;
  /** Services allowed to `POST {path}/publish` with a Bearer token. */
  readonly publishers: PublisherTable | undefined;
  readonly logger: Logger;
  readonly health: boolean;
  readonly audit: ((entry: AuditEntry) => void) | undefined;
}

const OPTION_KEYS = [
  'path',
  'channels',
  'authentication',
  'userScoping',
  'authorize',
  'filter',
  'authorizeCacheMs',
  'authorizeCacheKey',
  'bus',
  'heartbeatMs',
  'retryMs',
  'deadPeerTimeoutMs',
  'replay',
  'limits',
  'admin',
  'publishers',
  'logger',
  'health',
  'audit',
] as const;
const POLICY_KEYS = ['authorize', 'filter', 'userScoped', 'replay'] as const;
const LIMIT_KEYS = [
  'maxConnections',
  'maxConnectionsPerUser',
  'maxChannelsPerConnection',
  'maxBufferedBytes',
  'maxEventBytes',
  'retryAfterSeconds',
  'maxConnectionAgeMs',
  'onUserLimit',
] as const;
const ADMIN_KEYS = ['authorize', 'maxBodyBytes'] as const;

function parsePolicy(namespace: string, value: unknown): ChannelPolicy {
  const where = `sseMiddleware: channels.${namespace}`;
  if (value === true || value === undefined) return {};
  if (!isPlainObject(value))
    throw new OptionError(`${where} must be a ChannelPolicy object ({ authorize?, filter?, userScoped?, replay? }).`);
  checkKeys(where, value, POLICY_KEYS);
  if (value.userScoped !== undefined && typeof value.userScoped !== 'boolean') {
    throw new OptionError(`${where}.userScoped must be a boolean.`);
  }
  if (value.replay !== undefined && typeof value.replay !== 'boolean') {
    throw new OptionError(`${where}.replay must be a boolean (false: events of this namespace are not replayed).`);
  }
  optionalFunction(`${where}.authorize`, value.authorize);
  optionalFunction(`${where}.filter`, value.filter);
  return value as ChannelPolicy;
}

function parseNamespaces(value: unknown): Map<string, ChannelPolicy> {
  const namespaces = new Map<string, ChannelPolicy>();
  const entries: [string, unknown][] = Array.isArray(value)
    ? value.map((name) => [name as string, undefined])
    : isPlainObject(value)
      ? Object.entries(value)
      : [];
  if (!Array.isArray(value) && !isPlainObject(value)) {
    throw new OptionError(
      "sseMiddleware: `channels` is required: a list of namespaces (['logs', 'metrics']) or a map of namespace to policy ({ alerts: { userScoped: true } }).",
    );
  }
  for (const [name, policy] of entries) {
    if (typeof name !== 'string' || !isSegment(name)) {
      throw new OptionError(
        `sseMiddleware: channel namespace ${JSON.stringify(name)} is invalid; use 1-128 characters of [A-Za-z0-9_.-] (no ':' or '*').`,
      );
    }
    namespaces.set(name, parsePolicy(name, policy));
  }
  if (namespaces.size === 0) throw new OptionError('sseMiddleware: `channels` must name at least one namespace.');
  return namespaces;
}

function userLimitPolicy(value: unknown): 'refuse' | 'end-oldest' {
  if (value === undefined || value === 'refuse' || value === 'end-oldest') return value ?? 'refuse';
  throw new OptionError(
    `sseMiddleware: \`limits.onUserLimit\` must be 'refuse' (answer 429) or 'end-oldest' (received ${JSON.stringify(value)}).`,
  );
}

function deadPeerTimeout(value: unknown): number | false {
  if (value === undefined) return DEFAULTS.deadPeerTimeoutMs;
  if (value === false) return false;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1000) return value;
  throw new OptionError(
    `sseMiddleware: \`deadPeerTimeoutMs\` must be an integer >= 1000 (ms) or false to turn dead-peer detection off (received ${describeValue(value)}).`,
  );
}

function isBus(value: unknown): value is Bus {
  if (typeof value !== 'object' || value === null) return false;
  const bus = value as Partial<Record<keyof Bus, unknown>>;
  return ['publish', 'listen', 'watch', 'replay'].every((name) => typeof bus[name as keyof Bus] === 'function');
}

/**
 * Validate `options` and fill in every default.
 *
 * @throws TypeError with a fix-it message for wrong types or unknown keys.
 */
export function parseOptions(options: SseOptions): GatewayConfig {
  if (!isPlainObject(options)) {
    throw new OptionError(
      "sseMiddleware(options) needs an options object, e.g. sseMiddleware({ channels: ['logs'] }).",
    );
  }
  checkKeys('sseMiddleware', options, OPTION_KEYS);
  const path = options.path ?? '/events';
  if (typeof path !== 'string' || !path.startsWith('/') || path.length < 1) {
    throw new OptionError(
      `sseMiddleware: \`path\` must be a string starting with '/' (received ${JSON.stringify(path)}).`,
    );
  }
  const namespaces = parseNamespaces(options.channels);
  const authentication = options.authentication ?? false;
  if (typeof authentication !== 'boolean' && typeof authentication !== 'function') {
    throw new OptionError(
      'sseMiddleware: `authentication` must be false, true (use req.user) or a function (req) => principal.',
    );
  }
  if (options.userScoping !== undefined && typeof options.userScoping !== 'boolean') {
    throw new OptionError('sseMiddleware: `userScoping` must be a boolean.');
  }
  if (options.bus !== undefined && !isBus(options.bus)) {
    throw new OptionError('sseMiddleware: `bus` must be a Bus, e.g. createMemoryBus() or createRedisBus({ url }).');
  }
  const retryMs = integer('sseMiddleware: `retryMs`', options.retryMs, DEFAULTS.retryMs, 0);
  const heartbeatMs = integer('sseMiddleware: `heartbeatMs`', options.heartbeatMs, DEFAULTS.heartbeatMs, 1);

  const replay: GatewayConfig['replay'] =
    options.replay === false
      ? false
      : parseHistoryWindow('sseMiddleware', 'replay', options.replay, DEFAULTS.replay, ' or false');

  const rawLimits = options.limits ?? {};
  if (!isPlainObject(rawLimits)) throw new OptionError('sseMiddleware: `limits` must be an object.');
  checkKeys('sseMiddleware: limits', rawLimits, LIMIT_KEYS);
  const maxBufferedBytes = integer(
    'sseMiddleware: `limits.maxBufferedBytes`',
    rawLimits.maxBufferedBytes,
    1 << 20,
    1024,
  );
  const maxEventBytes = integer(
    'sseMiddleware: `limits.maxEventBytes`',
    rawLimits.maxEventBytes,
    Math.min(262_144, maxBufferedBytes),
    64,
  );
  if (maxEventBytes > maxBufferedBytes) {
    throw new OptionError(
      `sseMiddleware: \`limits.maxEventBytes\` (${maxEventBytes}) must not exceed \`limits.maxBufferedBytes\` (${maxBufferedBytes}): such an event would close every stream it is sent to.`,
    );
  }
  const limits = {
    maxConnections: integer(
      'sseMiddleware: `limits.maxConnections`',
      rawLimits.maxConnections,
      Number.POSITIVE_INFINITY,
      1,
      true,
    ),
    maxConnectionsPerUser: integer(
      'sseMiddleware: `limits.maxConnectionsPerUser`',
      rawLimits.maxConnectionsPerUser,
      Number.POSITIVE_INFINITY,
      1,
      true,
    ),
    maxChannelsPerConnection: integer(
      'sseMiddleware: `limits.maxChannelsPerConnection`',
      rawLimits.maxChannelsPerConnection,
      100,
      1,
    ),
    maxBufferedBytes,
    maxEventBytes,
    retryAfterSeconds: integer(
      'sseMiddleware: `limits.retryAfterSeconds`',
      rawLimits.retryAfterSeconds,
      Math.max(1, Math.ceil(retryMs / 1000)),
      0,
    ),
    maxConnectionAgeMs: integer(
      'sseMiddleware: `limits.maxConnectionAgeMs`',
      rawLimits.maxConnectionAgeMs,
      Number.POSITIVE_INFINITY,
      100,
      true,
    ),
    onUserLimit: userLimitPolicy(rawLimits.onUserLimit),
  };

  let admin: GatewayConfig['admin'];
  if (options.admin !== undefined) {
    if (!isPlainObject(options.admin) || typeof options.admin.authorize !== 'function') {
      throw new OptionError(
        'sseMiddleware: `admin` needs an `authorize(req)` function deciding who may read stats and publish over HTTP.',
      );
    }
    checkKeys('sseMiddleware: admin', options.admin, ADMIN_KEYS);
    admin = {
      authorize: options.admin.authorize,
      maxBodyBytes: integer('sseMiddleware: `admin.maxBodyBytes`', options.admin.maxBodyBytes, 65_536, 1),
    };
  }

  const logger = parseLogger('sseMiddleware', options.logger);
  const config: GatewayConfig = {
    path: path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path,
    namespaces,
    authentication,
    userScoping: options.userScoping ?? false,
    authorize: optionalFunction('sseMiddleware: `authorize`', options.authorize),
    filter: optionalFunction('sseMiddleware: `filter`', options.filter),
    authorizeCacheMs: integer('sseMiddleware: `authorizeCacheMs`', options.authorizeCacheMs, 5000, 0),
    authorizeCacheKey: optionalFunction('sseMiddleware: `authorizeCacheKey`', options.authorizeCacheKey),
    bus: options.bus,
    heartbeatMs,
    retryMs,
    deadPeerTimeoutMs: deadPeerTimeout(options.deadPeerTimeoutMs),
    replay,
    limits,
    admin,
    publishers: parsePublishers(options.publishers, namespaces),
    logger,
    health: booleanOption('sseMiddleware: `health`', options.health, true),
    audit: optionalFunction('sseMiddleware: `audit`', options.audit),
  };
  warnOddOptions(config);
  return config;
}

function warnOddOptions(config: GatewayConfig): void {
  const { logger } = config;
  if (config.heartbeatMs > 60_000) {
    logger.warn(
      `sse-gateway: heartbeatMs is ${config.heartbeatMs}; many proxies cut streams idle for 60 s, so keep it below that.`,
    );
  }
  if (config.heartbeatMs < 1000) {
    logger.warn(`sse-gateway: heartbeatMs is ${config.heartbeatMs}; sub-second heartbeats cost bandwidth for nothing.`);
  }
  if (config.deadPeerTimeoutMs !== false && config.deadPeerTimeoutMs < 10_000) {
    logger.warn(
      `sse-gateway: deadPeerTimeoutMs is ${config.deadPeerTimeoutMs}; a live client on a poor network (a train, a lift) can go that long without acknowledging data and would be cut off.`,
    );
  }
  const scopedNamespaces = [...config.namespaces].filter(([, p]) => p.userScoped).map(([n]) => n);
  if (config.authentication === false && (config.userScoping || scopedNamespaces.length > 0)) {
    logger.warn(
      'sse-gateway: user scoping is on but `authentication` is false, so connections without req.user are anonymous and see no user-scoped channel or event.',
    );
  }
  if (!config.userScoping && scopedNamespaces.length > 0) {
    logger.warn(
      `sse-gateway: namespaces ${scopedNamespaces.join(', ')} are userScoped while \`userScoping\` is false; they are enforced anyway (fail closed). Set userScoping: true to say so.`,
    );
  }
}

/**
 * Options: parsed once at creation into a complete internal config. Wrong values throw a TypeError
 * that says how to fix them; odd-but-valid ones are reported through the logger.
 */
import type { Request } from 'express';
import { isSegment } from './channels';
import type { Bus, ChannelPolicy, Logger, MaybePromise, Principal, SseEvent, SseOptions } from './types';

/** The complete, validated configuration a gateway runs on. */
export interface GatewayConfig {
  readonly path: string;
  readonly namespaces: ReadonlyMap<string, Readonly<ChannelPolicy>>;
  readonly authentication: boolean | ((req: Request) => MaybePromise<Principal | null | undefined>);
  readonly userScoping: boolean;
  readonly authorize: ((principal: Principal, channel: string, req: Request) => MaybePromise<boolean>) | undefined;
  readonly filter: ((principal: Principal, event: SseEvent) => MaybePromise<boolean>) | undefined;
  readonly authorizeCacheMs: number;
  readonly bus: Bus | undefined;
  readonly heartbeatMs: number;
  readonly retryMs: number;
  readonly replay: { readonly size: number; readonly ttlMs: number } | false;
  readonly limits: {
    readonly maxConnections: number;
    readonly maxConnectionsPerUser: number;
    readonly maxChannelsPerConnection: number;
    readonly maxBufferedBytes: number;
    readonly retryAfterSeconds: number;
    readonly maxConnectionAgeMs: number;
  };
  readonly admin:
    | { readonly authorize: (req: Request) => MaybePromise<boolean>; readonly maxBodyBytes: number }
    | undefined;
  readonly logger: Logger;
}

const OPTION_KEYS = [
  'path',
  'channels',
  'authentication',
  'userScoping',
  'authorize',
  'filter',
  'authorizeCacheMs',
  'bus',
  'heartbeatMs',
  'retryMs',
  'replay',
  'limits',
  'admin',
  'logger',
] as const;
const POLICY_KEYS = ['authorize', 'filter', 'userScoped', 'replay'] as const;
const LIMIT_KEYS = [
  'maxConnections',
  'maxConnectionsPerUser',
  'maxChannelsPerConnection',
  'maxBufferedBytes',
  'retryAfterSeconds',
  'maxConnectionAgeMs',
] as const;
const REPLAY_KEYS = ['size', 'ttlMs'] as const;
const ADMIN_KEYS = ['authorize', 'maxBodyBytes'] as const;

/** Well-known misspellings that edit distance would not find. */
const ALIASES: Readonly<Record<string, string>> = {
  heartbeat: 'heartbeatMs',
  heartbeatInterval: 'heartbeatMs',
  retry: 'retryMs',
  auth: 'authentication',
  authenticate: 'authentication',
  scoping: 'userScoping',
  acl: 'authorize',
  route: 'path',
  namespaces: 'channels',
};

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

function suggest(key: string, known: readonly string[]): string {
  const alias = ALIASES[key];
  if (alias && known.includes(alias)) return `; did you mean \`${alias}\`?`;
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best ? `; did you mean \`${best}\`?` : `; known options are ${known.map((k) => `\`${k}\``).join(', ')}.`;
}

function checkKeys(where: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new TypeError(`${where}: unknown option \`${key}\`${suggest(key, known)}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function integer(where: string, value: unknown, fallback: number, min: number, allowInfinity = false): number {
  if (value === undefined) return fallback;
  if (allowInfinity && value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(
      `${where} must be an integer >= ${min}${allowInfinity ? ' (or Infinity)' : ''} (received ${JSON.stringify(value) ?? String(value)}).`,
    );
  }
  return value;
}

function optionalFunction<F>(where: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new TypeError(`${where} must be a function (received ${typeof value}).`);
  return value as F;
}

function parsePolicy(namespace: string, value: unknown): ChannelPolicy {
  const where = `sseMiddleware: channels.${namespace}`;
  if (value === true || value === undefined) return {};
  if (!isPlainObject(value))
    throw new TypeError(`${where} must be a ChannelPolicy object ({ authorize?, filter?, userScoped?, replay? }).`);
  checkKeys(where, value, POLICY_KEYS);
  if (value.userScoped !== undefined && typeof value.userScoped !== 'boolean') {
    throw new TypeError(`${where}.userScoped must be a boolean.`);
  }
  if (value.replay !== undefined && typeof value.replay !== 'boolean') {
    throw new TypeError(`${where}.replay must be a boolean (false: events of this namespace are not replayed).`);
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
    throw new TypeError(
      "sseMiddleware: `channels` is required: a list of namespaces (['logs', 'metrics']) or a map of namespace to policy ({ alerts: { userScoped: true } }).",
    );
  }
  for (const [name, policy] of entries) {
    if (typeof name !== 'string' || !isSegment(name)) {
      throw new TypeError(
        `sseMiddleware: channel namespace ${JSON.stringify(name)} is invalid; use 1-128 characters of [A-Za-z0-9_.-] (no ':' or '*').`,
      );
    }
    namespaces.set(name, parsePolicy(name, policy));
  }
  if (namespaces.size === 0) throw new TypeError('sseMiddleware: `channels` must name at least one namespace.');
  return namespaces;
}

function parseLogger(value: unknown): Logger {
  if (value === undefined) return console;
  if (!isPlainObject(value) || typeof value.warn !== 'function' || typeof value.error !== 'function') {
    throw new TypeError('sseMiddleware: `logger` must have `warn` and `error` methods (console works).');
  }
  return value as unknown as Logger;
}

function isBus(value: unknown): value is Bus {
  return (
    isPlainObjectLike(value) &&
    typeof value.publish === 'function' &&
    typeof value.listen === 'function' &&
    typeof value.watch === 'function' &&
    typeof value.replay === 'function'
  );
}

function isPlainObjectLike(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Validate `options` and fill in every default.
 *
 * @throws TypeError with a fix-it message for wrong types or unknown keys.
 */
export function parseOptions(options: SseOptions): GatewayConfig {
  if (!isPlainObject(options)) {
    throw new TypeError("sseMiddleware(options) needs an options object, e.g. sseMiddleware({ channels: ['logs'] }).");
  }
  checkKeys('sseMiddleware', options, OPTION_KEYS);
  const path = options.path ?? '/events';
  if (typeof path !== 'string' || !path.startsWith('/') || path.length < 1) {
    throw new TypeError(
      `sseMiddleware: \`path\` must be a string starting with '/' (received ${JSON.stringify(path)}).`,
    );
  }
  const namespaces = parseNamespaces(options.channels);
  const authentication = options.authentication ?? false;
  if (typeof authentication !== 'boolean' && typeof authentication !== 'function') {
    throw new TypeError(
      'sseMiddleware: `authentication` must be false, true (use req.user) or a function (req) => principal.',
    );
  }
  if (options.userScoping !== undefined && typeof options.userScoping !== 'boolean') {
    throw new TypeError('sseMiddleware: `userScoping` must be a boolean.');
  }
  if (options.bus !== undefined && !isBus(options.bus)) {
    throw new TypeError('sseMiddleware: `bus` must be a Bus, e.g. createMemoryBus() or createRedisBus({ url }).');
  }
  const retryMs = integer('sseMiddleware: `retryMs`', options.retryMs, 5000, 0);
  const heartbeatMs = integer('sseMiddleware: `heartbeatMs`', options.heartbeatMs, 25_000, 1);

  let replay: GatewayConfig['replay'];
  if (options.replay === false) replay = false;
  else if (options.replay === undefined) replay = { size: 1000, ttlMs: 600_000 };
  else if (isPlainObject(options.replay)) {
    checkKeys('sseMiddleware: replay', options.replay, REPLAY_KEYS);
    replay = {
      size: integer('sseMiddleware: `replay.size`', options.replay.size, 1000, 1),
      ttlMs: integer('sseMiddleware: `replay.ttlMs`', options.replay.ttlMs, 600_000, 1),
    };
  } else throw new TypeError('sseMiddleware: `replay` must be { size?, ttlMs? } or false.');

  const rawLimits = options.limits ?? {};
  if (!isPlainObject(rawLimits)) throw new TypeError('sseMiddleware: `limits` must be an object.');
  checkKeys('sseMiddleware: limits', rawLimits, LIMIT_KEYS);
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
    maxBufferedBytes: integer('sseMiddleware: `limits.maxBufferedBytes`', rawLimits.maxBufferedBytes, 1 << 20, 1024),
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
  };

  let admin: GatewayConfig['admin'];
  if (options.admin !== undefined) {
    if (!isPlainObject(options.admin) || typeof options.admin.authorize !== 'function') {
      throw new TypeError(
        'sseMiddleware: `admin` needs an `authorize(req)` function deciding who may read stats and publish over HTTP.',
      );
    }
    checkKeys('sseMiddleware: admin', options.admin, ADMIN_KEYS);
    admin = {
      authorize: options.admin.authorize,
      maxBodyBytes: integer('sseMiddleware: `admin.maxBodyBytes`', options.admin.maxBodyBytes, 65_536, 1),
    };
  }

  const logger = parseLogger(options.logger);
  const config: GatewayConfig = {
    path: path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path,
    namespaces,
    authentication,
    userScoping: options.userScoping ?? false,
    authorize: optionalFunction('sseMiddleware: `authorize`', options.authorize),
    filter: optionalFunction('sseMiddleware: `filter`', options.filter),
    authorizeCacheMs: integer('sseMiddleware: `authorizeCacheMs`', options.authorizeCacheMs, 5000, 0),
    bus: options.bus,
    heartbeatMs,
    retryMs,
    replay,
    limits,
    admin,
    logger,
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

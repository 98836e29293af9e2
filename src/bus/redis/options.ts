/**
 * Options of `createRedisBus()`, parsed once into a complete config in the dialect of `util/validate`:
 * unknown keys get a "did you mean", wrong values throw an `OptionError` (a TypeError) saying how to fix them.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Logger, RedisBusOptions } from '../../types';
import { boolean, checkKeys, integer, isPlainObject, OptionError, logger as parseLogger } from '../../util/validate';
import { DEFAULT_REDIS_HISTORY, type HistoryWindow, parseHistoryWindow } from '../history';
import { isCluster } from './cluster';

/** The complete, validated configuration a Redis bus runs on. */
export interface RedisBusConfig {
  /** Where the connections come from: a URL (the bus owns them) or the user's client. */
  readonly connection: { readonly url: string } | { readonly redis: Redis | Cluster };
  readonly prefix: string;
  readonly history: HistoryWindow;
  readonly logger: Logger;
  readonly watchdogMs: number;
  readonly sharded: boolean;
  readonly legacyPatterns: boolean;
  readonly publishTimeoutMs: number;
}

const OPTION_KEYS = [
  'url',
  'redis',
  'prefix',
  'history',
  'logger',
  'watchdogMs',
  'sharded',
  'legacyPatterns',
  'publishTimeoutMs',
] as const;
/** Misspellings edit distance would not find. */
const HINTS: Readonly<Record<string, string>> = {
  client: 'redis',
  cluster: 'redis',
  keyPrefix: 'prefix',
  watchdog: 'watchdogMs',
  timeout: 'publishTimeoutMs',
  publishTimeout: 'publishTimeoutMs',
  replay: 'history',
};
const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;
const DEFAULT_WATCHDOG_MS = 5000;
const DEFAULT_PUBLISH_TIMEOUT_MS = 5000;
/** Publish ids live 2 minutes in Redis (scripts.ts): a deadline must end well before. */
const MAX_PUBLISH_TIMEOUT_MS = 60_000;

/**
 * Check `options` and fill in the defaults.
 *
 * @throws OptionError naming the option and the fix.
 */
export function parseRedisBusOptions(options: RedisBusOptions): RedisBusConfig {
  if (!isPlainObject(options as unknown)) {
    throw new OptionError('createRedisBus needs an options object: createRedisBus({ url: "redis://localhost:6379" }).');
  }
  checkKeys('createRedisBus', options, OPTION_KEYS, HINTS);
  const prefix = options.prefix ?? 'sse';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new OptionError(
      `createRedisBus: \`prefix\` must be 1-64 characters of [A-Za-z0-9_.:-] (received ${JSON.stringify(prefix)}); it becomes the hash tag {${String(prefix)}}.`,
    );
  }
  // The public type is structural (no ioredis in the package's declarations); a client is checked here.
  const redis = options.redis as Redis | Cluster | undefined;
  if (redis !== undefined && (typeof redis !== 'object' || typeof redis.duplicate !== 'function')) {
    throw new OptionError('createRedisBus: `redis` must be an ioredis client (new Redis(…) or new Cluster(…)).');
  }
  let connection: RedisBusConfig['connection'];
  if (redis !== undefined) connection = { redis };
  else if (typeof options.url === 'string') connection = { url: options.url };
  else {
    throw new OptionError('createRedisBus needs `url` (e.g. "redis://localhost:6379") or `redis` (an ioredis client).');
  }
  const onCluster = redis !== undefined && isCluster(redis);
  const where = 'createRedisBus: `publishTimeoutMs`';
  const publishTimeoutMs = integer(where, options.publishTimeoutMs, DEFAULT_PUBLISH_TIMEOUT_MS, 1);
  if (publishTimeoutMs > MAX_PUBLISH_TIMEOUT_MS) {
    throw new OptionError(`${where} must be at most ${MAX_PUBLISH_TIMEOUT_MS} (received ${publishTimeoutMs}).`);
  }
  return {
    connection,
    prefix,
    history: parseHistoryWindow('createRedisBus', 'history', options.history, DEFAULT_REDIS_HISTORY, '', {
      maxBytes:
        'a Redis stream is trimmed by count (MAXLEN), so `history.size` is its bound: about 1.15 × (payload + 150) bytes of Redis memory per event.',
    }),
    logger: parseLogger('createRedisBus', options.logger),
    watchdogMs: integer('createRedisBus: `watchdogMs`', options.watchdogMs, DEFAULT_WATCHDOG_MS, 1),
    sharded: boolean('createRedisBus: `sharded`', options.sharded, onCluster),
    legacyPatterns: boolean('createRedisBus: `legacyPatterns`', options.legacyPatterns, false),
    publishTimeoutMs,
  };
}

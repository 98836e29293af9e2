/**
 * The Redis connections of a bus: the slice of the ioredis surface it uses, how its own connections are
 * configured, timeouts, outage logging and a clean quit. ioredis is an optional peer and is loaded only
 * when a bus creates its own connections.
 */
import type { RedisOptions } from 'ioredis';
import { SseError } from '../../protocol/errors';
import type { Logger } from '../../types';
import type { ScriptRunner } from './scripts';

/** How long one attempt of a publish, or a fetch or replay, may wait for Redis before it counts as failed. */
export const COMMAND_TIMEOUT_MS = 2000;

/** The part of the ioredis surface the bus uses, shared by `Redis` and `Cluster`. */
export interface CommandClient extends ScriptRunner {
  readonly status: string;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  ping(): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  spublish(channel: string, message: string): Promise<unknown>;
}

/** A connection in subscriber mode. */
export interface SubscriberClient extends CommandClient {
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  psubscribe(...patterns: string[]): Promise<unknown>;
  punsubscribe(...patterns: string[]): Promise<unknown>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
}

/**
 * Connections the bus creates fail fast instead of queueing: a publish must reject while Redis is
 * down, and a command already sent when the link drops must not be replayed behind the caller's back.
 * Resubscribing is the bus's job too, because it must fetch what was missed in the same step.
 */
export const OWN_CONNECTION: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  autoResubscribe: false,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
};

type IoRedisModule = typeof import('ioredis');

/** The ioredis module, or a TypeError saying how to install it. */
export function loadIoRedis(): IoRedisModule {
  try {
    return require('ioredis') as IoRedisModule;
  } catch (cause) {
    throw new TypeError(
      `createRedisBus({ url }) needs the optional peer dependency ioredis: run \`npm install ioredis\` (${(cause as Error).message}).`,
    );
  }
}

/** `promise`, or a rejection after `ms` (the timer does not keep the process alive). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms (${what})`)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** A Redis without sharded pub/sub (before 7.0) answers SPUBLISH/SSUBSCRIBE with an unknown-command error. */
export function lacksShardedPubSub(cause: unknown): boolean {
  return cause instanceof Error && /unknown (redis )?command/i.test(cause.message);
}

/** `ERR_SSE_BUS_UNAVAILABLE` for a publish that could not reach Redis. */
export function unavailable(what: string, cause?: unknown): SseError {
  const reason = cause instanceof Error ? `: ${cause.message}` : '';
  return new SseError(
    'ERR_SSE_BUS_UNAVAILABLE',
    `Redis bus cannot ${what}${reason}. The event was not published; retry when Redis is reachable.`,
    503,
  );
}

/**
 * Report each outage of `client` once (ioredis retries every few hundred ms), and its end.
 *
 * @param closed - true once the bus is closed: errors while shutting down are expected.
 */
export function logOutages(client: CommandClient, role: string, logger: Logger, closed: () => boolean): void {
  let down = false;
  client.on('error', (error) => {
    if (closed() || down) return;
    down = true;
    logger.error(`sse-gateway: Redis bus ${role} connection failed; retrying`, error);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    logger.warn(`sse-gateway: Redis bus ${role} connection restored.`);
  });
}

/** QUIT when connected (clean server side), otherwise just stop reconnecting. */
export async function quit(client: CommandClient): Promise<void> {
  if (client.status === 'ready') {
    try {
      await withTimeout(client.quit(), COMMAND_TIMEOUT_MS, 'quit');
      return;
    } catch {
      // Fall through to a hard disconnect.
    }
  }
  if (client.status === 'end') return;
  const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
  client.disconnect(false);
  // Between retries there is no socket: disconnect only cancels the retry timer, and no `end` follows.
  if (client.status === 'reconnecting' || client.status === 'end') return;
  await withTimeout(ended, COMMAND_TIMEOUT_MS, 'disconnect').catch(() => undefined);
}

/**
 * Publisher credentials: the `publishers` option checked at creation, and the Bearer token of a request
 * matched against every configured token in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseTopic, type Topic } from '../protocol/channels';
import { checkKeys, integer, isPlainObject, OptionError } from '../util/validate';

/** Shortest accepted publisher token, in characters: about 96 bits in base64, enough against guessing. */
export const MIN_TOKEN_LENGTH = 16;
/** Largest publish body of a publisher unless it sets `maxBodyBytes`: room for a batch of 100 events. */
export const DEFAULT_PUBLISH_BODY_BYTES = 1_048_576;

const PUBLISHER_KEYS = ['token', 'channels', 'maxBodyBytes'] as const;
const PUBLISHER_HINTS = { tokens: 'token', secret: 'token', patterns: 'channels', scopes: 'channels' };
/** Visible ASCII without spaces: what fits an `Authorization` header unchanged. */
const TOKEN = /^[\x21-\x7e]+$/;
const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;

/** One service allowed to publish over HTTP, as the gateway runs it. */
export interface Publisher {
  /** The key under `publishers`, used in logs (never the token). */
  readonly name: string;
  /** The channels and `prefix:*` patterns it may publish to. */
  readonly topics: readonly Topic[];
  /** Largest accepted body, in bytes. */
  readonly maxBodyBytes: number;
}

/** Every publisher of a gateway, found by the token a request presents. */
export interface PublisherTable {
  /** The publishers, by name. */
  readonly publishers: ReadonlyMap<string, Publisher>;
  /**
   * The publisher whose token the `Authorization: Bearer` header carries, or `undefined`. Every configured
   * token is compared, each in constant time over SHA-256 digests, so the answer time says nothing about
   * how close a guess was or which publisher it matched.
   *
   * @param authorization - the request's `Authorization` header.
   */
  identify(authorization: string | undefined): Publisher | undefined;
}

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

function parseTokens(where: string, value: unknown): string[] {
  const tokens = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
  if (tokens === undefined || tokens.length === 0) {
    throw new OptionError(
      `${where}.token must be a token string or a non-empty list of them (several during a rotation).`,
    );
  }
  for (const token of tokens) {
    // The value itself is never echoed: option errors end up in logs.
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || token.length > 4096 || !TOKEN.test(token)) {
      throw new OptionError(
        `${where}.token: each token must be a string of ${MIN_TOKEN_LENGTH}-4096 visible ASCII characters without spaces (e.g. crypto.randomBytes(32).toString('base64url')).`,
      );
    }
  }
  return tokens as string[];
}

function parseTopics(where: string, value: unknown, namespaces: ReadonlyMap<string, unknown>): Topic[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new OptionError(`${where}.channels must be a non-empty list of channels or patterns, e.g. ['logs:*'].`);
  }
  return value.map((name: unknown) => {
    const topic = typeof name === 'string' ? parseTopic(name, true) : null;
    if (topic === null) {
      throw new OptionError(
        `${where}.channels: ${JSON.stringify(name)} is not a channel or pattern (namespace(:segment)*, optionally ending in :*).`,
      );
    }
    if (!namespaces.has(topic.namespace)) {
      throw new OptionError(
        `${where}.channels: ${topic.name} is outside the gateway's namespaces (${[...namespaces.keys()].join(', ')}).`,
      );
    }
    return topic;
  });
}

/**
 * Validate the `publishers` option of `sseMiddleware()`.
 *
 * @param value - the option as given.
 * @param namespaces - the gateway's namespaces; every pattern must fall in one.
 * @returns the table, or `undefined` when the option is absent.
 * @throws OptionError for a wrong shape, a short or malformed token, a token shared by two publishers, or a
 * channel outside `namespaces`.
 * @example
 * parsePublishers({ etl: { token: process.env.ETL_TOKEN, channels: ['logs:*'] } }, namespaces);
 */
export function parsePublishers(value: unknown, namespaces: ReadonlyMap<string, unknown>): PublisherTable | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    throw new OptionError(
      "sseMiddleware: `publishers` must map publisher names to { token, channels }, e.g. { etl: { token, channels: ['logs:*'] } }.",
    );
  }
  const publishers = new Map<string, Publisher>();
  const entries: { digest: Buffer; publisher: Publisher }[] = [];
  for (const [name, options] of Object.entries(value)) {
    const where = `sseMiddleware: publishers.${name}`;
    if (!isPlainObject(options)) throw new OptionError(`${where} must be { token, channels }.`);
    checkKeys(where, options, PUBLISHER_KEYS, PUBLISHER_HINTS);
    const tokens = parseTokens(where, options.token);
    const publisher: Publisher = {
      name,
      topics: parseTopics(where, options.channels, namespaces),
      maxBodyBytes: integer(`${where}.maxBodyBytes`, options.maxBodyBytes, DEFAULT_PUBLISH_BODY_BYTES, 64),
    };
    for (const token of tokens) {
      const hash = digest(token);
      const twin = entries.find((entry) => entry.digest.equals(hash));
      if (twin !== undefined) {
        throw new OptionError(
          `${where}.token: a token is configured twice (also for publishers.${twin.publisher.name}); give each publisher its own tokens.`,
        );
      }
      entries.push({ digest: hash, publisher });
    }
    publishers.set(name, publisher);
  }
  return {
    publishers,
    identify(authorization) {
      const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
      if (token === undefined) return undefined;
      const presented = digest(token);
      let found: Publisher | undefined;
      for (const entry of entries) {
        // No early exit: every token is compared whatever matched before.
        if (timingSafeEqual(entry.digest, presented)) found ??= entry.publisher;
      }
      return found;
    },
  };
}

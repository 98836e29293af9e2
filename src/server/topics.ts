/**
 * Reading subscriptions from a request: the channel names asked for, parsed once per distinct name (shared
 * by every stream that asks for it) and checked against the configured namespaces.
 */
import { LRUCache } from 'lru-cache';
import { parseTopic, type Topic } from '../protocol/channels';
import { SseError } from '../protocol/errors';

/** Listed names in an error are cut to this many, each to 140 characters, so a 10 KB query is not echoed back. */
const MAX_NAMED = 10;

/** At most {@link MAX_NAMED} names, each cut to 140 characters, for an error message. */
export function preview(names: readonly string[]): string[] {
  return names.slice(0, MAX_NAMED).map((name) => (name.length > 140 ? `${name.slice(0, 140)}…` : name));
}

/** `a, b, …` for a message, from {@link preview}. */
function listed(names: readonly string[]): string {
  const shown = preview(names);
  return `${shown.join(', ')}${names.length > shown.length ? ', …' : ''}`;
}

/** The channel names a request asks for: `channels=a,b` (repeatable) and `channel=a` (repeatable). */
export function requestedChannels(params: URLSearchParams): string[] {
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

/**
 * The 400 for malformed or unknown channels. It names only the offending channels, never the configured
 * namespaces: an anonymous client must not learn what else the BFF streams.
 */
export function invalidChannels(names: readonly string[]): SseError {
  return new SseError(
    'ERR_SSE_INVALID_CHANNEL',
    `Malformed or unknown channel(s): ${listed(names)}. A channel is namespace(:segment)* with segments of 1-128 [A-Za-z0-9_.-], optionally ending in :*, and its namespace must be one this server streams.`,
    400,
    { channels: preview(names) },
  );
}

/** The 403 for channels `authorize` refused. */
export function forbiddenChannels(names: readonly string[]): SseError {
  return new SseError(
    'ERR_SSE_FORBIDDEN_CHANNEL',
    `Not allowed to subscribe to ${listed(names)}; nothing was subscribed.`,
    403,
    { channels: preview(names) },
  );
}

/** The 400 for more channels than a stream may have. */
export function tooManyChannels(count: number, limit: number): SseError {
  return new SseError(
    'ERR_SSE_TOO_MANY_CHANNELS',
    `${count} channels requested; at most ${limit} per stream. Use a pattern such as dashboards:* instead.`,
    400,
    { limit },
  );
}

/** Parses subscription names against the configured namespaces, caching the parsed topics. */
export class TopicParser {
  /** Parsed subscriptions, shared by every connection that asks for the same name; bounded by total length. */
  private readonly cache = new LRUCache<string, Topic>({
    max: 10_000,
    maxSize: 1_000_000,
    sizeCalculation: (topic) => 2 * topic.name.length + 64,
  });

  /**
   * @param namespaces - the allowed namespaces.
   * @param maxChannels - channels one stream may ask for.
   */
  constructor(
    private readonly namespaces: ReadonlyMap<string, unknown>,
    private readonly maxChannels: number,
  ) {}

  /** The topic for `name`, or `null` when it is malformed or its namespace is not configured. */
  parse(name: string): Topic | null {
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    const topic = parseTopic(name, true);
    if (topic === null || !this.namespaces.has(topic.namespace)) return null;
    this.cache.set(name, topic);
    return topic;
  }

  /** The topics of a stream request, or the 400 that answers it. */
  parseAll(names: readonly string[]): Topic[] | SseError {
    if (names.length === 0) {
      return new SseError('ERR_SSE_NO_CHANNELS', 'Name at least one channel: ?channels=logs:ws1,metrics:ws1', 400, {
        channels: [],
      });
    }
    if (names.length > this.maxChannels) return tooManyChannels(names.length, this.maxChannels);
    const topics: Topic[] = [];
    const invalid: string[] = [];
    for (const name of names) {
      const topic = this.parse(name);
      if (topic === null) invalid.push(name);
      else topics.push(topic);
    }
    return invalid.length > 0 ? invalidChannels(invalid) : topics;
  }
}

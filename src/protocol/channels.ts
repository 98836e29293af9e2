/**
 * Channel grammar: `namespace(:segment)*`, segments of 1–128 `[A-Za-z0-9_.-]`, and subscription
 * patterns ending in a `*` segment (`dashboards:*`), which match one or more further segments.
 */

/** Longest segment, in characters. */
export const MAX_SEGMENT_LENGTH = 128;

const SEGMENT = /^[A-Za-z0-9_.-]{1,128}$/;

/** A parsed subscription: an exact channel or a prefix pattern. */
export interface Topic {
  /** As requested, e.g. `dashboards:*` or `logs:ws1:wf2`. */
  readonly name: string;
  /** The first segment. */
  readonly namespace: string;
  /** For a pattern, the part before `:*` (`dashboards`); for a channel, the channel itself. */
  readonly key: string;
  /** True for `…:*`. */
  readonly pattern: boolean;
  /** All segments, without the trailing `*`. */
  readonly segments: readonly string[];
}

/** A whole concrete channel in one linear pass (the `:` separators make it unambiguous). */
const CHANNEL = /^[A-Za-z0-9_.-]{1,128}(?::[A-Za-z0-9_.-]{1,128})*$/;

/**
 * True when `name` is a concrete channel of the grammar (`namespace(:segment)*`, no wildcard): the
 * publish-time check, without building a {@link Topic}. Any value may be passed; only a string can pass.
 *
 * @param name - the channel as a publisher or a request wrote it.
 * @example
 * if (!isChannel(req.body.channel)) throw new SseError('ERR_SSE_INVALID_CHANNEL', 'Not a channel.', 400);
 */
export function isChannel(name: unknown): name is string {
  return typeof name === 'string' && name.length <= 4096 && CHANNEL.test(name);
}

/**
 * True when `name` is one segment of the grammar: 1–128 characters of `[A-Za-z0-9_.-]`, so no `:`, `,`
 * or `*`. Check every request value that becomes part of a channel with it: a value such as
 * `wf1,logs:etl:ws2:*` would otherwise add channels. Any value may be passed (a query parameter may be an
 * array); only a string can pass.
 *
 * @param name - one value meant as one segment, e.g. `req.query.workflow_id`.
 * @example
 * const { workspace_id: ws, workflow_id: wf } = req.query;
 * if (!isSegment(ws) || !isSegment(wf)) throw new SseError('ERR_SSE_BAD_REQUEST', 'Bad ids.', 400);
 * url.searchParams.set('channels', `logs:etl:${ws}:${wf}`);
 */
export function isSegment(name: unknown): name is string {
  return typeof name === 'string' && SEGMENT.test(name);
}

/**
 * Parse a channel or, when `allowPattern`, a subscription pattern. Returns `null` when malformed.
 *
 * @param name - the channel as a client or publisher wrote it.
 * @param allowPattern - accept a trailing `*` segment. Defaults to `false`.
 */
export function parseTopic(name: string, allowPattern = false): Topic | null {
  if (name.length === 0 || name.length > 4096) return null;
  const parts = name.split(':');
  let pattern = false;
  if (parts[parts.length - 1] === '*') {
    if (!allowPattern || parts.length < 2) return null;
    pattern = true;
    parts.pop();
  }
  for (const part of parts) if (!SEGMENT.test(part)) return null;
  const namespace = parts[0] as string;
  return { name, namespace, key: parts.join(':'), pattern, segments: parts };
}

/**
 * Does `channel` fall under `topic`? An exact topic matches itself; `a:*` matches `a:x`, `a:x:y`, not `a`.
 *
 * @param topic - a parsed subscription.
 * @param channel - a concrete channel.
 */
export function matchChannel(topic: Topic, channel: string): boolean {
  if (!topic.pattern) return channel === topic.name;
  return channel.length > topic.key.length && channel.startsWith(topic.key) && channel[topic.key.length] === ':';
}

/**
 * The channel's namespace (its first segment).
 *
 * @param channel - a concrete channel.
 */
export function namespaceOf(channel: string): string {
  const colon = channel.indexOf(':');
  return colon === -1 ? channel : channel.slice(0, colon);
}

/**
 * Every key under which a pattern subscription to `channel` would be indexed:
 * for `a:b:c`, `a` and `a:b`.
 *
 * @param channel - a concrete channel.
 */
export function patternKeysOf(channel: string): string[] {
  const keys: string[] = [];
  let at = channel.indexOf(':');
  while (at !== -1) {
    keys.push(channel.slice(0, at));
    at = channel.indexOf(':', at + 1);
  }
  return keys;
}

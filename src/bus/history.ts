/**
 * The replay window, written once: the default windows, how a window option is read, and the check that
 * decides whether the events after a Last-Event-ID can still be served from a history or the client must
 * get `sse:reset`. The memory bus, the Redis bus and the gateway's `replay` option all use it.
 */
import { DEFAULTS } from '../defaults';
import { formatEventId } from '../protocol/event-id';
import type { ReplayQuery, ReplayResult, SseEvent } from '../types';
import { checkKeys, describe, integer, isPlainObject, OptionError } from '../util/validate';

/** How much history a bus keeps (or a gateway replays): a count of events and an age in ms. */
export interface HistoryWindow {
  readonly size: number;
  readonly ttlMs: number;
}

/**
 * Default history of a memory bus, which is the gateway's default `replay` window (from the one defaults
 * table): 1,000 events up to 10 minutes old.
 */
export const DEFAULT_HISTORY: HistoryWindow = DEFAULTS.replay;

/** Default shared history of a Redis bus: the last 10,000 events up to 10 minutes old. */
export const DEFAULT_REDIS_HISTORY: HistoryWindow = Object.freeze({ size: 10_000, ttlMs: 600_000 });

const WINDOW_KEYS = ['size', 'ttlMs'] as const;

/**
 * Read a `{ size?, ttlMs? }` option: absent fields take `fallback`'s, both must be integers >= 1.
 *
 * @param factory - who is asking, e.g. `createRedisBus`.
 * @param name - the option's name, e.g. `history`.
 * @param alternatives - other accepted values, for the message (e.g. ` or false`).
 * @throws OptionError for unknown keys (with a suggestion) and wrong values.
 */
export function parseHistoryWindow(
  factory: string,
  name: string,
  value: unknown,
  fallback: HistoryWindow,
  alternatives = '',
): HistoryWindow {
  if (value === undefined) return fallback;
  if (!isPlainObject(value)) {
    throw new OptionError(
      `${factory}: \`${name}\` must be { size?, ttlMs? }${alternatives} (received ${describe(value)}).`,
    );
  }
  checkKeys(`${factory}: ${name}`, value, WINDOW_KEYS);
  return {
    size: integer(`${factory}: \`${name}.size\``, value.size, fallback.size, 1),
    ttlMs: integer(`${factory}: \`${name}.ttlMs\``, value.ttlMs, fallback.ttlMs, 1),
  };
}

/** The query narrowed to what `window` still holds: a bus never promises more than it keeps. */
export function boundQuery(query: ReplayQuery, window: HistoryWindow): ReplayQuery {
  return {
    ...query,
    maxCount: Math.min(query.maxCount, window.size),
    maxAgeMs: Math.min(query.maxAgeMs, window.ttlMs),
  };
}

/** What a history holds for one sequence number: enough to decide, the event itself only when wanted. */
export interface HistoryRecord {
  readonly channel: string;
  readonly time: number;
}

/** A snapshot of an ordered history: its epoch, its newest sequence and a lookup by sequence. */
export interface HistorySnapshot<R extends HistoryRecord> {
  readonly epoch: string;
  readonly headSeq: number;
  /** The record with sequence `seq`, or `undefined` when it is no longer held (trimmed, expired, unreadable). */
  lookup(seq: number): R | undefined;
}

/**
 * Replay from an ordered history: every event after `last` up to the head whose channel matches, or why
 * not (`unknown-id` for a foreign epoch or a future id, `expired` when the gap is longer than
 * `query.maxCount`, or any event of it is missing or older than `query.maxAgeMs`).
 *
 * @param last - the parsed Last-Event-ID.
 * @param toEvent - turns a matching record into the event to send (records may be cheaper than events).
 * @example
 * replayFromHistory({ epoch, headSeq: seq, lookup: (s) => cache.peek(s) }, last, query, (event) => event);
 */
export function replayFromHistory<R extends HistoryRecord>(
  history: HistorySnapshot<R>,
  last: { readonly epoch: string; readonly seq: number },
  query: ReplayQuery,
  toEvent: (record: R) => SseEvent,
): ReplayResult {
  const { epoch, headSeq } = history;
  if (last.epoch !== epoch || last.seq > headSeq) return { ok: false, reason: 'unknown-id' };
  if (headSeq - last.seq > query.maxCount) return { ok: false, reason: 'expired' };
  const oldest = Date.now() - query.maxAgeMs;
  const events: SseEvent[] = [];
  for (let seq = last.seq + 1; seq <= headSeq; seq++) {
    const record = history.lookup(seq);
    if (record === undefined || record.time < oldest) return { ok: false, reason: 'expired' };
    if (query.match(record.channel)) events.push(toEvent(record));
  }
  return { ok: true, events, head: formatEventId(epoch, headSeq) };
}

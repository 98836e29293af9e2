/**
 * The replay window, written once: the default windows, how a window option is read, and the check that
 * decides whether the events after a Last-Event-ID can still be served from a history or the client must
 * get `sse:reset`. The memory bus, the Redis bus and the gateway's `replay` option all use it.
 *
 * Two different counts meet here. A bus's history counts every event of the bus (it has to hold the whole
 * gap after an id, whatever its channels); a replay window (`ReplayQuery.maxCount`, the gateway's
 * `replay.size`) counts only the missed events of the resuming stream's own channels. So a reconnect after
 * 50,000 events on other channels still replays its own dozen, as long as the bus holds the 50,000.
 */
import { formatEventId } from '../protocol/event-id';
import type { ReplayQuery, ReplayResult, SseEvent } from '../types';
import { checkKeys, describe, integer, isPlainObject, OptionError } from '../util/validate';

/** How much history a bus keeps (or a gateway replays): a count of events and an age in ms. */
export interface HistoryWindow {
  readonly size: number;
  readonly ttlMs: number;
}

/** A history window that is also bounded by the estimated memory of its events (the memory bus's). */
export interface HistoryBounds extends HistoryWindow {
  readonly maxBytes: number;
}

/**
 * Default history of a memory bus: up to 100,000 events, 32 MiB (estimated heap, see memory-history.ts) and
 * 10 minutes, whichever is reached first. With 1 KB events the bytes decide (about 9,000 events, 90 s at
 * 100 events/s); with small ones the count or the age does.
 */
export const DEFAULT_HISTORY: HistoryBounds = Object.freeze({
  size: 100_000,
  maxBytes: 32 * 1024 * 1024,
  ttlMs: 600_000,
});

/**
 * Default shared history of a Redis bus: the last 50,000 events up to 10 minutes old. Redis streams trim
 * by count only, so the count is its memory bound: about 1.15 × (payload + 150) bytes per event in Redis,
 * some 65 MB for 1 KB events.
 */
export const DEFAULT_REDIS_HISTORY: HistoryWindow = Object.freeze({ size: 50_000, ttlMs: 600_000 });

/**
 * Read a `{ size?, ttlMs? }` option (`{ size?, maxBytes?, ttlMs? }` when `fallback` has `maxBytes`): absent
 * fields take `fallback`'s, every field must be an integer >= 1.
 *
 * @param factory - who is asking, e.g. `createRedisBus`.
 * @param name - the option's name, e.g. `history`.
 * @param alternatives - other accepted values, for the message (e.g. ` or false`).
 * @param unsupported - keys this reader refuses with a reason of their own (e.g. `maxBytes` on Redis).
 * @throws OptionError for unknown keys (with a suggestion) and wrong values.
 */
export function parseHistoryWindow<W extends HistoryWindow>(
  factory: string,
  name: string,
  value: unknown,
  fallback: W,
  alternatives = '',
  unsupported: Readonly<Record<string, string>> = {},
): W {
  if (value === undefined) return fallback;
  const bytes = 'maxBytes' in fallback;
  const keys = bytes ? (['size', 'maxBytes', 'ttlMs'] as const) : (['size', 'ttlMs'] as const);
  if (!isPlainObject(value)) {
    const shape = keys.map((key) => `${key}?`).join(', ');
    throw new OptionError(`${factory}: \`${name}\` must be { ${shape} }${alternatives} (received ${describe(value)}).`);
  }
  for (const key of Object.keys(value)) {
    const reason = unsupported[key];
    if (reason !== undefined) throw new OptionError(`${factory}: \`${name}.${key}\` is not supported: ${reason}`);
  }
  checkKeys(`${factory}: ${name}`, value, keys);
  const window: HistoryWindow = {
    size: integer(`${factory}: \`${name}.size\``, value.size, fallback.size, 1),
    ttlMs: integer(`${factory}: \`${name}.ttlMs\``, value.ttlMs, fallback.ttlMs, 1),
  };
  if (!bytes) return window as W;
  const maxBytes = integer(
    `${factory}: \`${name}.maxBytes\``,
    value.maxBytes,
    (fallback as W & HistoryBounds).maxBytes,
    1,
  );
  return { ...window, maxBytes } as HistoryBounds as unknown as W;
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
 * The replay check as a scan of the gap after an id, one sequence at a time and in order, for a history
 * read in pages (the Redis bus). {@link replayFromHistory} is the same scan over a snapshot held in memory.
 *
 * The answer is `unknown-id` for a foreign epoch or an id ahead of the head, `expired` as soon as a
 * sequence of the gap is not held or is older than `query.maxAgeMs`, or more than `query.maxCount` events
 * of the gap match (those are the stream's own: other channels never count), and otherwise every matching
 * event of the gap, in order. Never part of the gap: the scan stops at the first reason to reset.
 */
export class GapScan<R extends HistoryRecord> {
  readonly #events: SseEvent[] = [];
  readonly #oldest: number;
  #next: number;
  #result: ReplayResult | undefined;

  /**
   * @param history - the epoch and head of the snapshot (the head is where the replay ends).
   * @param last - the parsed Last-Event-ID.
   * @param toEvent - turns a matching record into the event to send (records may be cheaper than events).
   */
  constructor(
    private readonly history: { readonly epoch: string; readonly headSeq: number },
    last: { readonly epoch: string; readonly seq: number },
    private readonly query: ReplayQuery,
    private readonly toEvent: (record: R) => SseEvent,
  ) {
    this.#oldest = Date.now() - query.maxAgeMs;
    this.#next = last.seq + 1;
    if (last.epoch !== history.epoch || last.seq > history.headSeq) this.#result = { ok: false, reason: 'unknown-id' };
    else if (last.seq === history.headSeq) this.finish();
  }

  /** The sequence {@link GapScan.feed} expects next. */
  get next(): number {
    return this.#next;
  }

  /** The answer, once the scan has one; `undefined` while more of the gap is needed. */
  get result(): ReplayResult | undefined {
    return this.#result;
  }

  /**
   * Feed the record of sequence {@link GapScan.next}, or `undefined` when the history does not hold it.
   *
   * @returns the answer, once there is one.
   */
  feed(record: R | undefined): ReplayResult | undefined {
    if (this.#result !== undefined) return this.#result;
    if (record === undefined || record.time < this.#oldest) return this.expire();
    if (this.query.match(record.channel)) {
      if (this.#events.length >= this.query.maxCount) return this.expire();
      this.#events.push(this.toEvent(record));
    }
    if (++this.#next > this.history.headSeq) this.finish();
    return this.#result;
  }

  private expire(): ReplayResult {
    this.#events.length = 0;
    this.#result = { ok: false, reason: 'expired' };
    return this.#result;
  }

  private finish(): void {
    this.#result = { ok: true, events: this.#events, head: formatEventId(this.history.epoch, this.history.headSeq) };
  }
}

/**
 * Replay from an ordered history: every event after `last` up to the head whose channel matches, or why
 * not (see {@link GapScan}: `unknown-id`, or `expired` when the gap is not wholly held and young enough, or
 * more than `query.maxCount` of its events match).
 *
 * @param last - the parsed Last-Event-ID.
 * @param toEvent - turns a matching record into the event to send (records may be cheaper than events).
 * @example
 * replayFromHistory({ epoch, headSeq: seq, lookup: (s) => history.get(s) }, last, query, (event) => event);
 */
export function replayFromHistory<R extends HistoryRecord>(
  history: HistorySnapshot<R>,
  last: { readonly epoch: string; readonly seq: number },
  query: ReplayQuery,
  toEvent: (record: R) => SseEvent,
): ReplayResult {
  const scan = new GapScan(history, last, query, toEvent);
  let result = scan.result;
  while (result === undefined) result = scan.feed(history.lookup(scan.next));
  return result;
}

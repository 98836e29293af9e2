/**
 * The memory bus's history: its events in sequence order, bounded by count, estimated bytes and age.
 *
 * Events arrive with consecutive sequence numbers and leave oldest first (by any of the three bounds), so
 * the history is a queue indexed by sequence: a lookup is one subtraction, a trim drops from the front, and
 * nothing is allocated up front (an lru-cache with `max: 100_000` preallocates about 5 MB per bus).
 */
import type { BusHistoryStatus, SseEvent } from '../types';
import type { HistoryBounds, HistoryWindow } from './history';

/**
 * What one event costs the heap besides its JSON, in bytes: the event object, its id, the queue's slots,
 * and the encoded frame's own header (measured with Node 20, see {@link estimateEventBytes}).
 */
const EVENT_OVERHEAD = 600;

/** Dropped slots at the front are reclaimed once there are this many and they are half the queue. */
const COMPACT_AFTER = 1024;

/**
 * The memory an event held by the history costs, estimated from its JSON: the JSON string itself, the
 * decoded payload (about as large), and the encoded frame built once for the streams that receive it
 * (the JSON again plus `id:`/`event:` lines), hence 3 × its length, plus its strings and a fixed overhead.
 * Measured on Node 20: 1 KB payloads take 3.7 KB each, 300 B ones 1.6 KB, 100 B ones 1.0 KB; the estimate
 * is within 10 % for JSON of Latin-1 text (other text takes up to twice as much in V8).
 *
 * @param jsonLength - the length of the payload's JSON.
 */
export function estimateEventBytes(event: SseEvent, jsonLength: number): number {
  let strings = event.id.length + event.channel.length;
  for (const user of event.users ?? []) strings += user.length + 16;
  return 3 * jsonLength + 2 * strings + EVENT_OVERHEAD;
}

/** A bounded, sequence-indexed queue of the last events of a memory bus. */
export class MemoryHistory {
  #bounds: HistoryBounds;
  #events: SseEvent[] = [];
  #sizes: number[] = [];
  /** Index in the arrays of the oldest event held; slots before it are dropped. */
  #front = 0;
  /** Sequence of the event at {@link MemoryHistory.#front}. */
  #firstSeq = 0;
  #bytes = 0;

  constructor(bounds: HistoryBounds) {
    this.#bounds = bounds;
  }

  /** The current bounds. */
  get bounds(): HistoryBounds {
    return this.#bounds;
  }

  /** Events held. */
  get count(): number {
    return this.#events.length - this.#front;
  }

  /**
   * Append the event of sequence `seq` (one more than the last one appended) and drop what no longer fits.
   *
   * @param bytes - its estimated memory ({@link estimateEventBytes}).
   */
  push(seq: number, event: SseEvent, bytes: number): void {
    if (this.count === 0 || seq !== this.#firstSeq + this.count) {
      this.clear();
      this.#firstSeq = seq;
    }
    this.#events.push(event);
    this.#sizes.push(bytes);
    this.#bytes += bytes;
    this.trim(event.time);
  }

  /** The event of sequence `seq`, or `undefined` when it is not held (never was, or dropped). */
  get(seq: number): SseEvent | undefined {
    const offset = seq - this.#firstSeq;
    if (offset < 0 || offset >= this.count) return undefined;
    return this.#events[this.#front + offset];
  }

  /**
   * Drop the oldest events while any bound is exceeded: more than `size` events, more than `maxBytes`, or
   * older than `ttlMs` at `now`. An event larger than `maxBytes` on its own is dropped too, so a replay
   * over it answers `expired` rather than skipping it.
   */
  trim(now = Date.now()): void {
    const { size, maxBytes, ttlMs } = this.#bounds;
    const oldest = now - ttlMs;
    while (this.count > 0) {
      const event = this.#events[this.#front] as SseEvent;
      if (this.count <= size && this.#bytes <= maxBytes && event.time >= oldest) break;
      this.#bytes -= this.#sizes[this.#front] as number;
      // Release the event now; the slot itself is reclaimed by the next compaction.
      (this.#events as (SseEvent | undefined)[])[this.#front] = undefined;
      this.#front++;
      this.#firstSeq++;
    }
    if (this.#front >= COMPACT_AFTER && this.#front * 2 >= this.#events.length) {
      this.#events = this.#events.slice(this.#front);
      this.#sizes = this.#sizes.slice(this.#front);
      this.#front = 0;
    }
  }

  /**
   * Keep at least `window` (count and age): the gateway asks for its replay window. The byte bound stays
   * as configured, since it is what protects the heap.
   */
  retain(window: HistoryWindow): void {
    const bounds = this.#bounds;
    this.#bounds = {
      size: Math.max(bounds.size, window.size),
      maxBytes: bounds.maxBytes,
      ttlMs: Math.max(bounds.ttlMs, window.ttlMs),
    };
  }

  /** Bounds and fill, for `bus.status().history`; events past their age are dropped first. */
  status(now = Date.now()): BusHistoryStatus {
    this.trim(now);
    const oldest = this.#events[this.#front];
    return {
      ...this.#bounds,
      events: this.count,
      bytes: this.#bytes,
      ...(oldest === undefined ? {} : { oldestAgeMs: Math.max(0, now - oldest.time) }),
    };
  }

  /** Drop everything. */
  clear(): void {
    this.#events = [];
    this.#sizes = [];
    this.#front = 0;
    this.#bytes = 0;
  }
}

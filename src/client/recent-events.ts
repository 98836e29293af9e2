/**
 * The leader tab's recent events: a ring bounded by count and bytes, with, for each channel of the shared
 * stream, the point from which the ring holds every event of that channel. A tab that joins with a kept
 * id (a reload, a page back from the back-forward cache, a client created with `lastEventId`) is served
 * the events after that id from here when the ring covers it, and told to reset otherwise.
 *
 * Ids are `<epoch>-<sequence>`, the sequence bus-wide: "after my id" is a comparison within one epoch.
 * An event of another epoch (the server's history started over) empties the ring.
 */
import { matchChannel, parseTopic, type Topic } from '../protocol/channels';
import { parseEventId } from '../protocol/event-id';
import type { ResetReason } from '../protocol/wire';
import type { ClientEvent } from './types';

/** The ring's bounds. */
export interface RecentEventsLimits {
  /** Most events kept. */
  readonly maxEvents: number;
  /** Most bytes kept, counted as the characters of each event's id, channel and JSON data. */
  readonly maxBytes: number;
}

/** The leader's bounds: 1,000 events and 1 MiB. */
export const RECENT_EVENTS_LIMITS: RecentEventsLimits = { maxEvents: 1000, maxBytes: 1 << 20 };

/** What a joining tab is given: the events after its id on the channels covered, and a reset for the others. */
export interface CatchUpAnswer {
  /** In publish order, each once. */
  readonly events: ClientEvent[];
  /** The channels that cannot be served, with the reason a stream's `sse:reset` would give. */
  readonly resets: { readonly channel: string; readonly reason: ResetReason }[];
}

interface Entry {
  readonly event: ClientEvent;
  readonly seq: number;
  readonly bytes: number;
}

/** A channel covered from the event after this sequence on, or `next`: from the next event on (it was reset). */
type Floor = number | 'next';

function sizeOf(event: ClientEvent): number {
  let data = 0;
  try {
    data = JSON.stringify(event.data)?.length ?? 0;
  } catch {
    // Not JSON (a custom EventSource's odd payload): counted by its id and channel alone.
  }
  return event.id.length + event.channel.length + data;
}

/** The leader's ring of recent events and what it covers. */
export class RecentEvents {
  private readonly slots: (Entry | undefined)[];
  private head = 0;
  private size = 0;
  private bytes = 0;
  /** The epoch of every sequence below. */
  private epoch: string | undefined;
  /** The ring holds every event of the stream after this sequence (the newest it let go of). */
  private start = Number.NEGATIVE_INFINITY;
  private readonly floors = new Map<string, Floor>();

  /** @param limits - the bounds. Defaults to {@link RECENT_EVENTS_LIMITS}. */
  constructor(private readonly limits: RecentEventsLimits = RECENT_EVENTS_LIMITS) {
    this.slots = new Array<Entry | undefined>(Math.max(1, limits.maxEvents));
  }

  /** Number of events kept. */
  get length(): number {
    return this.size;
  }

  /**
   * The stream has `channel` from here on (the server confirmed it): the ring holds its events after `id`.
   *
   * @param channel - a channel or pattern of the stream.
   * @param id - the stream's newest id when it was confirmed; `undefined` when the bus had none yet (every
   *   event of it follows).
   */
  cover(channel: string, id: string | undefined): void {
    if (id === undefined) {
      this.floors.set(channel, 0);
      return;
    }
    const parsed = parseEventId(id);
    if (parsed === null || (this.size > 0 && parsed.epoch !== this.epoch)) {
      // An id the ring cannot place: nothing is claimed until the stream resets it.
      this.floors.delete(channel);
      return;
    }
    if (parsed.epoch !== this.epoch) this.switchEpoch(parsed.epoch);
    this.floors.set(channel, parsed.seq);
  }

  /**
   * The stream sent `sse:reset` for `channel`: it is covered again from the next event on.
   *
   * @param channel - a channel or pattern of the stream.
   */
  reset(channel: string): void {
    this.floors.set(channel, 'next');
  }

  /**
   * `channel` left the stream: nothing of it is claimed any more.
   *
   * @param channel - a channel or pattern of the stream.
   */
  uncover(channel: string): void {
    this.floors.delete(channel);
  }

  /** Forget every event and channel (the stream started over). */
  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.size = 0;
    this.bytes = 0;
    this.epoch = undefined;
    this.start = Number.NEGATIVE_INFINITY;
    this.floors.clear();
  }

  /**
   * Keep an event of the stream, in the order the stream delivered it (each once).
   *
   * @param event - as posted to the tabs.
   */
  push(event: ClientEvent): void {
    const parsed = parseEventId(event.id);
    if (parsed === null) {
      // An id with no place in the sequence (none, or a proxied upstream's own): nothing is claimed any more.
      this.dropAll();
      this.floors.clear();
      return;
    }
    if (parsed.epoch !== this.epoch) this.switchEpoch(parsed.epoch);
    const newest = this.at(this.size - 1);
    if (newest !== undefined && parsed.seq <= newest.seq) return;
    for (const [channel, floor] of this.floors) if (floor === 'next') this.floors.set(channel, parsed.seq - 1);
    const entry: Entry = { event, seq: parsed.seq, bytes: sizeOf(event) };
    if (this.size === this.slots.length) this.evict();
    this.slots[(this.head + this.size) % this.slots.length] = entry;
    this.size++;
    this.bytes += entry.bytes;
    while (this.size > 0 && this.bytes > this.limits.maxBytes) this.evict();
  }

  /**
   * What a tab that saw every event up to `since` needs for `channels`: the events after it on the
   * channels the ring covers that far back, and a reset for each other channel.
   *
   * @param since - the tab's newest id.
   * @param channels - the tab's channels and patterns.
   */
  after(since: string, channels: readonly string[]): CatchUpAnswer {
    const resets: { channel: string; reason: ResetReason }[] = [];
    const topics: Topic[] = [];
    const parsed = parseEventId(since);
    for (const channel of channels) {
      const floor = this.floors.get(channel);
      const topic = parseTopic(channel, true);
      let reason: ResetReason | undefined;
      if (parsed === null) reason = 'malformed-id';
      else if (parsed.epoch !== this.epoch) reason = 'unknown-id';
      else if (floor === undefined || floor === 'next' || topic === null) reason = 'unavailable';
      else if (parsed.seq < Math.max(floor, this.start)) reason = 'expired';
      if (reason === undefined && topic !== null) topics.push(topic);
      else resets.push({ channel, reason: reason ?? 'unavailable' });
    }
    const events: ClientEvent[] = [];
    if (parsed === null || topics.length === 0) return { events, resets };
    for (let i = this.firstAfter(parsed.seq); i < this.size; i++) {
      const entry = this.at(i) as Entry;
      if (topics.some((topic) => matchChannel(topic, entry.event.channel))) events.push(entry.event);
    }
    return { events, resets };
  }

  /** The `i`-th event kept, oldest first. */
  private at(i: number): Entry | undefined {
    return i < 0 || i >= this.size ? undefined : this.slots[(this.head + i) % this.slots.length];
  }

  /** Index of the first event with a sequence above `seq` (binary search: sequences ascend). */
  private firstAfter(seq: number): number {
    let low = 0;
    let high = this.size;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.at(middle) as Entry).seq <= seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private evict(): void {
    const oldest = this.at(0);
    if (oldest === undefined) return;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.size--;
    this.bytes -= oldest.bytes;
    this.start = oldest.seq;
  }

  private dropAll(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.size = 0;
    this.bytes = 0;
    this.start = Number.NEGATIVE_INFINITY;
  }

  /**
   * Sequences of another epoch: what was kept and claimed belongs to the old one, but for channels reset
   * since. The first epoch seen keeps the claims made before it (a stream opened on a bus with no event yet).
   */
  private switchEpoch(epoch: string): void {
    const first = this.epoch === undefined;
    this.dropAll();
    this.epoch = epoch;
    if (first) return;
    for (const [channel, floor] of this.floors) if (floor !== 'next') this.floors.delete(channel);
  }
}

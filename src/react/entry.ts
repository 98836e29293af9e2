/**
 * One subscription's data in the store: a ring buffer fed once per event, and the immutable snapshot that
 * renders read, rebuilt once per flush.
 */
import type { ClientEvent, SseClientError } from '../client/types';
import type { SubscriptionSpec, TransformRef } from './options';
import type { KeptData } from './persistence';
import { RingBuffer } from './ring-buffer';

/** What a render reads of one subscription. */
export interface EntrySnapshot {
  readonly data: readonly unknown[];
  readonly lastMessage: unknown;
  readonly lastEvent: ClientEvent | undefined;
  readonly error: SseClientError | undefined;
}

/** The snapshot of a subscription that has nothing yet (shared, so it is referentially stable). */
export const EMPTY_SNAPSHOT: EntrySnapshot = Object.freeze({
  data: Object.freeze([]) as readonly unknown[],
  lastMessage: undefined,
  lastEvent: undefined,
  error: undefined,
});

/** One subscription's data, shared by every hook with the same key. */
export class Entry {
  /** The store's name for it (see `SubscriptionSpec.key`). */
  readonly key: string;
  /** Where it is kept in sessionStorage, if it is. */
  readonly persistenceKey: string | undefined;
  /** The channels it listens to. */
  channels: readonly string[];
  /** The hooks rendering this data. */
  readonly listeners = new Set<() => void>();
  /** How many of them are enabled: the entry holds its channels while this is above 0 (plus the grace period). */
  enabled = 0;
  /** The transform of the hook that subscribed last. */
  transform: TransformRef = { current: undefined };
  /** Holds channel references in the store. */
  attached = false;
  /** Runs out the grace period after the last hook left. */
  graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Changed since the last snapshot. */
  dirty = false;
  /** Changed since it was last written to sessionStorage. */
  unsaved = false;
  /** What renders read; replaced, never mutated. */
  snapshot: EntrySnapshot = EMPTY_SNAPSHOT;
  private readonly buffer: RingBuffer<unknown>;
  private lastEvent: ClientEvent | undefined;
  private error: SseClientError | undefined;

  /** @param kept - data kept from an earlier page or mount, if any. */
  constructor(spec: SubscriptionSpec, kept?: KeptData) {
    this.key = spec.key;
    this.persistenceKey = spec.persistenceKey;
    this.channels = spec.channels;
    this.buffer = new RingBuffer(spec.capacity);
    if (kept) {
      for (const item of kept.items) this.buffer.push(item);
      this.lastEvent = kept.lastEvent;
      this.refresh();
    }
  }

  /**
   * Take one event. An event matching two of this subscription's channels (a pattern and a channel it
   * covers) is delivered once per channel, back to back: the second is dropped.
   *
   * @returns whether the data changed.
   */
  receive(event: ClientEvent): boolean {
    if (this.lastEvent?.id === event.id) return false;
    const transform = this.transform.current;
    this.buffer.push(transform ? transform(event.data, event) : event.data);
    this.lastEvent = event;
    this.error = undefined;
    this.dirty = true;
    this.unsaved = this.persistenceKey !== undefined;
    return true;
  }

  /** A channel of this subscription was refused. */
  fail(error: SseClientError): void {
    this.error = error;
    this.dirty = true;
  }

  /** How many items `data` keeps. */
  get capacity(): number {
    return this.buffer.capacity;
  }

  /** Keep the newest `capacity` items from now on. */
  resize(capacity: number): void {
    if (capacity === this.buffer.capacity) return;
    this.buffer.resize(capacity);
    this.dirty = true;
  }

  /** Rebuild the snapshot: the one array copy per flush. */
  refresh(): EntrySnapshot {
    const data = this.buffer.toArray();
    this.snapshot = { data, lastMessage: data[data.length - 1], lastEvent: this.lastEvent, error: this.error };
    this.dirty = false;
    return this.snapshot;
  }

  /** What is kept in sessionStorage. */
  kept(): KeptData {
    this.unsaved = false;
    return { items: this.buffer.toArray(), lastEvent: this.lastEvent };
  }
}

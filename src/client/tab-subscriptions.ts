/**
 * One tab's listeners of a shared stream: reference-counted per channel, events routed by the channel
 * grammar (the leader posts every event of the union once; each tab picks its own), and the order guard
 * that makes a takeover's replay harmless.
 */
import { namespaceOf, parseTopic, patternKeysOf } from '../protocol/channels';
import { type EventId, parseEventId } from '../protocol/event-id';
import type { ClientEvent, SseClientError, SubscriptionHandlers } from './types';

/** One `subscribe()` call. */
interface Subscription {
  readonly listener: (event: ClientEvent) => void;
  readonly handlers: SubscriptionHandlers | undefined;
  /** `onSubscribed` was called (it is called once per subscription). */
  live: boolean;
}

/** Run a user callback so that its throw reaches the page's error handler without stopping the others. */
function call(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * The newest event id seen, and whether an event comes after it. A new leader resumes from the newest
 * id it saw; tabs that saw more get those events again, and this is where they are dropped: within one
 * epoch, an id at or below the newest is old. Another epoch (a restarted server, after `sse:reset`) starts
 * over; ids that do not parse are passed through.
 */
export class EventOrder {
  private newest: EventId | null = null;
  private newestId: string | undefined;

  /** @param lastEventId - where this tab starts from, if anywhere. */
  constructor(lastEventId?: string) {
    if (lastEventId !== undefined) this.advance(lastEventId);
  }

  /** The newest id seen. */
  get last(): string | undefined {
    return this.newestId;
  }

  /**
   * True (and remembered) when `id` is newer than everything seen; false for an event already delivered.
   *
   * @param id - an event id.
   */
  accept(id: string): boolean {
    const parsed = parseEventId(id);
    const newest = this.newest;
    if (parsed !== null && newest !== null && parsed.epoch === newest.epoch && parsed.seq <= newest.seq) return false;
    this.newest = parsed;
    this.newestId = id;
    return true;
  }

  /**
   * Move forward to `id` if it is newer (a leader's position when this tab has seen no event past it).
   *
   * @param id - an event id.
   */
  advance(id: string): void {
    const parsed = parseEventId(id);
    const newest = this.newest;
    if (parsed === null) return;
    if (newest === null || parsed.epoch !== newest.epoch || parsed.seq > newest.seq) {
      this.newest = parsed;
      this.newestId = id;
    }
  }
}

/** One tab's subscriptions of a shared stream. */
export class TabSubscriptions {
  private readonly byChannel = new Map<string, Set<Subscription>>();

  /** Channels and patterns with at least one listener. */
  channels(): string[] {
    return [...this.byChannel.keys()];
  }

  /** True when no listener is left. */
  get empty(): boolean {
    return this.byChannel.size === 0;
  }

  /**
   * Add a listener. Says whether it is the channel's first listener, and returns its removal, which says whether the
   * channel's last listener left.
   * Throws a `TypeError` for a channel outside the grammar (as the client without sharing does).
   *
   * @param channel - a channel or trailing-`*` pattern.
   * @param listener - receives the channel's events.
   * @param handlers - `onSubscribed`, `onReset`, `onError`.
   */
  add(
    channel: string,
    listener: (event: ClientEvent) => void,
    handlers: SubscriptionHandlers | undefined,
  ): { first: boolean; remove: () => boolean } {
    if (parseTopic(channel, true) === null)
      throw new TypeError(`subscribe(): \`${channel}\` is not a channel or a trailing-* pattern (e.g. \`logs:ws1:*\`)`);
    const subscription: Subscription = { listener, handlers, live: false };
    let set = this.byChannel.get(channel);
    const first = set === undefined;
    if (set === undefined) {
      set = new Set();
      this.byChannel.set(channel, set);
    }
    set.add(subscription);
    let removed = false;
    return {
      first,
      remove: () => {
        const current = this.byChannel.get(channel);
        if (removed || current === undefined || !current.delete(subscription)) return false;
        removed = true;
        if (current.size > 0) return false;
        this.byChannel.delete(channel);
        return true;
      },
    };
  }

  /**
   * Hand an event to every listener whose channel or pattern matches it.
   *
   * @param event - one data event of the shared stream.
   */
  deliver(event: ClientEvent): void {
    const exact = this.byChannel.get(event.channel);
    if (exact !== undefined) this.each(exact, (s) => s.listener(event));
    if (this.byChannel.size === (exact === undefined ? 0 : 1)) return;
    for (const key of patternKeysOf(event.channel)) {
      const matched = this.byChannel.get(`${key}:*`);
      if (matched !== undefined) this.each(matched, (s) => s.listener(event));
    }
  }

  /**
   * The server has `channel`: `onSubscribed` for its listeners that had not had it.
   *
   * @param channel - as subscribed.
   */
  subscribed(channel: string): void {
    const set = this.byChannel.get(channel);
    if (set === undefined) return;
    this.each(set, (s) => {
      if (s.live) return;
      s.live = true;
      s.handlers?.onSubscribed?.();
    });
  }

  /**
   * The server sent `sse:reset` for `channel`.
   *
   * @param channel - as subscribed.
   * @param reason - the reset's reason.
   */
  reset(channel: string, reason: string): void {
    const set = this.byChannel.get(channel);
    if (set !== undefined) this.each(set, (s) => s.handlers?.onReset?.(reason));
  }

  /**
   * The server refused `channel`: its listeners get `onError` and are forgotten (their unsubscribe
   * functions become no-ops).
   *
   * @param channel - as subscribed.
   * @param error - why.
   */
  refused(channel: string, error: SseClientError): void {
    const set = this.byChannel.get(channel);
    if (set === undefined) return;
    this.byChannel.delete(channel);
    this.each(set, (s) => s.handlers?.onError?.(error));
  }

  /** Forget every listener (on close). */
  clear(): void {
    this.byChannel.clear();
  }

  private each(set: Set<Subscription>, fn: (s: Subscription) => void): void {
    for (const subscription of [...set]) call(() => fn(subscription));
  }
}

/**
 * A copy of an event with exactly the fields of {@link ClientEvent}, safe for structured cloning.
 *
 * @param event - as the stream delivered it.
 */
export function plainEvent(event: ClientEvent): ClientEvent {
  return {
    id: event.id,
    channel: event.channel,
    namespace: event.namespace ?? namespaceOf(event.channel),
    data: event.data,
  };
}

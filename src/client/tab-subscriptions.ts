/**
 * One tab's listeners of a shared stream: reference-counted per channel, events routed by the channel
 * grammar (the leader posts every event of the union once; each tab picks its own).
 */
import { namespaceOf, patternKeysOf } from '../protocol/channels';
import { reportListenerError } from './report';
import type { ClientEvent, SseClientError, SubscriptionHandlers } from './types';

/** One `subscribe()` call. */
interface Subscription {
  readonly listener: (event: ClientEvent) => void;
  readonly handlers: SubscriptionHandlers | undefined;
  /** `onSubscribed` was called (it is called once per subscription). */
  live: boolean;
}

/** The listeners of one channel or pattern. */
interface Entry {
  readonly subscriptions: Set<Subscription>;
  /** The server has the channel: a listener added now is confirmed at once. */
  live: boolean;
}

/**
 * Run a user callback so that its throw reaches the page's error handler (`reportError`, as the client
 * without sharing does) without stopping the other listeners.
 */
export function call(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    reportListenerError(error);
  }
}

/** One tab's subscriptions of a shared stream. */
export class TabSubscriptions {
  private readonly byChannel = new Map<string, Entry>();

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
    const subscription: Subscription = { listener, handlers, live: false };
    let entry = this.byChannel.get(channel);
    const first = entry === undefined;
    if (entry === undefined) {
      entry = { subscriptions: new Set(), live: false };
      this.byChannel.set(channel, entry);
    }
    entry.subscriptions.add(subscription);
    if (entry.live) queueMicrotask(() => this.confirm(channel, subscription));
    let removed = false;
    return {
      first,
      remove: () => {
        const current = this.byChannel.get(channel);
        if (removed || current === undefined || !current.subscriptions.delete(subscription)) return false;
        removed = true;
        if (current.subscriptions.size > 0) return false;
        this.byChannel.delete(channel);
        return true;
      },
    };
  }

  /**
   * Hand an event to every listener whose channel or pattern matches it.
   *
   * @param event - one data event of the shared stream.
   * @param skip - channels and patterns not to hand it to.
   */
  deliver(event: ClientEvent, skip?: (channel: string) => boolean): void {
    const exact = this.byChannel.get(event.channel);
    if (exact !== undefined && skip?.(event.channel) !== true) this.each(exact, (s) => s.listener(event));
    if (this.byChannel.size === (exact === undefined ? 0 : 1)) return;
    for (const key of patternKeysOf(event.channel)) {
      const matched = this.byChannel.get(`${key}:*`);
      if (matched !== undefined && skip?.(`${key}:*`) !== true) this.each(matched, (s) => s.listener(event));
    }
  }

  /**
   * The server has `channel`: `onSubscribed` for its listeners that had not had it.
   *
   * @param channel - as subscribed.
   */
  subscribed(channel: string): void {
    const entry = this.byChannel.get(channel);
    if (entry === undefined) return;
    entry.live = true;
    for (const subscription of [...entry.subscriptions]) this.confirm(channel, subscription);
  }

  /**
   * The server sent `sse:reset` for `channel`.
   *
   * @param channel - as subscribed.
   * @param reason - the reset's reason.
   */
  reset(channel: string, reason: string): void {
    const entry = this.byChannel.get(channel);
    if (entry !== undefined) this.each(entry, (s) => s.handlers?.onReset?.(reason));
  }

  /**
   * The server refused `channel`: its listeners get `onError` and are forgotten (their unsubscribe
   * functions become no-ops).
   *
   * @param channel - as subscribed.
   * @param error - why.
   */
  refused(channel: string, error: SseClientError): void {
    const entry = this.byChannel.get(channel);
    if (entry === undefined) return;
    this.byChannel.delete(channel);
    this.each(entry, (s) => s.handlers?.onError?.(error));
  }

  /** Forget every listener (on close). */
  clear(): void {
    this.byChannel.clear();
  }

  private confirm(channel: string, subscription: Subscription): void {
    const entry = this.byChannel.get(channel);
    if (subscription.live || entry === undefined || !entry.subscriptions.has(subscription)) return;
    subscription.live = true;
    call(() => subscription.handlers?.onSubscribed?.());
  }

  private each(entry: Entry, fn: (s: Subscription) => void): void {
    for (const subscription of [...entry.subscriptions]) call(() => fn(subscription));
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

/**
 * The client's subscriptions, grouped by channel with a reference count: a channel is on the stream while
 * at least one subscription names it. Routing an event looks up the exact channel and each prefix a
 * pattern could have (`a:b:c` → `a:*`, `a:b:*`), never a scan of every subscription. Every callback of a
 * subscription runs from here, so one throwing listener cannot stop the others or the client.
 */
import { patternKeysOf, type Topic } from '../protocol/channels';
import type { ClientEvent, SseClientError, SubscriptionHandlers } from './types';

/** One `subscribe()` call. */
export interface Subscription {
  readonly topic: Topic;
  readonly listener: (event: ClientEvent) => void;
  readonly handlers: SubscriptionHandlers;
  /** `onSubscribed` was called (once per subscription, however often the stream reconnects). */
  subscribed: boolean;
  /** False once unsubscribed or dropped: a queued callback checks it before running. */
  active: boolean;
}

/** A channel (or pattern) of the stream and the subscriptions that hold it. */
export interface ChannelEntry {
  readonly topic: Topic;
  readonly subscriptions: Set<Subscription>;
  /** The server has confirmed it (`sse:ready` or `sse:subscribed`) on the current stream. */
  live: boolean;
}

/** The reference-counted channels of one client. */
export class ChannelSet {
  private readonly entries = new Map<string, ChannelEntry>();
  /** Patterns by their key (`a:b` for `a:b:*`). */
  private readonly patterns = new Map<string, ChannelEntry>();

  /** @param onListenerError - where a callback's exception goes. */
  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  /** Number of channels and patterns. */
  get size(): number {
    return this.entries.size;
  }

  /** Every channel and pattern, as the stream requests them. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The entry of a channel or pattern. */
  get(name: string): ChannelEntry | undefined {
    return this.entries.get(name);
  }

  /** Every entry. */
  values(): IterableIterator<ChannelEntry> {
    return this.entries.values();
  }

  /**
   * Add a subscription; returns its entry and whether the channel is new to the set.
   *
   * @param subscription - the subscription to count.
   */
  add(subscription: Subscription): { entry: ChannelEntry; added: boolean } {
    const { topic } = subscription;
    let entry = this.entries.get(topic.name);
    const added = entry === undefined;
    if (entry === undefined) {
      entry = { topic, subscriptions: new Set(), live: false };
      this.entries.set(topic.name, entry);
      if (topic.pattern) this.patterns.set(topic.key, entry);
    }
    entry.subscriptions.add(subscription);
    return { entry, added };
  }

  /**
   * Remove a subscription; returns true when it was its channel's last, so the channel left the set.
   *
   * @param subscription - the subscription to uncount.
   */
  remove(subscription: Subscription): boolean {
    const entry = this.entries.get(subscription.topic.name);
    if (entry === undefined || !entry.subscriptions.delete(subscription)) return false;
    if (entry.subscriptions.size > 0) return false;
    this.delete(entry);
    return true;
  }

  /**
   * Remove a channel with all its subscriptions (refused by the server); returns them.
   *
   * @param name - the channel or pattern.
   */
  drop(name: string): Subscription[] {
    const entry = this.entries.get(name);
    if (entry === undefined) return [];
    this.delete(entry);
    return [...entry.subscriptions];
  }

  /**
   * The entries an event of `channel` goes to: its exact entry and every pattern above it. Each entry is
   * a different subscription target, so a listener subscribed twice (`a:*` and `a:b`) hears it twice.
   *
   * @param channel - a concrete channel.
   */
  routes(channel: string): ChannelEntry[] {
    const found: ChannelEntry[] = [];
    const exact = this.entries.get(channel);
    if (exact !== undefined && !exact.topic.pattern) found.push(exact);
    if (this.patterns.size > 0) {
      for (const key of patternKeysOf(channel)) {
        const entry = this.patterns.get(key);
        if (entry !== undefined) found.push(entry);
      }
    }
    return found;
  }

  /**
   * Call the listener of every active subscription the event routes to.
   *
   * @param event - a data event.
   */
  deliver(event: ClientEvent): void {
    for (const entry of this.routes(event.channel)) {
      for (const subscription of [...entry.subscriptions]) {
        if (subscription.active) this.call(() => subscription.listener(event));
      }
    }
  }

  /**
   * The server has exactly these channels now: mark them live and confirm their new subscriptions.
   *
   * @param server - the stream's channels as the server listed them (empty when the stream dropped).
   */
  markLive(server: ReadonlySet<string>): void {
    for (const entry of this.entries.values()) {
      entry.live = server.has(entry.topic.name);
      if (entry.live) for (const subscription of [...entry.subscriptions]) this.confirm(subscription);
    }
  }

  /** Call `onSubscribed` once in the life of a subscription. */
  confirm(subscription: Subscription): void {
    if (!subscription.active || subscription.subscribed) return;
    subscription.subscribed = true;
    this.call(() => subscription.handlers.onSubscribed?.());
  }

  /**
   * Call `onReset` of the subscriptions of `names` (every subscription when absent).
   *
   * @param reason - from `sse:reset`.
   * @param names - the channels it concerns.
   */
  reset(reason: string, names: readonly string[] = this.names()): void {
    for (const name of names) {
      for (const subscription of [...(this.entries.get(name)?.subscriptions ?? [])]) {
        if (subscription.active) this.call(() => subscription.handlers.onReset?.(reason));
      }
    }
  }

  /**
   * Drop a refused channel and call `onError` of each of its subscriptions.
   *
   * @param name - the channel or pattern.
   * @param error - why.
   */
  fail(name: string, error: SseClientError): void {
    for (const subscription of this.drop(name)) {
      if (!subscription.active) continue;
      subscription.active = false;
      this.call(() => subscription.handlers.onError?.(error));
    }
  }

  /** Deactivate and remove every subscription, silently (the client closed). */
  clear(): void {
    for (const name of this.names()) for (const subscription of this.drop(name)) subscription.active = false;
  }

  /** Run a user callback so that its exception cannot break the client. */
  call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.onListenerError(error);
    }
  }

  private delete(entry: ChannelEntry): void {
    this.entries.delete(entry.topic.name);
    if (entry.topic.pattern) this.patterns.delete(entry.topic.key);
  }
}

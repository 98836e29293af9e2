/**
 * The channel index: the one owner of subscription state. It maps exact channels and pattern prefixes to
 * their connections (so a publish costs what its audience costs, not what the number of open connections
 * costs), each connection to its topics, and each indexed topic to its bus watch. Opening a stream, changing
 * its subscriptions and closing it all go through here; nothing else keeps a list of topics.
 */
import { matchChannel, patternKeysOf, type Topic } from '../protocol/channels';
import type { Bus, Logger } from '../types';

/** Called when a topic gains its first connection (`active`) or loses its last. */
export type TopicListener = (topic: string, active: boolean) => void;

/**
 * What the index keeps on each connection: its topics, in subscription order. The array lives on the
 * connection (a map entry per stream would cost memory for nothing), but only the index writes it.
 */
export interface Indexed {
  indexedTopics?: Topic[] | undefined;
}

/** Connections by exact channel and by pattern key (`dashboards` for `dashboards:*`), and topics by connection. */
export class ChannelIndex<C extends Indexed> {
  private readonly exact = new Map<string, Set<C>>();
  private readonly patterns = new Map<string, Set<C>>();
  /** The bus watch of every indexed topic, released with its last connection. */
  private readonly watches = new Map<string, () => void>();
  private readonly listeners = new Set<TopicListener>();
  private subscriptionCount = 0;

  /**
   * @param bus - asked to watch each topic while it has a connection.
   * @param logger - where a throwing {@link TopicListener} is reported.
   */
  constructor(
    private readonly bus: Pick<Bus, 'watch'>,
    private readonly logger: Logger,
  ) {}

  /** Entries in the index (exact channels plus patterns). */
  get size(): number {
    return this.exact.size + this.patterns.size;
  }

  /** Subscriptions over all connections. */
  get subscriptions(): number {
    return this.subscriptionCount;
  }

  /** Be told when a topic appears in or disappears from the index. Returns the unsubscribe function. */
  onTopic(listener: TopicListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Index a new connection with its first topics. */
  add(connection: C, topics: readonly Topic[]): void {
    for (const topic of topics) this.addTopic(connection, topic);
  }

  /**
   * Subscribe `connection` to `topic`. Returns `false` when it already had a topic of that name.
   * A topic new to the index is watched on the bus before this returns.
   */
  addTopic(connection: C, topic: Topic): boolean {
    let own = connection.indexedTopics;
    if (own === undefined) {
      own = [];
      connection.indexedTopics = own;
    } else if (own.some((t) => t.name === topic.name)) return false;
    own.push(topic);
    const map = topic.pattern ? this.patterns : this.exact;
    let set = map.get(topic.key);
    if (set === undefined) {
      set = new Set();
      map.set(topic.key, set);
      this.watches.set(topic.name, this.bus.watch(topic.name));
      this.notify(topic.name, true);
    }
    set.add(connection);
    this.subscriptionCount++;
    return true;
  }

  /** Unsubscribe `connection` from the topic named `name`. Returns the topic, or `undefined` if it had none. */
  removeTopic(connection: C, name: string): Topic | undefined {
    const own = connection.indexedTopics;
    const at = own?.findIndex((t) => t.name === name) ?? -1;
    if (own === undefined || at === -1) return undefined;
    const [topic] = own.splice(at, 1) as [Topic];
    this.unindex(connection, topic);
    return topic;
  }

  /** Remove `connection` and every topic of it. */
  remove(connection: C): void {
    const own = connection.indexedTopics;
    if (own === undefined) return;
    connection.indexedTopics = undefined;
    for (const topic of own) this.unindex(connection, topic);
  }

  /** The topics of `connection`, in subscription order. */
  topicsOf(connection: C): readonly Topic[] {
    return connection.indexedTopics ?? [];
  }

  /** True when one of `connection`'s topics covers the concrete `channel`. */
  covers(connection: C, channel: string): boolean {
    return this.topicsOf(connection).some((topic) => matchChannel(topic, channel));
  }

  /** Visit every connection subscribed to `channel`, exactly or through a pattern (possibly more than once). */
  forEachSubscriber(channel: string, visit: (connection: C) => void): void {
    const exact = this.exact.get(channel);
    if (exact !== undefined) for (const connection of exact) visit(connection);
    if (this.patterns.size === 0) return;
    for (const key of patternKeysOf(channel)) {
      const set = this.patterns.get(key);
      if (set !== undefined) for (const connection of set) visit(connection);
    }
  }

  /** Topic names currently indexed. */
  topics(): string[] {
    return [...this.exact.keys(), ...[...this.patterns.keys()].map((key) => `${key}:*`)];
  }

  private unindex(connection: C, topic: Topic): void {
    const map = topic.pattern ? this.patterns : this.exact;
    const set = map.get(topic.key);
    if (set === undefined || !set.delete(connection)) return;
    this.subscriptionCount--;
    if (set.size > 0) return;
    map.delete(topic.key);
    this.watches.get(topic.name)?.();
    this.watches.delete(topic.name);
    this.notify(topic.name, false);
  }

  private notify(topic: string, active: boolean): void {
    for (const listener of this.listeners) {
      try {
        listener(topic, active);
      } catch (cause) {
        this.logger.error('sse-gateway: an onSubscription listener threw', cause);
      }
    }
  }
}

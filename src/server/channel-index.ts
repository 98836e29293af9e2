/**
 * The channel index: connections keyed by exact channel and by pattern prefix, so a publish costs what
 * its audience costs, not what the number of open connections costs.
 */
import { patternKeysOf } from '../protocol/channels';
import type { Connection } from './connection';

/** Called when a topic gains its first connection (`active`) or loses its last. */
export type TopicListener = (topic: string, active: boolean) => void;

/** Connections by exact channel and by pattern key (`dashboards` for `dashboards:*`). */
export class ChannelIndex {
  private readonly exact = new Map<string, Set<Connection>>();
  private readonly patterns = new Map<string, Set<Connection>>();
  private subscriptionCount = 0;

  /** @param onTopic - told when a topic appears in or disappears from the index. */
  constructor(private readonly onTopic: TopicListener) {}

  /** Entries in the index (exact channels plus patterns). */
  get size(): number {
    return this.exact.size + this.patterns.size;
  }

  /** Subscriptions over all connections. */
  get subscriptions(): number {
    return this.subscriptionCount;
  }

  /** Index every topic of `connection`. */
  add(connection: Connection): void {
    for (const topic of connection.topics) {
      const map = topic.pattern ? this.patterns : this.exact;
      let set = map.get(topic.key);
      if (set === undefined) {
        set = new Set();
        map.set(topic.key, set);
        this.onTopic(topic.name, true);
      }
      set.add(connection);
      this.subscriptionCount++;
    }
  }

  /** Remove every topic of `connection`. */
  remove(connection: Connection): void {
    for (const topic of connection.topics) {
      const map = topic.pattern ? this.patterns : this.exact;
      const set = map.get(topic.key);
      if (set === undefined || !set.delete(connection)) continue;
      this.subscriptionCount--;
      if (set.size === 0) {
        map.delete(topic.key);
        this.onTopic(topic.name, false);
      }
    }
  }

  /** Visit every connection subscribed to `channel`, exactly or through a pattern (possibly more than once). */
  forEachSubscriber(channel: string, visit: (connection: Connection) => void): void {
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
}

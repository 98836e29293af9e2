/**
 * Interest: which topics this instance needs, reference-counted, and the Redis subscriptions that carry
 * them. An instance SUBSCRIBEs `{prefix}:ch:<channel>` for exact topics and PSUBSCRIBEs
 * `{prefix}:ch:<key>:*` for patterns, so it only receives what its connections need. Sharded mode has no
 * PSUBSCRIBE: the publish script also SPUBLISHes each event to `{prefix}:pt:<key>` for every pattern key
 * of its channel, and a `logs:*` watch SSUBSCRIBEs `{prefix}:pt:logs`.
 */
import { parseTopic, patternKeysOf } from '../../protocol/channels';
import { SseError } from '../../protocol/errors';
import type { SubscriberClient } from './clients';
import { escapeGlob, type RedisNames } from './wire';

/** Reference-counted topics and their subscriptions on one subscriber connection. */
export class Interest {
  /** Watched exact channels and pattern keys, with reference counts. */
  readonly #exact = new Map<string, number>();
  readonly #patterns = new Map<string, number>();
  /** SUBSCRIBE commands not answered yet: a replay's snapshot must come after them. */
  readonly #pending = new Set<Promise<void>>();

  /**
   * @param linked - true while the subscriber can take commands; otherwise the next recovery subscribes.
   */
  constructor(
    private readonly subscriber: SubscriberClient,
    private readonly names: RedisNames,
    private readonly sharded: boolean,
    private readonly linked: () => boolean,
  ) {}

  /** Distinct topics watched. */
  get size(): number {
    return this.#exact.size + this.#patterns.size;
  }

  /** Subscription commands in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Count one more need for `topic`; the first one subscribes. Returns the release function.
   *
   * @throws SseError `ERR_SSE_INVALID_CHANNEL` when `topic` is neither a channel nor a `prefix:*` pattern.
   */
  watch(topic: string): () => void {
    const parsed = parseTopic(topic, true);
    if (parsed === null) {
      throw new SseError(
        'ERR_SSE_INVALID_CHANNEL',
        `Cannot watch ${JSON.stringify(topic)}: not a channel or a prefix:* pattern.`,
        400,
        { channels: [String(topic)] },
      );
    }
    const counts = parsed.pattern ? this.#patterns : this.#exact;
    const key = parsed.pattern ? parsed.key : parsed.name;
    const count = counts.get(key) ?? 0;
    counts.set(key, count + 1);
    if (count === 0) this.track(this.toggle(parsed.pattern, key, true));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (counts.get(key) ?? 1) - 1;
      if (left > 0) counts.set(key, left);
      else {
        counts.delete(key);
        this.track(this.toggle(parsed.pattern, key, false));
      }
    };
  }

  /** Resolves once every subscription sent so far is answered. */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  /** Does a watched topic cover `channel`? */
  covers(channel: string): boolean {
    if (this.#exact.has(channel)) return true;
    if (this.#patterns.size === 0) return false;
    return patternKeysOf(channel).some((key) => this.#patterns.has(key));
  }

  /** After a reconnect: subscribe the control and signal channels and every watched topic again. */
  async resubscribe(): Promise<void> {
    const { controlChannel, signalChannel } = this.names;
    const exact = [...this.#exact.keys()].map((key) => this.redisTopic(false, key));
    const patterns = [...this.#patterns.keys()].map((key) => this.redisTopic(true, key));
    if (this.sharded) await this.subscriber.ssubscribe(controlChannel, signalChannel, ...exact, ...patterns);
    else {
      await this.subscriber.subscribe(controlChannel, signalChannel, ...exact);
      if (patterns.length > 0) await this.subscriber.psubscribe(...patterns);
    }
  }

  private redisTopic(pattern: boolean, key: string): string {
    const { channelPrefix, patternPrefix } = this.names;
    if (this.sharded) return (pattern ? patternPrefix : channelPrefix) + key;
    return pattern ? `${escapeGlob(channelPrefix + key)}:*` : channelPrefix + key;
  }

  /** While the subscriber is down there is nothing to send: the resubscription on `ready` covers it. */
  private async toggle(pattern: boolean, key: string, on: boolean): Promise<void> {
    if (!this.linked()) return;
    const name = this.redisTopic(pattern, key);
    const subscriber = this.subscriber;
    try {
      if (this.sharded) await (on ? subscriber.ssubscribe(name) : subscriber.sunsubscribe(name));
      else if (pattern) await (on ? subscriber.psubscribe(name) : subscriber.punsubscribe(name));
      else await (on ? subscriber.subscribe(name) : subscriber.unsubscribe(name));
    } catch {
      // The link dropped mid-command; the next `ready` resubscribes from the current interest.
    }
  }

  private track(promise: Promise<void>): void {
    this.#pending.add(promise);
    void promise.finally(() => this.#pending.delete(promise));
  }
}

/**
 * Interest: which topics this instance needs, reference-counted, and the Redis subscriptions that carry
 * them. An instance SUBSCRIBEs `{prefix}:ch:<channel>` for exact topics and `{prefix}:pt:<key>` for
 * patterns, so it only receives what its connections need: the publish script also publishes each event to
 * `{prefix}:pt:<key>` for every pattern key of its channel. No PSUBSCRIBE, because Redis matches every
 * PUBLISH on the server against every pattern of every client (100 streams × 100 patterns made unrelated
 * publishes 5× slower); a pattern is now one more hash lookup, like an exact channel. Sharded mode does
 * the same with SSUBSCRIBE.
 *
 * `legacyPatterns` also PSUBSCRIBEs `{prefix}:ch:<key>:*` as earlier releases did, for a rolling deploy:
 * their instances publish to `{prefix}:ch:<channel>` only. Duplicates drop by sequence.
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
    private readonly legacyPatterns = false,
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
      await this.subscriber.subscribe(controlChannel, signalChannel, ...exact, ...patterns);
      const legacy = this.legacyPatterns ? [...this.#patterns.keys()].map((key) => this.legacyTopic(key)) : [];
      if (legacy.length > 0) await this.subscriber.psubscribe(...legacy);
    }
  }

  private redisTopic(pattern: boolean, key: string): string {
    const { channelPrefix, patternPrefix } = this.names;
    return (pattern ? patternPrefix : channelPrefix) + key;
  }

  /** What instances of earlier releases PSUBSCRIBE for pattern key `key`. */
  private legacyTopic(key: string): string {
    return `${escapeGlob(this.names.channelPrefix + key)}:*`;
  }

  /** While the subscriber is down there is nothing to send: the resubscription on `ready` covers it. */
  private async toggle(pattern: boolean, key: string, on: boolean): Promise<void> {
    if (!this.linked()) return;
    const name = this.redisTopic(pattern, key);
    const subscriber = this.subscriber;
    try {
      if (this.sharded) await (on ? subscriber.ssubscribe(name) : subscriber.sunsubscribe(name));
      else {
        await (on ? subscriber.subscribe(name) : subscriber.unsubscribe(name));
        if (pattern && this.legacyPatterns) {
          const legacy = this.legacyTopic(key);
          await (on ? subscriber.psubscribe(legacy) : subscriber.punsubscribe(legacy));
        }
      }
    } catch {
      // The link dropped mid-command; the next `ready` resubscribes from the current interest.
    }
  }

  private track(promise: Promise<void>): void {
    this.#pending.add(promise);
    void promise.finally(() => this.#pending.delete(promise));
  }
}

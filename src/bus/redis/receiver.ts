/**
 * Receiving: messages from the subscriber and entries from the history become events for the listeners,
 * once each and in sequence order. The sequencer decides what is new, the interest decides what this
 * instance wants; the gap after a reconnect is read from the history through `fetch`.
 */
import type { BusListener, BusSignal, BusSignalListener, Logger } from '../../types';
import { createEvent } from '../event';
import { decodeSignal } from '../signal';
import type { Interest } from './interest';
import type { FetchMode, FetchReply } from './scripts';
import type { Sequencer } from './sequencer';
import type { Ordered } from './subscriber';
import { decodeMessage } from './wire';

/** Reads the history: the head and up to `count` entries after `after` (see the fetch script). */
export type Fetch = (epoch: string, after: number, count: number, mode: FetchMode) => Promise<FetchReply>;

/** How often a gap read is tried after a reconnect before the gap is given up. */
const CATCH_UP_ATTEMPTS = 20;

/**
 * History entries read per fetch after a reconnect: the gap may be as long as the history (50,000 events by
 * default), which must not come back in one reply.
 */
export const RECOVER_PAGE = 1000;

/** Call every listener with `value`; one that throws is logged and does not stop the others. */
function notify<T>(listeners: ReadonlySet<(value: T) => void>, value: T, what: string, logger: Logger): void {
  for (const listener of listeners) {
    try {
      listener(value);
    } catch (cause) {
      logger.error(`sse-gateway: a Redis bus ${what} threw`, cause);
    }
  }
}

/** Turns received messages into listener calls, and reads the gap after a reconnect. */
export class Receiver {
  readonly #listeners = new Set<BusListener>();
  readonly #signalListeners = new Set<BusSignalListener>();
  #lag: number | undefined;

  /** @param busId - the origin id of this instance's own publishes. */
  constructor(
    private readonly busId: string,
    private readonly sequencer: Sequencer,
    private readonly interest: Interest,
    private readonly logger: Logger,
  ) {}

  /** Milliseconds from publish to receipt of this instance's own events, or of the last watchdog ping. */
  get lag(): number | undefined {
    return this.#lag;
  }

  /** A watchdog ping came back after `ms`. */
  roundTrip(ms: number): void {
    this.#lag = ms;
  }

  /** Receive every wanted event. Returns the unsubscribe function. */
  listen(listener: BusListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Receive every signal. Returns the unsubscribe function. */
  onSignal(listener: BusSignalListener): () => void {
    this.#signalListeners.add(listener);
    return () => {
      this.#signalListeners.delete(listener);
    };
  }

  /** Forget every listener (the bus is closing). */
  clear(): void {
    this.#listeners.clear();
    this.#signalListeners.clear();
  }

  /** An event message or a ping's head, in the order the subscriber received them. */
  deliver(item: Ordered): void {
    if (item.kind === 'event') this.accept(item.message);
    else if (item.ping.head !== null) this.sequencer.observe(item.ping.head.epoch, item.ping.head.seq);
  }

  /** Deliver a message once, in sequence order: anything at or below the last seq is a duplicate. */
  accept(message: string): void {
    const decoded = decodeMessage(message);
    if (decoded === null) {
      this.logger.warn('sse-gateway: ignored a malformed message on the Redis bus', message.slice(0, 200));
      return;
    }
    const { header, epoch, seq } = decoded;
    if (!this.sequencer.accept(epoch, seq)) return;
    if (header.origin === this.busId) this.#lag = Math.max(0, Date.now() - header.time);
    if (!this.interest.covers(header.channel)) return;
    const event = createEvent(header.id, header.channel, decoded.dataJson, header.time, header.users);
    notify(this.#listeners, event, 'listener', this.logger);
  }

  /** A message on the signal channel. */
  signal(message: string): void {
    const signal: BusSignal | null = decodeSignal(message);
    if (signal === null) {
      this.logger.warn('sse-gateway: ignored a malformed signal on the Redis bus', message.slice(0, 200));
      return;
    }
    notify(this.#signalListeners, signal, 'signal listener', this.logger);
  }

  /** After a reconnect: read the gap from the history, retrying a while; stop once `current()` is false. */
  async catchUp(fetch: Fetch, current: () => boolean): Promise<void> {
    for (let attempt = 1; current(); attempt++) {
      try {
        await this.readGap(fetch, current);
        break;
      } catch (cause) {
        if (attempt >= CATCH_UP_ATTEMPTS) {
          this.logger.error(
            'sse-gateway: Redis bus could not read the history after a reconnect; events of the gap may be missing',
            cause,
          );
          break;
        }
        await new Promise<void>((resolve) => setTimeout(resolve, Math.min(100 * attempt, 500)).unref());
      }
    }
    // Even a failed first read leaves a starting point, so later gaps are read from the history.
    if (current() && !this.sequencer.started) this.sequencer.start('', 0);
  }

  /** Read the gap in pages of {@link RECOVER_PAGE}; a retry after a failed page resumes where it stopped. */
  private async readGap(fetch: Fetch, current: () => boolean): Promise<void> {
    const sequencer = this.sequencer;
    if (!sequencer.started) {
      // First connection: nothing was missed, only the starting point is needed.
      const { epoch, head } = await fetch('', 0, 1, 'head');
      if (current()) sequencer.start(epoch, head);
      return;
    }
    for (;;) {
      const { epoch, head, entries } = await fetch(sequencer.epoch, sequencer.lastSeq, RECOVER_PAGE, 'recover');
      if (!current() || epoch === '') return;
      sequencer.enter(epoch);
      const missed = entries[0] === undefined ? null : sequencer.missedBefore(entries[0].seq);
      if (missed !== null) {
        this.logger.warn(
          `sse-gateway: Redis bus was disconnected longer than its history holds; events ${missed.from}-${missed.to} are gone.`,
        );
      }
      for (const entry of entries) if (entry.message !== undefined) this.accept(entry.message);
      // Every entry read is accounted for, even one without a readable message: the next page starts after it.
      const lastRead = entries[entries.length - 1];
      if (lastRead !== undefined) sequencer.observe(epoch, lastRead.seq);
      if (entries.length < RECOVER_PAGE || sequencer.lastSeq >= head) {
        sequencer.observe(epoch, head);
        return;
      }
    }
  }
}

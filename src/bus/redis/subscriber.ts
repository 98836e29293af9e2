/**
 * The subscriber connection's lifecycle, as one named status with an explicit transition table:
 *
 * ```
 * connecting ──ready──▶ recovering ──caught up──▶ live
 *                          ▲  │                    │
 *                     ready│  └──────close──▶ down ◀┘
 *                          └────────────────────┘
 * any ──close()──▶ closed
 * ```
 *
 * While not `live`, events and pings wait in a buffer that belongs to the state, in arrival order. Each
 * `ready` starts a recovery (resubscribe, then read the gap from the history) that belongs to the
 * `recovering` state object it was started for: a newer connection replaces the state, and the old
 * recovery sees that and stops. Once caught up, the buffer is drained (duplicates drop by sequence) and
 * the state becomes `live`. A watchdog ping through pub/sub catches links that died silently.
 */
import { randomUUID } from 'node:crypto';
import { debuglog } from 'node:util';
import type { Logger } from '../../types';
import { type CommandClient, lacksShardedPubSub, type SubscriberClient } from './clients';
import { classify, type Inbound, type Ping, type RedisNames } from './wire';

/** Where the subscriber stands; see the module comment for the diagram. */
export type SubscriberStatus = 'connecting' | 'recovering' | 'live' | 'down' | 'closed';

/** Every legal transition; anything else is a bug and throws. */
export const SUBSCRIBER_TRANSITIONS: Readonly<Record<SubscriberStatus, readonly SubscriberStatus[]>> = Object.freeze({
  connecting: ['recovering', 'closed'],
  recovering: ['live', 'down', 'closed'],
  live: ['down', 'closed'],
  down: ['recovering', 'closed'],
  closed: [],
});

/** An event or ping waiting for the recovery to finish. */
export type Ordered = Exclude<Inbound, { kind: 'signal' }>;

/** A watchdog ping sent and not back yet; `published` once Redis answered the script that published it. */
interface PendingPing {
  readonly token: string;
  readonly sentAt: number;
  published: boolean;
}

/** The status and what only that status has: a buffer while not live, the pending ping while live. */
export type SubscriberState =
  | { readonly status: 'connecting' | 'recovering' | 'down'; readonly buffer: Ordered[] }
  | { readonly status: 'live'; ping: PendingPing | undefined }
  | { readonly status: 'closed' };

const trace = debuglog('sse-gateway');

/**
 * The status holder: applies transitions by the table and traces them (`NODE_DEBUG=sse-gateway`).
 *
 * @example
 * const lifecycle = new SubscriberLifecycle('bus 1');
 * lifecycle.moveTo({ status: 'recovering', buffer: [] }, 'ready');
 */
export class SubscriberLifecycle {
  #state: SubscriberState = { status: 'connecting', buffer: [] };

  /** @param name - how traces name this subscriber. */
  constructor(private readonly name: string) {}

  /** The current state object; it is replaced, never mutated in status, on every transition. */
  get state(): SubscriberState {
    return this.#state;
  }

  /** The current status. */
  get status(): SubscriberStatus {
    return this.#state.status;
  }

  /**
   * Enter `next`.
   *
   * @param why - what caused it, for the trace.
   * @throws Error when the table does not allow the transition.
   */
  moveTo(next: SubscriberState, why: string): void {
    const from = this.#state.status;
    if (!SUBSCRIBER_TRANSITIONS[from].includes(next.status)) {
      throw new Error(`Redis bus subscriber ${this.name}: illegal transition ${from} → ${next.status} (${why})`);
    }
    trace('redis bus %s subscriber: %s → %s (%s)', this.name, from, next.status, why);
    this.#state = next;
  }
}

/** What the subscriber needs from the rest of the bus. */
export interface SubscriberParts {
  readonly client: SubscriberClient;
  /** The publisher connection: pings are sent on it, so it must be up for the watchdog to judge. */
  readonly commands: CommandClient;
  readonly names: RedisNames;
  readonly sharded: boolean;
  readonly logger: Logger;
  /** Subscribe every channel and watched topic again. */
  resubscribe(): Promise<void>;
  /** Read what was missed from the history; stop when `current()` turns false. */
  catchUp(current: () => boolean): Promise<void>;
  /** An event message or a ping's head, in order. */
  deliver(item: Ordered): void;
  /** A signal message (never buffered: signals carry no sequence). */
  signal(message: string): void;
  /** A watchdog ping came back after `ms`. */
  roundTrip(ms: number): void;
  /** Publish a ping with `token` to this instance's control channel. */
  ping(token: string): Promise<unknown>;
}

/** The subscriber connection: routes messages by status, runs recoveries and the watchdog. */
export class Subscriber {
  readonly #lifecycle: SubscriberLifecycle;
  readonly #watchdog: NodeJS.Timeout;
  #reconnects = 0;

  constructor(
    private readonly parts: SubscriberParts,
    watchdogMs: number,
  ) {
    this.#lifecycle = new SubscriberLifecycle(parts.names.controlChannel);
    const { client } = parts;
    const onMessage = (channel: unknown, message: unknown) => this.onMessage(channel as string, message as string);
    client.on('message', onMessage);
    client.on('pmessage', (_pattern, channel, message) => onMessage(channel, message));
    client.on('smessage', onMessage);
    client.on('ready', () => this.onReady());
    client.on('close', () => this.onClose());
    if (client.status === 'ready') this.onReady();
    this.#watchdog = setInterval(() => this.check(watchdogMs), watchdogMs);
    this.#watchdog.unref();
  }

  /** The current status. */
  get status(): SubscriberStatus {
    return this.#lifecycle.status;
  }

  /** Reconnections after the first connection. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** True while messages flow straight to the listeners (no recovery under way). */
  get live(): boolean {
    return this.#lifecycle.status === 'live';
  }

  /** True while the connection can take SUBSCRIBE commands. */
  get linked(): boolean {
    return this.#lifecycle.status !== 'closed' && this.parts.client.status === 'ready';
  }

  /** Stop: no more deliveries, recoveries or watchdog pings. The connection itself is the caller's to quit. */
  close(): void {
    if (this.#lifecycle.status === 'closed') return;
    this.#lifecycle.moveTo({ status: 'closed' }, 'close()');
    clearInterval(this.#watchdog);
  }

  private onMessage(channel: string, message: string): void {
    const state = this.#lifecycle.state;
    if (state.status === 'closed') return;
    const inbound = classify(channel, message, this.parts.names);
    if (inbound.kind === 'signal') this.parts.signal(inbound.message);
    else if (state.status === 'live') this.route(state, inbound);
    else state.buffer.push(inbound);
  }

  /** Deliver one ordered item while live; a ping first settles the watchdog. */
  private route(state: Extract<SubscriberState, { status: 'live' }>, item: Ordered): void {
    if (item.kind === 'ping') this.pong(state, item.ping);
    this.parts.deliver(item);
  }

  private pong(state: Extract<SubscriberState, { status: 'live' }>, ping: Ping): void {
    if (state.ping === undefined || ping.token !== state.ping.token) return;
    this.parts.roundTrip(Date.now() - state.ping.sentAt);
    state.ping = undefined;
  }

  private onReady(): void {
    const previous = this.#lifecycle.status;
    if (previous === 'closed') return;
    if (previous !== 'connecting') this.#reconnects++;
    // `ready` without a `close` before it should not happen; if it does, the old link is gone all the same.
    if (previous === 'live' || previous === 'recovering') this.onClose();
    const waiting = this.#lifecycle.state;
    const state: SubscriberState = { status: 'recovering', buffer: 'buffer' in waiting ? waiting.buffer : [] };
    this.#lifecycle.moveTo(state, 'ready');
    void this.recover(state);
  }

  private onClose(): void {
    const state = this.#lifecycle.state;
    // Before the first `ready` a failed attempt changes nothing: the first recovery has not started.
    if (state.status === 'live') this.#lifecycle.moveTo({ status: 'down', buffer: [] }, 'link closed');
    else if (state.status === 'recovering') {
      this.#lifecycle.moveTo({ status: 'down', buffer: state.buffer }, 'link closed');
    }
  }

  private async recover(state: SubscriberState): Promise<void> {
    const current = () => this.#lifecycle.state === state;
    try {
      await this.parts.resubscribe();
    } catch (cause) {
      // Usually the link dropped again and its next `ready` starts over; otherwise force that.
      if (current()) this.resubscribeFailed(cause);
      return;
    }
    await this.parts.catchUp(current);
    if (!current() || state.status !== 'recovering') return;
    this.#lifecycle.moveTo({ status: 'live', ping: undefined }, 'caught up');
    for (const item of state.buffer) {
      const now = this.#lifecycle.state;
      // Only a listener closing the bus can change the status in the middle of this synchronous loop.
      if (now.status !== 'live') return;
      this.route(now, item);
    }
  }

  private resubscribeFailed(cause: unknown): void {
    const hint =
      this.parts.sharded && lacksShardedPubSub(cause)
        ? ' (sharded pub/sub needs Redis 7 or later: pass `sharded: false`)'
        : '';
    this.parts.logger.error(`sse-gateway: Redis bus could not resubscribe; reconnecting the subscriber${hint}`, cause);
    if (this.parts.client.status === 'ready') this.parts.client.disconnect(true);
  }

  /**
   * A ping published and not back within one interval means the subscriber link is dead even if its socket
   * looks open. A ping whose publish is not answered says nothing about this link (the command watchdog
   * judges that one), so it is not counted.
   */
  private check(intervalMs: number): void {
    const state = this.#lifecycle.state;
    if (state.status !== 'live' || this.parts.client.status !== 'ready') return;
    if (state.ping !== undefined) {
      if (!state.ping.published || Date.now() - state.ping.sentAt < intervalMs) return;
      this.parts.logger.warn(
        `sse-gateway: Redis bus watchdog ping not received within ${intervalMs} ms; reconnecting the subscriber.`,
      );
      state.ping = undefined;
      this.parts.client.disconnect(true);
      return;
    }
    if (this.parts.commands.status !== 'ready') return;
    const ping = { token: randomUUID(), sentAt: Date.now(), published: false };
    state.ping = ping;
    this.parts.ping(ping.token).then(
      () => {
        ping.published = true;
      },
      () => {
        // The publisher side is down: that says nothing about the subscriber, so do not count it.
        if (state.ping === ping) state.ping = undefined;
      },
    );
  }
}

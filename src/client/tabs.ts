/**
 * Sharing one stream across the tabs of a browser profile: the client a tab gets when `shareAcrossTabs`
 * is on. Its listeners, status and last event id are the tab's own; the stream is the leader tab's
 * (`tab-member.ts` elects it, `tab-hub.ts` runs it), and its events arrive over a BroadcastChannel.
 */

import { parseTopic } from '../protocol/channels';
import { parseEventId } from '../protocol/event-id';
import { CATCH_UP_TIMEOUT_MS, TabCatchUp } from './catch-up';
import { LastEventId } from './last-event-id';
import { parseClientOptions } from './options';
import type { StreamClientOptions } from './stream-client';
import { TabMember } from './tab-member';
import { type TabMessage, type TabNames, tabNames } from './tab-protocol';
import { call, TabSubscriptions } from './tab-subscriptions';
import type {
  ClientEvent,
  ClientStatus,
  SseClient,
  SseClientError,
  SseClientOptions,
  SubscriptionHandlers,
} from './types';

/**
 * True where a client can share its stream with the other tabs of this origin: a page or worker (it has a
 * `location`; Node has Web Locks and BroadcastChannel too, but no tabs) with `navigator.locks` (secure
 * contexts only) and `BroadcastChannel`.
 */
export function canShareAcrossTabs(): boolean {
  return (
    typeof BroadcastChannel === 'function' &&
    typeof location === 'object' &&
    location !== null &&
    typeof navigator === 'object' &&
    navigator !== null &&
    typeof navigator.locks?.request === 'function'
  );
}

type StatusListener = (status: ClientStatus, error?: SseClientError) => void;

/** The client of one tab of a shared stream. */
class SharedClient implements SseClient {
  private readonly subscriptions = new TabSubscriptions();
  /**
   * This tab's newest id (kept in sessionStorage when asked): its events are taken once each, and a stream
   * this tab takes over resumes from it. A tab that saw more than the new leader drops the replayed ones.
   */
  private readonly order: LastEventId;
  /** A tab that joins with a kept id catches up on its channels from the leader (see `catch-up.ts`). */
  private readonly catchUp: TabCatchUp;
  private catchUpTimer: ReturnType<typeof setTimeout> | undefined;
  private askQueued = false;
  /**
   * Channels first subscribed while the catch-up was asked for, with the newest event held then: the held
   * events up to it were published before the subscription and are not theirs.
   */
  private readonly subscribedLate = new Map<string, string>();
  private readonly statusListeners = new Set<StatusListener>();
  private readonly names: TabNames;
  private member: TabMember | undefined;
  /** The leading tab's id, as its last `state` said. */
  private leader: string | undefined;
  /** The shared stream's status, as the leader last said. */
  private shared: ClientStatus = 'idle';
  private statusNow: ClientStatus = 'idle';
  private disposed = false;
  private wasOpen = false;
  /** The leader's position, for a takeover by a tab that has seen no event yet. */
  private leaderLastEventId: string | undefined;
  private readonly onPageHide = (): void => this.suspend(true);
  private readonly onPageShow = (event: Event): void => {
    if (!(event as PageTransitionEvent).persisted || this.disposed) return;
    // Back from the back-forward cache: the events of the time away went to the other tabs only; the
    // leader serves them, or says to reset.
    this.catchUp.restart(this.order.value);
    if (this.order.value === undefined)
      for (const channel of this.subscriptions.channels()) this.subscriptions.reset(channel, 'unavailable');
    this.resume();
  };
  private readonly onFreeze = (): void => this.member?.pause();
  private readonly onResume = (): void => this.member?.unpause();

  constructor(
    private readonly options: SseClientOptions,
    private readonly createStream: (options: StreamClientOptions) => SseClient,
  ) {
    // Fail at creation on a wrong option, as without sharing.
    const config = parseClientOptions(options);
    this.order = new LastEventId(options.lastEventId, config.persistKey);
    this.catchUp = new TabCatchUp(this.order.value);
    this.names = tabNames(new URL(options.url, globalThis.location?.href).href);
    this.resume();
    this.listenToPage(true);
  }

  /** Page lifecycle: hidden for good or for the back-forward cache (leave), frozen (stop leading). */
  private listenToPage(on: boolean): void {
    const method = on ? 'addEventListener' : 'removeEventListener';
    globalThis[method]?.('pagehide', this.onPageHide);
    globalThis[method]?.('pageshow', this.onPageShow);
    if (typeof document === 'undefined') return;
    document[method]('freeze', this.onFreeze);
    document[method]('resume', this.onResume);
  }

  get status(): ClientStatus {
    return this.statusNow;
  }

  get lastEventId(): string | undefined {
    return this.order.value ?? this.leaderLastEventId;
  }

  subscribe(channel: string, listener: (event: ClientEvent) => void, handlers?: SubscriptionHandlers): () => void {
    if (typeof listener !== 'function')
      throw new TypeError('subscribe(channel, listener): listener must be a function.');
    // As the client without sharing: a bad channel or a closed client fails the subscription alone.
    const refusal: SseClientError | undefined = this.disposed
      ? { code: 'ERR_SSE_CLIENT_CLOSED', message: 'This client was closed; create a new one.' }
      : typeof channel !== 'string' || parseTopic(channel, true) === null
        ? { code: 'ERR_SSE_INVALID_CHANNEL', status: 400, message: `Malformed channel ${JSON.stringify(channel)}.` }
        : undefined;
    if (refusal !== undefined) {
      queueMicrotask(() => call(() => handlers?.onError?.(refusal)));
      return () => {};
    }
    const { first, remove } = this.subscriptions.add(channel, listener, handlers);
    if (first) this.member?.add(channel);
    // The channels subscribed in this task catch up together, as one stream's first connect would.
    if (first && this.catchUp.resuming) {
      const mark = this.catchUp.newestHeldAfterAsking;
      if (mark !== undefined) this.subscribedLate.set(channel, mark);
      this.askSoon();
    }
    // After a 401 the shared stream stopped; a new subscription starts it over, as without sharing.
    if (this.shared === 'closed') this.member?.restart();
    this.update();
    return () => {
      if (!remove()) return;
      this.member?.remove(channel);
      this.update();
    };
  }

  onStatus(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    return () => {
      this.statusListeners.delete(listener);
    };
  }

  close(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.suspend(false);
    this.subscriptions.clear();
    this.order.dispose();
    this.listenToPage(false);
    this.setStatus('closed');
  }

  /**
   * Leave the tabs (closed, or page hidden, maybe into the back-forward cache): the leader's lock passes
   * on now. Live events held for a catch-up are dropped: this tab's id is still the one before them.
   */
  private suspend(hidden: boolean): void {
    this.member?.leave(hidden);
    this.member = undefined;
    this.leader = undefined;
    this.catchUp.restart(undefined);
    this.subscribedLate.clear();
    clearTimeout(this.catchUpTimer);
  }

  /** Join the tabs, with the channels this tab has. */
  private resume(): void {
    if (this.member !== undefined || this.disposed) return;
    this.member = new TabMember(
      this.names,
      {
        receive: (message) => this.receive(message),
        resumeFrom: () => this.lastEventId,
        // This tab's id is the one kept (the stream's own copy would be a second writer of the same key).
        createStream: (lastEventId) => this.createStream({ ...this.options, lastEventId, persistLastEventId: false }),
      },
      this.subscriptions.channels(),
    );
  }

  private receive(message: TabMessage): void {
    switch (message.t) {
      case 'event':
        if (this.catchUp.resuming) {
          // Without a channel there is nothing to deliver, and the kept id must stay where it is.
          if (this.subscriptions.empty || this.catchUp.hold(message.event)) break;
          // Too many held: the leader could not serve the id by now anyway.
          this.abandonCatchUp('expired');
        }
        this.take(message.event);
        break;
      case 'caught-up': {
        const result = message.tab === this.member?.id ? this.catchUp.settle(message) : undefined;
        if (result === undefined) break;
        clearTimeout(this.catchUpTimer);
        for (const { channel, reason } of result.resets) this.subscriptions.reset(channel, reason);
        this.takeCaughtUp(result.events);
        break;
      }
      case 'subscribed':
        this.subscriptions.subscribed(message.channel);
        break;
      case 'reset':
        this.subscriptions.reset(message.channel, message.reason);
        break;
      case 'refused':
        this.subscriptions.refused(message.channel, message.error);
        break;
      case 'state':
      case 'status':
        if (message.t === 'state') this.leaderIs(message.leader);
        if (message.lastEventId !== undefined) this.leaderLastEventId = message.lastEventId;
        this.shared = message.status;
        this.update(message.t === 'status' ? message.error : undefined);
        break;
      default:
    }
  }

  /** An event in order: delivered unless this tab has it already. */
  private take(event: ClientEvent, skip?: (channel: string) => boolean): void {
    if (this.order.accept(event.id)) this.subscriptions.deliver(event, skip);
  }

  /** The events of a settled catch-up, each to the channels subscribed before it was published. */
  private takeCaughtUp(events: readonly ClientEvent[]): void {
    const late = new Map([...this.subscribedLate].map(([channel, mark]) => [channel, parseEventId(mark)]));
    this.subscribedLate.clear();
    for (const event of events) {
      const id = parseEventId(event.id);
      this.take(event, (channel) => {
        const mark = late.get(channel);
        return mark !== undefined && mark !== null && id !== null && id.epoch === mark.epoch && id.seq <= mark.seq;
      });
    }
  }

  /** A leader said who it is: this tab, whose stream resumes from the kept id, or one to ask. */
  private leaderIs(leader: string): void {
    this.leader = leader;
    if (leader !== this.member?.id) {
      this.askSoon();
      return;
    }
    // The stream resumes from this tab's id (not moved while holding): the server replays the held events.
    this.catchUp.restart(undefined);
    this.subscribedLate.clear();
    clearTimeout(this.catchUpTimer);
  }

  /** Ask the leader for the catch-up once this task's subscriptions are announced. */
  private askSoon(): void {
    if (this.askQueued || !this.catchUp.resuming) return;
    this.askQueued = true;
    queueMicrotask(() => {
      this.askQueued = false;
      const member = this.member;
      // A tab still joining has not said hello: its channels are not on the stream yet.
      if (member?.role !== 'follower' || this.leader === undefined || this.leader === member.id) return;
      const request = this.catchUp.ask(this.leader, member.id, this.subscriptions.channels());
      if (request === undefined) return;
      member.catchUp(request);
      clearTimeout(this.catchUpTimer);
      this.catchUpTimer = setTimeout(() => this.abandonCatchUp('unavailable'), CATCH_UP_TIMEOUT_MS);
    });
  }

  /** No catch-up after all: this tab's channels are reset, then the held events follow. */
  private abandonCatchUp(reason: string): void {
    clearTimeout(this.catchUpTimer);
    const held = this.catchUp.abandon();
    for (const channel of this.subscriptions.channels()) this.subscriptions.reset(channel, reason);
    this.takeCaughtUp(held);
  }

  /**
   * This tab's status from the shared one: `idle` without a subscription; `closed` when the stream stopped
   * for good (401), until a new subscription starts it over.
   */
  private update(error?: SseClientError): void {
    if (this.disposed) return;
    let status = this.shared;
    // The leader has none of this tab's channels yet (they are on their way), or a new leader starts over.
    if (status === 'idle') status = 'connecting';
    if (status === 'connecting' && this.wasOpen) status = 'reconnecting';
    if (status === 'closed') this.wasOpen = false;
    this.setStatus(this.subscriptions.empty ? 'idle' : status, error);
  }

  private setStatus(status: ClientStatus, error?: SseClientError): void {
    if (status === this.statusNow && error === undefined) return;
    this.statusNow = status;
    if (status === 'open') this.wasOpen = true;
    for (const listener of [...this.statusListeners]) call(() => listener(status, error));
  }
}

/**
 * A client whose stream is shared with every tab of this browser profile that has one for the same `url`.
 * One tab (elected by a Web Lock) holds the stream for the union of every tab's channels; when it closes or
 * crashes, another takes over and resumes from the newest event id it saw. Use where
 * {@link canShareAcrossTabs} is true.
 *
 * @param options - the client's options (the leading tab's are the stream's).
 * @param createStream - creates the stream a leading tab holds (the client without sharing).
 * @example
 * ```ts
 * const client = createSharedClient({ url: '/events' }, createStreamClient);
 * client.subscribe('logs:ws1:*', (event) => console.log(event.data));
 * ```
 */
export function createSharedClient(
  options: SseClientOptions,
  createStream: (options: StreamClientOptions) => SseClient,
): SseClient {
  return new SharedClient(options, createStream);
}

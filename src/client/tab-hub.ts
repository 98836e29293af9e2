/**
 * The leader tab's half of a shared stream: one stream (the client without sharing) subscribed to the
 * union of every tab's channels, whose events, status and per-channel notices it posts once for all tabs.
 * It keeps the recent events, so a tab that joins with a kept id catches up on what it missed.
 */

import { LastEventId } from './last-event-id';
import { RecentEvents } from './recent-events';
import { plainError, type TabMessage } from './tab-protocol';
import { plainEvent } from './tab-subscriptions';
import type { ClientEvent, SseClient, SseClientError } from './types';

/** What the hub needs from the tab that leads. */
export interface HubHost {
  /** The subscription table (tab id → channels), kept by the tab from everyone's messages; read only. */
  readonly table: ReadonlyMap<string, ReadonlySet<string>>;
  /** This tab's id. */
  readonly self: string;
  /** Create the stream, resuming from `lastEventId`. */
  createStream(lastEventId: string | undefined): SseClient;
  /** Post to every tab, this one included. */
  emit(message: TabMessage): void;
}

/** One channel of the union. */
interface UnionEntry {
  readonly tabs: Set<string>;
  readonly unsubscribe: () => void;
  confirmed: boolean;
  /** Set while the channel stays on the stream for a page that left and may be reloading. */
  linger?: ReturnType<typeof setTimeout>;
}

/**
 * How long the channels of a page that was hidden (unloaded, reloading, or put in the back-forward cache)
 * stay on the stream when no other tab has them, in ms: a reload that comes back within it catches up.
 */
export const LINGER_MS = 10_000;

/** The stream of the leader tab, shared by every tab. */
export class TabHub {
  private readonly union = new Map<string, UnionEntry>();
  /** Drops the second delivery of an event that matches several of the union's channels. */
  private readonly order: LastEventId;
  /** What a tab joining with a kept id is served from. */
  private readonly recent = new RecentEvents();
  private stream: SseClient;
  private offStatus: () => void;
  private closed = false;

  /**
   * @param host - the leading tab.
   * @param lastEventId - the newest id the tab saw: the stream resumes there, so nothing is lost.
   */
  constructor(
    private readonly host: HubHost,
    lastEventId: string | undefined,
  ) {
    this.order = new LastEventId(lastEventId, undefined);
    this.stream = host.createStream(lastEventId);
    this.offStatus = this.listen();
  }

  private listen(): () => void {
    return this.stream.onStatus((status, error) => {
      const lastEventId = this.stream.lastEventId;
      this.host.emit(
        error === undefined
          ? { t: 'status', status, lastEventId }
          : { t: 'status', status, error: plainError(error), lastEventId },
      );
    });
  }

  /**
   * A tab subscribed after the stream stopped for good (401): start a new one, as a client without
   * sharing starts over on a new subscription.
   */
  restart(): void {
    if (this.closed || this.stream.status !== 'closed') return;
    this.offStatus();
    this.stream.close();
    this.clearUnion();
    this.recent.clear();
    this.stream = this.host.createStream(this.order.value);
    this.offStatus = this.listen();
    this.reconcileAll();
  }

  /** The leader's view, for a tab that just said hello (and its copy of the table). */
  state(): TabMessage {
    const tabs: Record<string, string[]> = {};
    for (const [tab, channels] of this.host.table) tabs[tab] = [...channels];
    return { t: 'state', leader: this.host.self, status: this.stream.status, lastEventId: this.order.value, tabs };
  }

  /** Bring the stream in line with the whole table (on taking over). */
  reconcileAll(): void {
    for (const tab of this.host.table.keys()) this.reconcile(tab);
    for (const [channel, entry] of this.union)
      for (const tab of entry.tabs) if (!this.host.table.has(tab)) this.release(channel, entry, tab, false);
  }

  /**
   * Bring the stream in line with one tab's row of the table: add the channels it gained, drop those it
   * lost (a channel leaves the stream when its last tab leaves it).
   *
   * @param tab - a tab id; a tab no longer in the table loses every channel.
   * @param linger - the tab's page was hidden (it may be reloading): a channel it alone had stays on the
   *   stream for {@link LINGER_MS}.
   */
  reconcile(tab: string, linger = false): void {
    if (this.closed) return;
    const wanted = this.host.table.get(tab);
    for (const [channel, entry] of this.union)
      if (entry.tabs.has(tab) && !wanted?.has(channel)) this.release(channel, entry, tab, linger);
    if (wanted === undefined) return;
    for (const channel of wanted) {
      const entry = this.union.get(channel);
      if (entry === undefined) this.open(channel, tab);
      else if (!entry.tabs.has(tab)) {
        entry.tabs.add(tab);
        clearTimeout(entry.linger);
        entry.linger = undefined;
        // The channel is already live: the newcomer's events flow from here on.
        if (entry.confirmed) this.host.emit({ t: 'subscribed', channel });
      }
    }
  }

  /**
   * The answer to a tab that joined with a kept id: the recent events after it on its channels, or a
   * reset for each channel the recent events do not cover that far back. The tab's channels are on the
   * stream already (its `hello` and `sub` came first).
   *
   * @param request - the tab's `catch-up` message.
   */
  catchUp(request: Extract<TabMessage, { t: 'catch-up' }>): TabMessage {
    const { events, resets } = this.recent.after(request.since, request.channels);
    return { t: 'caught-up', tab: request.tab, request: request.request, events, resets };
  }

  /** Stop the stream without telling the tabs it closed (the next leader carries on). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.offStatus();
    this.clearUnion();
    this.stream.close();
  }

  private open(channel: string, tab: string): void {
    // The stream calls back asynchronously, so `entry` is set by then; a callback of a subscription the
    // union no longer holds (released, or replaced by a restart) is stale and ignored.
    const current = (): boolean => this.union.get(channel) === entry;
    // Added to an open stream, the channel is live from its sse:subscribed on, which may be after events of it
    // the stream never had (published after the stream's newest id): it is covered from the next event on.
    // A channel the stream connects with is replayed from the stream's id (or starts at sse:ready's).
    const joinsOpenStream = this.stream.status === 'open';
    const entry: UnionEntry = {
      tabs: new Set([tab]),
      confirmed: false,
      unsubscribe: this.stream.subscribe(channel, (event) => this.forward(event), {
        onSubscribed: () => {
          if (!current()) return;
          entry.confirmed = true;
          // A channel the stream connected with has every event after the stream's newest id from here on.
          this.recent.cover(channel, this.stream.lastEventId);
          if (joinsOpenStream) this.recent.reset(channel);
          this.host.emit({ t: 'subscribed', channel });
        },
        onReset: (reason) => {
          if (!current()) return;
          this.recent.reset(channel);
          this.host.emit({ t: 'reset', channel, reason });
        },
        onError: (error) => {
          if (current()) this.refuse(channel, entry, error);
        },
      }),
    };
    this.union.set(channel, entry);
  }

  private refuse(channel: string, entry: UnionEntry, error: SseClientError): void {
    this.drop(channel, entry);
    // Every tab drops the channel from its copy of the table on this notice.
    this.host.emit({ t: 'refused', channel, error: plainError(error) });
  }

  private release(channel: string, entry: UnionEntry, tab: string, linger: boolean): void {
    entry.tabs.delete(tab);
    if (entry.tabs.size > 0 || entry.linger !== undefined) return;
    if (!linger) {
      this.drop(channel, entry);
      return;
    }
    entry.linger = setTimeout(() => {
      entry.linger = undefined;
      if (this.union.get(channel) === entry && entry.tabs.size === 0) this.drop(channel, entry);
    }, LINGER_MS);
  }

  private drop(channel: string, entry: UnionEntry): void {
    clearTimeout(entry.linger);
    this.union.delete(channel);
    this.recent.uncover(channel);
    entry.unsubscribe();
  }

  private clearUnion(): void {
    for (const entry of this.union.values()) clearTimeout(entry.linger);
    this.union.clear();
  }

  /** An event reaches every listener of the stream it matches: post it once, whatever the overlaps. */
  private forward(event: ClientEvent): void {
    if (!this.order.accept(event.id)) return;
    const plain = plainEvent(event);
    this.recent.push(plain);
    this.host.emit({ t: 'event', event: plain });
  }
}

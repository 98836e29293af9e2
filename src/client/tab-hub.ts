/**
 * The leader tab's half of a shared stream: one stream (the client without sharing) subscribed to the
 * union of every tab's channels, whose events, status and per-channel notices it posts once for all tabs.
 */

import { LastEventId } from './last-event-id';
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
}

/** The stream of the leader tab, shared by every tab. */
export class TabHub {
  private readonly union = new Map<string, UnionEntry>();
  /** Drops the second delivery of an event that matches several of the union's channels. */
  private readonly order: LastEventId;
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
    this.union.clear();
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
      for (const tab of entry.tabs) if (!this.host.table.has(tab)) this.release(channel, entry, tab);
  }

  /**
   * Bring the stream in line with one tab's row of the table: add the channels it gained, drop those it
   * lost (a channel leaves the stream when its last tab leaves it).
   *
   * @param tab - a tab id; a tab no longer in the table loses every channel.
   */
  reconcile(tab: string): void {
    if (this.closed) return;
    const wanted = this.host.table.get(tab);
    for (const [channel, entry] of this.union)
      if (entry.tabs.has(tab) && !wanted?.has(channel)) this.release(channel, entry, tab);
    if (wanted === undefined) return;
    for (const channel of wanted) {
      const entry = this.union.get(channel);
      if (entry === undefined) this.open(channel, tab);
      else if (!entry.tabs.has(tab)) {
        entry.tabs.add(tab);
        // The channel is already live: the newcomer's events flow from here on.
        if (entry.confirmed) this.host.emit({ t: 'subscribed', channel });
      }
    }
  }

  /** Stop the stream without telling the tabs it closed (the next leader carries on). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.offStatus();
    this.union.clear();
    this.stream.close();
  }

  private open(channel: string, tab: string): void {
    // The stream calls back asynchronously, so `entry` is set by then; a callback of a subscription the
    // union no longer holds (released, or replaced by a restart) is stale and ignored.
    const current = (): boolean => this.union.get(channel) === entry;
    const entry: UnionEntry = {
      tabs: new Set([tab]),
      confirmed: false,
      unsubscribe: this.stream.subscribe(channel, (event) => this.forward(event), {
        onSubscribed: () => {
          if (!current()) return;
          entry.confirmed = true;
          this.host.emit({ t: 'subscribed', channel });
        },
        onReset: (reason) => {
          if (current()) this.host.emit({ t: 'reset', channel, reason });
        },
        onError: (error) => {
          if (current()) this.refuse(channel, entry, error);
        },
      }),
    };
    this.union.set(channel, entry);
  }

  private refuse(channel: string, entry: UnionEntry, error: SseClientError): void {
    this.union.delete(channel);
    entry.unsubscribe();
    // Every tab drops the channel from its copy of the table on this notice.
    this.host.emit({ t: 'refused', channel, error: plainError(error) });
  }

  private release(channel: string, entry: UnionEntry, tab: string): void {
    entry.tabs.delete(tab);
    if (entry.tabs.size > 0) return;
    this.union.delete(channel);
    entry.unsubscribe();
  }

  /** An event reaches every listener of the stream it matches: post it once, whatever the overlaps. */
  private forward(event: ClientEvent): void {
    if (this.order.accept(event.id)) this.host.emit({ t: 'event', event: plainEvent(event) });
  }
}

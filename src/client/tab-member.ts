/**
 * A tab's part in a shared stream: its BroadcastChannel, its Web Locks and its role. Every tab holds a
 * lock of its own for as long as it takes part (the leader watches these to learn of a crashed tab) and
 * queues for the leader lock; the tab granted it leads until it leaves, and the browser passes the lock on
 * when it closes or crashes. Every tab keeps the subscription table from everyone's messages, so the next
 * leader opens its stream with every tab's channels at once.
 */
import { TabHub } from './tab-hub';
import { readTabMessage, type TabMessage, type TabNames } from './tab-protocol';
import { call } from './tab-subscriptions';
import type { SseClient } from './types';

/**
 * Where a tab is: `joining` until its own lock is held, then `follower` or `leader` (a leader whose page
 * is frozen steps down to `follower`), and `left` for good.
 */
export type TabRole = 'joining' | 'follower' | 'leader' | 'left';

const TRANSITIONS: Readonly<Record<TabRole, readonly TabRole[]>> = {
  joining: ['follower', 'left'],
  follower: ['leader', 'left'],
  leader: ['follower', 'left'],
  left: [],
};

/** What a member hands to its client. */
export interface MemberHost {
  /** The leader's messages to the tabs (events, status, notices), this tab's own hub's included. */
  receive(message: TabMessage): void;
  /** Where a stream this tab opens resumes from. */
  resumeFrom(): string | undefined;
  /** Create the stream when this tab leads. */
  createStream(lastEventId: string | undefined): SseClient;
}

/** A random tab id (`crypto.randomUUID` exists only in secure contexts; `getRandomValues` everywhere). */
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const ignore = (): void => {};

/** How long after a tab's lock came free its death is acted on, in ms (see `watch`). */
const DEATH_NOTICE_DELAY_MS = 100;

/** One tab's membership of a shared stream, from joining to leaving. */
export class TabMember {
  /** This tab's id in the table. */
  readonly id = randomId();
  private roleNow: TabRole = 'joining';
  private readonly tableNow = new Map<string, Set<string>>();
  private readonly own: Set<string>;
  private readonly channel: BroadcastChannel;
  private readonly abort = new AbortController();
  private leading: AbortController | undefined;
  private hub: TabHub | undefined;
  private readonly watched = new Set<string>();
  /** Withdraws this tab from the queue for the leader lock. */
  private queue: AbortController | undefined;
  private releaseTab: (() => void) | undefined;
  private releaseLeader: (() => void) | undefined;

  /**
   * @param names - the stream's channel and lock names.
   * @param host - the tab's client.
   * @param channels - the tab's channels so far (a page back from the back-forward cache has some).
   */
  constructor(
    private readonly names: TabNames,
    private readonly host: MemberHost,
    channels: readonly string[],
  ) {
    this.own = new Set(channels);
    this.tableNow.set(this.id, this.own);
    this.channel = new BroadcastChannel(names.base);
    this.channel.onmessage = (event: MessageEvent) => {
      const message = readTabMessage(event.data);
      if (message !== null) this.handle(message);
    };
    this.hold(names.tabLock(this.id), this.abort.signal, (release) => this.joined(release));
  }

  /** The role now. */
  get role(): TabRole {
    return this.roleNow;
  }

  /**
   * This tab's first listener of `channel`.
   *
   * @param channel - a channel or pattern.
   */
  add(channel: string): void {
    this.own.add(channel);
    if (this.roleNow !== 'joining') this.send({ t: 'sub', tab: this.id, channel });
  }

  /**
   * This tab's last listener of `channel` left.
   *
   * @param channel - a channel or pattern.
   */
  remove(channel: string): void {
    this.own.delete(channel);
    if (this.roleNow !== 'joining') this.send({ t: 'unsub', tab: this.id, channel });
  }

  /** Ask the leader for a new stream after the shared one stopped for good (a new subscription after 401). */
  restart(): void {
    if (this.roleNow === 'joining' || this.roleNow === 'left') return;
    this.send({ t: 'restart', tab: this.id });
  }

  /**
   * Stop leading, and queueing for the lead, while the page is frozen (a frozen leader would stall every
   * tab; a frozen tab granted the lock could not take it up). The tab stays a member: its channels stay on
   * the stream and the other tabs' messages wait for it.
   */
  pause(): void {
    this.queue?.abort();
    this.queue = undefined;
    if (this.roleNow !== 'leader') return;
    this.stopLeading();
    this.transition('follower');
  }

  /** Queue for the lead again once the page runs again. */
  unpause(): void {
    if (this.roleNow === 'follower' && this.queue === undefined) this.queueForLead();
  }

  /**
   * Ask the leader for what this tab missed (it joined with a kept id): see `catch-up.ts`.
   *
   * @param message - the `catch-up` request; posted by a follower only.
   */
  catchUp(message: Extract<TabMessage, { t: 'catch-up' }>): void {
    if (this.roleNow === 'follower') this.channel.postMessage(message);
  }

  /**
   * Leave for good: a leader stops its stream and lets the lock go, so another tab takes over at once.
   *
   * @param linger - the page is being hidden (it may be reloading): the leader keeps this tab's channels
   *   on the stream a while, so the page that comes back catches up on them. Defaults to `false`.
   */
  leave(linger = false): void {
    if (this.roleNow === 'left') return;
    if (this.roleNow !== 'joining') {
      const bye: TabMessage = linger ? { t: 'bye', tab: this.id, linger } : { t: 'bye', tab: this.id };
      this.channel.postMessage(bye);
    }
    if (this.roleNow === 'leader') this.stopLeading();
    this.transition('left');
    this.queue?.abort();
    this.abort.abort();
    this.releaseTab?.();
    this.channel.close();
  }

  private stopLeading(): void {
    this.hub?.close();
    this.hub = undefined;
    this.leading?.abort();
    this.leading = undefined;
    this.watched.clear();
    this.releaseLeader?.();
    this.releaseLeader = undefined;
  }

  private transition(to: TabRole): void {
    if (!TRANSITIONS[this.roleNow].includes(to)) throw new Error(`tab role: ${this.roleNow} → ${to}`);
    this.roleNow = to;
  }

  /** Request `name` and hold it until `release` is called; `granted` runs once it is held. */
  private hold(name: string, signal: AbortSignal, granted: (release: () => void) => void): void {
    navigator.locks
      .request(name, { signal }, () => {
        if (this.roleNow === 'left' || signal.aborted) return undefined;
        return new Promise<void>((release) => granted(release));
      })
      .catch(ignore); // AbortError: withdrawn while waiting.
  }

  private joined(release: () => void): void {
    this.releaseTab = release;
    this.transition('follower');
    this.send({ t: 'hello', tab: this.id, channels: [...this.own] });
    this.queueForLead();
  }

  private queueForLead(): void {
    const queue = new AbortController();
    this.queue = queue;
    this.hold(this.names.base, queue.signal, (release) => {
      this.queue = undefined;
      this.releaseLeader = release;
      this.lead().catch((error: unknown) => {
        // No stream to share (createStream threw): let another tab try, and show why.
        this.leave();
        call(() => {
          throw error;
        });
      });
    });
  }

  private async lead(): Promise<void> {
    this.transition('leader');
    const leading = new AbortController();
    this.leading = leading;
    // Rows of tabs that died while the old leader watched them (or with it) go before the stream opens.
    const held = await navigator.locks.query().catch(() => undefined);
    if (this.leading !== leading) return;
    if (held !== undefined) {
      const alive = new Set((held.held ?? []).map((lock) => lock.name));
      for (const tab of this.tableNow.keys())
        if (tab !== this.id && !alive.has(this.names.tabLock(tab))) this.tableNow.delete(tab);
    }
    const hub = new TabHub(
      {
        table: this.tableNow,
        self: this.id,
        createStream: (lastEventId) => this.host.createStream(lastEventId),
        emit: (message) => this.emit(message),
      },
      this.host.resumeFrom(),
    );
    this.hub = hub;
    this.emit(hub.state());
    hub.reconcileAll();
    for (const tab of this.tableNow.keys()) this.watch(tab, leading.signal);
  }

  /**
   * Learn of `tab`'s death: its lock comes free (a lock that is already free is granted at once). Acted on
   * a moment later: a page that is hidden posts `bye` and then lets its lock go, and the two travel apart,
   * so its `bye` (which may ask its channels to linger) is read first.
   */
  private watch(tab: string, signal: AbortSignal): void {
    if (tab === this.id || this.watched.has(tab)) return;
    this.watched.add(tab);
    navigator.locks
      .request(this.names.tabLock(tab), { signal }, () => {
        setTimeout(() => {
          if (signal.aborted) return;
          this.watched.delete(tab);
          if (this.roleNow !== 'leader' || !this.tableNow.delete(tab)) return;
          this.emit({ t: 'drop', tab });
          this.hub?.reconcile(tab);
        }, DEATH_NOTICE_DELAY_MS);
      })
      .catch(ignore);
  }

  /** A tab-to-tab message of this tab: to the others, and applied here as if received. */
  private send(message: TabMessage): void {
    this.channel.postMessage(message);
    this.handle(message);
  }

  /** A leader's message: to the other tabs, and to this tab's client. */
  private emit(message: TabMessage): void {
    if (this.roleNow !== 'leader') return;
    this.channel.postMessage(message);
    this.applyLeaderMessage(message);
  }

  private handle(message: TabMessage): void {
    if (this.roleNow === 'left') return;
    switch (message.t) {
      case 'hello':
        this.tableNow.set(message.tab, message.tab === this.id ? this.own : new Set(message.channels));
        this.changed(message.tab);
        if (message.tab !== this.id && this.hub !== undefined) this.emit(this.hub.state());
        break;
      case 'sub':
      case 'unsub':
        if (message.tab !== this.id) this.applyRow(message.tab, message.channel, message.t === 'sub');
        this.changed(message.tab);
        break;
      case 'restart':
        this.hub?.restart();
        break;
      case 'bye':
      case 'drop':
        if (message.tab === this.id) break;
        this.tableNow.delete(message.tab);
        this.changed(message.tab, message.t === 'bye' && message.linger === true);
        break;
      case 'catch-up':
        if (message.leader === this.id && this.roleNow === 'leader' && this.hub !== undefined)
          this.emit(this.hub.catchUp(message));
        break;
      default:
        // A leader's message: a leader ignores another's (late posts of the one it replaced), events
        // aside, which the client's order guard sorts out.
        if (this.roleNow !== 'leader' || message.t === 'event') this.applyLeaderMessage(message);
    }
  }

  private applyRow(tab: string, channel: string, add: boolean): void {
    let row = this.tableNow.get(tab);
    if (row === undefined) {
      row = new Set();
      this.tableNow.set(tab, row);
    }
    if (add) row.add(channel);
    else row.delete(channel);
  }

  private changed(tab: string, linger = false): void {
    if (this.hub === undefined || this.leading === undefined) return;
    if (this.tableNow.has(tab)) this.watch(tab, this.leading.signal);
    this.hub.reconcile(tab, linger);
  }

  private applyLeaderMessage(message: TabMessage): void {
    if (message.t === 'state') this.adoptTable(message.tabs);
    if (message.t === 'refused') for (const row of this.tableNow.values()) row.delete(message.channel);
    this.host.receive(message);
  }

  /** Take the leader's table; if it has this tab's row wrong (a message crossed a takeover), say hello. */
  private adoptTable(tabs: Readonly<Record<string, readonly string[]>>): void {
    if (this.roleNow !== 'leader') {
      for (const tab of this.tableNow.keys()) if (tab !== this.id && !(tab in tabs)) this.tableNow.delete(tab);
      for (const [tab, channels] of Object.entries(tabs))
        if (tab !== this.id) this.tableNow.set(tab, new Set(channels));
    }
    const mine = tabs[this.id];
    const agrees = mine !== undefined && mine.length === this.own.size && mine.every((c) => this.own.has(c));
    if (!agrees && this.roleNow === 'follower') this.send({ t: 'hello', tab: this.id, channels: [...this.own] });
  }
}

/**
 * The per-provider store behind the hooks: it owns the client (made on first use, never during a render),
 * one client subscription per channel shared by every hook (reference-counted), each subscription's data,
 * and when renders are told. Hooks only read snapshots through `useSyncExternalStore`, so StrictMode's
 * double effects and abandoned concurrent renders cannot open a second stream or deliver an event twice.
 */
import { reportListenerError } from '../client/report';
import type { ClientEvent, ClientStatus, SseClient, SseClientError } from '../client/types';
import { EMPTY_SNAPSHOT, Entry, type EntrySnapshot } from './entry';
import type { SubscriptionSpec, TransformRef } from './options';
import { readKept, readResumeId, writeKept, writeResumeId } from './persistence';
import { scheduleFlush } from './schedule';
import type { SSEStatus } from './types';

/** How a store gets its client. */
export interface StoreConfig {
  /** Make the client; `resumeId` is the event id kept by an earlier page, if any. */
  createClient(resumeId: string | undefined): SseClient;
  /** Close the client on dispose (false for a client the app passed in). */
  readonly ownsClient: boolean;
  /** Milliseconds a subscription outlives its last hook. */
  readonly graceMs: number;
  /** Names the kept resume id (the stream's url). */
  readonly scope: string;
  /** Milliseconds between two writes of kept data while events flow. Defaults to `250`. */
  readonly saveEveryMs?: number;
}

/** One client subscription, shared by the entries that listen to its channel. */
interface ChannelRef {
  readonly entries: Set<Entry>;
  readonly off: () => void;
}

const IDLE: SSEStatus = Object.freeze({ connectionStatus: 'idle', isConnected: false, error: undefined });

/** The store of one `<SSEProvider>`. */
export class SseStore {
  private client: SseClient | undefined;
  private offStatus: (() => void) | undefined;
  private readonly channels = new Map<string, ChannelRef>();
  private readonly entries = new Map<string, Entry>();
  private readonly dirty = new Set<Entry>();
  private readonly statusListeners = new Set<() => void>();
  private status: SSEStatus = IDLE;
  private statusDirty = false;
  private flushQueued = false;
  /** Id of the newest event handed to any entry: what a reloaded page resumes from. */
  private newestId: string | undefined;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private listeningToPage = false;
  private readonly onPageHide = (): void => this.save();
  private holders = 0;
  private disposeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly config: StoreConfig) {}

  /** The client, made now if this is its first use. Call from effects and callbacks only. */
  getClient(): SseClient {
    if (this.client) return this.client;
    const client = this.config.createClient(readResumeId(this.config.scope));
    this.client = client;
    this.setStatus(client.status, undefined);
    this.offStatus = client.onStatus((status, error) => this.setStatus(status, error));
    return client;
  }

  /** Status for renders (`useSyncExternalStore`'s getSnapshot). */
  readonly getStatus = (): SSEStatus => this.status;

  /** Status for server renders: always idle. */
  readonly getServerStatus = (): SSEStatus => IDLE;

  /** Be told of status changes; makes the client (but opens no stream). */
  readonly subscribeStatus = (listener: () => void): (() => void) => {
    this.statusListeners.add(listener);
    this.getClient();
    return () => this.statusListeners.delete(listener);
  };

  /**
   * The data of `spec.key` for a render. Kept data is loaded on the first read, so the first client render
   * already shows what an earlier page received.
   */
  snapshot(spec: SubscriptionSpec): EntrySnapshot {
    const entry = this.entries.get(spec.key);
    if (entry) return entry.snapshot;
    if (spec.persistenceKey === undefined) return EMPTY_SNAPSHOT;
    const kept = readKept(spec.persistenceKey);
    if (!kept) return EMPTY_SNAPSHOT;
    const loaded = new Entry(spec, kept);
    this.entries.set(spec.key, loaded);
    return loaded.snapshot;
  }

  /**
   * A hook's subscription: attach the entry's channels (cancelling a pending grace period) and tell
   * `listener` after each flush that changed the data.
   *
   * @returns the unsubscribe function; the channels stay for the grace period after the last one.
   */
  subscribe(spec: SubscriptionSpec, transform: TransformRef, listener: () => void): () => void {
    let entry = this.entries.get(spec.key);
    if (!entry) {
      entry = new Entry(spec, spec.persistenceKey === undefined ? undefined : readKept(spec.persistenceKey));
      this.entries.set(spec.key, entry);
    }
    const current = entry;
    current.listeners.add(listener);
    if (spec.enabled) {
      current.enabled++;
      current.transform = transform;
      // Hooks sharing a persistenceKey may ask for other sizes or channels: the newest one decides.
      if (current.capacity !== spec.capacity) {
        current.resize(spec.capacity);
        this.dirty.add(current);
        this.scheduleFlush();
      }
      this.retarget(current, spec.channels);
    }
    this.review(current);
    if (current.persistenceKey !== undefined) this.listenToPage();
    return () => {
      current.listeners.delete(listener);
      if (spec.enabled) current.enabled--;
      this.review(current);
    };
  }

  /** A provider mounted with this store (cancels a pending dispose). */
  retain(): void {
    this.holders++;
    if (this.disposeTimer !== undefined) clearTimeout(this.disposeTimer);
    this.disposeTimer = undefined;
  }

  /** Its provider unmounted: dispose once the current task is over, unless it is mounted again first. */
  release(): void {
    this.holders--;
    if (this.holders > 0 || this.disposeTimer !== undefined) return;
    this.disposeTimer = setTimeout(() => {
      this.disposeTimer = undefined;
      if (this.holders === 0) this.dispose();
    }, 0);
  }

  /** Close the client (if this store made it) and drop every subscription. Kept data is written first. */
  dispose(): void {
    this.save();
    for (const entry of this.entries.values()) {
      if (entry.graceTimer !== undefined) clearTimeout(entry.graceTimer);
      entry.graceTimer = undefined;
      entry.attached = false;
    }
    for (const ref of this.channels.values()) ref.off();
    this.channels.clear();
    for (const [key, entry] of this.entries) if (entry.persistenceKey === undefined) this.entries.delete(key);
    this.offStatus?.();
    if (this.config.ownsClient) this.client?.close();
    this.client = undefined;
    this.offStatus = undefined;
    this.setStatus('idle', undefined);
    if (this.listeningToPage && typeof removeEventListener === 'function') {
      removeEventListener('pagehide', this.onPageHide);
      this.listeningToPage = false;
    }
  }

  /** Channels currently subscribed on the client (for tests and devtools). */
  activeChannels(): string[] {
    return [...this.channels.keys()];
  }

  /**
   * After a hook came or went: attach an entry that an enabled hook wants (cancelling its grace period), and
   * start the grace period of one that none wants any more (still attached, or no longer rendered).
   */
  private review(entry: Entry): void {
    if (entry.enabled > 0) {
      if (entry.graceTimer !== undefined) clearTimeout(entry.graceTimer);
      entry.graceTimer = undefined;
      if (!entry.attached) this.attach(entry);
      return;
    }
    if (entry.graceTimer !== undefined || (!entry.attached && entry.listeners.size > 0)) return;
    entry.graceTimer = setTimeout(() => this.expire(entry), this.config.graceMs);
  }

  /** The grace period ran out: release the channels; forget data that nothing renders and nothing keeps. */
  private expire(entry: Entry): void {
    entry.graceTimer = undefined;
    if (entry.enabled > 0) return;
    this.detach(entry);
    if (entry.listeners.size === 0 && entry.persistenceKey === undefined) this.entries.delete(entry.key);
  }

  private attach(entry: Entry): void {
    entry.attached = true;
    for (const channel of entry.channels) this.acquireChannel(channel, entry);
  }

  private detach(entry: Entry): void {
    if (!entry.attached) return;
    entry.attached = false;
    for (const channel of entry.channels) this.releaseChannel(channel, entry);
  }

  /** A kept subscription asked for with other channels: follow the newest hook's list. */
  private retarget(entry: Entry, channels: readonly string[]): void {
    if (entry.channels.join(',') === channels.join(',')) return;
    const wasAttached = entry.attached;
    this.detach(entry);
    entry.channels = channels;
    if (wasAttached) this.attach(entry);
  }

  private acquireChannel(channel: string, entry: Entry): void {
    const ref = this.channels.get(channel);
    if (ref) {
      ref.entries.add(entry);
      return;
    }
    const entries = new Set<Entry>([entry]);
    const off = this.getClient().subscribe(channel, (event) => this.deliver(entries, event), {
      onError: (error) => this.fail(entries, error),
    });
    this.channels.set(channel, { entries, off });
  }

  private releaseChannel(channel: string, entry: Entry): void {
    const ref = this.channels.get(channel);
    if (!ref) return;
    ref.entries.delete(entry);
    if (ref.entries.size > 0) return;
    this.channels.delete(channel);
    ref.off();
  }

  private deliver(entries: Set<Entry>, event: ClientEvent): void {
    this.newestId = event.id;
    let kept = false;
    for (const entry of entries) {
      if (!this.receive(entry, event)) continue;
      this.dirty.add(entry);
      if (entry.persistenceKey !== undefined) kept = true;
    }
    if (kept) this.scheduleSave();
    this.scheduleFlush();
  }

  /** One entry takes an event; a throwing `transform` is reported and costs only that entry this event. */
  private receive(entry: Entry, event: ClientEvent): boolean {
    try {
      return entry.receive(event);
    } catch (error) {
      reportListenerError(error, 'sse react: a transform threw');
      return false;
    }
  }

  private fail(entries: Set<Entry>, error: SseClientError): void {
    for (const entry of entries) {
      entry.fail(error);
      this.dirty.add(entry);
    }
    this.scheduleFlush();
  }

  private setStatus(connectionStatus: ClientStatus, error: SseClientError | undefined): void {
    const kept = connectionStatus === 'open' ? undefined : (error ?? this.status.error);
    if (connectionStatus === this.status.connectionStatus && kept === this.status.error) return;
    this.status = { connectionStatus, isConnected: connectionStatus === 'open', error: kept };
    this.statusDirty = true;
    this.scheduleFlush();
  }

  /** Every change of one frame reaches the renders together: one snapshot per entry, one render per hook. */
  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    scheduleFlush(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    const listeners = new Set<() => void>();
    for (const entry of this.dirty) {
      entry.refresh();
      for (const listener of entry.listeners) listeners.add(listener);
    }
    this.dirty.clear();
    if (this.statusDirty) for (const listener of this.statusListeners) listeners.add(listener);
    this.statusDirty = false;
    for (const listener of listeners) listener();
  }

  private scheduleSave(): void {
    if (this.saveTimer !== undefined) return;
    this.saveTimer = setTimeout(() => this.save(), this.config.saveEveryMs ?? 250);
  }

  /**
   * Write every changed kept subscription and the resume id in one go: whenever the page goes, what is
   * stored is the data as of one event id, and the reloaded stream replays exactly what came after it.
   */
  private save(): void {
    if (this.saveTimer !== undefined) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    let wrote = false;
    for (const entry of this.entries.values()) {
      if (!entry.unsaved || entry.persistenceKey === undefined) continue;
      writeKept(entry.persistenceKey, entry.kept());
      wrote = true;
    }
    if (wrote && this.newestId !== undefined) writeResumeId(this.config.scope, this.newestId);
  }

  private listenToPage(): void {
    if (this.listeningToPage || typeof addEventListener !== 'function') return;
    this.listeningToPage = true;
    addEventListener('pagehide', this.onPageHide);
  }
}

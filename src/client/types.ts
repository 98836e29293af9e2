/**
 * Public types of `@datashop/sse-gateway/client`, as the contract fixes them.
 */

/** Where a client's stream is: `idle` before the first subscription, `closed` after `close()` or a 401. */
export type ClientStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** One data event as a subscription's listener receives it. */
export interface ClientEvent {
  /** The event id (opaque; one id covers every channel of the stream). */
  readonly id: string;
  /** The concrete channel, e.g. `logs:ws1:wf2`. */
  readonly channel: string;
  /** The channel's first segment. */
  readonly namespace: string;
  /** The payload as published. */
  readonly data: unknown;
}

/** A failure the client reports: the server's `ERR_SSE_*` code where there is one. */
export interface SseClientError {
  readonly code: string;
  readonly status?: number;
  readonly message: string;
}

/** Callbacks of one subscription besides its event listener. */
export interface SubscriptionHandlers {
  /** The server has the channel: every event published after this arrives. */
  onSubscribed?(): void;
  /** The server sent `sse:reset`: events may have been missed; refetch state. */
  onReset?(reason: string): void;
  /** This channel was refused (e.g. 403); other subscriptions are unaffected. */
  onError?(error: SseClientError): void;
}

/** The part of the `EventSource` interface the client uses (the browser's, or the `eventsource` package's). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  addEventListener(type: string, listener: (event: MessageEventLike) => void): void;
  close(): void;
}

/** The part of a `MessageEvent` the client reads. */
export interface MessageEventLike {
  readonly data: string;
  readonly lastEventId: string;
}

/** A constructor compatible with `EventSource`. */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** Options of `createSseClient()`. */
export interface SseClientOptions {
  /** The gateway's stream path, e.g. `/events`, or an absolute URL. */
  url: string;
  /** Passed to EventSource (and to subscription-change requests). Defaults to `false`. */
  withCredentials?: boolean;
  /** Defaults to `globalThis.EventSource`. */
  EventSource?: EventSourceConstructor;
  /** Used for subscription changes and for reading why a stream failed. Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** One stream per browser for this url. Defaults to `true` where `navigator.locks` and `BroadcastChannel` exist. */
  shareAcrossTabs?: boolean;
  /** Backoff after failures EventSource does not retry itself. Defaults to 500 ms initial, 20 s max (full jitter). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * Keep the last event id in `sessionStorage` (under this key, or a key made of the url when `true`), so a
   * reloaded page resumes where it left off instead of starting over. Defaults to `false`.
   */
  persistLastEventId?: boolean | string;
  /**
   * Resume from this event id on the first connect, e.g. the id of the newest event in data the page kept
   * (the React bindings' `persistence` passes it). Wins over a persisted id. With `shareAcrossTabs`, the tab
   * that leads the shared stream resumes from the newer of its own and the stream's id.
   */
  lastEventId?: string;
  /**
   * How long to wait for the stream's `sse:subscribed` after a subscription change was accepted before
   * changing by reconnecting instead. Defaults to `10000`.
   */
  subscriptionTimeoutMs?: number;
}

/** A client: one stream for every subscription. */
export interface SseClient {
  /**
   * Listen to a channel or trailing-`*` pattern. Returns the unsubscribe function; the channel leaves the
   * stream when its last listener unsubscribes.
   */
  subscribe(channel: string, listener: (event: ClientEvent) => void, handlers?: SubscriptionHandlers): () => void;
  /** Where the stream is. */
  readonly status: ClientStatus;
  /** Be told of every status change (with the error that caused it, if any). Returns the unsubscribe function. */
  onStatus(listener: (status: ClientStatus, error?: SseClientError) => void): () => void;
  /** Id of the newest event received, the point a reconnect resumes from. */
  readonly lastEventId: string | undefined;
  /** Close the stream and drop every subscription. Idempotent. */
  close(): void;
}

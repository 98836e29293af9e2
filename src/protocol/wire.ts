/**
 * What the server writes and the client reads, defined once: control event names, their payloads, the
 * `{channel, data}` envelope of data events, and the subscription-change request. Nothing here imports
 * from Node or Express, so the browser client shares these definitions with the gateway.
 */

/** Names of the control events. Data events are named by their namespace, which never contains `:`. */
export const ControlEvent = {
  /** First event of a stream: the subscriptions are in effect. Data: {@link ReadyPayload}. */
  ready: 'sse:ready',
  /** Events may have been missed (unknown or expired Last-Event-ID): refetch state. Data: {@link ResetPayload}. */
  reset: 'sse:reset',
  /** A proxied upstream failed or ended (`sseProxy`). Data: {@link UpstreamErrorPayload}. */
  error: 'sse:error',
  /**
   * A subscription change took effect at this point of the stream: events of the added channels published
   * after it arrive; none of the removed ones follow it. Data: {@link SubscribedPayload}.
   */
  subscribed: 'sse:subscribed',
} as const;

/** One of {@link ControlEvent}'s names. */
export type ControlEventName = (typeof ControlEvent)[keyof typeof ControlEvent];

/** True when an SSE event name is a control event (`sse:…`) rather than a namespace. */
export function isControlEvent(name: string): boolean {
  return name.startsWith('sse:');
}

/** Data of `sse:ready`. */
export interface ReadyPayload {
  /** The stream's id; it names the stream in a subscription change. */
  readonly connectionId: string;
  /** The subscriptions of the stream, as requested. */
  readonly channels: readonly string[];
  /**
   * The secret a subscription change must carry with the connection id, so that only the reader of this
   * stream can change it. Absent when the gateway has no subscription route.
   */
  readonly subscriptionToken?: string;
}

/**
 * Why a stream was reset: the gateway sends `sse:reset` with one of these. `too-large`: the missed events
 * would not fit in the stream's buffer (`limits.maxBufferedBytes`), so replaying them would only close the
 * stream again.
 */
export type ResetReason = 'malformed-id' | 'unknown-id' | 'expired' | 'replay-disabled' | 'unavailable' | 'too-large';

/** Data of `sse:reset`. */
export interface ResetPayload {
  readonly reason: ResetReason;
  /** For a reset of channels added by a subscription change: the channels it concerns; absent for all. */
  readonly channels?: readonly string[];
}

/** Data of `sse:error`, written by `sseProxy` when its upstream fails. */
export interface UpstreamErrorPayload {
  /** Why, e.g. `upstream-status`, `upstream-unreachable`, `upstream-ended`. */
  readonly reason: string;
  /** The upstream's HTTP status, when it answered with one. */
  readonly status?: number;
}

/** Data of `sse:subscribed`. */
export interface SubscribedPayload {
  /** The `requestId` of the change this answers. */
  readonly requestId: string;
  /** Channels and patterns added by the change, now live on the stream. */
  readonly added: readonly string[];
  /** Channels and patterns removed by the change. */
  readonly removed: readonly string[];
  /** Every subscription of the stream after the change. */
  readonly channels: readonly string[];
  /** Channels the instance holding the stream refused (e.g. over its channel limit), if any. */
  readonly refused?: readonly RefusedChannel[];
}

/** The data of every data event: the concrete channel and the payload. */
export interface Envelope<T = unknown> {
  readonly channel: string;
  readonly data: T;
}

/** Route of subscription changes, below the stream path: `POST {path}/subscriptions`. */
export const SUBSCRIPTIONS_PATH = '/subscriptions';

/** One channel to add in a {@link SubscriptionChangeRequest}. */
export interface SubscriptionAdd {
  /** A channel or trailing-`*` pattern. */
  readonly channel: string;
  /** Replay the channel's events after this event id (through the ACL, from the bus history). */
  readonly since?: string;
}

/**
 * Body of `POST {path}/subscriptions` (JSON). The request is authenticated and authorised like the stream:
 * its principal must be the stream's.
 */
export interface SubscriptionChangeRequest {
  /** From `sse:ready`. */
  readonly connectionId: string;
  /** From `sse:ready`. */
  readonly subscriptionToken: string;
  /** Chosen by the client; echoed in the `sse:subscribed` event that answers it. 1-64 of `[A-Za-z0-9_-]`. */
  readonly requestId: string;
  /** Channels to add: names, or `{ channel, since }`. */
  readonly add?: readonly (string | SubscriptionAdd)[];
  /** Channels to remove. */
  readonly remove?: readonly string[];
}

/** One channel of a change that the server refused; the others of the change go ahead. */
export interface RefusedChannel {
  readonly channel: string;
  /** The `ERR_SSE_*` code, e.g. `ERR_SSE_FORBIDDEN_CHANNEL` or `ERR_SSE_INVALID_CHANNEL`. */
  readonly code: string;
  /** The HTTP status a stream request for this channel alone would have had (403, 400). */
  readonly status: number;
  readonly message: string;
}

/**
 * Answer of `POST {path}/subscriptions`: 200 when the stream is on the instance that answered (the
 * `sse:subscribed` event is then already written), 202 when the change was sent over the bus to the
 * instance holding the stream. Either way the `sse:subscribed` event with the same `requestId` tells the
 * client when the change took effect. Errors: 400 malformed, 401 no principal, 403 not this principal's
 * stream, 404 no such stream here and a bus without signals to ask the others (with the built-in buses the
 * answer is 202, and a change for a stream that no longer exists is never confirmed: the client's timeout
 * falls back to reconnecting), 415 not JSON.
 */
export interface SubscriptionChangeResponse {
  readonly requestId: string;
  /** Channels that will be added (authorised and valid). */
  readonly accepted: readonly string[];
  /** Channels refused; their subscriptions fail alone. */
  readonly refused: readonly RefusedChannel[];
  /** Channels that will be removed. */
  readonly removed: readonly string[];
}

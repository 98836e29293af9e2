/**
 * What the tabs sharing one stream say to each other over their BroadcastChannel, and the names of their
 * channel and Web Locks. The version is part of every name, so tabs running two releases of the client
 * (a deploy while tabs stay open) never misread each other: each release elects its own leader.
 */
import type { ResetReason } from '../protocol/wire';
import type { ClientEvent, ClientStatus, SseClientError } from './types';

/** Bumped on any incompatible change to {@link TabMessage} (2: a joining tab's catch-up). */
export const TAB_PROTOCOL_VERSION = 2;

/** The names one shared stream uses: its BroadcastChannel, the leader's lock, and each tab's own lock. */
export interface TabNames {
  /** BroadcastChannel name, and the leader lock's name. */
  readonly base: string;
  /** The lock a tab holds for as long as it takes part: the leader learns of a tab's death from it. */
  tabLock(tab: string): string;
}

/**
 * The names for the stream at `absoluteUrl`.
 *
 * @param absoluteUrl - the stream's URL resolved against the page, so `/events` and its absolute form agree.
 */
export function tabNames(absoluteUrl: string): TabNames {
  const base = `sse-gateway:v${TAB_PROTOCOL_VERSION}:${absoluteUrl}`;
  return { base, tabLock: (tab) => `${base}#tab:${tab}` };
}

/**
 * Messages of the tabs. Every tab posts `hello`, `sub`, `unsub`, `restart`, `bye` and `catch-up` (and keeps a
 * copy of the subscription table from everyone's messages, so a tab that takes over knows every channel at
 * once); only the leader posts the others. BroadcastChannel keeps one sender's order, so a `subscribed` notice
 * comes before the channel's events that follow it on the stream.
 */
export type TabMessage =
  /** A tab joined, or re-announces every channel it has (answered by `state`). */
  | { readonly t: 'hello'; readonly tab: string; readonly channels: readonly string[] }
  /** A tab's first listener of `channel`. */
  | { readonly t: 'sub'; readonly tab: string; readonly channel: string }
  /** A tab's last listener of `channel` left. */
  | { readonly t: 'unsub'; readonly tab: string; readonly channel: string }
  /** A tab subscribed after the stream stopped for good (401): the leader starts a new one. */
  | { readonly t: 'restart'; readonly tab: string }
  /**
   * A tab left (closed, or its page was hidden: unloaded, or put in the back-forward cache). With `linger`
   * (the page was hidden: it may be reloading), the leader keeps the tab's channels on the stream a while,
   * so the page that comes back catches up on them.
   */
  | { readonly t: 'bye'; readonly tab: string; readonly linger?: boolean }
  /** The leader saw a tab die (its lock was released without a `bye`). */
  | { readonly t: 'drop'; readonly tab: string }
  /**
   * A tab that joined with a kept id asks `leader` for the events after `since` on `channels` (each already
   * announced by `hello` or `sub`); it holds the live events until the answer.
   */
  | {
      readonly t: 'catch-up';
      readonly tab: string;
      readonly leader: string;
      readonly request: number;
      readonly since: string;
      readonly channels: readonly string[];
    }
  /** The leader's view: sent when it takes over and after each `hello`. */
  | {
      readonly t: 'state';
      readonly leader: string;
      readonly status: ClientStatus;
      readonly lastEventId?: string;
      readonly tabs: Readonly<Record<string, readonly string[]>>;
    }
  /** The shared stream's status changed. */
  | {
      readonly t: 'status';
      readonly status: ClientStatus;
      readonly error?: SseClientError;
      readonly lastEventId?: string;
    }
  /** One data event, posted once for every tab. */
  | { readonly t: 'event'; readonly event: ClientEvent }
  /** The server has `channel`: its events from here on arrive. */
  | { readonly t: 'subscribed'; readonly channel: string }
  /** The server sent `sse:reset` concerning `channel`. */
  | { readonly t: 'reset'; readonly channel: string; readonly reason: string }
  /** The server refused `channel`: every tab fails its subscriptions of it and forgets it. */
  | { readonly t: 'refused'; readonly channel: string; readonly error: SseClientError }
  /**
   * The leader's answer to `tab`'s catch-up `request` (the other tabs ignore it): the events after its id
   * on the channels the leader's recent events cover, and a reset for each other channel.
   */
  | {
      readonly t: 'caught-up';
      readonly tab: string;
      readonly request: number;
      readonly events: readonly ClientEvent[];
      readonly resets: readonly { readonly channel: string; readonly reason: ResetReason }[];
    };

const TYPES: ReadonlySet<string> = new Set([
  'hello',
  'sub',
  'unsub',
  'restart',
  'bye',
  'drop',
  'catch-up',
  'state',
  'status',
  'event',
  'subscribed',
  'reset',
  'refused',
  'caught-up',
]);

/**
 * The message in a BroadcastChannel `data`, or `null` for anything else (the channel is same-origin, so
 * this guards against other scripts' stray posts, not against an attacker).
 *
 * @param data - `MessageEvent.data`.
 */
export function readTabMessage(data: unknown): TabMessage | null {
  if (typeof data !== 'object' || data === null) return null;
  const t = (data as { t?: unknown }).t;
  return typeof t === 'string' && TYPES.has(t) ? (data as TabMessage) : null;
}

/**
 * A plain copy of an error, safe for structured cloning (an `Error` subclass would lose its fields).
 *
 * @param error - the error a stream reported.
 */
export function plainError(error: SseClientError): SseClientError {
  return error.status === undefined
    ? { code: error.code, message: error.message }
    : { code: error.code, status: error.status, message: error.message };
}

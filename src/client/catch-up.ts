/**
 * A follower tab's catch-up: a tab that joins the shared stream with a kept id (a reload, a page back from
 * the back-forward cache, a client created with `lastEventId`) asks the leader for the events after that id
 * on its channels, and holds the live events that arrive meanwhile. The answer and the held events are
 * then merged in publish order, each once, so the replayed events come before the live ones. Until the
 * answer, the tab's own id stays where it was: a takeover by this tab resumes from it.
 */
import { parseEventId } from '../protocol/event-id';
import type { ResetReason } from '../protocol/wire';
import { RECENT_EVENTS_LIMITS } from './recent-events';
import type { TabMessage } from './tab-protocol';
import type { ClientEvent } from './types';

/** How long a follower waits for the leader's answer before it gives up and resets its channels, in ms. */
export const CATCH_UP_TIMEOUT_MS = 10_000;

/** True when `a` was published after `b` (same epoch, higher sequence); false when they cannot be compared. */
function publishedAfter(a: ClientEvent, b: ClientEvent): boolean {
  const x = parseEventId(a.id);
  const y = parseEventId(b.id);
  return x !== null && y !== null && x.epoch === y.epoch && x.seq > y.seq;
}

/**
 * The leader's catch-up and the live events held meanwhile, as one list in publish order with each id
 * once (an event the catch-up holds may also have arrived live). Events that cannot be compared (ids of
 * another epoch, or none) keep their place, catch-up first.
 *
 * @param caughtUp - the leader's answer, in publish order.
 * @param held - the live events that arrived before it, in arrival order.
 */
export function mergeCatchUp(caughtUp: readonly ClientEvent[], held: readonly ClientEvent[]): ClientEvent[] {
  const merged: ClientEvent[] = [];
  const seen = new Set<string>();
  let i = 0;
  let j = 0;
  while (i < caughtUp.length || j < held.length) {
    const replayed = caughtUp[i];
    const live = held[j];
    let next: ClientEvent;
    if (replayed !== undefined && (live === undefined || !publishedAfter(replayed, live))) {
      next = replayed;
      i++;
    } else {
      next = live as ClientEvent;
      j++;
    }
    if (next.id !== '') {
      if (seen.has(next.id)) continue;
      seen.add(next.id);
    }
    merged.push(next);
  }
  return merged;
}

/** What a settled catch-up hands to the tab: resets first, then the events in order. */
export interface CatchUpResult {
  readonly resets: readonly { readonly channel: string; readonly reason: ResetReason }[];
  readonly events: readonly ClientEvent[];
}

/**
 * One tab's catch-up, from joining with a kept id to the leader's answer. No timers and no messages of
 * its own: the tab asks what to post and hands over what it receives.
 */
export class TabCatchUp {
  private since: string | undefined;
  private held: ClientEvent[] = [];
  /** The leader asked last, and the number of that request. */
  private asked: { readonly leader: string; readonly request: number } | undefined;
  private requests = 0;
  /** The first request of this catch-up: an answer to it or to any later one is taken (see `settle`). */
  private firstRequest = 1;

  /**
   * @param since - the tab's kept id, or `undefined` for a tab with nothing to catch up on.
   * @param maxHeld - most live events held while waiting; one more and the tab gives up. Defaults to the
   *   leader's ring size ({@link RECENT_EVENTS_LIMITS}): by then the leader could not serve the id anyway.
   */
  constructor(
    since: string | undefined,
    private readonly maxHeld = RECENT_EVENTS_LIMITS.maxEvents,
  ) {
    this.since = since;
  }

  /** True from joining with a kept id until the answer (or giving up). */
  get resuming(): boolean {
    return this.since !== undefined;
  }

  /**
   * The newest live event held, once the leader was asked: a channel subscribed from now on is not in the
   * request, and the events up to this one were published before it was subscribed.
   */
  get newestHeldAfterAsking(): string | undefined {
    return this.asked === undefined ? undefined : this.held.at(-1)?.id;
  }

  /**
   * Catch up from `since` again (a page back from the back-forward cache), forgetting anything held.
   *
   * @param since - the tab's newest id.
   */
  restart(since: string | undefined): void {
    this.since = since;
    this.held = [];
    this.asked = undefined;
    this.firstRequest = this.requests + 1;
  }

  /**
   * Hold a live event until the answer. False when not resuming, or when the hold is full (give up then).
   *
   * @param event - as the leader posted it.
   */
  hold(event: ClientEvent): boolean {
    if (this.since === undefined || this.held.length >= this.maxHeld) return false;
    this.held.push(event);
    return true;
  }

  /**
   * The request to post to `leader`, or `undefined` when there is nothing to ask or it was asked already.
   *
   * @param leader - the leading tab's id.
   * @param tab - this tab's id.
   * @param channels - this tab's channels and patterns (each already announced to the leader).
   */
  ask(leader: string, tab: string, channels: readonly string[]): Extract<TabMessage, { t: 'catch-up' }> | undefined {
    if (this.since === undefined || channels.length === 0 || this.asked?.leader === leader) return undefined;
    const request = ++this.requests;
    this.asked = { leader, request };
    return { t: 'catch-up', tab, leader, request, since: this.since, channels: [...channels] };
  }

  /**
   * Take the leader's answer: the resets, and the replayed and held events merged. `undefined` for an
   * answer to a request of an earlier catch-up, or once settled. The answer to any request of this one is
   * taken, not only the last: a late `state` of a leader that left (BroadcastChannel keeps one sender's
   * order only) makes the tab ask that leader after the one that leads, and only the latter answers. Any
   * leader's answer fits: it holds the events after `since` up to its newest, and every live event after
   * that one came after it from the same leader, so it is held or still to come.
   *
   * @param answer - a `caught-up` message addressed to this tab.
   */
  settle(answer: Extract<TabMessage, { t: 'caught-up' }>): CatchUpResult | undefined {
    if (this.since === undefined || answer.request < this.firstRequest || answer.request > this.requests)
      return undefined;
    const events = mergeCatchUp(answer.events, this.held);
    this.restart(undefined);
    return { resets: answer.resets, events };
  }

  /** Give up (no answer in time, or too many held): returns the held events, to be delivered after a reset. */
  abandon(): ClientEvent[] {
    const held = this.held;
    this.restart(undefined);
    return held;
  }
}

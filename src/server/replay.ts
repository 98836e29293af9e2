/**
 * Replay: a stream (or a channel added to it) resumes from a Last-Event-ID with every missed event once and
 * in order, then live events, with nothing lost in between.
 *
 * The invariant, in one place:
 * 1. The connection's topics are in the channel index (and so watched on the bus) BEFORE the history is read,
 *    and live events of the connection are held from then on.
 * 2. The bus confirms the watch (`Bus.watched()`): every event published from now on reaches the index.
 * 3. The history is read as one snapshot up to its `head`, through the same channel match.
 * 4. The replayed events are written, then the held live events, less those with a sequence at or below
 *    `head` on a channel the replay read: those were in the snapshot.
 * An event is therefore either in the snapshot (sequence <= head) or held (it was published after the watch
 * took effect, or both, and then deduplicated). If the history cannot serve the id, `sse:reset` is written
 * instead and only live events follow: never a partial replay.
 */

import { encodeEvent } from '../bus/event';
import { formatEvent } from '../protocol/framing';
import { ControlEvent, type ResetPayload, type ResetReason } from '../protocol/wire';
import type { Bus, Logger, SseEvent } from '../types';
import type { Connection } from './connection';

/** What the replay needs to know of the gateway. */
export interface ReplaySource {
  readonly bus: Bus;
  readonly logger: Logger;
  /**
   * The replay window, or `false` when replay is off: `size` counts the missed events the stream's own
   * `match` accepts (not the bus-wide gap, which only has to be held by the bus), `ttlMs` their age.
   */
  readonly window: { readonly size: number; readonly ttlMs: number } | false;
  /** False for channels of namespaces with `replay: false`. */
  replayable(channel: string): boolean;
  /** A stream's byte limit: a replay larger than half of it is answered with `sse:reset` (`too-large`). */
  readonly maxBufferedBytes: number;
  /** Told of every replay's outcome: `events` replayed, or the reason of the reset. */
  replayDone(outcome: { readonly events: number } | { readonly reset: ResetReason }): void;
}

/** The `sse:reset` frame for `reason` (and, for channels added to an open stream, which ones). */
export function resetFrame(reason: ResetReason, channels?: readonly string[]): string {
  const payload: ResetPayload = channels === undefined ? { reason } : { reason, channels };
  return formatEvent({ event: ControlEvent.reset, data: JSON.stringify(payload) });
}

/** True when the frames of `events` add up to at most `budget` bytes. */
function fits(events: readonly SseEvent[], budget: number): boolean {
  let total = 0;
  for (const event of events) {
    total += encodeEvent(event).frame.length;
    if (total > budget) return false;
  }
  return true;
}

/** Wait for the bus to confirm every watch made so far; a failure is logged, never thrown. */
export async function confirmWatches(source: ReplaySource): Promise<void> {
  const watched = source.bus.watched?.();
  if (watched === undefined) return;
  await watched.catch((cause: unknown) => {
    source.logger.error('sse-gateway: the bus could not confirm a subscription', cause);
  });
}

/**
 * Open a stream: `ready` is written once the bus has the subscriptions in effect (it promises that later
 * publishes arrive), then the replay after `lastEventId`, if any. The caller has indexed the connection.
 *
 * A fresh stream's `sse:ready` carries the bus's newest id as its `id:`, so a client that drops before its
 * first event still resumes from a point (every later event has a higher sequence, and those held meanwhile
 * are delivered after it). A resuming stream's does not: its id would move the client's Last-Event-ID past
 * the events still to be replayed.
 *
 * @param ready - the `sse:ready` frame, given the id to carry.
 * @param covers - which channels the connection is subscribed to.
 */
export async function startStream(
  source: ReplaySource,
  connection: Connection,
  ready: (id: string | undefined) => string,
  lastEventId: string | undefined,
  covers: (channel: string) => boolean,
): Promise<void> {
  const fresh = (): string => ready(source.bus.status().head);
  if (source.bus.watched === undefined && lastEventId === undefined) {
    connection.writeRaw(fresh());
    return;
  }
  connection.hold();
  await confirmWatches(source);
  connection.writeRaw(lastEventId === undefined ? fresh() : ready(undefined));
  if (lastEventId === undefined) connection.release([], undefined);
  else await replayInto(source, connection, lastEventId, covers);
}

/**
 * Replay after `lastEventId` into a held connection, for the channels `covers` accepts, then release it.
 * On any failure the connection gets `sse:reset` (for `resetChannels`, when given) and live events only.
 */
export async function replayInto(
  source: ReplaySource,
  connection: Connection,
  lastEventId: string,
  covers: (channel: string) => boolean,
  resetChannels?: readonly string[],
): Promise<void> {
  let reason: ResetReason;
  const { window } = source;
  if (window === false) reason = 'replay-disabled';
  else {
    // Held events of a channel the replay did not read (a `replay: false` namespace) are live events: kept.
    const match = (channel: string): boolean => source.replayable(channel) && covers(channel);
    try {
      const result = await source.bus.replay(lastEventId, { maxCount: window.size, maxAgeMs: window.ttlMs, match });
      if (result.ok && fits(result.events, source.maxBufferedBytes / 2)) {
        source.replayDone({ events: result.events.length });
        return connection.release(result.events, result.head, match);
      }
      // Too large to replay: sending it would close the stream, whose reconnect would ask for it again.
      reason = result.ok ? 'too-large' : result.reason;
    } catch (cause) {
      source.logger.error('sse-gateway: replay failed; sending sse:reset', cause);
      reason = 'unavailable';
    }
  }
  source.replayDone({ reset: reason });
  connection.writeRaw(resetFrame(reason, resetChannels));
  connection.release([], undefined);
}

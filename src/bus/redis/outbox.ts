/**
 * The outbox: publishes on their way to Redis. While the command link is up they go straight out, as
 * many at a time as the caller makes; while it is down (or an attempt failed) they are held, in publish
 * order and bounded by count and bytes, and sent again once the link is back. Each publish carries its own
 * publish id (scripts.ts), so one whose reply was lost and that is sent again is applied once. A publish
 * that is not confirmed by its deadline is rejected, saying whether it may have reached Redis.
 *
 * Order: a failed attempt is held in its place by publish number, and held publishes are only sent again
 * once no attempt is in flight, so a later publish can never overtake an earlier one across connections.
 * Scripts go out as EVALSHA without a fallback: a NOSCRIPT (Redis restarted) is a failed attempt like any
 * other, and the first publish on a connection and of a batch sent again is an EVAL, which loads the
 * script for the EVALSHAs pipelined behind it.
 */
import { SseError } from '../../protocol/errors';
import type { CommandClient } from './clients';
import { isNoScript, type ScriptCall } from './scripts';

/** Held publishes at most, by count and by bytes of payload and header. */
export const MAX_HELD_PUBLISHES = 10_000;
export const MAX_HELD_BYTES = 32 * 1024 * 1024;
/** Pause before sending again after an attempt failed on a link that still looks up. */
const RETRY_MS = 50;

/** One publish: its call, its place in the order, and what is known of its attempts. */
interface Entry {
  readonly n: number;
  readonly call: ScriptCall;
  readonly channel: string;
  readonly bytes: number;
  readonly resolve: (reply: unknown) => void;
  readonly reject: (error: SseError) => void;
  readonly timer: NodeJS.Timeout;
  /** Some attempt may have reached Redis. */
  written: boolean;
  done: boolean;
  /** Why the last attempt failed, for the deadline's message. */
  lastFailure: string | undefined;
}

/** What the outbox needs from the bus. */
export interface OutboxParts {
  readonly commands: CommandClient;
  /** Run `call` once, with the command timeout: EVAL when `load`, else EVALSHA. */
  send(call: ScriptCall, load: boolean): Promise<unknown>;
  /** The error to reject with when `cause` will not go away by sending again; `undefined` to retry. */
  fatal(channel: string, cause: unknown): SseError | undefined;
  readonly deadlineMs: number;
}

/** ioredis refused to write (the command never left this process), or Redis did not know the script. */
function notApplied(cause: unknown): boolean {
  return isNoScript(cause) || (cause instanceof Error && /isn't writeable|enableOfflineQueue/.test(cause.message));
}

/** Publishes in flight and held, in publish order. */
export class Outbox {
  /** Publishes waiting to be sent (again), ordered by `n`. */
  #held: Entry[] = [];
  #heldBytes = 0;
  #inflight = 0;
  #next = 0;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  /** Whether the script went out on this connection already (a new connection may be a restarted Redis). */
  #loaded = false;

  readonly #onReady = () => {
    this.#loaded = false;
    this.pump();
  };

  constructor(private readonly parts: OutboxParts) {
    parts.commands.on('ready', this.#onReady);
  }

  /** Publishes held for a link that is down (not counting those in flight). */
  get held(): number {
    return this.#held.length;
  }

  /**
   * Send `call` now or once the link is back; resolves with the script's reply.
   *
   * @param bytes - what holding it costs (payload and header).
   */
  submit(call: ScriptCall, channel: string, bytes: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.#closed) return reject(closedError(channel));
      const direct = this.#held.length === 0 && this.parts.commands.status === 'ready';
      if (!direct && (this.#held.length >= MAX_HELD_PUBLISHES || this.#heldBytes + bytes > MAX_HELD_BYTES)) {
        return reject(this.fullError(channel));
      }
      const timer = setTimeout(() => this.expire(entry), this.parts.deadlineMs);
      timer.unref();
      const entry: Entry = {
        n: this.#next++,
        call,
        channel,
        bytes,
        resolve,
        reject,
        timer,
        written: false,
        done: false,
        lastFailure: undefined,
      };
      if (direct) this.attempt(entry, false);
      else this.hold(entry);
    });
  }

  /** Reject everything not confirmed yet (the bus is closing). */
  close(): void {
    this.#closed = true;
    // A passed-in client outlives the bus.
    this.parts.commands.off('ready', this.#onReady);
    clearTimeout(this.#retry);
    for (const entry of this.#held) this.settle(entry, closedError(entry.channel, entry.written));
    this.#held = [];
    this.#heldBytes = 0;
  }

  private attempt(entry: Entry, load: boolean): void {
    this.#inflight++;
    const before = entry.written;
    entry.written = true;
    const viaEval = load || !this.#loaded;
    this.#loaded = true;
    this.parts.send(entry.call, viaEval).then(
      (reply) => {
        this.#inflight--;
        if (!entry.done) {
          entry.done = true;
          clearTimeout(entry.timer);
          entry.resolve(reply);
        }
        this.pump();
      },
      (cause: unknown) => {
        this.#inflight--;
        if (notApplied(cause)) entry.written = before;
        if (isNoScript(cause)) this.#loaded = false;
        if (!entry.done) {
          const fatal = this.#closed
            ? closedError(entry.channel, entry.written)
            : this.parts.fatal(entry.channel, cause);
          if (fatal !== undefined) this.settle(entry, fatal);
          else {
            entry.lastFailure = cause instanceof Error ? cause.message : String(cause);
            this.hold(entry);
          }
        }
        this.pump();
      },
    );
  }

  /** Put `entry` in its place among the held publishes (failures arrive nearly in order: search from the end). */
  private hold(entry: Entry): void {
    let at = this.#held.length;
    while (at > 0 && (this.#held[at - 1] as Entry).n > entry.n) at--;
    this.#held.splice(at, 0, entry);
    this.#heldBytes += entry.bytes;
    this.pump();
  }

  /** Send every held publish, in order, once nothing is in flight and the link is up. */
  private pump(): void {
    if (this.#closed || this.#held.length === 0 || this.#inflight > 0) return;
    if (this.parts.commands.status !== 'ready') return; // the `ready` listener calls again
    if (this.#retry !== undefined) return;
    // A failed attempt on a link that still looks up: wait a little, or this spins.
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#inflight > 0 || this.parts.commands.status !== 'ready' || this.#closed) return;
      const batch = this.#held;
      this.#held = [];
      this.#heldBytes = 0;
      for (const [i, entry] of batch.entries()) this.attempt(entry, i === 0);
    }, RETRY_MS);
    this.#retry.unref();
  }

  private expire(entry: Entry): void {
    if (entry.done) return;
    const at = this.#held.indexOf(entry);
    if (at !== -1) {
      this.#held.splice(at, 1);
      this.#heldBytes -= entry.bytes;
    }
    const why = entry.lastFailure ?? `connection ${this.parts.commands.status}`;
    const ms = this.parts.deadlineMs;
    const message = entry.written
      ? `Redis bus could not confirm the publish to ${entry.channel} within ${ms} ms (${why}). The event may or may not have been published; to publish it at most once, retry with an idempotencyKey.`
      : `Redis bus could not publish to ${entry.channel} within ${ms} ms (${why}). The event was not published; retry when Redis is reachable.`;
    this.settle(entry, new SseError('ERR_SSE_BUS_UNAVAILABLE', message, 503));
  }

  private settle(entry: Entry, error: SseError): void {
    if (entry.done) return;
    entry.done = true;
    clearTimeout(entry.timer);
    entry.reject(error);
  }

  private fullError(channel: string): SseError {
    return new SseError(
      'ERR_SSE_BUS_UNAVAILABLE',
      `Redis bus cannot publish to ${channel}: ${this.#held.length} publishes (${this.#heldBytes} bytes) are already held while Redis is unreachable. The event was not published; retry when Redis is reachable.`,
      503,
    );
  }
}

function closedError(channel: string, written = false): SseError {
  const outcome = written ? 'may or may not have been published' : 'was not published';
  return new SseError(
    'ERR_SSE_BUS_CLOSED',
    `The Redis bus was closed before the publish to ${channel} was confirmed; the event ${outcome}.`,
  );
}

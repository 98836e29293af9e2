/**
 * Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0 and the
 * exponential ceiling), so that a fleet of browsers that lost one server does not come back in step.
 */

/** Options of {@link createBackoff}. */
export interface BackoffOptions {
  /** Ceiling of the first delay. Defaults to `500`. */
  initialDelayMs?: number;
  /** Largest ceiling. Defaults to `20000`. */
  maxDelayMs?: number;
  /** A source of numbers in [0, 1). Defaults to `Math.random`. */
  random?: () => number;
}

/** A backoff sequence. */
export interface Backoff {
  /** The next delay: random in [0, min(max, initial × 2^attempt)), then the attempt count grows. */
  next(): number;
  /**
   * The delay after an answer with `Retry-After`: at least `retryAfterMs`, plus a jitter of up to one
   * initial delay so the clients it was sent to do not return in one instant. Counts as an attempt.
   */
  after(retryAfterMs: number): number;
  /** Back to the first attempt (after a stream opened). */
  reset(): void;
  /** Attempts since the last reset. */
  readonly attempts: number;
}

/** Default ceiling of the first delay, in ms. */
export const DEFAULT_INITIAL_DELAY_MS = 500;
/** Default largest ceiling, in ms. */
export const DEFAULT_MAX_DELAY_MS = 20_000;

/**
 * A backoff sequence with full jitter.
 *
 * @param options - the delays and the random source.
 * @example
 * ```ts
 * const backoff = createBackoff({ initialDelayMs: 500, maxDelayMs: 20_000 });
 * setTimeout(reconnect, backoff.next());
 * ```
 */
export function createBackoff(options: BackoffOptions = {}): Backoff {
  const initial = options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
  const max = Math.max(options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, initial);
  const random = options.random ?? Math.random;
  let attempts = 0;
  const ceiling = (): number => Math.min(max, initial * 2 ** Math.min(attempts, 30));
  return {
    next() {
      const delay = Math.floor(random() * ceiling());
      attempts++;
      return delay;
    },
    after(retryAfterMs) {
      attempts++;
      return Math.max(0, retryAfterMs) + Math.floor(random() * initial);
    },
    reset() {
      attempts = 0;
    },
    get attempts() {
      return attempts;
    },
  };
}

/**
 * A `Retry-After` header in milliseconds: delta-seconds or an HTTP date; `undefined` when absent or
 * unreadable.
 *
 * @param value - the header value.
 * @param now - the current time. Defaults to `Date.now()`.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date names its day and month; anything else (`-1`, `1.5`) is unreadable, not a date.
  if (!/[A-Za-z]{3}/.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

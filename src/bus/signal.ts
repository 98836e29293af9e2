/**
 * Bus signals: control messages between the gateways that share a bus (see {@link BusSignal}).
 */
import type { BusSignal } from '../types';

/** `signal` if it is a well-formed {@link BusSignal}, else `null`. */
export function asSignal(signal: unknown): BusSignal | null {
  if (typeof signal !== 'object' || signal === null) return null;
  const { type, principalId } = signal as Partial<BusSignal>;
  if (type !== 'disconnect' || typeof principalId !== 'string' || principalId === '') return null;
  return { type, principalId };
}

/**
 * Check a signal before it is sent.
 *
 * @throws TypeError naming what is wrong.
 */
export function checkSignal(signal: BusSignal): BusSignal {
  const checked = asSignal(signal);
  if (checked === null) {
    throw new TypeError(
      `A bus signal is { type: 'disconnect', principalId: '<non-empty string>' } (received ${JSON.stringify(signal)}).`,
    );
  }
  return checked;
}

/** A signal received as JSON text, or `null` when it is not one. */
export function decodeSignal(text: string): BusSignal | null {
  try {
    return asSignal(JSON.parse(text));
  } catch {
    return null;
  }
}

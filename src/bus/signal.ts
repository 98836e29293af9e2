/**
 * Bus signals: control messages between the gateways that share a bus (see {@link BusSignal}).
 */
import type { BusSignal } from '../types';

/** `signal` if it is a well-formed {@link BusSignal}, else `null`. */
export function asSignal(signal: unknown): BusSignal | null {
  if (typeof signal !== 'object' || signal === null) return null;
  const value = signal as Record<string, unknown>;
  const { type, principalId } = value;
  if (typeof principalId !== 'string' || principalId === '') return null;
  if (type === 'disconnect') return { type, principalId };
  if (type !== 'subscriptions') return null;
  const { connectionId, subscriptionToken, requestId, add, remove } = value;
  if (!isShortString(connectionId) || !isShortString(subscriptionToken) || !isShortString(requestId)) return null;
  if (!Array.isArray(add) || !Array.isArray(remove) || !remove.every(isShortString)) return null;
  const adds: { channel: string; since?: string }[] = [];
  for (const item of add as unknown[]) {
    const { channel, since } = (item ?? {}) as Record<string, unknown>;
    if (typeof channel !== 'string' || (since !== undefined && !isShortString(since))) return null;
    adds.push(since === undefined ? { channel } : { channel, since });
  }
  return { type, principalId, connectionId, subscriptionToken, requestId, add: adds, remove: remove as string[] };
}

function isShortString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 4096;
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
      `A bus signal is { type: 'disconnect', principalId } or { type: 'subscriptions', principalId, connectionId, subscriptionToken, requestId, add, remove } (received ${JSON.stringify(signal)}).`,
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

/**
 * Event ids: `<epoch>-<sequence>`. The epoch names one sequence (a memory bus, or one Redis history);
 * the sequence grows by one per publish over every channel, so one Last-Event-ID covers a whole
 * connection and orders events across instances that share the epoch. Creating an epoch is the buses'
 * business (`bus/epoch.ts`); this module only reads and writes ids, on both sides of the wire.
 */

/** A parsed event id. */
export interface EventId {
  readonly epoch: string;
  readonly seq: number;
}

const EVENT_ID = /^([a-z0-9]{1,32})-([0-9]{1,15})$/;

/**
 * Format an id.
 *
 * @param epoch - the sequence's epoch.
 * @param seq - a positive integer.
 */
export function formatEventId(epoch: string, seq: number): string {
  return `${epoch}-${seq}`;
}

/**
 * Parse an id as clients send it back; `null` for anything malformed (including CR/LF, overlong input,
 * or a sequence beyond `Number.MAX_SAFE_INTEGER`).
 *
 * @param id - the Last-Event-ID.
 */
export function parseEventId(id: string): EventId | null {
  const match = EVENT_ID.exec(id);
  if (!match) return null;
  const seq = Number(match[2]);
  if (!Number.isSafeInteger(seq)) return null;
  return { epoch: match[1] as string, seq };
}

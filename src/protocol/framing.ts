/**
 * The bytes on the wire. Pure functions: nothing here can be bypassed by a caller.
 */
import { SseError } from './errors';

/** The fields of one SSE message. */
export interface SseMessage {
  /** `id:` field; must not contain CR, LF or NUL. */
  id?: string;
  /** `event:` field; must not contain CR, LF or NUL. */
  event?: string;
  /** `data:` payload; split into one `data:` line per line, so any string is safe. */
  data: string;
  /** `retry:` field in ms; a non-negative integer. */
  retry?: number;
}

const LINE_BREAK = /\r\n|\r|\n/;

/** True when `text` holds CR or LF (two native scans; cheaper than a regex on the publish path). */
function hasLineBreak(text: string): boolean {
  return text.indexOf('\n') !== -1 || text.indexOf('\r') !== -1;
}

function assertField(name: 'id' | 'event', value: string): void {
  if (hasLineBreak(value) || value.indexOf('\0') !== -1) {
    throw new SseError(
      'ERR_SSE_INVALID_FIELD',
      `SSE ${name} must not contain CR, LF or NUL (received ${JSON.stringify(value)}); these would break the stream framing.`,
    );
  }
}

/**
 * Format one SSE message, ending with the blank line that dispatches it.
 *
 * @param message - the fields; `data` may contain any line breaks.
 * @returns the message text.
 * @throws SseError `ERR_SSE_INVALID_FIELD` when `id` or `event` contain CR, LF or NUL.
 * @example
 * formatEvent({ event: 'sse:ready', data: '{"connectionId":"c1"}' });
 * // 'event: sse:ready\ndata: {"connectionId":"c1"}\n\n'
 */
export function formatEvent(message: SseMessage): string {
  let out = '';
  if (message.retry !== undefined) out += formatRetry(message.retry);
  if (message.id !== undefined) {
    assertField('id', message.id);
    out += `id: ${message.id}\n`;
  }
  if (message.event !== undefined) {
    assertField('event', message.event);
    out += `event: ${message.event}\n`;
  }
  for (const line of message.data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Format a `retry:` line.
 *
 * @param ms - reconnection delay; a non-negative integer.
 */
export function formatRetry(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) {
    throw new SseError('ERR_SSE_INVALID_FIELD', `SSE retry must be a non-negative integer (received ${ms}).`);
  }
  return `retry: ${ms}\n`;
}

/**
 * Format a comment (heartbeat) line; every line of `text` becomes its own comment line.
 *
 * @param text - the comment. Defaults to empty.
 */
export function formatComment(text = ''): string {
  let out = '';
  for (const line of text.split(LINE_BREAK)) out += `: ${line}\n`;
  return `${out}\n`;
}

/**
 * Format a published event: `id`, `event: <namespace>` and one `data:` line with
 * `{"channel":…,"data":…}`. `dataJson` is the payload already encoded as JSON, so it never holds a raw
 * line break; the id and channel come from the library's own grammar.
 *
 * @param id - the event id.
 * @param channel - the concrete channel.
 * @param dataJson - `JSON.stringify(data)`.
 */
export function formatDataEvent(id: string, channel: string, dataJson: string): string {
  const colon = channel.indexOf(':');
  const namespace = colon === -1 ? channel : channel.slice(0, colon);
  assertField('id', id);
  assertField('event', namespace);
  // JSON text never holds a raw line break (JSON.stringify escapes them), so it is one data line as is.
  if (hasLineBreak(dataJson))
    return formatEvent({ id, event: namespace, data: `{"channel":${JSON.stringify(channel)},"data":${dataJson}}` });
  return `id: ${id}\nevent: ${namespace}\ndata: {"channel":${JSON.stringify(channel)},"data":${dataJson}}\n\n`;
}

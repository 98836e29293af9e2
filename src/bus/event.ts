/**
 * Building events: validation at publish time, the payload encoded to JSON once, and the bytes on the
 * wire built at most once per event however many connections receive it.
 */
import { isChannel } from '../protocol/channels';
import { SseError } from '../protocol/errors';
import { formatDataEvent } from '../protocol/framing';
import type { SseEvent } from '../types';

/**
 * An event's bytes, built once: `chunk` is the frame as one HTTP/1.1 chunk (`<hex length>\r\n…\r\n`), for
 * writing straight to a socket; `frame` is the SSE text alone, a view into the same memory.
 */
export interface EncodedFrame {
  readonly frame: Buffer;
  readonly chunk: Buffer;
}

/**
 * Encode SSE text once as an HTTP/1.1 chunk, in a single allocation.
 *
 * @param text - one or more complete SSE messages.
 */
export function encodeFrame(text: string): EncodedFrame {
  const length = Buffer.byteLength(text);
  const head = `${length.toString(16)}\r\n`;
  const chunk = Buffer.allocUnsafe(head.length + length + 2);
  chunk.write(head, 0, 'latin1');
  chunk.write(text, head.length, 'utf8');
  chunk.write('\r\n', head.length + length, 'latin1');
  return { frame: chunk.subarray(head.length, head.length + length), chunk };
}

/** The events this library creates: the public fields, plus the encoded payload and frame in private slots. */
class PublishedEvent implements SseEvent {
  declare readonly users?: readonly string[];
  readonly #json: string;
  #encoded: EncodedFrame | undefined;

  constructor(
    readonly id: string,
    readonly channel: string,
    readonly data: unknown,
    json: string,
    readonly time: number,
    users: readonly string[] | undefined,
  ) {
    if (users !== undefined) this.users = users;
    this.#json = json;
  }

  static json(event: SseEvent): string | undefined {
    return #json in event ? (event as PublishedEvent).#json : undefined;
  }

  static encoded(event: PublishedEvent): EncodedFrame {
    event.#encoded ??= encodeFrame(formatDataEvent(event.id, event.channel, event.#json));
    return event.#encoded;
  }
}

/** Frames of events made by other code (a custom Bus), built once each as well. */
const foreignFrames = new WeakMap<SseEvent, EncodedFrame>();

/**
 * Check a publish's channel and users and encode its payload, before it is sequenced.
 *
 * @returns the payload as JSON.
 * @throws SseError `ERR_SSE_INVALID_CHANNEL` or `ERR_SSE_INVALID_DATA`.
 */
export function preparePublish(
  channel: string,
  data: unknown,
  users: readonly string[] | undefined,
  maxBytes?: number,
): string {
  if (typeof channel !== 'string' || !isChannel(channel)) {
    throw new SseError(
      'ERR_SSE_INVALID_CHANNEL',
      `Cannot publish to ${JSON.stringify(channel)}: a channel is namespace(:segment)* with segments of 1-128 [A-Za-z0-9_.-] and no wildcard.`,
      400,
      { channels: [String(channel)] },
    );
  }
  if (users !== undefined && (!Array.isArray(users) || users.some((u) => typeof u !== 'string'))) {
    throw new SseError('ERR_SSE_INVALID_DATA', '`users` must be an array of principal id strings.', 400);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (cause) {
    throw new SseError(
      'ERR_SSE_INVALID_DATA',
      `Event data for ${channel} is not JSON-serialisable: ${(cause as Error).message}`,
      400,
    );
  }
  const payload = json === undefined ? 'null' : json;
  if (maxBytes !== undefined) checkEventSize(channel, payload, maxBytes);
  return payload;
}

/** Bytes of a data frame besides its channel and payload: `id: …`, `event: …`, the envelope. */
const FRAME_OVERHEAD = 96;

/**
 * Refuse an event whose frame would exceed `maxBytes` (`limits.maxEventBytes`): it would close every stream
 * it is sent to. The common small payload costs one comparison; the exact UTF-8 size is counted only when
 * the length says it could matter.
 *
 * @throws SseError `ERR_SSE_EVENT_TOO_LARGE` (413).
 */
function checkEventSize(channel: string, payload: string, maxBytes: number): void {
  const budget = maxBytes - FRAME_OVERHEAD - 2 * channel.length;
  if (payload.length * 3 <= budget) return;
  const bytes = Buffer.byteLength(payload);
  if (bytes <= budget) return;
  throw new SseError(
    'ERR_SSE_EVENT_TOO_LARGE',
    `Event data for ${channel.slice(0, 140)} is ${bytes} bytes as JSON; events are capped at limits.maxEventBytes (${maxBytes}) so that one cannot close every stream it is sent to. Send a reference and let the page fetch the rest.`,
    413,
    { limit: maxBytes },
  );
}

/**
 * Check an `idempotencyKey` publish option.
 *
 * @throws SseError `ERR_SSE_INVALID_DATA` unless it is 1-200 characters.
 */
export function checkIdempotencyKey(key: unknown): string | undefined {
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
    throw new SseError('ERR_SSE_INVALID_DATA', '`idempotencyKey` must be a string of 1-200 characters.', 400);
  }
  return key;
}

/**
 * The event a repeated idempotent publish resolves to; its key must have been used for the same channel.
 *
 * @throws SseError `ERR_SSE_INVALID_DATA` when the key was used for another channel.
 */
export function repeatedPublish(key: string, first: SseEvent, channel: string): SseEvent {
  if (first.channel !== channel) {
    throw new SseError(
      'ERR_SSE_INVALID_DATA',
      `idempotencyKey ${JSON.stringify(key)} was already used for an event on ${first.channel}, not ${channel}.`,
      400,
    );
  }
  return first;
}

/**
 * Create the event object handed to listeners, remembering its encoded payload.
 *
 * @param dataJson - the payload as JSON (from {@link preparePublish} or off the wire).
 * @param data - the decoded payload; parsed from `dataJson` when omitted.
 */
export function createEvent(
  id: string,
  channel: string,
  dataJson: string,
  time: number,
  users?: readonly string[],
  data: unknown = JSON.parse(dataJson),
): SseEvent {
  return new PublishedEvent(id, channel, data, dataJson, time, users);
}

/** The payload of `event` as JSON, encoded once for events this library created. */
export function eventJson(event: SseEvent): string {
  return PublishedEvent.json(event) ?? JSON.stringify(event.data) ?? 'null';
}

/** The bytes of `event` on the wire, built once and shared by every connection. */
export function encodeEvent(event: SseEvent): EncodedFrame {
  if (event instanceof PublishedEvent) return PublishedEvent.encoded(event);
  let encoded = foreignFrames.get(event);
  if (encoded === undefined) {
    encoded = encodeFrame(formatDataEvent(event.id, event.channel, eventJson(event)));
    foreignFrames.set(event, encoded);
  }
  return encoded;
}

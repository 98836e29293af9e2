/**
 * Building events: validation at publish time, the payload encoded to JSON once, and the wire frame
 * built at most once per event however many connections receive it.
 */
import { parseTopic } from './channels';
import { SseError } from './errors';
import { formatDataEvent } from './framing';
import type { SseEvent } from './types';

const payloadJson = new WeakMap<SseEvent, string>();
const frames = new WeakMap<SseEvent, Buffer>();

/**
 * Check a publish's channel and users and encode its payload, before it is sequenced.
 *
 * @returns the payload as JSON.
 * @throws SseError `ERR_SSE_INVALID_CHANNEL` or `ERR_SSE_INVALID_DATA`.
 */
export function preparePublish(channel: string, data: unknown, users: readonly string[] | undefined): string {
  if (typeof channel !== 'string' || parseTopic(channel) === null) {
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
  return json === undefined ? 'null' : json;
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
  const event: SseEvent = users === undefined ? { id, channel, data, time } : { id, channel, data, users, time };
  payloadJson.set(event, dataJson);
  return event;
}

/** The payload of `event` as JSON, encoded once. */
export function eventJson(event: SseEvent): string {
  let json = payloadJson.get(event);
  if (json === undefined) {
    json = JSON.stringify(event.data) ?? 'null';
    payloadJson.set(event, json);
  }
  return json;
}

/** The bytes of `event` on the wire, built once and shared by every connection. */
export function eventFrame(event: SseEvent): Buffer {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = Buffer.from(formatDataEvent(event.id, event.channel, eventJson(event)));
    frames.set(event, frame);
  }
  return frame;
}

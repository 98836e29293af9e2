/**
 * What the Redis bus writes to and reads from Redis: key and channel names, the event message
 * (`{header JSON}\n{payload JSON}`), the watchdog ping (`token\nepoch\nseq`), and the typed union a
 * received pub/sub message becomes. The bytes are built half here and half in the publish script
 * (scripts.ts), which prepends the id it assigns.
 */
import { parseEventId } from '../../protocol/event-id';

/** Keys and pub/sub channels of one bus prefix; every one carries the hash tag `{prefix}`. */
export interface RedisNames {
  /** `{prefix}:epoch`, `{prefix}:seq`, `{prefix}:history`: what the scripts read and write. */
  readonly epochKey: string;
  readonly seqKey: string;
  readonly historyKey: string;
  /** Exact channels are `{prefix}:ch:<channel>` (earlier releases PSUBSCRIBE `{prefix}:ch:<key>:*`). */
  readonly channelPrefix: string;
  /** The channel of pattern key `<key>` is `{prefix}:pt:<key>`: a `logs:*` watch subscribes `{prefix}:pt:logs`. */
  readonly patternPrefix: string;
  /** Keys of idempotent publishes (`{prefix}:idem:<key>`), kept as long as the history. */
  readonly idempotencyPrefix: string;
  /** This instance's own channel: watchdog and barrier pings come back on it. */
  readonly controlChannel: string;
  /** Signals between the gateways of a deployment: every instance subscribes to it. */
  readonly signalChannel: string;
}

/** Names for `prefix` (already checked) and the bus instance `busId`. */
export function redisNames(prefix: string, busId: string): RedisNames {
  const tag = hashTag(prefix);
  return {
    epochKey: `${tag}:epoch`,
    seqKey: `${tag}:seq`,
    historyKey: `${tag}:history`,
    channelPrefix: `${tag}:ch:`,
    patternPrefix: `${tag}:pt:`,
    idempotencyPrefix: `${tag}:idem:`,
    controlChannel: `${tag}:ctl:${busId}`,
    signalChannel: `${tag}:signal`,
  };
}

/** `{prefix}`: the hash tag that keeps every key of a bus in one Cluster slot. */
export function hashTag(prefix: string): string {
  return `{${prefix}}`;
}

/** The header of an event message; the script puts `"id":"<epoch>-<seq>",` in front of the rest. */
export interface WireHeader {
  readonly id: string;
  readonly channel: string;
  readonly time: number;
  readonly origin: string;
  readonly users?: string[];
}

/** An event message, decoded: the header, the id's parts, and the payload still as JSON text. */
export interface WireMessage {
  readonly header: WireHeader;
  readonly seq: number;
  readonly epoch: string;
  readonly dataJson: string;
}

/**
 * The header without its opening brace (`"channel":…}`), for the publish script to complete with the id.
 * Key order is part of the wire format: `id`, `channel`, `time`, `origin`, then `users` when set.
 */
export function encodeHeaderTail(channel: string, time: number, origin: string, users?: readonly string[]): string {
  const header = users === undefined ? { channel, time, origin } : { channel, time, origin, users };
  return JSON.stringify(header).slice(1);
}

/** `{header JSON}\n{payload JSON}`: JSON.stringify never emits a raw newline, so the split is exact. */
export function decodeMessage(message: string): WireMessage | null {
  const newline = message.indexOf('\n');
  if (newline === -1) return null;
  let header: WireHeader;
  try {
    header = JSON.parse(message.slice(0, newline)) as WireHeader;
  } catch {
    return null;
  }
  const id = typeof header.id === 'string' ? parseEventId(header.id) : null;
  if (id === null || typeof header.channel !== 'string') return null;
  return { header, seq: id.seq, epoch: id.epoch, dataJson: message.slice(newline + 1) };
}

/** A watchdog or barrier ping: its token, and the head of the sequence when it was sent (if there is one). */
export interface Ping {
  readonly token: string;
  readonly head: { readonly epoch: string; readonly seq: number } | null;
}

/** `token\nepoch\nseq` (epoch empty while Redis has no history yet). */
export function decodePing(message: string): Ping {
  const [token = '', epoch, seqText] = message.split('\n');
  const seq = Number(seqText);
  return { token, head: epoch && Number.isSafeInteger(seq) ? { epoch, seq } : null };
}

/**
 * A pub/sub message as the subscriber sorts it. Events and pings are ordered with each other (a ping
 * vouches for every event before it), so both wait in the recovery buffer; signals carry no sequence
 * and go straight through.
 */
export type Inbound =
  | { readonly kind: 'event'; readonly message: string }
  | { readonly kind: 'ping'; readonly ping: Ping }
  | { readonly kind: 'signal'; readonly message: string };

/** Sort a message received on `channel` by what it is. */
export function classify(channel: string, message: string, names: RedisNames): Inbound {
  if (channel === names.signalChannel) return { kind: 'signal', message };
  if (channel === names.controlChannel) return { kind: 'ping', ping: decodePing(message) };
  return { kind: 'event', message };
}

/** Channel names never contain glob metacharacters, but escaping keeps PSUBSCRIBE literal regardless. */
export function escapeGlob(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}

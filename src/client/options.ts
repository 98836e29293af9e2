/**
 * `createSseClient()`'s options, checked once at creation in the package's one options dialect. What a
 * server-side render cannot have (EventSource, fetch, a base URL for a relative `url`) is looked up only
 * when the first stream opens, so creating a client never touches `window`.
 */
import { checkKeys, integer, isPlainObject, OptionError, optionalFunction } from '../util/validate';
import type { StreamClientOptions } from './stream-client';
import type { EventSourceConstructor } from './types';

/** The checked options. */
export interface ClientConfig {
  readonly url: string;
  readonly withCredentials: boolean;
  readonly credentials: RequestCredentials;
  readonly EventSource: EventSourceConstructor | undefined;
  readonly fetch: typeof fetch | undefined;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** sessionStorage key of the last event id, or undefined when not kept. */
  readonly persistKey: string | undefined;
  readonly changeTimeoutMs: number;
  readonly lastEventId: string | undefined;
}

const KNOWN = [
  'url',
  'withCredentials',
  'EventSource',
  'fetch',
  'shareAcrossTabs',
  'reconnect',
  'persistLastEventId',
  'subscriptionTimeoutMs',
  'lastEventId',
] as const;

const HINTS = { eventSource: 'EventSource', credentials: 'withCredentials', persist: 'persistLastEventId' };

/**
 * Check the options of a client.
 *
 * @param options - as the user passed them.
 * @throws OptionError for an unknown key or a wrong value.
 */
export function parseClientOptions(options: StreamClientOptions): ClientConfig {
  const where = 'createSseClient';
  if (!isPlainObject(options)) throw new OptionError(`${where}: pass an options object, e.g. { url: '/events' }.`);
  checkKeys(where, options, KNOWN, HINTS);
  if (typeof options.url !== 'string' || options.url === '') {
    throw new OptionError(`${where}: \`url\` must be the gateway's stream path, e.g. '/events'.`);
  }
  const reconnect: unknown = options.reconnect ?? {};
  if (!isPlainObject(reconnect)) throw new OptionError(`${where}: \`reconnect\` must be an object.`);
  checkKeys(`${where}: reconnect`, reconnect, ['initialDelayMs', 'maxDelayMs']);
  const initialDelayMs = integer(`${where}: \`reconnect.initialDelayMs\``, reconnect.initialDelayMs, 500, 0);
  const maxDelayMs = integer(`${where}: \`reconnect.maxDelayMs\``, reconnect.maxDelayMs, 20_000, initialDelayMs);
  const persist = options.persistLastEventId ?? false;
  if (typeof persist !== 'boolean' && (typeof persist !== 'string' || persist === '')) {
    throw new OptionError(`${where}: \`persistLastEventId\` must be a boolean or a sessionStorage key.`);
  }
  if (
    options.lastEventId !== undefined &&
    (typeof options.lastEventId !== 'string' || /[\r\n\0]/.test(options.lastEventId))
  ) {
    throw new OptionError(`${where}: \`lastEventId\` must be a string without CR, LF or NUL.`);
  }
  const withCredentials = options.withCredentials ?? false;
  if (typeof withCredentials !== 'boolean') throw new OptionError(`${where}: \`withCredentials\` must be a boolean.`);
  return {
    url: options.url,
    withCredentials,
    credentials: withCredentials ? 'include' : 'same-origin',
    EventSource: optionalFunction(`${where}: \`EventSource\``, options.EventSource),
    fetch: optionalFunction(`${where}: \`fetch\``, options.fetch),
    initialDelayMs,
    maxDelayMs,
    persistKey: persist === false ? undefined : persist === true ? `sse-gateway:last-event-id:${options.url}` : persist,
    changeTimeoutMs: integer(`${where}: \`subscriptionTimeoutMs\``, options.subscriptionTimeoutMs, 10_000, 1),
    lastEventId: options.lastEventId === '' ? undefined : options.lastEventId,
  };
}

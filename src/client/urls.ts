/**
 * The client's URLs: the configured one resolved against the page, the stream with its channels and
 * resume point, and the subscription route beside it.
 */
import { SUBSCRIPTIONS_PATH } from '../protocol/wire';

/**
 * The configured URL as an absolute one: relative URLs resolve against the page (`location`); outside a
 * page, only absolute URLs work.
 *
 * @param url - `/events` or `https://bff.example/events`.
 * @throws TypeError when it cannot be resolved.
 */
export function resolveUrl(url: string): URL {
  return new URL(url, typeof location === 'undefined' ? undefined : location.href);
}

/**
 * The stream URL: the configured one with `channels` and, when resuming, `lastEventId` (the gateway reads
 * it like the `Last-Event-ID` header, which EventSource cannot set on a new connection).
 *
 * @param base - from {@link resolveUrl}.
 * @param channels - every channel and pattern of the client.
 * @param lastEventId - the resume point, if any.
 */
export function streamUrl(base: URL, channels: readonly string[], lastEventId: string | undefined): string {
  const url = new URL(base.href);
  url.searchParams.delete('lastEventId');
  url.searchParams.set('channels', channels.join(','));
  if (lastEventId !== undefined) url.searchParams.set('lastEventId', lastEventId);
  return url.href;
}

/**
 * The subscription route of a stream URL: its path plus `/subscriptions`, same origin and query.
 *
 * @param base - from {@link resolveUrl}.
 */
export function subscriptionsUrl(base: URL): string {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${SUBSCRIPTIONS_PATH}`;
  return url.href;
}

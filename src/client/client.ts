/**
 * `createSseClient()`: picks how this context gets its stream (its own, or shared with the other tabs).
 */
import { createStreamClient } from './stream-client';
import { canShareAcrossTabs, createSharedClient } from './tabs';
import type { SseClient, SseClientOptions } from './types';

/**
 * Create a client: one stream for every subscription, opened on the first `subscribe()`.
 *
 * @param options - the stream's url and how to reach it.
 * @example
 * ```ts
 * const client = createSseClient({ url: '/events', withCredentials: true });
 * const off = client.subscribe('logs:ws1:*', (event) => console.log(event.channel, event.data), {
 *   onError: (error) => console.warn(error.code),
 * });
 * // later
 * off();
 * ```
 */
export function createSseClient(options: SseClientOptions): SseClient {
  // --- cross-tab sharing (the `tabs` branch adds its branch here) ---
  const share = options.shareAcrossTabs ?? canShareAcrossTabs();
  // Asked for where the browser cannot share (no Web Locks outside secure contexts): a stream of its own.
  if (share && canShareAcrossTabs()) return createSharedClient(options, createStreamClient);
  // --- end of cross-tab sharing ---
  return createStreamClient(options);
}

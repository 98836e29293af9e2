/**
 * One stream in this context: the client without tab sharing.
 */
import type { SseClient, SseClientOptions } from './types';

/** Options of {@link createStreamClient}: the client's, plus the id a stream taken over resumes from. */
export interface StreamClientOptions extends SseClientOptions {
  /** Resume from this event id on the first connect (a tab taking over a shared stream). */
  lastEventId?: string;
}

/**
 * A client with its own stream (no sharing across tabs).
 *
 * @param options - the client's options.
 * @example
 * ```ts
 * const client = createStreamClient({ url: '/events' });
 * ```
 */
export function createStreamClient(options: StreamClientOptions): SseClient {
  void options;
  throw new Error('createStreamClient: not built yet');
}

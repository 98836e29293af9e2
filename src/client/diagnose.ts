/**
 * Why a stream failed before it opened. A browser's EventSource reports only "error", so the client asks
 * once more with `fetch` and reads the status, `Retry-After` and the JSON error body; a 200 is aborted as
 * soon as its headers arrive.
 */
import { parseRetryAfter } from './backoff';

/** What the failed request answered. */
export interface Failure {
  /** The HTTP status; absent for a network failure. */
  readonly status?: number;
  /** The body's `error.code` (`ERR_SSE_*`). */
  readonly code?: string;
  readonly message: string;
  /** The body's `error.channels`: the channels a 403 or 400 names. */
  readonly channels?: readonly string[];
  /** `Retry-After`, in ms. */
  readonly retryAfterMs?: number;
}

/** Longest wait for the diagnosing request's headers. */
const DIAGNOSE_TIMEOUT_MS = 10_000;

function readError(body: unknown): { code?: string; message?: string; channels?: string[] } {
  if (typeof body !== 'object' || body === null) return {};
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return {};
  const { code, message, channels } = error as Record<string, unknown>;
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof message === 'string' ? { message } : {}),
    ...(Array.isArray(channels) ? { channels: channels.filter((c): c is string => typeof c === 'string') } : {}),
  };
}

/**
 * Request `url` as the EventSource did and describe the answer.
 *
 * @param fetchFn - the fetch to use.
 * @param url - the stream URL that failed.
 * @param credentials - `include` with `withCredentials`, else `same-origin`.
 * @param knownStatus - a status the EventSource already reported, used when the request itself fails.
 * @example
 * ```ts
 * const failure = await diagnose(fetch, url, 'same-origin', undefined);
 * if (failure.status === 401) signIn();
 * ```
 */
export async function diagnose(
  fetchFn: typeof fetch,
  url: string,
  credentials: RequestCredentials,
  knownStatus: number | undefined,
): Promise<Failure> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), DIAGNOSE_TIMEOUT_MS);
  try {
    const response = await fetchFn(url, {
      headers: { accept: 'text/event-stream' },
      credentials,
      cache: 'no-store',
      signal: controller.signal,
    });
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    const base = { status: response.status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    if (response.status === 200) {
      controller.abort();
      return { ...base, message: 'the stream answers again' };
    }
    const error = readError(await response.json().catch(() => undefined));
    return { ...base, ...error, message: error.message ?? `the stream answered ${response.status}` };
  } catch {
    return knownStatus === undefined
      ? { message: 'the stream could not be reached' }
      : { status: knownStatus, message: `the stream answered ${knownStatus}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The request half of a subscription change on an open stream: `POST {path}/subscriptions`. The answer
 * half arrives on the stream as `sse:subscribed`; the client's core pairs them by `requestId`.
 */
import type { RefusedChannel, SubscriptionChangeRequest, SubscriptionChangeResponse } from '../protocol/wire';

/** What became of a change request. */
export type ChangeAnswer =
  /** 200 or 202: wait for `sse:subscribed`; `refused` channels fail alone. */
  | { readonly kind: 'accepted'; readonly response: SubscriptionChangeResponse }
  /** The gateway has no subscription route (404, 405, 501): change by reconnecting from now on. */
  | { readonly kind: 'unsupported'; readonly status: number }
  /** Anything else (network, 4xx, 5xx): change this once by reconnecting. */
  | { readonly kind: 'failed'; readonly status?: number };

let counter = 0;

/** A fresh request id of `[A-Za-z0-9_-]`. */
export function newRequestId(): string {
  const random = globalThis.crypto?.randomUUID?.() ?? Math.random().toString(36).slice(2);
  counter = (counter + 1) % 1_000_000;
  return `${random.replace(/[^A-Za-z0-9]/g, '').slice(0, 24)}-${counter}`;
}

function isRefused(value: unknown): value is RefusedChannel {
  const v = value as Partial<RefusedChannel> | null;
  return typeof v === 'object' && v !== null && typeof v.channel === 'string' && typeof v.code === 'string';
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * Send one change.
 *
 * @param fetchFn - the fetch to use.
 * @param url - the subscription route (`subscriptionsUrl`).
 * @param credentials - `include` with `withCredentials`, else `same-origin`.
 * @param request - the body.
 * @example
 * ```ts
 * const answer = await postChange(fetch, '/events/subscriptions', 'same-origin', request);
 * ```
 */
export async function postChange(
  fetchFn: typeof fetch,
  url: string,
  credentials: RequestCredentials,
  request: SubscriptionChangeRequest,
): Promise<ChangeAnswer> {
  let response: Response;
  try {
    response = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(request),
      credentials,
      cache: 'no-store',
    });
  } catch {
    return { kind: 'failed' };
  }
  const { status } = response;
  if (status === 404 || status === 405 || status === 501) {
    // 404 also answers "no such stream" (it just dropped): either way a reconnect is the answer.
    const body = (await response.json().catch(() => undefined)) as { error?: { code?: string } } | undefined;
    if (body?.error?.code === 'ERR_SSE_UNKNOWN_CONNECTION') return { kind: 'failed', status };
    return { kind: 'unsupported', status };
  }
  if (status !== 200 && status !== 202) {
    await response.body?.cancel().catch(() => undefined);
    return { kind: 'failed', status };
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  return {
    kind: 'accepted',
    response: {
      requestId: typeof body.requestId === 'string' ? body.requestId : request.requestId,
      accepted: strings(body.accepted),
      refused: Array.isArray(body.refused) ? body.refused.filter(isRefused) : [],
      removed: strings(body.removed),
    },
  };
}

import type { Failure } from '../../src/client/diagnose';
import { decideFailure, upstreamFailure } from '../../src/client/failure-policy';

describe('what a failed stream request calls for', () => {
  it.each<[Failure, string, string]>([
    [{ status: 401, code: 'ERR_SSE_UNAUTHENTICATED', message: 'm' }, 'halt', 'ERR_SSE_UNAUTHENTICATED'],
    [{ status: 401, message: 'no body' }, 'halt', 'ERR_SSE_UNAUTHENTICATED'],
    [
      { status: 403, code: 'ERR_SSE_FORBIDDEN_CHANNEL', channels: ['a:b'], message: 'm' },
      'drop',
      'ERR_SSE_FORBIDDEN_CHANNEL',
    ],
    [
      { status: 400, code: 'ERR_SSE_INVALID_CHANNEL', channels: ['x:y'], message: 'm' },
      'drop',
      'ERR_SSE_INVALID_CHANNEL',
    ],
    [{ status: 403, code: 'ERR_SSE_FORBIDDEN', message: 'm' }, 'halt', 'ERR_SSE_FORBIDDEN'],
    [{ status: 400, code: 'ERR_SSE_TOO_MANY_CHANNELS', message: 'm' }, 'halt', 'ERR_SSE_TOO_MANY_CHANNELS'],
    [
      { status: 429, code: 'ERR_SSE_TOO_MANY_CONNECTIONS', retryAfterMs: 2000, message: 'm' },
      'retry',
      'ERR_SSE_TOO_MANY_CONNECTIONS',
    ],
    [{ status: 503, retryAfterMs: 1000, message: 'a proxy' }, 'retry', 'ERR_SSE_HTTP_503'],
    [{ status: 502, message: 'bad gateway' }, 'retry', 'ERR_SSE_HTTP_502'],
    [{ status: 200, message: 'answers again' }, 'retry', 'ERR_SSE_HTTP_200'],
    [{ message: 'unreachable' }, 'retry', 'ERR_SSE_NETWORK'],
    [{ status: 404, message: 'wrong url' }, 'halt', 'ERR_SSE_HTTP_404'],
    [{ status: 204, message: 'stop' }, 'halt', 'ERR_SSE_HTTP_204'],
  ])('%j → %s with %s', (failure, kind, code) => {
    const action = decideFailure(failure);
    expect(action.kind).toBe(kind);
    expect(action.error.code).toBe(code);
    if (failure.status !== undefined) expect(action.error.status).toBe(failure.status);
    if (action.kind === 'retry' && failure.retryAfterMs !== undefined)
      expect(action.retryAfterMs).toBe(failure.retryAfterMs);
    if (action.kind === 'drop') expect(action.channels).toEqual(failure.channels);
  });

  it('an upstream answer that means "stop" stops; others are reported and retried', () => {
    for (const status of [204, 401, 403, 404]) {
      expect(upstreamFailure({ reason: 'upstream-status', status })).toMatchObject({ stop: true, error: { status } });
    }
    expect(upstreamFailure({ reason: 'upstream-status', status: 500 }).stop).toBe(false);
    expect(upstreamFailure({ reason: 'upstream-unreachable' })).toEqual({
      stop: false,
      error: { code: 'ERR_SSE_UPSTREAM', message: 'The upstream stream failed: upstream-unreachable.' },
    });
    expect(upstreamFailure(undefined).error.code).toBe('ERR_SSE_UPSTREAM');
  });
});

import { createSseClient } from '../../src/client';

describe('createSseClient options', () => {
  it('rejects unknown and misspelt options with a suggestion', () => {
    expect(() => createSseClient({ url: '/events', withCredential: true } as never)).toThrow(
      'createSseClient: unknown option `withCredential`; did you mean `withCredentials`?',
    );
    expect(() => createSseClient({ url: '/events', eventSource: class {} } as never)).toThrow(
      'did you mean `EventSource`?',
    );
    expect(() => createSseClient({ url: '/events', reconnect: { initialDelay: 5 } } as never)).toThrow(
      'createSseClient: reconnect: unknown option `initialDelay`; did you mean `initialDelayMs`?',
    );
  });

  it('rejects wrong values, with the code every option error has', () => {
    const cases: unknown[] = [
      {},
      { url: '' },
      { url: '/events', withCredentials: 'yes' },
      { url: '/events', EventSource: 'EventSource' },
      { url: '/events', fetch: {} },
      { url: '/events', reconnect: { initialDelayMs: -1 } },
      { url: '/events', reconnect: { initialDelayMs: 500, maxDelayMs: 100 } },
      { url: '/events', persistLastEventId: '' },
      { url: '/events', subscriptionTimeoutMs: 0 },
    ];
    for (const options of cases) {
      expect(() => createSseClient(options as never)).toThrow(
        expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }),
      );
    }
  });

  it('creating a client touches nothing: no EventSource, no window, no request', () => {
    const client = createSseClient({ url: '/events', shareAcrossTabs: false });
    expect(client.status).toBe('idle');
    expect(client.lastEventId).toBeUndefined();
    client.close();
    expect(client.status).toBe('closed');
  });

  it('without an EventSource, the first subscription closes the client with ERR_SSE_UNSUPPORTED', async () => {
    const client = createSseClient({ url: 'http://127.0.0.1:1/events', shareAcrossTabs: false });
    const closed = new Promise((resolve) => client.onStatus((status, error) => status === 'closed' && resolve(error)));
    client.subscribe('logs:a', () => {});
    await expect(closed).resolves.toMatchObject({ code: 'ERR_SSE_UNSUPPORTED' });
  });
});

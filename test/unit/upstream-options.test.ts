import { createMemoryBus } from '../../src/bus/memory-bus';
import { DEFAULTS } from '../../src/defaults';
import { bridgeUpstream } from '../../src/upstream/bridge';
import { parseBridgeOptions, parseProxyOptions } from '../../src/upstream/options';
import { sseProxy } from '../../src/upstream/proxy';

/** The error `fn` throws. */
function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

const bus = createMemoryBus();
afterAll(() => bus.close());

describe('sseProxy and bridgeUpstream speak the options dialect of sseMiddleware', () => {
  it('a misspelt option gets "did you mean", as in sseMiddleware', () => {
    expect(() => sseProxy({ target: 'http://x', hearbeatMs: 5 } as never)).toThrow(
      /sseProxy: unknown option `hearbeatMs`; did you mean `heartbeatMs`\?/,
    );
    expect(() => sseProxy({ target: 'http://x', conectTimeoutMs: 5 } as never)).toThrow(
      /did you mean `connectTimeoutMs`/,
    );
    expect(() => bridgeUpstream({ target: 'http://x', bus, channel: 'a', idleTimoutMs: 5 } as never)).toThrow(
      /bridgeUpstream: unknown option `idleTimoutMs`; did you mean `idleTimeoutMs`\?/,
    );
    expect(() =>
      bridgeUpstream({ target: 'http://x', bus, channel: 'a', reconnect: { initialDelay: 5 } } as never),
    ).toThrow(/bridgeUpstream: reconnect: unknown option `initialDelay`; did you mean `initialDelayMs`\?/);
  });

  it('every wrong option is a TypeError with the stable code ERR_SSE_INVALID_OPTION', () => {
    const cases: Array<() => unknown> = [
      () => sseProxy({ target: 'http://x', retryMs: -1 }),
      () => sseProxy({ target: 'ftp://x' }),
      () => sseProxy({ target: 'http://x', forwardCookies: 'yes' as never }),
      () => sseProxy({ target: 'http://x', logger: {} as never }),
      () => sseProxy({ target: 'http://x', tls: { cafile: 'x' } as never }),
      () => sseProxy({} as never),
      () => bridgeUpstream({ target: 'http://x', bus, channel: 'a', data: 'x' as never }),
      () => bridgeUpstream({ target: 'http://x', bus, channel: 'a', stopDelayMs: 1.5 }),
      () => bridgeUpstream({ target: 'http://x', bus, channel: 'a', lastEventId: 'a\nb' }),
      () => bridgeUpstream(null as never),
    ];
    for (const fn of cases) {
      const error = thrown(fn);
      expect(error).toBeInstanceOf(TypeError);
      expect(error.code).toBe('ERR_SSE_INVALID_OPTION');
    }
  });

  it('defaults come from the table shared with the gateway', () => {
    expect(DEFAULTS).toEqual({
      heartbeatMs: 25_000,
      retryMs: 5000,
      connectTimeoutMs: 10_000,
      replay: { size: 1000, ttlMs: 600_000 },
      deadPeerTimeoutMs: 60_000,
    });
    expect(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.replay)).toBe(true);
    const proxy = parseProxyOptions({ target: 'http://x' });
    expect(proxy).toMatchObject({ heartbeatMs: DEFAULTS.heartbeatMs, connectTimeoutMs: DEFAULTS.connectTimeoutMs });
    expect(proxy.retryFrame).toBe(`retry: ${DEFAULTS.retryMs}\n\n`);
    const bridge = parseBridgeOptions({ target: 'http://x', bus, channel: 'a' });
    expect(bridge.connectTimeoutMs).toBe(DEFAULTS.connectTimeoutMs);
  });

  it('`name` is a fixed, label-safe string: an id or a URL is refused with a fix-it message', () => {
    expect(parseProxyOptions({ target: 'http://x', name: 'etl-run.v2_logs' }).name).toBe('etl-run.v2_logs');
    expect(parseBridgeOptions({ target: 'http://x', bus, channel: 'a' }).name).toBeUndefined();
    for (const name of ['', 'logs/ws1', 'etl logs', 'x'.repeat(65), 42]) {
      const proxy = thrown(() => sseProxy({ target: 'http://x', name: name as never }));
      expect(proxy.code).toBe('ERR_SSE_INVALID_OPTION');
      expect(proxy.message).toMatch(/^sseProxy: `name` must be 1-64 characters of \[A-Za-z0-9_.-\]/);
      const bridge = thrown(() => bridgeUpstream({ target: 'http://x', bus, channel: 'a', name: name as never }));
      expect(bridge.message).toMatch(/^bridgeUpstream: `name` must be 1-64 characters/);
    }
  });
});

/**
 * Both buses check their options in the one dialect of util/validate, at creation: unknown keys get a
 * "did you mean", wrong values an OptionError (a TypeError with a stable code). Every case here throws
 * before a connection is opened, so no Redis is needed.
 */
import { createMemoryBus } from '../../src/bus/memory-bus';
import { createRedisBus } from '../../src/bus/redis';
import type { MemoryBusOptions, RedisBusOptions } from '../../src/types';
import { OptionError } from '../../src/util/validate';

const url = 'redis://127.0.0.1:1';

function thrown(create: () => unknown): OptionError {
  try {
    create();
  } catch (error) {
    expect(error).toBeInstanceOf(OptionError);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' });
    return error as OptionError;
  }
  throw new Error('expected an OptionError');
}

describe('createRedisBus options', () => {
  it.each([
    [{ url, watchdog: 100 }, /createRedisBus: unknown option `watchdog`; did you mean `watchdogMs`\?/],
    [{ url, prefx: 'a' }, /unknown option `prefx`; did you mean `prefix`\?/],
    [{ client: {} }, /unknown option `client`; did you mean `redis`\?/],
    [{ url, history: { sizes: 5 } }, /createRedisBus: history: unknown option `sizes`; did you mean `size`\?/],
  ])('suggests the option meant by %j', (options, message) => {
    expect(thrown(() => createRedisBus(options as unknown as RedisBusOptions)).message).toMatch(message);
  });

  it.each([
    [{}, /needs `url`.*or `redis`/],
    [{ url, prefix: 'a{b}' }, /`prefix` must be 1-64 characters of \[A-Za-z0-9_.:-\].*hash tag \{a\{b\}\}/],
    [{ url, history: { size: 0 } }, /createRedisBus: `history.size` must be an integer >= 1 \(received 0\)/],
    [{ url, history: { ttlMs: 'long' } }, /`history.ttlMs` must be an integer >= 1 \(received "long"\)/],
    [{ url, watchdogMs: -1 }, /createRedisBus: `watchdogMs` must be an integer >= 1 \(received -1\)/],
    [{ url, sharded: 'yes' }, /createRedisBus: `sharded` must be a boolean \(received "yes"\)/],
    [{ url, logger: { warn() {} } }, /createRedisBus: `logger` must have `warn` and `error` methods/],
  ])('rejects %j', (options, message) => {
    expect(thrown(() => createRedisBus(options as unknown as RedisBusOptions)).message).toMatch(message);
  });

  it('rejects a missing options object with an example', () => {
    const error = thrown(() => createRedisBus(undefined as unknown as RedisBusOptions));
    expect(error.message).toMatch(/createRedisBus\(\{ url: "redis:\/\/localhost:6379" \}\)/);
  });
});

describe('createMemoryBus options', () => {
  it.each([
    [{ histroy: { size: 5 } }, /createMemoryBus: unknown option `histroy`; did you mean `history`\?/],
    [{ replay: false }, /unknown option `replay`; known options are `history`/],
    [{ history: { size: 5, ttl: 10 } }, /createMemoryBus: history: unknown option `ttl`; did you mean `ttlMs`\?/],
  ])('suggests the option meant by %j', (options, message) => {
    expect(thrown(() => createMemoryBus(options as MemoryBusOptions)).message).toMatch(message);
  });

  it.each([
    [{ history: { size: 0 } }, /createMemoryBus: `history.size` must be an integer >= 1 \(received 0\)/],
    [{ history: { ttlMs: 2.5 } }, /createMemoryBus: `history.ttlMs` must be an integer >= 1 \(received 2.5\)/],
    [
      { history: true },
      /createMemoryBus: `history` must be \{ size\?, maxBytes\?, ttlMs\? \} or false \(received true\)/,
    ],
  ])('rejects %j', (options, message) => {
    expect(thrown(() => createMemoryBus(options as unknown as MemoryBusOptions)).message).toMatch(message);
  });

  it('accepts no options, a partial window and false', async () => {
    for (const options of [undefined, {}, { history: { size: 5 } }, { history: false as const }]) {
      const bus = createMemoryBus(options);
      expect(bus.status()).toMatchObject({ kind: 'memory', connected: true });
      await bus.close();
    }
  });
});

/**
 * The dead-peer scanner's bookkeeping, over tables it is handed and a clock it is given: when a stream is
 * ended, when a socket starts over, when the timer runs. The real kernel and a real half-open peer are in
 * test/integration/dead-peer.test.ts.
 */
import { DeadPeerScanner, MAX_SCAN_INTERVAL_MS } from '../../src/server/dead-peer';
import { parseOptions } from '../../src/server/options';
import { socketKey } from '../../src/server/tcp-table';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

/** A little-endian tcp line for 10.0.0.1:3000 ← 10.0.0.2:`port`. */
function line(port: number, timer: '01' | '02' | '04', retransmits: number): string {
  const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');
  return `   1: 0100000A:0BB8 0200000A:${hex(port, 4)} 01 00000040:00000000 ${timer}:00000020 ${hex(retransmits, 8)}     0        0 1 1 0 20 4 30 10 -1`;
}
const key = (port: number) => socketKey(3000, '10.0.0.2', port);
/** Stand-ins for streams, by name. */
const owners = new Map<string, object>();
const o = (name: string): object => {
  if (!owners.has(name)) owners.set(name, { name });
  return owners.get(name) as object;
};

function harness() {
  let now = 1_000_000;
  let lines: string[] = [];
  const read = jest.fn(async () => [[HEADER, ...lines].join('\n')]);
  const scanner = new DeadPeerScanner(read, 'LE', () => now);
  const logger = { warn: jest.fn(), error: jest.fn() };
  return {
    scanner,
    read,
    logger,
    set: (next: string[]) => {
      lines = next;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

afterEach(() => {
  jest.useRealTimers();
});

describe('DeadPeerScanner.scan', () => {
  test('a socket retransmitting on every scan for the timeout is ended once, and no longer watched', async () => {
    const { scanner, set, advance, logger } = harness();
    const dead = jest.fn();
    const alive = jest.fn();
    scanner.watch(o('stuck'), key(40000), 2000, dead, logger);
    scanner.watch(o('fine'), key(40001), 2000, alive, logger);
    set([line(40000, '01', 1), line(40001, '02', 0)]);
    await scanner.scan();
    for (const [ms, retransmits] of [
      [500, 2],
      [500, 3],
      [999, 4],
    ] as const) {
      advance(ms);
      set([line(40000, '01', retransmits), line(40001, '02', 0)]);
      await scanner.scan();
    }
    expect(dead).not.toHaveBeenCalled();
    advance(1);
    await scanner.scan();
    expect(dead).toHaveBeenCalledTimes(1);
    expect(scanner.size).toBe(1);
    advance(5000);
    await scanner.scan();
    expect(dead).toHaveBeenCalledTimes(1);
    expect(alive).not.toHaveBeenCalled();
  });

  test('a scan without the socket retransmitting, or with fewer timeouts than before (an ACK came), starts over', async () => {
    const { scanner, set, advance, logger } = harness();
    const dead = jest.fn();
    scanner.watch(o('s'), key(40000), 2000, dead, logger);
    set([line(40000, '01', 3)]);
    await scanner.scan();
    advance(1500);
    set([line(40000, '02', 0)]);
    await scanner.scan();
    advance(500);
    set([line(40000, '01', 1)]);
    await scanner.scan(); // first seen again now
    advance(1500);
    await scanner.scan();
    advance(400);
    set([line(40000, '01', 5)]);
    await scanner.scan();
    expect(dead).not.toHaveBeenCalled();
    advance(100);
    set([line(40000, '01', 1)]); // fell: recovered between scans and stuck again
    await scanner.scan();
    advance(1999);
    set([line(40000, '01', 2)]);
    await scanner.scan();
    expect(dead).not.toHaveBeenCalled();
    advance(1);
    await scanner.scan();
    expect(dead).toHaveBeenCalledTimes(1);
  });

  test('a zero window (a client that stopped reading) is never a dead peer; unwatched sockets are ignored', async () => {
    const { scanner, set, advance, logger } = harness();
    const dead = jest.fn();
    scanner.watch(o('s'), key(40000), 2000, dead, logger);
    set([line(40000, '04', 0), line(40009, '01', 9)]);
    for (let i = 0; i < 10; i++) {
      await scanner.scan();
      advance(1000);
    }
    expect(dead).not.toHaveBeenCalled();
  });

  test('streams sharing one socket (an HTTP/2 session) are each ended, each after its own timeout', async () => {
    const { scanner, set, advance, logger } = harness();
    const first = jest.fn();
    const second = jest.fn();
    scanner.watch(o('a'), key(40000), 2000, first, logger);
    scanner.watch(o('b'), key(40000), 4000, second, logger);
    set([line(40000, '01', 1)]);
    await scanner.scan();
    advance(2000);
    await scanner.scan();
    expect([first.mock.calls.length, second.mock.calls.length]).toEqual([1, 0]);
    advance(2000);
    await scanner.scan();
    expect([first.mock.calls.length, second.mock.calls.length]).toEqual([1, 1]);
    expect(scanner.size).toBe(0);
  });

  test('a stream unwatched (closed) and watched again on the same port starts over', async () => {
    const { scanner, set, advance, logger } = harness();
    const dead = jest.fn();
    scanner.watch(o('old'), key(40000), 2000, jest.fn(), logger);
    set([line(40000, '01', 1)]);
    await scanner.scan();
    advance(1900);
    scanner.unwatch(o('old'));
    scanner.watch(o('new'), key(40000), 2000, dead, logger);
    await scanner.scan();
    advance(1900);
    await scanner.scan();
    expect(dead).not.toHaveBeenCalled();
  });

  test('a throwing dead callback is logged, and the scan goes on', async () => {
    const { scanner, set, advance, logger } = harness();
    const next = jest.fn();
    scanner.watch(
      o('a'),
      key(40000),
      1000,
      () => {
        throw new Error('boom');
      },
      logger,
    );
    scanner.watch(o('b'), key(40001), 1000, next, logger);
    set([line(40000, '01', 1), line(40001, '01', 1)]);
    await scanner.scan();
    advance(1000);
    await expect(scanner.scan()).resolves.toBeUndefined();
    expect(next).toHaveBeenCalledTimes(1);
    expect(logger.error).toHaveBeenCalledTimes(1);
  });
});

describe('DeadPeerScanner scheduling', () => {
  test('scans every quarter of the shortest timeout (at most 15 s), only while streams are watched', async () => {
    jest.useFakeTimers();
    const { scanner, read, logger } = harness();
    scanner.watch(o('long'), key(1), 120_000, jest.fn(), logger);
    expect(scanner.running).toBe(true);
    await jest.advanceTimersByTimeAsync(MAX_SCAN_INTERVAL_MS - 1);
    expect(read).toHaveBeenCalledTimes(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(read).toHaveBeenCalledTimes(1);
    scanner.watch(o('short'), key(2), 2000, jest.fn(), logger);
    await jest.advanceTimersByTimeAsync(500);
    expect(read).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(1500);
    expect(read).toHaveBeenCalledTimes(5);
    scanner.unwatch(o('short'));
    await jest.advanceTimersByTimeAsync(500); // the scan already due
    expect(read).toHaveBeenCalledTimes(6);
    await jest.advanceTimersByTimeAsync(MAX_SCAN_INTERVAL_MS - 1);
    expect(read).toHaveBeenCalledTimes(6);
    await jest.advanceTimersByTimeAsync(1);
    expect(read).toHaveBeenCalledTimes(7);
    scanner.unwatch(o('long'));
    expect(scanner.running).toBe(false);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(read).toHaveBeenCalledTimes(7);
  });

  test('the timer does not keep the process alive', () => {
    jest.useFakeTimers();
    const { scanner, logger } = harness();
    const unref = jest.spyOn(global, 'setTimeout');
    scanner.watch(o('s'), key(1), 60_000, jest.fn(), logger);
    const timer = unref.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    scanner.unwatch(o('s'));
  });
});

describe('DeadPeerScanner without tables', () => {
  test('not Linux: every watch is ignored, no timer', () => {
    const scanner = new DeadPeerScanner(undefined, 'LE');
    scanner.watch(o('s'), key(1), 2000, jest.fn(), { warn: jest.fn(), error: jest.fn() });
    expect(scanner.size).toBe(0);
    expect(scanner.running).toBe(false);
  });

  test('unreadable tables: said once through the logger, then off for good', async () => {
    const read = jest.fn(async (): Promise<readonly string[]> => {
      throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    });
    const scanner = new DeadPeerScanner(read, 'LE');
    const logger = { warn: jest.fn(), error: jest.fn() };
    scanner.watch(o('s'), key(1), 2000, jest.fn(), logger);
    await scanner.scan();
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0]?.[0]).toMatch(/dead-peer detection is off.*EACCES/);
    expect(scanner.size).toBe(0);
    expect(scanner.running).toBe(false);
    scanner.watch(o('t'), key(2), 2000, jest.fn(), logger);
    await scanner.scan();
    expect(scanner.size).toBe(0);
    expect(read).toHaveBeenCalledTimes(1);
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  test('a read that fails for now (EMFILE: the fds dead peers hold) skips that scan and keeps every watch', async () => {
    const { scanner, read, set, advance, logger } = harness();
    const emfile = Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
    const dead = jest.fn();
    scanner.watch(o('stuck'), key(40000), 2000, dead, logger);
    set([line(40000, '01', 1)]);
    await scanner.scan();
    read.mockRejectedValueOnce(emfile);
    advance(1000);
    await scanner.scan();
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0]?.[0]).toMatch(/EMFILE/);
    expect(scanner.size).toBe(1);
    set([line(40000, '01', 2)]);
    advance(1000);
    await scanner.scan();
    expect(dead).toHaveBeenCalledTimes(1);
    // Said once, however often it happens.
    scanner.watch(o('next'), key(40001), 2000, jest.fn(), logger);
    read.mockRejectedValueOnce(emfile);
    await scanner.scan();
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(scanner.size).toBe(1);
    scanner.unwatch(o('next'));
  });
});

describe('the deadPeerTimeoutMs option', () => {
  test('defaults to 60 s; false turns it off; below 10 s is warned about', () => {
    const logger = { warn: jest.fn(), error: jest.fn() };
    expect(parseOptions({ channels: ['logs'], logger }).deadPeerTimeoutMs).toBe(60_000);
    expect(parseOptions({ channels: ['logs'], logger, deadPeerTimeoutMs: false }).deadPeerTimeoutMs).toBe(false);
    expect(logger.warn).not.toHaveBeenCalled();
    expect(parseOptions({ channels: ['logs'], logger, deadPeerTimeoutMs: 2000 }).deadPeerTimeoutMs).toBe(2000);
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('deadPeerTimeoutMs is 2000'));
  });
});

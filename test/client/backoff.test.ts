import { createBackoff, parseRetryAfter } from '../../src/client/backoff';

describe('backoff (full jitter)', () => {
  it('doubles the ceiling per attempt up to the maximum, delays uniformly below it', () => {
    const ceilings: number[] = [];
    const backoff = createBackoff({ initialDelayMs: 500, maxDelayMs: 20_000, random: () => 0.999999 });
    for (let i = 0; i < 10; i++) ceilings.push(backoff.next());
    expect(ceilings).toEqual([499, 999, 1999, 3999, 7999, 15_999, 19_999, 19_999, 19_999, 19_999]);
    const low = createBackoff({ random: () => 0 });
    expect([low.next(), low.next(), low.next()]).toEqual([0, 0, 0]);
  });

  it('defaults to 500 ms and 20 s', () => {
    const backoff = createBackoff({ random: () => 0.5 });
    expect(backoff.next()).toBe(250);
    for (let i = 0; i < 20; i++) backoff.next();
    expect(backoff.next()).toBe(10_000);
  });

  it('spreads delays over the whole range (no two clients in step)', () => {
    const delays = Array.from({ length: 2000 }, () => createBackoff({ initialDelayMs: 1000 }).next());
    expect(Math.min(...delays)).toBeLessThan(100);
    expect(Math.max(...delays)).toBeGreaterThan(900);
    expect(Math.max(...delays)).toBeLessThan(1000);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(mean).toBeGreaterThan(420);
    expect(mean).toBeLessThan(580);
  });

  it('reset() starts over; after() waits at least Retry-After plus up to one initial delay', () => {
    const backoff = createBackoff({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.999 });
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(2);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(99);
    expect(backoff.after(3000)).toBe(3099);
    expect(createBackoff({ random: () => 0 }).after(1000)).toBe(1000);
    expect(backoff.attempts).toBe(2);
  });

  it('a maximum below the initial delay is raised to it', () => {
    expect(createBackoff({ initialDelayMs: 800, maxDelayMs: 100, random: () => 0.5 }).next()).toBe(400);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });

  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter('-1')).toBeUndefined();
  });
});

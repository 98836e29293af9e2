import type { Request } from 'express';
import type { Bus, ReplayQuery, ReplayResult } from '../../src';
import { createMemoryBus } from '../../src';
import { closeAll, startGateway } from '../helpers/gateway';
import { dataEvents, type SseStream } from '../helpers/sse-client';

afterEach(closeAll);

const byHeader = (req: Request) => {
  const id = req.get('x-user');
  return id ? { id } : null;
};

function resetReason(stream: SseStream): string | undefined {
  const reset = stream.events.find((e) => e.event === 'sse:reset');
  return reset ? (JSON.parse(reset.data) as { reason: string }).reason : undefined;
}

describe('Last-Event-ID replay', () => {
  it('replays every missed event of the subscribed channels, in order, once, before live events (header)', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs', 'metrics'] });
    const first = await open('channels=logs:a,metrics:*');
    const seen = await gateway.publish('logs:a', 0);
    await first.take(1);
    first.close();
    await gateway.publish('logs:a', 1);
    await gateway.publish('logs:b', 'other channel');
    await gateway.publish('metrics:cpu', 2);
    await gateway.publish('logs:a', 3);
    const again = await open('channels=logs:a,metrics:*', { headers: { 'Last-Event-ID': seen.id } });
    await gateway.publish('logs:a', 'live');
    const events = dataEvents(await again.take(4));
    expect(events.map((e) => e.data)).toEqual([1, 2, 3, 'live']);
    expect(resetReason(again)).toBeUndefined();
    // Ids grow and never repeat across channels.
    const ids = events.map((e) => Number(e.id?.split('-')[1]));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('takes the id from the lastEventId query parameter too', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'] });
    const seen = await gateway.publish('logs:a', 'seen');
    await gateway.publish('logs:a', 'missed');
    const stream = await open(`channels=logs:a&lastEventId=${encodeURIComponent(seen.id)}`);
    expect(dataEvents(await stream.take(1)).map((e) => e.data)).toEqual(['missed']);
  });

  it('prefers the header over the query parameter', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'] });
    const one = await gateway.publish('logs:a', 1);
    const two = await gateway.publish('logs:a', 2);
    await gateway.publish('logs:a', 3);
    const stream = await open(`channels=logs:a&lastEventId=${one.id}`, { headers: { 'Last-Event-ID': two.id } });
    expect(dataEvents(await stream.take(1)).map((e) => e.data)).toEqual([3]);
  });

  it('runs replayed events through the ACL and never reveals hidden ones', async () => {
    const { open, gateway } = await startGateway({
      channels: ['dashboards'],
      authentication: byHeader,
      userScoping: true,
      filter: (p, e) => (e.data as { owner: string }).owner === p.id,
    });
    const mark = await gateway.publish('dashboards:d1', { owner: 'nobody' });
    await gateway.publish('dashboards:d1', { owner: 'u1', n: 1 });
    const hidden = await gateway.publish('dashboards:d2', { owner: 'u2' });
    await gateway.publish('dashboards:d3', { owner: 'u1', n: 2 }, { users: ['u2'] });
    await gateway.publish('dashboards:d4', { owner: 'u1', n: 3 });
    const stream = await open('channels=dashboards:*', { headers: { 'Last-Event-ID': mark.id, 'x-user': 'u1' } });
    await gateway.publish('dashboards:d5', { owner: 'u1', n: 'live' });
    const events = dataEvents(await stream.take(3));
    expect(events.map((e) => (e.data as { n: unknown }).n)).toEqual([1, 3, 'live']);
    expect(stream.raw).not.toContain(hidden.id);
  });

  it('skips namespaces whose policy says replay: false, without a reset', async () => {
    const { open, gateway } = await startGateway({ channels: { logs: {}, metrics: { replay: false } } });
    const mark = await gateway.publish('logs:a', 0);
    await gateway.publish('metrics:a', 'ephemeral');
    await gateway.publish('logs:a', 1);
    const stream = await open('channels=logs:a,metrics:a', { headers: { 'Last-Event-ID': mark.id } });
    await gateway.publish('metrics:a', 'live');
    expect(dataEvents(await stream.take(2)).map((e) => e.data)).toEqual([1, 'live']);
    expect(resetReason(stream)).toBeUndefined();
  });

  it.each([
    ['garbage', 'header', 'not an id', 'malformed-id'],
    ['control characters', 'query', '1\nid: 2\r\n', 'malformed-id'],
    ['a 10 KB id', 'query', 'a'.repeat(10_000), 'malformed-id'],
    ['a sequence beyond 2^53', 'header', 'abc-99999999999999999999', 'malformed-id'],
    ['an id from another epoch', 'header', 'zzzz-1', 'unknown-id'],
    ['an id from the future', 'header', 'FUTURE', 'unknown-id'],
  ])('sends sse:reset first for %s (%s), then live events only', async (_what, via, lastEventId, reason) => {
    const { open, gateway } = await startGateway({ channels: ['logs'] });
    const known = await gateway.publish('logs:a', 'before');
    const id = lastEventId === 'FUTURE' ? `${known.id.split('-')[0]}-999` : lastEventId;
    const stream =
      via === 'header'
        ? await open('channels=logs:a', { headers: { 'Last-Event-ID': id } })
        : await open(`channels=logs:a&lastEventId=${encodeURIComponent(id)}`);
    await gateway.publish('logs:a', 'live');
    await stream.waitFor((e) => e.event === 'logs');
    expect(stream.events.map((e) => e.event)).toEqual(['sse:ready', 'sse:reset', 'logs']);
    expect(resetReason(stream)).toBe(reason);
    expect(dataEvents(stream.events).map((e) => e.data)).toEqual(['live']);
  });

  it('sends sse:reset when the id fell out of the window by count (never a partial replay)', async () => {
    const { open, gateway } = await startGateway({
      channels: ['logs'],
      replay: { size: 5, ttlMs: 60_000 },
      bus: createMemoryBus({ history: { size: 5 } }),
    });
    const old = await gateway.publish('logs:a', 0);
    for (let i = 1; i <= 6; i++) await gateway.publish('logs:a', i);
    const stream = await open('channels=logs:a', { headers: { 'Last-Event-ID': old.id } });
    await gateway.publish('logs:a', 'live');
    await stream.waitFor((e) => e.event === 'logs');
    expect(resetReason(stream)).toBe('expired');
    expect(dataEvents(stream.events).map((e) => e.data)).toEqual(['live']);
  });

  it('sends sse:reset when the id is older than ttlMs', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'], replay: { size: 100, ttlMs: 50 } });
    const old = await gateway.publish('logs:a', 0);
    await gateway.publish('logs:a', 1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    const stream = await open('channels=logs:a', { headers: { 'Last-Event-ID': old.id } });
    await stream.waitFor((e) => e.event === 'sse:reset');
    expect(resetReason(stream)).toBe('expired');
  });

  it('sends sse:reset with replay: false', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'], replay: false });
    const seen = await gateway.publish('logs:a', 0);
    const stream = await open('channels=logs:a', { headers: { 'Last-Event-ID': seen.id } });
    await stream.waitFor((e) => e.event === 'sse:reset');
    expect(resetReason(stream)).toBe('replay-disabled');
  });

  it('is race-free: events published while the history is read arrive once, in order, after the replay', async () => {
    const inner = createMemoryBus();
    let duringReplay: () => Promise<void> = async () => {};
    // A bus whose history read is slow and sees publishes happen in the middle of it.
    const bus: Bus = {
      ...inner,
      id: inner.id,
      publish: inner.publish.bind(inner),
      listen: inner.listen.bind(inner),
      watch: inner.watch.bind(inner),
      status: inner.status.bind(inner),
      close: inner.close.bind(inner),
      async replay(lastEventId: string, query: ReplayQuery): Promise<ReplayResult> {
        await duringReplay(); // published before the snapshot: in the replay AND held live
        const result = await inner.replay(lastEventId, query);
        await inner.publish('logs:a', 'after snapshot'); // live only
        return result;
      },
    };
    const { open, gateway } = await startGateway({ channels: ['logs'], bus });
    const mark = await gateway.publish('logs:a', 'seen');
    await gateway.publish('logs:a', 'missed');
    duringReplay = async () => {
      await inner.publish('logs:a', 'during replay');
    };
    const stream = await open('channels=logs:a', { headers: { 'Last-Event-ID': mark.id } });
    await gateway.publish('logs:a', 'live');
    const events = dataEvents(await stream.take(4));
    expect(events.map((e) => e.data)).toEqual(['missed', 'during replay', 'after snapshot', 'live']);
    await gateway.publish('logs:a', 'sentinel');
    expect(dataEvents(await stream.take(1)).map((e) => e.data)).toEqual(['sentinel']);
  });

  it('sends sse:ready only once the bus confirms the subscriptions, holding earlier events behind it', async () => {
    const inner = createMemoryBus();
    let confirm: () => void = () => {};
    const bus: Bus = {
      id: inner.id,
      publish: inner.publish.bind(inner),
      listen: inner.listen.bind(inner),
      watch: inner.watch.bind(inner),
      replay: inner.replay.bind(inner),
      status: inner.status.bind(inner),
      close: inner.close.bind(inner),
      watched: () =>
        new Promise<void>((resolve) => {
          confirm = resolve;
        }),
    };
    const { open, gateway } = await startGateway({ channels: ['logs'], bus });
    const stream = await open('channels=logs:a', { ready: false });
    await stream.until((s) => s.retry !== undefined);
    await gateway.publish('logs:a', 'before ready');
    expect(stream.events).toEqual([]);
    confirm();
    await stream.waitFor((e) => e.event === 'sse:ready');
    expect(dataEvents(await stream.take(1)).map((e) => e.data)).toEqual(['before ready']);
  });

  it('sends sse:reset when the bus cannot read its history', async () => {
    const inner = createMemoryBus();
    const bus: Bus = {
      id: inner.id,
      publish: inner.publish.bind(inner),
      listen: inner.listen.bind(inner),
      watch: inner.watch.bind(inner),
      status: inner.status.bind(inner),
      close: inner.close.bind(inner),
      replay: () => Promise.reject(new Error('history store down')),
    };
    const { open, gateway } = await startGateway({ channels: ['logs'], bus, logger: { warn() {}, error() {} } });
    const seen = await gateway.publish('logs:a', 0);
    const stream = await open('channels=logs:a', { headers: { 'Last-Event-ID': seen.id } });
    await gateway.publish('logs:a', 'live');
    await stream.waitFor((e) => e.event === 'logs');
    expect(resetReason(stream)).toBe('unavailable');
  });
});

describe('a resume point before the first event', () => {
  it("a fresh stream's sse:ready carries the bus's newest id; a client that drops before any event resumes from it", async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'] });
    await gateway.publish('logs:a', 'before the stream');
    const first = await open('channels=logs:a');
    const ready = first.events.find((e) => e.event === 'sse:ready');
    expect(ready?.id).toBe(gateway.bus.status().head);
    first.close();
    await gateway.publish('logs:a', 'while away');
    const again = await open('channels=logs:a', { headers: { 'Last-Event-ID': ready?.id ?? '' } });
    expect(dataEvents(await again.take(1)).map((e) => e.data)).toEqual(['while away']);
    // A resuming stream's sse:ready has no id: it would move Last-Event-ID past what is still to be replayed.
    expect(again.events.find((e) => e.event === 'sse:ready')?.id).toBeUndefined();
  });

  it('a bus with no event yet gives sse:ready no id', async () => {
    const { open } = await startGateway({ channels: ['logs'] });
    const stream = await open('channels=logs:a');
    expect(stream.events.find((e) => e.event === 'sse:ready')?.id).toBeUndefined();
  });
});

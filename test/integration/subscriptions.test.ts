/**
 * Changing an open stream's channels with `POST {path}/subscriptions`: on the instance holding the stream,
 * on another instance over Redis, with replay of an added channel, and every way a request can be refused.
 */
import type { Request } from 'express';
import { createRedisBus } from '../../src/bus/redis';
import type { ReadyPayload, SubscribedPayload, SubscriptionChangeResponse } from '../../src/protocol/wire';
import type { SseOptions } from '../../src/types';
import { settled } from '../helpers/bus';
import { closeAll, type GatewayHarness, onCleanup, startGateway } from '../helpers/gateway';
import { type RedisServer, startRedisServer } from '../helpers/redis-server';
import { dataEvents, type SseStream } from '../helpers/sse-client';

afterEach(closeAll);

const byHeader = (req: Request) => {
  const id = req.get('x-user');
  return id ? { id } : null;
};

function ready(stream: SseStream): ReadyPayload {
  const event = stream.events.find((e) => e.event === 'sse:ready');
  return JSON.parse(event?.data ?? '{}') as ReadyPayload;
}

async function change(
  harness: GatewayHarness,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: SubscriptionChangeResponse & { error?: { code: string } } }> {
  const res = await fetch(`${harness.url}/events/subscriptions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as SubscriptionChangeResponse & { error?: { code: string } } };
}

async function subscribed(stream: SseStream, requestId: string): Promise<SubscribedPayload> {
  const event = await stream.waitFor(
    (e) => e.event === 'sse:subscribed' && (JSON.parse(e.data) as SubscribedPayload).requestId === requestId,
  );
  return JSON.parse(event.data) as SubscribedPayload;
}

/** Publish `channel` events `from`..`to` in order, one per tick, so changes land between them. */
async function publishRange(harness: GatewayHarness, channel: string, from: number, to: number): Promise<void> {
  for (let n = from; n <= to; n++) {
    await harness.gateway.publish(channel, { n });
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function numbers(stream: SseStream, channel: string): number[] {
  return dataEvents(stream.events)
    .filter((e) => e.channel === channel)
    .map((e) => (e.data as { n: number }).n);
}

describe('on the instance holding the stream', () => {
  const options: SseOptions = {
    channels: ['logs', 'metrics'],
    authentication: byHeader,
    authorize: (_user, channel) => !channel.includes('secret'),
  };

  test('add and remove while publishing: staying channel exactly once in order, added live after sse:subscribed, removed silent after it', async () => {
    const harness = await startGateway(options);
    const stream = await harness.open('channels=logs:a', { headers: { 'x-user': 'u1' } });
    const { connectionId, subscriptionToken } = ready(stream);
    expect(typeof subscriptionToken).toBe('string');

    const steady = publishRange(harness, 'logs:a', 1, 200);
    const other = publishRange(harness, 'metrics:b', 1, 200);
    const added = await change(
      harness,
      { connectionId, subscriptionToken, requestId: 'r1', add: ['metrics:b'] },
      { 'x-user': 'u1' },
    );
    expect(added.status).toBe(200);
    expect(added.body).toEqual({ requestId: 'r1', accepted: ['metrics:b'], refused: [], removed: [] });
    const marker = await subscribed(stream, 'r1');
    expect(marker).toEqual({ requestId: 'r1', added: ['metrics:b'], removed: [], channels: ['logs:a', 'metrics:b'] });
    const markerAt = stream.events.findIndex((e) => e.event === 'sse:subscribed');

    const removedAnswer = await change(
      harness,
      { connectionId, subscriptionToken, requestId: 'r2', remove: ['logs:a'] },
      { 'x-user': 'u1' },
    );
    expect(removedAnswer.body.removed).toEqual(['logs:a']);
    await subscribed(stream, 'r2');
    const removedAt = stream.events.findIndex((e) => e.event === 'sse:subscribed' && e.data.includes('"r2"'));
    await Promise.all([steady, other]);
    await harness.gateway.publish('metrics:b', { n: 2000 });
    await stream.until((s) => numbers(s, 'metrics:b').includes(2000));

    // The staying channel, up to its removal: a gap-free run from 1, each once.
    const logs = numbers(stream, 'logs:a');
    expect(logs).toEqual(Array.from({ length: logs.length }, (_, i) => i + 1));
    // Nothing of the removed channel after the marker that removed it.
    expect(dataEvents(stream.events.slice(removedAt)).filter((e) => e.channel === 'logs:a')).toEqual([]);
    // The added channel: in order, each once, and everything published after the marker arrived.
    const metrics = numbers(stream, 'metrics:b');
    expect(new Set(metrics).size).toBe(metrics.length);
    expect([...metrics].sort((a, b) => a - b)).toEqual(metrics);
    const afterMarker = dataEvents(stream.events.slice(markerAt)).filter((e) => e.channel === 'metrics:b');
    const first = (afterMarker[0] as { data: { n: number } }).data.n;
    expect(metrics.slice(metrics.indexOf(first))).toEqual([
      ...Array.from({ length: 201 - first }, (_, i) => first + i),
      2000,
    ]);
    expect(harness.gateway.activeTopics()).toEqual(['metrics:b']);
    expect(harness.gateway.stats()).toMatchObject({ connections: 1, subscriptions: 1 });
  });

  test('a refused or malformed channel fails alone; the others are added', async () => {
    const harness = await startGateway(options);
    const stream = await harness.open('channels=logs:a', { headers: { 'x-user': 'u1' } });
    const { connectionId, subscriptionToken } = ready(stream);
    const answer = await change(
      harness,
      { connectionId, subscriptionToken, requestId: 'r1', add: ['logs:secret', 'metrics:ok', 'nope:x', 'logs::'] },
      { 'x-user': 'u1' },
    );
    expect(answer.status).toBe(200);
    expect(answer.body.accepted).toEqual(['metrics:ok']);
    expect(answer.body.refused.map((r) => [r.channel, r.code, r.status])).toEqual([
      ['nope:x', 'ERR_SSE_INVALID_CHANNEL', 400],
      ['logs::', 'ERR_SSE_INVALID_CHANNEL', 400],
      ['logs:secret', 'ERR_SSE_FORBIDDEN_CHANNEL', 403],
    ]);
    await subscribed(stream, 'r1');
    await harness.gateway.publish('logs:secret', { n: 1 });
    await harness.gateway.publish('metrics:ok', { n: 2 });
    await stream.until((s) => numbers(s, 'metrics:ok').length === 1);
    expect(numbers(stream, 'logs:secret')).toEqual([]);
  });

  test('an added channel with `since` replays what it missed, through the ACL, without repeating the others', async () => {
    const harness = await startGateway({
      ...options,
      filter: (_user, event) => (event.data as { n: number }).n !== 3,
    });
    const stream = await harness.open('channels=logs:a', { headers: { 'x-user': 'u1' } });
    const { connectionId, subscriptionToken } = ready(stream);
    const start = await harness.gateway.publish('logs:a', { n: 0 });
    for (let n = 1; n <= 5; n++) {
      await harness.gateway.publish('metrics:b', { n });
      await harness.gateway.publish('logs:a', { n });
    }
    await stream.until((s) => numbers(s, 'logs:a').length === 5);
    const answer = await change(
      harness,
      { connectionId, subscriptionToken, requestId: 'r1', add: [{ channel: 'metrics:b', since: start.id }] },
      { 'x-user': 'u1' },
    );
    expect(answer.status).toBe(200);
    await harness.gateway.publish('metrics:b', { n: 6 });
    await stream.until((s) => numbers(s, 'metrics:b').includes(6));
    expect(numbers(stream, 'metrics:b')).toEqual([1, 2, 4, 5, 6]);
    expect(numbers(stream, 'logs:a')).toEqual([0, 1, 2, 4, 5]);
  });

  test('an added channel whose `since` is outside the history gets sse:reset for that channel', async () => {
    const harness = await startGateway(options);
    const stream = await harness.open('channels=logs:a', { headers: { 'x-user': 'u1' } });
    const { connectionId, subscriptionToken } = ready(stream);
    await change(
      harness,
      { connectionId, subscriptionToken, requestId: 'r1', add: [{ channel: 'metrics:b', since: 'zzz-1' }] },
      { 'x-user': 'u1' },
    );
    const reset = await stream.waitFor((e) => e.event === 'sse:reset');
    expect(JSON.parse(reset.data)).toEqual({ reason: 'unknown-id', channels: ['metrics:b'] });
    await harness.gateway.publish('metrics:b', { n: 1 });
    await stream.until((s) => numbers(s, 'metrics:b').length === 1);
  });

  test('the channel limit holds for added channels', async () => {
    const harness = await startGateway({ ...options, limits: { maxChannelsPerConnection: 2 } });
    const stream = await harness.open('channels=logs:a', { headers: { 'x-user': 'u1' } });
    const { connectionId, subscriptionToken } = ready(stream);
    const answer = await change(
      harness,
      { connectionId, subscriptionToken, requestId: 'r1', add: ['logs:b', 'logs:c'] },
      { 'x-user': 'u1' },
    );
    expect(answer.body.accepted).toEqual(['logs:b']);
    expect(answer.body.refused.map((r) => [r.channel, r.code])).toEqual([['logs:c', 'ERR_SSE_TOO_MANY_CHANNELS']]);
    expect(harness.gateway.stats().subscriptions).toBe(2);
  });

  test('refusals: another principal, a forged token, no principal, a bad body, not JSON', async () => {
    const harness = await startGateway(options);
    const stream = await harness.open('channels=logs:a', { headers: { 'x-user': 'u1' } });
    const { connectionId, subscriptionToken } = ready(stream);
    const body = { connectionId, subscriptionToken, requestId: 'r1', add: ['logs:b'] };
    expect((await change(harness, body, { 'x-user': 'u2' })).status).toBe(403);
    const forged = await change(harness, { ...body, subscriptionToken: 'x'.repeat(24) }, { 'x-user': 'u1' });
    expect(forged.status).toBe(403);
    expect(forged.body.error?.code).toBe('ERR_SSE_FORBIDDEN');
    expect((await change(harness, body)).status).toBe(401);
    expect((await change(harness, { ...body, requestId: 'bad id!' }, { 'x-user': 'u1' })).status).toBe(400);
    expect((await change(harness, { ...body, add: [42] }, { 'x-user': 'u1' })).status).toBe(400);
    expect((await change(harness, '{not json', { 'x-user': 'u1' })).status).toBe(400);
    const form = await fetch(`${harness.url}/events/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-user': 'u1' },
      body: `connectionId=${connectionId}`,
    });
    expect(form.status).toBe(415);
    expect(harness.gateway.stats().subscriptions).toBe(1);
  });
});

describe('across instances on one Redis', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('a change sent to the other instance is routed over the bus to the stream', async () => {
    const start = async (): Promise<GatewayHarness> => {
      const bus = createRedisBus({ url: server.url, prefix: 'subs', logger: { warn: jest.fn(), error: jest.fn() } });
      onCleanup(() => bus.close());
      const harness = await startGateway({ channels: ['logs'], authentication: byHeader, bus });
      await settled(bus);
      return harness;
    };
    const [a, b] = [await start(), await start()];
    const stream = await a.open('channels=logs:a', { headers: { 'x-user': 'u1' } });
    const { connectionId, subscriptionToken } = ready(stream);
    const steady = publishRange(b, 'logs:a', 1, 100);
    const answer = await change(
      b,
      { connectionId, subscriptionToken, requestId: 'r1', add: ['logs:b'] },
      { 'x-user': 'u1' },
    );
    expect(answer.status).toBe(202);
    expect(answer.body.accepted).toEqual(['logs:b']);
    await subscribed(stream, 'r1');
    await b.gateway.publish('logs:b', { n: 1 });
    await steady;
    await stream.until((s) => numbers(s, 'logs:b').length === 1 && numbers(s, 'logs:a').length === 100);
    expect(numbers(stream, 'logs:a')).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));

    // A forged token sent to the other instance changes nothing.
    await change(
      b,
      { connectionId, subscriptionToken: 'forged', requestId: 'r2', add: ['logs:c'] },
      { 'x-user': 'u1' },
    );
    await change(b, { connectionId, subscriptionToken, requestId: 'r3', add: ['logs:d'] }, { 'x-user': 'u1' });
    await subscribed(stream, 'r3');
    expect(a.gateway.activeTopics().sort()).toEqual(['logs:a', 'logs:b', 'logs:d']);
    expect(stream.events.some((e) => e.data.includes('"r2"'))).toBe(false);
  });
});

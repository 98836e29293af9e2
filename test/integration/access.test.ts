import request from 'supertest';
import type { Principal, SseEvent } from '../../src';
import { createMemoryBus } from '../../src';
import { customBus } from '../helpers/bus';
import { byHeader, closeAll, eventually, startGateway } from '../helpers/gateway';
import { dataEvents } from '../helpers/sse-client';

afterEach(closeAll);

const as = (id: string) => ({ headers: { 'x-user': id } });

describe('per-event filter', () => {
  it('a user with one of forty dashboards, subscribed to dashboards:*, sees only its own', async () => {
    const owner = (i: number) => `u${i}`;
    const { open, gateway } = await startGateway({
      channels: ['dashboards'],
      authentication: byHeader,
      filter: (principal, event) => (event.data as { owner: string }).owner === principal.id,
    });
    const u7 = await open('channels=dashboards:*', as('u7'));
    const u8 = await open('channels=dashboards:*', as('u8'));
    for (let i = 0; i < 40; i++) await gateway.publish(`dashboards:d${i}`, { owner: owner(i), v: i });
    await gateway.publish('dashboards:end', { owner: 'u7', v: 'end' });
    await gateway.publish('dashboards:end', { owner: 'u8', v: 'end' });
    expect(dataEvents(await u7.take(2)).map((e) => [e.channel, (e.data as { v: unknown }).v])).toEqual([
      ['dashboards:d7', 7],
      ['dashboards:end', 'end'],
    ]);
    expect(dataEvents(await u8.take(2)).map((e) => e.channel)).toEqual(['dashboards:d8', 'dashboards:end']);
  });

  it('an async filter with random delays never reorders a connection’s events', async () => {
    const { open, gateway } = await startGateway({
      channels: ['logs'],
      filter: async (_p, event) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10));
        return (event.data as number) % 3 !== 0;
      },
    });
    const stream = await open('channels=logs:a');
    const sent: number[] = [];
    for (let i = 1; i <= 60; i++) {
      await gateway.publish('logs:a', i);
      if (i % 3 !== 0) sent.push(i);
    }
    expect(dataEvents(await stream.take(sent.length)).map((e) => e.data)).toEqual(sent);
  });

  it('a throwing or rejecting filter hides the event (fail closed) and keeps the stream', async () => {
    const logger = { warn: jest.fn(), error: jest.fn() };
    const { open, gateway } = await startGateway({
      channels: ['logs'],
      logger,
      filter: (_p, event: SseEvent) => {
        if (event.data === 'throw') throw new Error('boom');
        if (event.data === 'reject') return Promise.reject(new Error('boom'));
        return true;
      },
    });
    const stream = await open('channels=logs:a');
    for (const data of ['throw', 'ok1', 'reject', 'ok2']) await gateway.publish('logs:a', data);
    expect(dataEvents(await stream.take(2)).map((e) => e.data)).toEqual(['ok1', 'ok2']);
    expect(logger.error).toHaveBeenCalledTimes(2);
  });

  it('a namespace policy filter runs before the gateway filter', async () => {
    const calls: string[] = [];
    const { open, gateway } = await startGateway({
      channels: {
        logs: {
          filter: (_p, e) => {
            calls.push(`policy:${e.data}`);
            return e.data !== 'policy-no';
          },
        },
      },
      filter: (_p, e) => {
        calls.push(`global:${e.data}`);
        return e.data !== 'global-no';
      },
    });
    const stream = await open('channels=logs:a');
    for (const data of ['policy-no', 'global-no', 'yes']) await gateway.publish('logs:a', data);
    expect(dataEvents(await stream.take(1)).map((e) => e.data)).toEqual(['yes']);
    expect(calls).toEqual(['policy:policy-no', 'policy:global-no', 'global:global-no', 'policy:yes', 'global:yes']);
  });
});

describe('connect-time authorize', () => {
  it('awaits async authorize once per requested channel or pattern, with the pattern as written', async () => {
    const seen: string[] = [];
    const { url, open } = await startGateway({
      channels: ['logs', 'dashboards'],
      authentication: byHeader,
      authorizeCacheMs: 0,
      authorize: async (principal, channel, req) => {
        seen.push(`${principal.id}:${channel}:${req.path}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        return !channel.startsWith('logs:ws2');
      },
    });
    const stream = await open('channels=logs:ws1:*,dashboards:*', as('u1'));
    expect(stream.status).toBe(200);
    expect(seen.sort()).toEqual(['u1:dashboards:*:/events', 'u1:logs:ws1:*:/events']);
    const denied = await request(url).get('/events?channels=logs:ws2:wf1').set('x-user', 'u1').expect(403);
    expect(denied.body.error.channels).toEqual(['logs:ws2:wf1']);
  });

  it('caches decisions per principal and channel for authorizeCacheMs', async () => {
    let calls = 0;
    const { open } = await startGateway({
      channels: ['logs'],
      authentication: byHeader,
      authorizeCacheMs: 60_000,
      authorize: () => {
        calls++;
        return true;
      },
    });
    (await open('channels=logs:a', as('u1'))).close();
    (await open('channels=logs:a', as('u1'))).close();
    expect(calls).toBe(1);
    (await open('channels=logs:a', as('u2'))).close();
    expect(calls).toBe(2);
  });

  it('a policy authorize applies to its namespace only', async () => {
    const { url, open } = await startGateway({
      channels: { logs: { authorize: (p) => p.id === 'admin' }, metrics: {} },
      authentication: byHeader,
    });
    expect((await open('channels=metrics:a', as('u1'))).status).toBe(200);
    expect((await open('channels=metrics:a,logs:a', as('admin'))).status).toBe(200);
    const res = await request(url).get('/events?channels=metrics:a,logs:a').set('x-user', 'u1').expect(403);
    expect(res.body.error.channels).toEqual(['logs:a']);
  });
});

describe('user scoping', () => {
  const scoped = {
    channels: { alerts: { userScoped: true }, logs: {} },
    authentication: byHeader,
    userScoping: true,
  } as const;

  it('an event published with users reaches only those principals', async () => {
    const { open, gateway } = await startGateway(scoped);
    const u1 = await open('channels=logs:a', as('u1'));
    const u2 = await open('channels=logs:a', as('u2'));
    const u3 = await open('channels=logs:a', as('u3'));
    await gateway.publish('logs:a', 'for u1 and u3', { users: ['u1', 'u3'] });
    await gateway.publish('logs:a', 'for everyone');
    expect(dataEvents(await u1.take(2)).map((e) => e.data)).toEqual(['for u1 and u3', 'for everyone']);
    expect(dataEvents(await u2.take(1)).map((e) => e.data)).toEqual(['for everyone']);
    expect(dataEvents(await u3.take(2)).map((e) => e.data)).toEqual(['for u1 and u3', 'for everyone']);
  });

  it('a user-scoped namespace is open only to the principal named by its second segment', async () => {
    const { url, open, gateway } = await startGateway(scoped);
    const own = await open('channels=alerts:u1,alerts:u1:*', as('u1'));
    expect(own.status).toBe(200);
    for (const channels of ['alerts:u2', 'alerts:*', 'alerts:u2:*']) {
      const res = await request(url).get(`/events?channels=${channels}`).set('x-user', 'u1').expect(403);
      expect(res.body.error.channels).toEqual([channels]);
    }
    await gateway.publish('alerts:u2', 'not yours');
    await gateway.publish('alerts:u1:billing', 'yours');
    expect(dataEvents(await own.take(1)).map((e) => e.data)).toEqual(['yours']);
  });

  it('a forged user in the query string changes nothing', async () => {
    const { url } = await startGateway(scoped);
    for (const forged of ['user=u2', 'userId=u2', 'principal=u2', 'x-user=u2']) {
      await request(url).get(`/events?channels=alerts:u2&${forged}`).set('x-user', 'u1').expect(403);
    }
    await request(url).get('/events?channels=alerts:u2&user=u2').expect(401);
  });

  it('anonymous connections get no user-addressed events and no user-scoped channels', async () => {
    const { url, open, gateway } = await startGateway({
      channels: { alerts: { userScoped: true }, logs: {} },
      userScoping: true,
      logger: { warn() {}, error() {} },
    });
    const anon = await open('channels=logs:a');
    await request(url).get('/events?channels=alerts:anonymous').expect(403);
    await gateway.publish('logs:a', 'private', { users: ['anonymous'] });
    await gateway.publish('logs:a', 'public');
    expect(dataEvents(await anon.take(1)).map((e) => e.data)).toEqual(['public']);
  });
});

describe('gateway.disconnect(principalId)', () => {
  it('ends that user’s streams only, and its next connection is authorised afresh', async () => {
    const revoked = new Set<string>();
    const authorize = jest.fn((principal: Principal) => !revoked.has(principal.id));
    const { open, gateway, url } = await startGateway({
      channels: ['logs'],
      authentication: byHeader,
      authorize,
      authorizeCacheMs: 60_000,
    });
    const u1a = await open('channels=logs:a', as('u1'));
    const u1b = await open('channels=logs:a,logs:b', as('u1'));
    const u2 = await open('channels=logs:a', as('u2'));
    const callsBefore = authorize.mock.calls.length;
    // Cached: a third u1 stream does not ask authorize again.
    (await open('channels=logs:a', as('u1'))).close();
    expect(authorize.mock.calls.length).toBe(callsBefore);
    await eventually(() => gateway.stats().connections === 3, 5000, 'the third stream to close');

    revoked.add('u1');
    expect(gateway.disconnect('u1')).toBe(2);
    await Promise.all([u1a.ended, u1b.ended]);
    await gateway.publish('logs:a', 'after');
    expect(dataEvents(await u2.take(1)).map((e) => e.data)).toEqual(['after']);
    expect(u1a.events.some((e) => e.data.includes('after'))).toBe(false);
    expect(gateway.stats()).toMatchObject({ connections: 1, users: 1 });
    // The cached `true` is gone: the reconnect asks authorize, which now says no.
    const again = await request(url).get('/events?channels=logs:a').set('x-user', 'u1').expect(403);
    expect(again.body.error.code).toBe('ERR_SSE_FORBIDDEN_CHANNEL');
    expect(gateway.disconnect('nobody')).toBe(0);
  });

  it('disconnectEverywhere reaches every gateway on the bus; without bus signals it acts locally', async () => {
    const bus = createMemoryBus();
    const options = { channels: ['logs'], authentication: byHeader, bus };
    const a = await startGateway(options);
    const b = await startGateway(options);
    const onA = await a.open('channels=logs:a', as('u1'));
    const onB = await b.open('channels=logs:a', as('u1'));
    await a.gateway.disconnectEverywhere('u1');
    await Promise.all([onA.ended, onB.ended]);
    expect(a.gateway.stats().connections + b.gateway.stats().connections).toBe(0);

    // A custom bus without signal(): the local gateway still disconnects.
    const c = await startGateway({ ...options, bus: customBus() });
    const onC = await c.open('channels=logs:a', as('u1'));
    await c.gateway.disconnectEverywhere('u1');
    await onC.ended;
  });
});

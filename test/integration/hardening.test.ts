/**
 * Hardening of access control (issue 12): what a multi-tenant BFF, a logout racing a connect and an
 * OIDC-shaped principal did to it.
 */
import type { Request } from 'express';
import request from 'supertest';
import { publishEvent, sseMiddleware } from '../../src';
import type { Principal } from '../../src/types';
import { closeAll, recordingLogger, startGateway } from '../helpers/gateway';

afterEach(closeAll);

const tenantUser = (req: Request) => {
  const id = req.get('x-user');
  return id ? { id, tenant: req.get('x-tenant') ?? 'none' } : null;
};
const as = (id: string, tenant?: string) => ({ headers: { 'x-user': id, ...(tenant ? { 'x-tenant': tenant } : {}) } });

describe('the authorize cache', () => {
  test('a principal of another tenant with the same id does not reuse a cached allow', async () => {
    const authorize = jest.fn((principal: Principal & { tenant?: string }) => principal.tenant === 'acme');
    const { open } = await startGateway({
      channels: ['logs'],
      authentication: tenantUser,
      authorize,
      authorizeCacheMs: 60_000,
    });
    expect((await open('channels=logs:a', as('u1', 'acme'))).status).toBe(200);
    expect((await open('channels=logs:a', as('u1', 'acme'))).status).toBe(200);
    expect(authorize).toHaveBeenCalledTimes(1);
    const other = await open('channels=logs:a', as('u1', 'globex'));
    expect(other.status).toBe(403);
    expect(authorize).toHaveBeenCalledTimes(2);
  });

  test('denials are never cached', async () => {
    let allow = false;
    const { open } = await startGateway({
      channels: ['logs'],
      authentication: tenantUser,
      authorize: () => allow,
      authorizeCacheMs: 60_000,
    });
    expect((await open('channels=logs:a', as('u1'))).status).toBe(403);
    allow = true;
    expect((await open('channels=logs:a', as('u1'))).status).toBe(200);
  });

  test('authorizeCacheKey decides what a decision is cached by; undefined caches nothing', async () => {
    const authorize = jest.fn((_p: Principal, _c: string, req: Request) => req.get('x-role') === 'admin');
    const { open } = await startGateway({
      channels: ['logs'],
      authentication: (req) => ({ id: req.get('x-user') ?? 'x' }),
      authorize,
      authorizeCacheMs: 60_000,
      authorizeCacheKey: (_principal, req) => req.get('x-role'),
    });
    const role = (r?: string) => ({ headers: { 'x-user': 'u1', ...(r ? { 'x-role': r } : {}) } });
    expect((await open('channels=logs:a', role('admin'))).status).toBe(200);
    expect((await open('channels=logs:a', role('admin'))).status).toBe(200);
    expect(authorize).toHaveBeenCalledTimes(1);
    expect((await open('channels=logs:a', role('viewer'))).status).toBe(403);
    expect((await open('channels=logs:a', role())).status).toBe(403);
    expect((await open('channels=logs:a', role())).status).toBe(403);
    expect(authorize).toHaveBeenCalledTimes(4);
  });

  test('a connect whose authorize is in flight when disconnect() runs is decided again, and refills no cache', async () => {
    const revoked = new Set<string>();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const { url, gateway } = await startGateway({
      channels: ['logs'],
      authentication: tenantUser,
      authorizeCacheMs: 60_000,
      authorize: async (principal) => {
        calls++;
        const verdict = !revoked.has(principal.id);
        if (calls === 1) await held;
        return verdict;
      },
    });
    const connecting = request(url).get('/events?channels=logs:a').set('x-user', 'u1');
    const answer = connecting.then((res) => res);
    while (calls === 0) await new Promise((resolve) => setImmediate(resolve));
    revoked.add('u1');
    gateway.disconnect('u1');
    release();
    const res = await answer;
    expect(res.status).toBe(403);
    expect(calls).toBe(2);
    expect(gateway.stats().connections).toBe(0);
    await request(url).get('/events?channels=logs:a').set('x-user', 'u1').expect(403);
    expect(calls).toBe(3);
  });
});

describe('principals and scoping', () => {
  test('a principal without an id is logged by its keys only, never its values', async () => {
    const logger = recordingLogger();
    const { url } = await startGateway({
      channels: ['logs'],
      logger,
      authentication: () => ({ access_token: 'TOKEN-SECRET', name: 'x' }) as unknown as Principal,
    });
    await request(url).get('/events?channels=logs:a').expect(500);
    expect(logger.error).toHaveBeenCalled();
    expect(JSON.stringify(logger.error.mock.calls)).not.toContain('TOKEN-SECRET');
    expect(JSON.stringify(logger.error.mock.calls)).toContain('access_token');
  });

  test('an id that is not a segment owns no user-scoped channel', async () => {
    const { open } = await startGateway({
      channels: { alerts: { userScoped: true } },
      userScoping: true,
      authentication: tenantUser,
    });
    expect((await open('channels=alerts:acme:bob', as('acme:bob'))).status).toBe(403);
    expect((await open('channels=alerts:bob', as('bob'))).status).toBe(200);
  });

  test('the 400 for an unknown channel names the channel, not the configured namespaces', async () => {
    const { url } = await startGateway({ channels: ['logs', 'internal-billing'] });
    const res = await request(url).get('/events?channels=nope:a').expect(400);
    expect(res.body.error.channels).toEqual(['nope:a']);
    expect(JSON.stringify(res.body)).not.toContain('internal-billing');
  });
});

describe('the implicit bus', () => {
  test('a second gateway on the implicit process-wide bus is warned about', async () => {
    const logger = recordingLogger();
    await startGateway({ channels: ['logs'], bus: undefined, logger });
    expect(logger.warn).not.toHaveBeenCalled();
    const second = recordingLogger();
    await startGateway({ channels: ['logs'], bus: undefined, logger: second });
    expect(second.warn).toHaveBeenCalledWith(
      expect.stringContaining('second gateway uses the implicit process-wide bus'),
    );
  });

  test('publishEvent to a namespace no gateway of this process serves is warned about once', async () => {
    const logger = recordingLogger();
    const { gateway } = await startGateway({ channels: ['logs'], logger });
    await publishEvent('metricz:ws1', 1, { bus: gateway.bus });
    await publishEvent('metricz:ws2', 2, { bus: gateway.bus });
    await publishEvent('logs:ws1', 3, { bus: gateway.bus });
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0]?.[0]).toContain('no gateway of this process serves namespace metricz');
  });
});

describe('a principal at its stream limit', () => {
  test("onUserLimit: 'end-oldest' ends the oldest stream and opens the newest", async () => {
    const { open, gateway } = await startGateway({
      channels: ['logs'],
      authentication: tenantUser,
      limits: { maxConnectionsPerUser: 2, onUserLimit: 'end-oldest' },
    });
    const first = await open('channels=logs:a', as('u1'));
    const second = await open('channels=logs:b', as('u1'));
    const third = await open('channels=logs:c', as('u1'));
    expect(third.status).toBe(200);
    await first.ended;
    expect(second.isEnded).toBe(false);
    expect(gateway.stats()).toMatchObject({ connections: 2, users: 1 });
    await gateway.publish('logs:c', 'newest');
    await third.until((s) => s.events.some((e) => e.data.includes('newest')));
  });

  test('the default still answers 429', async () => {
    const { open } = await startGateway({
      channels: ['logs'],
      authentication: tenantUser,
      limits: { maxConnectionsPerUser: 1 },
    });
    await open('channels=logs:a', as('u1'));
    expect((await open('channels=logs:a', as('u1'))).status).toBe(429);
  });
});

describe('poison events', () => {
  test('an event over maxEventBytes from another publisher is dropped and counted; the stream stays open', async () => {
    const logger = recordingLogger();
    const { open, gateway } = await startGateway({ channels: ['logs'], logger, limits: { maxEventBytes: 4096 } });
    const stream = await open('channels=logs:a');
    await gateway.bus.publish('logs:a', 'x'.repeat(10_000));
    await gateway.bus.publish('logs:a', 'x'.repeat(10_000));
    await gateway.bus.publish('logs:a', 'small');
    await stream.until((s) => s.events.some((e) => e.data.includes('small')));
    expect(stream.events.filter((e) => e.event === 'logs')).toHaveLength(1);
    expect(gateway.stats()).toMatchObject({ oversized: 2, slowClosed: 0, connections: 1 });
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  test('a replay too large for the stream buffer is answered with sse:reset too-large, not a close loop', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'], limits: { maxBufferedBytes: 8192 } });
    const first = await gateway.publish('logs:a', 0);
    for (let i = 0; i < 10; i++) await gateway.publish('logs:a', 'x'.repeat(1000));
    const stream = await open('channels=logs:a', { headers: { 'last-event-id': first.id } });
    const reset = await stream.waitFor((e) => e.event === 'sse:reset');
    expect(JSON.parse(reset.data)).toEqual({ reason: 'too-large' });
    await gateway.publish('logs:a', 'live');
    await stream.until((s) => s.events.some((e) => e.data.includes('live')));
    expect(gateway.stats()).toMatchObject({ slowClosed: 0, connections: 1, replays: { replayed: 0, reset: 1 } });
  });

  test('gateway.publish refuses an event over maxEventBytes before it is sequenced', async () => {
    const { gateway } = await startGateway({ channels: ['logs'], limits: { maxEventBytes: 4096 } });
    const head = gateway.bus.status().head;
    await expect(gateway.publish('logs:a', 'x'.repeat(5000))).rejects.toMatchObject({
      code: 'ERR_SSE_EVENT_TOO_LARGE',
      status: 413,
    });
    // Multi-byte characters count as bytes: 1,500 of them are 4,500 bytes of UTF-8.
    await expect(gateway.publish('logs:a', '€'.repeat(1500))).rejects.toMatchObject({
      code: 'ERR_SSE_EVENT_TOO_LARGE',
    });
    expect(gateway.bus.status().head).toBe(head);
    await expect(gateway.publish('logs:a', 'x'.repeat(3000))).resolves.toMatchObject({ channel: 'logs:a' });
  });

  test('maxEventBytes above maxBufferedBytes is refused at creation', () => {
    expect(() =>
      sseMiddleware({ channels: ['logs'], limits: { maxBufferedBytes: 4096, maxEventBytes: 8192 } }),
    ).toThrow(/must not exceed/);
  });
});

describe("path: '/'", () => {
  test('every route below the stream path is one slash deep', async () => {
    const { url } = await startGateway({
      path: '/',
      channels: ['logs'],
      admin: { authorize: () => true },
      publishers: { etl: { token: 'etl-token-0123456789abcdef', channels: ['logs:*'] } },
    });
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
    expect((await fetch(`${url}/stats`)).status).toBe(200);
    expect((await fetch(`${url}/connections`)).status).toBe(200);
    const published = await fetch(`${url}/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer etl-token-0123456789abcdef', 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'logs:a', data: 1 }),
    });
    expect(published.status).toBe(201);
    const change = await fetch(`${url}/subscriptions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(change.status).toBe(400);
  });
});

import express from 'express';
import { createMemoryBus, type SseGateway, sseMiddleware, sseProxy } from '../../src';
import {
  attempts,
  nextStatus,
  nodeClient,
  record,
  recordRequests,
  type SeenRequest,
  statusLog,
  TRANSPORT_HEADER,
} from '../helpers/client';
import { closeAll, eventually, onCleanup, recordingLogger, startGateway } from '../helpers/gateway';
import { startServer } from '../helpers/server';

afterEach(closeAll);

const numbers = (events: readonly { data: unknown }[]) => events.map((e) => e.data as number);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const user = { authentication: () => ({ id: 'u1' }) };

/** Gaps between consecutive stream attempts, in ms. */
function gaps(seen: readonly SeenRequest[]): number[] {
  const times = attempts(seen).map((r) => r.time);
  return times.slice(1).map((time, i) => time - (times[i] as number));
}

describe('reconnection', () => {
  it('resumes after the server drops the stream: nothing lost, nothing twice', async () => {
    const { gateway, url } = await startGateway({ channels: ['logs'], ...user });
    const client = nodeClient(`${url}/events`);
    const log = statusLog(client);
    const a = record(client, 'logs:a');
    await a.subscribed;
    let published = 0;
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) await gateway.publish('logs:a', published++);
    };
    await publish(5);
    await a.until((r) => r.events.length === 5);
    expect(gateway.disconnect('u1')).toBe(1);
    // Published while the client is away: replayed from its last event id.
    await publish(5);
    await nextStatus(client, 'open');
    await publish(5);
    await a.until((r) => r.events.length === 15, 10_000, 'every event');
    expect(numbers(a.events)).toEqual(range(0, 15));
    expect(a.resets).toEqual([]);
    expect(a.subscribedCount).toBe(1);
    expect(log).toEqual(['connecting', 'open', 'reconnecting', 'open']);
  });

  it('resumes from the id of sse:ready when the stream drops before its first event', async () => {
    const { gateway, url } = await startGateway({ channels: ['logs'], ...user });
    await gateway.publish('logs:a', -1);
    const client = nodeClient(`${url}/events`);
    const a = record(client, 'logs:a');
    await a.subscribed;
    expect(client.lastEventId).toBe(gateway.bus.status().head);
    expect(gateway.disconnect('u1')).toBe(1);
    await gateway.publish('logs:a', 0);
    await a.until((r) => r.events.length === 1, 10_000, 'the event published while away');
    expect(numbers(a.events)).toEqual([0]);
    expect(a.resets).toEqual([]);
  });

  it('a server restarted on a new memory bus: onReset, then the new events', async () => {
    let current: SseGateway = sseMiddleware({ channels: ['logs'], bus: createMemoryBus() });
    const app = express();
    app.use((req, res, next) => current(req, res, next));
    const server = await startServer(app);
    onCleanup(async () => {
      await current.close();
      await server.close();
    });
    const client = nodeClient(`${server.url}/events`);
    const a = record(client, 'logs:a');
    const b = record(client, 'logs:b');
    await Promise.all([a.subscribed, b.subscribed]);
    await current.publish('logs:a', 1);
    await a.until((r) => r.events.length === 1);
    const oldId = client.lastEventId;

    const old = current;
    current = sseMiddleware({ channels: ['logs'], bus: createMemoryBus() });
    await old.close();
    await a.until((r) => r.resets.length === 1, 10_000, 'onReset');
    await b.until((r) => r.resets.length === 1, 10_000, 'onReset');
    expect(a.resets[0]).toEqual(expect.any(String));
    await current.publish('logs:a', 2);
    await a.until((r) => r.events.length === 2);
    expect(numbers(a.events)).toEqual([1, 2]);
    expect(client.lastEventId).not.toBe(oldId);
    expect(client.lastEventId?.split('-')[0]).not.toBe(oldId?.split('-')[0]);
  });

  it('429 with Retry-After: waits at least that long, with a bounded jitter, then connects', async () => {
    let seen: SeenRequest[] = [];
    const { url, open } = await startGateway(
      { channels: ['logs'], ...user, limits: { maxConnectionsPerUser: 1, retryAfterSeconds: 1 } },
      {
        before: (app) => {
          seen = recordRequests(app);
        },
      },
    );
    const blocker = await open('channels=logs:x');
    const client = nodeClient(`${url}/events`, { reconnect: { initialDelayMs: 100, maxDelayMs: 400 } });
    const log = statusLog(client);
    const a = record(client, 'logs:a');
    // Free the slot once the second refusal was read (by the stream attempt and the request diagnosing it).
    const refusals = () => log.filter((s) => s === 'reconnecting:ERR_SSE_TOO_MANY_USER_CONNECTIONS').length;
    await eventually(() => refusals() === 2, 5000, 'a second refusal');
    blocker.close();
    await a.subscribed;
    expect(attempts(seen)).toHaveLength(3);
    for (const gap of gaps(seen)) {
      expect(gap).toBeGreaterThanOrEqual(1000);
      expect(gap).toBeLessThan(1000 + 100 + 400);
    }
    expect(log).toContain('reconnecting:ERR_SSE_TOO_MANY_USER_CONNECTIONS');
    expect(log.at(-1)).toBe('open');
  });

  it('503 with Retry-After from a proxy in front: waits, then connects', async () => {
    let seen: SeenRequest[] = [];
    let streamRequests = 0;
    const { url } = await startGateway(
      { channels: ['logs'] },
      {
        before: (app) => {
          seen = recordRequests(app);
          // The first two attempts (and the requests that diagnose them) meet an overloaded proxy.
          app.use('/events', (req, res, next) => {
            if (req.get(TRANSPORT_HEADER) === 'eventsource') streamRequests++;
            if (streamRequests > 2) return next();
            res.status(503).set('retry-after', '1');
            res.json({ error: { code: 'ERR_SSE_BUS_UNAVAILABLE', message: 'down for a moment' } });
          });
        },
      },
    );
    const client = nodeClient(`${url}/events`, { reconnect: { initialDelayMs: 100, maxDelayMs: 400 } });
    const log = statusLog(client);
    const a = record(client, 'logs:a');
    await a.subscribed;
    expect(attempts(seen)).toHaveLength(3);
    for (const gap of gaps(seen)) {
      expect(gap).toBeGreaterThanOrEqual(1000);
      expect(gap).toBeLessThan(1500);
    }
    expect(log.filter((s) => s === 'reconnecting:ERR_SSE_BUS_UNAVAILABLE')).toHaveLength(2);
  });

  it('401: closed with ERR_SSE_UNAUTHENTICATED, no retry', async () => {
    let seen: SeenRequest[] = [];
    const { url } = await startGateway(
      { channels: ['logs'], authentication: true },
      {
        before: (app) => {
          seen = recordRequests(app);
        },
      },
    );
    const client = nodeClient(`${url}/events`, { reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    const a = record(client, 'logs:a');
    const error = await nextStatus(client, 'closed');
    expect(error).toMatchObject({ code: 'ERR_SSE_UNAUTHENTICATED', status: 401 });
    // Twenty backoff ceilings later, still one attempt.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(attempts(seen)).toHaveLength(1);
    expect(client.status).toBe('closed');
    expect(a.errors).toEqual([]);
  });

  it('an upstream that answers "stop" (404) through sseProxy closes the client instead of retrying', async () => {
    let upstreamRequests = 0;
    const app = express();
    app.get('/upstream', (_req, res) => {
      upstreamRequests++;
      res.status(404).end();
    });
    app.get('/proxied', sseProxy({ target: (req) => `http://${req.get('host')}/upstream`, logger: recordingLogger() }));
    const server = await startServer(app);
    onCleanup(() => server.close());
    const client = nodeClient(`${server.url}/proxied`, { reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    const log = statusLog(client);
    record(client, 'logs:a');
    const error = await nextStatus(client, 'closed');
    expect(error).toMatchObject({ code: 'ERR_SSE_UPSTREAM', status: 404 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(upstreamRequests).toBe(1);
    expect(log).toEqual(['connecting', 'connecting:ERR_SSE_UPSTREAM', 'closed:ERR_SSE_UPSTREAM']);
  });
});

import express from 'express';
import type { SseGateway, SseOptions } from '../../src';
import { attempts, nodeClient, record, recordRequests, type SeenRequest } from '../helpers/client';
import { closeAll, type GatewayHarness, startGateway } from '../helpers/gateway';

afterEach(closeAll);

/** Publishes `{ n }` to each channel in turn, one round every `intervalMs`, until stopped. */
function steadyPublisher(gateway: SseGateway, channels: readonly string[], intervalMs = 4) {
  let round = 0;
  let stopped = false;
  let resolveStopped: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  const loop = async () => {
    while (!stopped) {
      for (const channel of channels) await gateway.publish(channel, { n: round });
      round++;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    resolveStopped();
  };
  void loop();
  return {
    get round() {
      return round;
    },
    async stop(): Promise<number> {
      stopped = true;
      await finished;
      return round;
    },
  };
}

const numbers = (events: readonly { data: unknown }[]) => events.map((e) => (e.data as { n: number }).n);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

type Path = 'live' | 'no-route' | 'lost';

/**
 * How the gateway answers subscription changes: its own route (`live`), a 404 as from a gateway without
 * the route (`no-route`), or a 202 whose `sse:subscribed` never comes (`lost`, as when the instance holding
 * the stream missed the bus signal).
 */
function interceptChanges(app: express.Express, path: Path): void {
  if (path === 'no-route') app.post('/events/subscriptions', (_req, res) => res.status(404).send('Not Found'));
  if (path === 'lost') {
    app.post('/events/subscriptions', express.json(), (req, res) => {
      const { requestId, add = [], remove = [] } = req.body as { requestId: string; add?: string[]; remove?: string[] };
      res.status(202).json({ requestId, accepted: add, refused: [], removed: remove });
    });
  }
}

async function start(path: Path, options: Partial<SseOptions> = {}): Promise<GatewayHarness & { seen: SeenRequest[] }> {
  let seen: SeenRequest[] = [];
  const harness = await startGateway(
    { channels: ['logs'], ...options },
    {
      before: (app) => {
        seen = recordRequests(app);
        interceptChanges(app, path);
      },
    },
  );
  return { ...harness, seen };
}

const posts = (seen: readonly SeenRequest[]) =>
  seen.filter((r) => r.method === 'POST' && r.path === '/events/subscriptions');

describe.each<Path>(['live', 'no-route', 'lost'])('subscription changes on an open stream (%s)', (path) => {
  const clientOptions = { subscriptionTimeoutMs: 300 };

  it('add and remove while publishing: the staying channel gets every event once, in order', async () => {
    const { gateway, url, seen } = await start(path);
    const client = nodeClient(`${url}/events`, clientOptions);
    const stay = record(client, 'logs:stay');
    const gone = record(client, 'logs:gone');
    await Promise.all([stay.subscribed, gone.subscribed]);
    const publisher = steadyPublisher(gateway, ['logs:stay', 'logs:gone', 'logs:new']);
    await stay.until((r) => r.events.length >= 20, 10_000, '20 events');

    gone.unsubscribe();
    const goneCount = gone.events.length;
    const added = record(client, 'logs:new');
    await added.subscribed;
    const liveFrom = publisher.round;
    await added.until((r) => numbers(r.events).includes(liveFrom + 20), 10_000, '20 more events');
    const total = await publisher.stop();

    await stay.until((r) => r.events.length === total, 10_000, 'every event');
    expect(numbers(stay.events)).toEqual(range(0, total));
    expect(new Set(stay.events.map((e) => e.id)).size).toBe(total);
    expect(gone.events).toHaveLength(goneCount);
    // From onSubscribed on, every event of the new channel, once, in order.
    const fresh = numbers(added.events).filter((n) => n >= liveFrom);
    expect(fresh).toEqual(range(liveFrom, total));
    expect(numbers(added.events)).toEqual([...new Set(numbers(added.events))].sort((a, b) => a - b));
    expect(gateway.activeTopics().sort()).toEqual(['logs:new', 'logs:stay']);
    expect(gateway.stats().connections).toBe(1);
    // The path taken: one change request and no reconnect, or a reconnect per change.
    if (path === 'live') {
      expect(attempts(seen)).toHaveLength(1);
      expect(posts(seen)).toHaveLength(1);
    } else {
      expect(attempts(seen)).toHaveLength(2);
      expect(posts(seen)).toHaveLength(1);
    }
  });

  it('changes made in one tick are one change', async () => {
    const { url, seen } = await start(path);
    const client = nodeClient(`${url}/events`, clientOptions);
    await record(client, 'logs:a').subscribed;
    const added = ['logs:b', 'logs:c', 'logs:d'].map((channel) => record(client, channel));
    await Promise.all(added.map((r) => r.subscribed));
    expect(posts(seen)).toHaveLength(1);
    expect(attempts(seen)).toHaveLength(path === 'live' ? 1 : 2);
    expect(attempts(seen).at(-1)?.query.get('channels')?.split(',').sort()).toEqual(
      path === 'live' ? ['logs:a'] : ['logs:a', 'logs:b', 'logs:c', 'logs:d'],
    );
  });

  it('a refused channel fails its own subscription; the others keep flowing', async () => {
    const { gateway, url, seen } = await start(path, {
      authorize: (_principal, channel) => !channel.startsWith('logs:secret'),
    });
    const client = nodeClient(`${url}/events`, clientOptions);
    const open = record(client, 'logs:open');
    const secret = record(client, 'logs:secret');
    await secret.until((r) => r.errors.length === 1, 10_000, 'the refusal');
    expect(secret.errors[0]).toMatchObject({ code: 'ERR_SSE_FORBIDDEN_CHANNEL', status: 403 });
    await open.subscribed;

    const publisher = steadyPublisher(gateway, ['logs:open', 'logs:secret']);
    await open.until((r) => r.events.length >= 10, 10_000, '10 events');
    // Refused again on an open stream, while events flow.
    const postsBefore = posts(seen).length;
    const later = record(client, 'logs:secret:2');
    const other = record(client, 'logs:other');
    await later.until((r) => r.errors.length === 1, 10_000, 'the second refusal');
    await other.subscribed;
    expect(later.errors[0]).toMatchObject({ code: 'ERR_SSE_FORBIDDEN_CHANNEL', status: 403 });
    const total = await publisher.stop();
    await open.until((r) => r.events.length === total, 10_000, 'every event');
    expect(numbers(open.events)).toEqual(range(0, total));
    expect(secret.events).toHaveLength(0);
    expect(later.events).toHaveLength(0);
    expect(later.subscribedCount + secret.subscribedCount).toBe(0);
    // One request for the change, even though its sse:subscribed may be read before its refusals.
    expect(posts(seen).length - postsBefore).toBe(1);
    expect(client.status).toBe('open');
  });
});

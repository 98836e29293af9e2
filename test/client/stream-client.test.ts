import {
  attempts,
  nextStatus,
  nodeClient,
  record,
  recordRequests,
  type SeenRequest,
  statusLog,
} from '../helpers/client';
import { closeAll, eventually, startGateway } from '../helpers/gateway';

afterEach(closeAll);

async function gatewayWithLog(options: Parameters<typeof startGateway>[0] = { channels: ['logs', 'metrics'] }) {
  let seen: SeenRequest[] = [];
  const harness = await startGateway(options, {
    before: (app) => {
      seen = recordRequests(app);
    },
  });
  return { ...harness, seen, events: `${harness.url}/events` };
}

describe('the browser client (one stream per client)', () => {
  it('opens nothing before the first subscription, then one stream for every subscription', async () => {
    const { gateway, seen, events } = await gatewayWithLog();
    const client = nodeClient(events);
    const log = statusLog(client);
    expect(client.status).toBe('idle');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toHaveLength(0);

    const a = record(client, 'logs:a');
    const b = record(client, 'logs:b');
    const m = record(client, 'metrics:*');
    await Promise.all([a.subscribed, b.subscribed, m.subscribed]);
    expect(client.status).toBe('open');
    expect(gateway.stats().connections).toBe(1);
    expect(attempts(seen)).toHaveLength(1);
    expect(attempts(seen)[0]?.query.get('channels')?.split(',').sort()).toEqual(['logs:a', 'logs:b', 'metrics:*']);
    expect(log).toEqual(['connecting', 'open']);

    await gateway.publish('logs:a', { n: 1 });
    await gateway.publish('metrics:cpu:host1', { n: 2 });
    await gateway.publish('logs:b', { n: 3 });
    await b.until((r) => r.events.length === 1);
    await m.until((r) => r.events.length === 1);
    expect(a.events.map((e) => e.data)).toEqual([{ n: 1 }]);
    expect(m.events[0]).toEqual({
      id: expect.stringMatching(/^[a-z0-9]+-\d+$/),
      channel: 'metrics:cpu:host1',
      namespace: 'metrics',
      data: { n: 2 },
    });
    expect(client.lastEventId).toBe(b.events[0]?.id);
  });

  it('a second listener on a channel opens nothing; the channel leaves only with its last listener', async () => {
    const { gateway, seen, events } = await gatewayWithLog();
    const client = nodeClient(events);
    const keep = record(client, 'logs:keep');
    const first = record(client, 'logs:x');
    await Promise.all([keep.subscribed, first.subscribed]);
    const second = record(client, 'logs:x');
    await second.subscribed;
    expect(attempts(seen)).toHaveLength(1);
    expect(seen).toHaveLength(1);

    first.unsubscribe();
    await gateway.publish('logs:x', 'still here');
    await second.until((r) => r.events.length === 1);
    expect(first.events).toHaveLength(0);
    expect(gateway.activeTopics()).toContain('logs:x');
    expect(attempts(seen)).toHaveLength(1);

    second.unsubscribe();
    await eventually(() => !gateway.activeTopics().includes('logs:x'), 5000, 'logs:x to leave the server');
    expect(gateway.activeTopics()).toEqual(['logs:keep']);
    expect(gateway.stats().connections).toBe(1);

    keep.unsubscribe();
    await nextStatus(client, 'idle');
    await eventually(() => gateway.stats().connections === 0, 5000, 'the stream to close');
  });

  it('a listener subscribed twice (pattern and channel) hears an event once per subscription', async () => {
    const { gateway, events } = await gatewayWithLog();
    const client = nodeClient(events);
    const heard: string[] = [];
    const offs = [
      client.subscribe('logs:*', (e) => heard.push(`pattern ${e.data}`)),
      client.subscribe('logs:a', (e) => heard.push(`exact ${e.data}`)),
      client.subscribe('logs:a:*', (e) => heard.push(`deep ${e.data}`)),
    ];
    const done = record(client, 'logs:end');
    await done.subscribed;
    await gateway.publish('logs:a', 1);
    await gateway.publish('logs:a:b', 2);
    await gateway.publish('logs:end', 3);
    await done.until((r) => r.events.length === 1);
    expect(heard.sort()).toEqual(['deep 2', 'exact 1', 'pattern 1', 'pattern 2', 'pattern 3'].sort());
    for (const off of offs) off();
  });

  it('a malformed channel fails its own subscription without a request', async () => {
    const { seen, events } = await gatewayWithLog();
    const client = nodeClient(events);
    const bad = record(client, 'logs::x');
    await bad.until((r) => r.errors.length === 1);
    expect(bad.errors[0]).toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL', status: 400 });
    expect(seen).toHaveLength(0);
    expect(client.status).toBe('idle');
  });

  it('an unknown namespace (400 naming it) fails its subscription; the client reconnects with the rest', async () => {
    const { gateway, seen, events } = await gatewayWithLog();
    const client = nodeClient(events);
    const unknown = record(client, 'nope:x');
    const a = record(client, 'logs:a');
    await unknown.until((r) => r.errors.length === 1);
    expect(unknown.errors[0]).toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL', status: 400 });
    await a.subscribed;
    expect(attempts(seen).map((r) => r.query.get('channels'))).toEqual(['nope:x,logs:a', 'logs:a']);
    await gateway.publish('logs:a', 'ok');
    await a.until((r) => r.events.length === 1);
  });

  it('close() ends the stream and drops every subscription', async () => {
    const { gateway, events } = await gatewayWithLog();
    const client = nodeClient(events);
    const a = record(client, 'logs:a');
    await a.subscribed;
    client.close();
    expect(client.status).toBe('closed');
    await eventually(() => gateway.stats().connections === 0, 5000, 'the stream to close');
    const late = record(client, 'logs:a');
    await late.until((r) => r.errors.length === 1);
    expect(late.errors[0]?.code).toBe('ERR_SSE_CLIENT_CLOSED');
  });
});

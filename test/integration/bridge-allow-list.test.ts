import express from 'express';
import { createMemoryBus } from '../../src/bus/memory-bus';
import { sseMiddleware } from '../../src/index';
import type { Bus, Logger, SseEvent } from '../../src/types';
import { bridgeUpstream, type UpstreamBridge } from '../../src/upstream/bridge';
import { startServer } from '../helpers/server';
import { dataEvents, openStream } from '../helpers/sse-client';
import { type FakeUpstream, startUpstream } from '../helpers/upstream';

const lines: string[] = [];
const logger: Logger = {
  warn: (message: string) => lines.push(message),
  error: (message: string) => lines.push(message),
};

let upstream: FakeUpstream;
let bridge: UpstreamBridge | undefined;
let bus: Bus;

beforeEach(async () => {
  upstream = await startUpstream();
  bus = createMemoryBus();
  lines.length = 0;
});

afterEach(async () => {
  await bridge?.stop();
  bridge = undefined;
  await upstream.stop();
  await bus.close();
});

/** Resolves with everything `bus` delivered once an event on `channel` arrives (publishes run in order). */
function until(channel: string): Promise<SseEvent[]> {
  const seen: SseEvent[] = [];
  return new Promise((resolve) => {
    bus.listen((event) => {
      seen.push(event);
      // The bridge books a publish after publish() resolves; setImmediate sees that too.
      if (event.channel === channel) setImmediate(() => resolve(seen));
    });
  });
}

const send = (id: string, channel: string) => upstream.send({ id, data: JSON.stringify({ channel, line: id }) });
const channelOf = (event: { data: string }) => (JSON.parse(event.data) as { channel: string }).channel;

describe('bridgeUpstream: `channels` is an allow-list', () => {
  it('an upstream event naming a channel outside `channels` is dropped, logged once per channel and counted', async () => {
    bridge = bridgeUpstream({ target: upstream.url, bus, channel: channelOf, channels: ['logs:etl:*'], logger });
    const delivered = until('logs:etl:ws1:end');
    bridge.start();
    await upstream.waitFor((u) => u.open === 1);
    send('1', 'logs:etl:ws1:wf1');
    send('2', 'alerts:u1');
    send('3', 'alerts:u1');
    send('4', 'logs:other:x');
    send('5', 'logs:etl');
    send('6', 'logs:etl:ws1:end');
    expect((await delivered).map((e) => e.channel)).toEqual(['logs:etl:ws1:wf1', 'logs:etl:ws1:end']);
    expect(bridge.status()).toMatchObject({ events: 6, published: 2, refused: 4, lastEventId: '6' });
    const refusals = lines.filter((l) => l.includes('outside'));
    expect(refusals).toHaveLength(3);
    expect(refusals.filter((l) => l.includes('"alerts:u1"'))).toHaveLength(1);
  });

  it('a fixed channel outside `channels` is refused at creation', () => {
    expect(() => bridgeUpstream({ target: upstream.url, bus, channel: 'alerts:u1', channels: ['logs:*'] })).toThrow(
      /`channel` "alerts:u1" is not among `channels`/,
    );
    bridge = bridgeUpstream({ target: upstream.url, bus, channel: 'logs:a', channels: ['logs:*'], logger });
  });

  it('a channel function without `channels` warns at creation that upstream picks any channel', () => {
    bridge = bridgeUpstream({ target: upstream.url, bus, channel: channelOf, logger });
    expect(lines.some((l) => l.includes('declare `channels`'))).toBe(true);
  });

  it('through a gateway: a user-scoped stream never sees an upstream event aimed at it', async () => {
    const gateway = sseMiddleware({
      channels: { logs: {}, alerts: { userScoped: true } },
      authentication: (req) => ({ id: String(req.headers['x-user']) }),
      bus,
      heartbeatMs: 60_000,
      logger,
    });
    const app = express();
    app.use(gateway);
    const bff = await startServer(app);
    try {
      bridge = bridgeUpstream({ target: upstream.url, bus, channel: channelOf, channels: ['logs:etl:*'], logger });
      bridge.start();
      const victim = await openStream(`${bff.url}/events?channels=alerts:u1,logs:etl:ws1`, {
        headers: { 'x-user': 'u1' },
      });
      await upstream.waitFor((u) => u.open === 1);
      send('1', 'alerts:u1');
      send('2', 'logs:etl:ws1');
      await victim.until((s) => dataEvents(s.events).length >= 1);
      expect(dataEvents(victim.events).map((e) => e.channel)).toEqual(['logs:etl:ws1']);
      victim.close();
    } finally {
      await bff.close();
      await gateway.close();
    }
  });
});

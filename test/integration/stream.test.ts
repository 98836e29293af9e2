import { Agent, request } from 'node:http';
import compression from 'compression';
import { EventSource } from 'eventsource';
import express from 'express';
import supertest from 'supertest';
import { createMemoryBus, publishEvent, sseMiddleware } from '../../src';
import { closeAll, eventually, onCleanup, recordingLogger, startGateway } from '../helpers/gateway';
import { startServer } from '../helpers/server';
import { dataEvents, openStream, parseAll } from '../helpers/sse-client';

afterEach(closeAll);

describe('stream route', () => {
  it('answers 200 with the SSE headers flushed before any event, then retry and sse:ready', async () => {
    const { open } = await startGateway({ channels: ['logs'], retryMs: 1234 });
    const stream = await open('channels=logs:ws1,logs:ws2');
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers['cache-control']).toBe('no-cache, no-transform');
    expect(stream.headers['x-accel-buffering']).toBe('no');
    expect(stream.retry).toBe(1234);
    expect(stream.raw.startsWith('retry: 1234\n')).toBe(true);
    const ready = stream.events[0];
    expect(ready?.event).toBe('sse:ready');
    expect(ready?.id).toBeUndefined();
    const data = JSON.parse(ready?.data ?? '{}');
    expect(typeof data.connectionId).toBe('string');
    expect(data.channels).toEqual(['logs:ws1', 'logs:ws2']);
  });

  it('flushes the headers before the first byte of body exists', async () => {
    const { url } = await startGateway({ channels: ['logs'], retryMs: 1000 });
    // Headers alone must arrive: 'response' fires as soon as they are flushed.
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request(`${url}/events?channels=logs:a`, (res) => {
        resolve(res.headers);
        req.destroy();
      });
      req.on('error', reject);
      req.end();
    });
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
  });

  it('answers HEAD with the stream headers and no stream', async () => {
    const { url, gateway } = await startGateway({ channels: ['logs'] });
    const res = await supertest(url).head('/events?channels=logs:a').expect(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(gateway.stats().connections).toBe(0);
  });

  it('writes a published event with id, the namespace as event name and {channel,data} as data', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'] });
    const stream = await open('channels=logs:ws123:wf456');
    const event = await gateway.publish('logs:ws123:wf456', { line: 'hello', n: 1 });
    await stream.take(1);
    expect(
      stream.raw.endsWith(
        `id: ${event.id}\nevent: logs\ndata: {"channel":"logs:ws123:wf456","data":{"line":"hello","n":1}}\n\n`,
      ),
    ).toBe(true);
  });

  it('multiplexes several channels of several namespaces on one connection, in publish order', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs', 'metrics', 'alerts'] });
    const stream = await open('channels=logs:ws1:wf1,metrics:ws1&channel=alerts:u1');
    await gateway.publish('metrics:ws1', { cpu: 1 });
    await gateway.publish('logs:ws1:wf2', 'not subscribed');
    await gateway.publish('logs:ws1:wf1', 'line');
    await gateway.publish('alerts:u1', { level: 'high' });
    const events = dataEvents(await stream.take(3));
    expect(events.map((e) => [e.event, e.channel, e.data])).toEqual([
      ['metrics', 'metrics:ws1', { cpu: 1 }],
      ['logs', 'logs:ws1:wf1', 'line'],
      ['alerts', 'alerts:u1', { level: 'high' }],
    ]);
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(3);
  });

  it('matches wildcards on one or more further segments, not the prefix itself, and delivers an event once', async () => {
    const { open, gateway } = await startGateway({ channels: ['dashboards', 'logs'] });
    const stream = await open('channels=dashboards:*,dashboards:d1,logs:ws1:*');
    await gateway.publish('dashboards', 'bare namespace');
    await gateway.publish('dashboards:d1', 'd1');
    await gateway.publish('dashboards:d2:panel', 'deep');
    await gateway.publish('logs:ws1', 'prefix itself');
    await gateway.publish('logs:ws1:wf9', 'under prefix');
    await gateway.publish('logs:ws10:wf9', 'sibling prefix');
    await gateway.publish('dashboards:d3', 'last');
    const events = dataEvents(await stream.take(4));
    expect(events.map((e) => e.data)).toEqual(['d1', 'deep', 'under prefix', 'last']);
    await gateway.publish('logs:ws1:end', 'sentinel');
    expect(dataEvents(await stream.take(1))[0]?.data).toBe('sentinel');
  });

  it('sends heartbeat comments on idle streams', async () => {
    const { open } = await startGateway({ channels: ['logs'], heartbeatMs: 30, logger: recordingLogger() });
    const stream = await open('channels=logs:a');
    await stream.until((s) => s.comments.length >= 2);
    expect(stream.raw).toMatch(/\n: heartbeat\n\n/);
  });

  it('survives a global compression() middleware and delivers each event at once', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'] }, { before: (app) => app.use(compression()) });
    const stream = await open('channels=logs:a', { headers: { 'accept-encoding': 'gzip' } });
    expect(stream.headers['content-encoding']).toBeUndefined();
    await gateway.publish('logs:a', 1);
    await gateway.publish('logs:a', 2);
    expect(dataEvents(await stream.take(2)).map((e) => e.data)).toEqual([1, 2]);
  });

  it("survives the server's socket timeout and keeps streaming", async () => {
    const harness = await startGateway({ channels: ['logs'], heartbeatMs: 60_000, logger: recordingLogger() });
    harness.server.server.setTimeout(100);
    const stream = await harness.open('channels=logs:a');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(stream.isEnded).toBe(false);
    await harness.gateway.publish('logs:a', 'still here');
    expect(dataEvents(await stream.take(1))[0]?.data).toBe('still here');
  });

  it('close() ends every stream, sends later EventSources away with 200 + retry: (others 503) and leaves a passed-in bus open', async () => {
    const bus = createMemoryBus();
    const { open, gateway, url } = await startGateway({ channels: ['logs'], bus });
    const stream = await open('channels=logs:a');
    await gateway.close();
    await stream.ended;
    expect(gateway.stats().connections).toBe(0);
    // Not an event stream: 503. An EventSource's request: 200, a retry: and the end (issue 12, item 13).
    const after = await openStream(`${url}/events?channels=logs:a`, { headers: { accept: 'application/json' } });
    expect(after.status).toBe(503);
    expect((after.body as { error: { code: string } }).error.code).toBe('ERR_SSE_CLOSING');
    const source = await openStream(`${url}/events?channels=logs:a`, { ready: false });
    await source.ended;
    expect(source.status).toBe(200);
    expect(source.retry).toBeGreaterThan(0);
    expect(source.events).toEqual([]);
    await expect(bus.publish('logs:a', 'bus still works')).resolves.toMatchObject({ channel: 'logs:a' });
  });

  it('ends the chunked body cleanly, so a keep-alive socket carries the next request', async () => {
    const { url, gateway } = await startGateway({ channels: ['logs'] });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    onCleanup(() => agent.destroy());
    const get = () =>
      new Promise<{ status: number; body: string; socket: unknown }>((resolve, reject) => {
        const req = request(`${url}/events?channels=logs:a`, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
            if (body.includes('"data":"last"')) void gateway.close();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket: req.socket }));
          if (res.statusCode === 200) {
            const publishAll = async () => {
              await new Promise((r) => setTimeout(r, 20));
              for (const data of ['a\nb', 'x'.repeat(70_000), 'last']) await gateway.publish('logs:a', data);
            };
            void publishAll();
          }
        });
        req.on('error', reject);
        req.end();
      });
    const first = await get();
    expect(first.status).toBe(200);
    expect(dataEvents(parseAll(first.body)).map((e) => String(e.data).length)).toEqual([3, 70_000, 4]);
    const second = await get();
    expect(second.status).toBe(503);
    expect(second.socket).toBe(first.socket);
  });

  it('publishEvent() publishes on the bus of the most recently created open gateway', async () => {
    const first = await startGateway({ channels: ['logs'] });
    const second = await startGateway({ channels: ['logs'] });
    const s1 = await first.open('channels=logs:a');
    const s2 = await second.open('channels=logs:a');
    await publishEvent('logs:a', 'to second');
    expect(dataEvents(await s2.take(1))[0]?.data).toBe('to second');
    await second.gateway.close();
    await publishEvent('logs:a', 'to first');
    expect(dataEvents(await s1.take(1))[0]?.data).toBe('to first');
    expect(dataEvents(s1.events)).toHaveLength(1);
    await publishEvent('logs:a', 'explicit', { bus: second.gateway.bus });
  });

  it('uses the process-wide memory bus when no bus is given', async () => {
    const app = express();
    const gateway = sseMiddleware({ channels: ['logs'] });
    app.use(gateway);
    const server = await startServer(app);
    onCleanup(async () => {
      await gateway.close();
      await server.close();
    });
    const stream = await openStream(`${server.url}/events?channels=logs:a`);
    onCleanup(() => stream.close());
    const event = await publishEvent('logs:a', { via: 'publishEvent' });
    expect(dataEvents(await stream.take(1))[0]).toMatchObject({ id: event.id, data: { via: 'publishEvent' } });
    expect(gateway.stats().bus.kind).toBe('memory');
  });

  it('gateway.publish rejects namespaces outside `channels` and malformed channels', async () => {
    const { gateway } = await startGateway({ channels: ['logs'] });
    await expect(gateway.publish('other:a', 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL' });
    await expect(gateway.publish('logs:a\nid: 1', 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL' });
    await expect(gateway.publish('logs:*', 1)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_CHANNEL' });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(gateway.publish('logs:a', circular)).rejects.toMatchObject({ code: 'ERR_SSE_INVALID_DATA' });
  });

  it('newlines and framing characters in payloads arrive intact and cannot inject fields', async () => {
    const { open, gateway } = await startGateway({ channels: ['logs'] });
    const stream = await open('channels=logs:a');
    const nasty = 'line1\nid: forged\r\nevent: sse:ready\rdata: x\n\n\u0000\u2028end';
    const event = await gateway.publish('logs:a', { nasty });
    const [received] = dataEvents(await stream.take(1));
    expect(received).toEqual({ id: event.id, event: 'logs', channel: 'logs:a', data: { nasty } });
    expect(stream.events.filter((e) => e.event === 'sse:ready')).toHaveLength(1);
  });

  it('works with the `eventsource` client, which resumes with Last-Event-ID after a drop', async () => {
    const harness = await startGateway({ channels: ['logs'], retryMs: 50 });
    const source = new EventSource(`${harness.url}/events?channels=logs:a`);
    onCleanup(() => source.close());
    const received: { id: string; data: unknown }[] = [];
    let readyCount = 0;
    source.addEventListener('sse:ready', () => {
      readyCount++;
    });
    source.addEventListener('logs', (e) => {
      received.push({ id: e.lastEventId, data: JSON.parse(e.data).data });
    });
    await eventually(() => readyCount === 1, 5000, 'first sse:ready');
    await harness.gateway.publish('logs:a', 1);
    await eventually(() => received.length === 1, 5000, 'first event');
    // Drop every connection from the server side; events published meanwhile must be replayed once.
    await harness.server.close();
    await new Promise<void>((resolve) => harness.server.server.listen(harness.server.port, '127.0.0.1', resolve));
    await harness.gateway.publish('logs:a', 2);
    await harness.gateway.publish('logs:a', 3);
    await eventually(() => readyCount === 2, 5000, 'reconnection');
    await harness.gateway.publish('logs:a', 4);
    await eventually(() => received.length >= 4, 5000, 'replayed and live events');
    expect(received.map((r) => r.data)).toEqual([1, 2, 3, 4]);
  });
});

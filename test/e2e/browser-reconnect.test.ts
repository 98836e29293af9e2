/// <reference lib="dom" />
import type { SseEvent } from '../../src';
import { chromiumForSuite } from '../helpers/browser';
import { closeAll, eventually, startGateway } from '../helpers/gateway';

// The promise a tab relies on, checked with Chromium's own EventSource: when its stream drops, the browser
// reconnects by itself with the Last-Event-ID it last saw, and the page ends up with every event once, in
// order, including those published while it was away.
const browser = chromiumForSuite();
afterEach(closeAll);

const PAGE = `<!doctype html><meta charset="utf-8"><title>reconnect</title><script>
  window.received = [];
  window.readies = 0;
  const source = new EventSource('/events?channels=logs:ws1:*');
  source.addEventListener('sse:ready', () => window.readies++);
  source.addEventListener('sse:reset', () => window.received.push('reset'));
  source.addEventListener('logs', (e) => window.received.push(JSON.parse(e.data).data));
</script>`;

it('a dropped stream resumes with Last-Event-ID: every event once, in order, none lost while away', async () => {
  const lastEventIds: (string | undefined)[] = [];
  const { gateway, url } = await startGateway(
    { channels: ['logs'], authentication: () => ({ id: 'tab-user' }), retryMs: 300 },
    {
      before: (app) => {
        app.get('/', (_req, res) => {
          res.type('html').send(PAGE);
        });
        app.use('/events', (req, _res, next) => {
          lastEventIds.push(req.get('last-event-id'));
          next();
        });
      },
    },
  );
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { readies: number }).readies === 1);
    const received = () => page.evaluate(() => (window as unknown as { received: unknown[] }).received);

    const published: SseEvent[] = [];
    for (let i = 1; i <= 5; i++) published.push(await gateway.publish(`logs:ws1:wf${i % 2}`, i));
    await page.waitForFunction(() => (window as unknown as { received: unknown[] }).received.length === 5);

    // The stream drops (here: the server ends it); events keep coming while the tab is away.
    expect(gateway.disconnect('tab-user')).toBe(1);
    for (let i = 6; i <= 10; i++) published.push(await gateway.publish(`logs:ws1:wf${i % 2}`, i));
    await gateway.publish('logs:ws2:wf1', 'another workspace');

    await page.waitForFunction(() => (window as unknown as { readies: number }).readies === 2, undefined, {
      timeout: 10_000,
    });
    await eventually(() => gateway.stats().connections === 1, 5000, 'the browser to reconnect');
    for (let i = 11; i <= 15; i++) published.push(await gateway.publish(`logs:ws1:wf${i % 2}`, i));
    // A last event as a barrier: anything duplicated or out of order shows up before it.
    published.push(await gateway.publish('logs:ws1:wf0', 'end'));
    await page.waitForFunction(() => (window as unknown as { received: unknown[] }).received.at(-1) === 'end');

    expect(await received()).toEqual(published.map((e) => e.data));
    // The browser itself sent the id of the 5th event on its reconnect.
    expect(lastEventIds).toEqual([undefined, published[4]?.id]);
  } finally {
    await context.close();
  }
}, 30_000);

it('away longer than the replay window: the browser gets sse:reset, then live events only', async () => {
  const { gateway, url } = await startGateway(
    {
      channels: ['logs'],
      authentication: () => ({ id: 'tab-user' }),
      retryMs: 300,
      replay: { size: 3, ttlMs: 60_000 },
    },
    {
      before: (app) => {
        app.get('/', (_req, res) => {
          res.type('html').send(PAGE);
        });
      },
    },
  );
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { readies: number }).readies === 1);
    await gateway.publish('logs:ws1:a', 1);
    await page.waitForFunction(() => (window as unknown as { received: unknown[] }).received.length === 1);
    gateway.disconnect('tab-user');
    for (let i = 2; i <= 8; i++) await gateway.publish('logs:ws1:a', i);
    await page.waitForFunction(() => (window as unknown as { readies: number }).readies === 2, undefined, {
      timeout: 10_000,
    });
    await gateway.publish('logs:ws1:a', 'live');
    await page.waitForFunction(() => (window as unknown as { received: unknown[] }).received.at(-1) === 'live');
    expect(await page.evaluate(() => (window as unknown as { received: unknown[] }).received)).toEqual([
      1,
      'reset',
      'live',
    ]);
  } finally {
    await context.close();
  }
}, 30_000);

/// <reference lib="dom" />
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { chromiumForSuite } from '../helpers/browser';
import { closeAll, startGateway } from '../helpers/gateway';

// The client in Chromium, with Chromium's own EventSource (which exposes no status: the client learns
// why a stream failed by asking again with fetch) and sessionStorage (a page that comes back resumes).
const browser = chromiumForSuite();
let bundle: string;

beforeAll(async () => {
  const built = await build({
    entryPoints: [join(__dirname, '../../src/client/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    write: false,
  });
  bundle = built.outputFiles[0]?.text ?? '';
}, 60_000);
afterEach(closeAll);

const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title><script type="module">
  import { createSseClient } from '/client.mjs';
  const client = createSseClient({ url: '/events', persistLastEventId: true });
  window.received = [];
  window.errors = [];
  window.statuses = [];
  window.subscribed = 0;
  client.onStatus((status, error) => window.statuses.push(error ? status + ':' + error.code : status));
  const handlers = (name) => ({
    onSubscribed: () => window.subscribed++,
    onError: (error) => window.errors.push(name + ':' + error.code + ':' + error.status),
  });
  client.subscribe('logs:a', (e) => window.received.push(e.data), handlers('logs:a'));
  client.subscribe('logs:secret', (e) => window.received.push('leak'), handlers('logs:secret'));
  window.client = client;
</script>`;

type PageState = { received: unknown[]; errors: string[]; statuses: string[]; subscribed: number };
const state = (page: Page) =>
  page.evaluate(() => {
    const w = window as unknown as PageState;
    return { received: w.received, errors: w.errors, statuses: w.statuses, subscribed: w.subscribed };
  });

it('in Chromium: a refusal read through fetch, events, and a page that comes back resumes from sessionStorage', async () => {
  const streamRequests: URLSearchParams[] = [];
  const { gateway, url } = await startGateway(
    { channels: ['logs'], authorize: (_principal, channel) => channel !== 'logs:secret' },
    {
      before: (app) => {
        app.get('/', (_req, res) => {
          res.type('html').send(PAGE);
        });
        app.get('/client.mjs', (_req, res) => {
          res.type('text/javascript').send(bundle);
        });
        app.get('/events', (req, _res, next) => {
          streamRequests.push(new URL(req.originalUrl, 'http://x').searchParams);
          next();
        });
      },
    },
  );
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as PageState).subscribed === 1);
    expect((await state(page)).errors).toEqual(['logs:secret:ERR_SSE_FORBIDDEN_CHANNEL:403']);
    for (let i = 1; i <= 3; i++) await gateway.publish('logs:a', i);
    await page.waitForFunction(() => (window as unknown as PageState).received.length === 3);
    const lastId = await page.evaluate(
      () => (window as unknown as { client: { lastEventId: string } }).client.lastEventId,
    );

    // Away from the page while events are published; back in the same tab, the client resumes.
    await page.goto('about:blank');
    for (let i = 4; i <= 5; i++) await gateway.publish('logs:a', i);
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as PageState).received.length === 2);
    expect((await state(page)).received).toEqual([4, 5]);
    expect(streamRequests.at(-1)?.get('lastEventId')).toBe(lastId);
    expect(gateway.stats().connections).toBe(1);
  } finally {
    await context.close();
  }
});

it('in Chromium: 401 closes the client (read through fetch) and nothing retries', async () => {
  let streamRequests = 0;
  const { url } = await startGateway(
    { channels: ['logs'], authentication: true },
    {
      before: (app) => {
        app.get('/', (_req, res) => {
          res.type('html').send(PAGE);
        });
        app.get('/client.mjs', (_req, res) => {
          res.type('text/javascript').send(bundle);
        });
        app.get('/events', (_req, _res, next) => {
          streamRequests++;
          next();
        });
      },
    },
  );
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() =>
      (window as unknown as PageState).statuses.includes('closed:ERR_SSE_UNAUTHENTICATED'),
    );
    // The EventSource attempt and the one request that read its answer; a second later, still those two.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(streamRequests).toBe(2);
    expect((await state(page)).statuses).toEqual(['connecting', 'closed:ERR_SSE_UNAUTHENTICATED']);
  } finally {
    await context.close();
  }
});

// Backoff delays at the top of their range (a minute), so only a wake-up can bring the client back soon.
const page60s = () =>
  PAGE.replace('persistLastEventId: true', 'reconnect: { initialDelayMs: 60000, maxDelayMs: 60000 }').replace(
    '<script type="module">',
    '<script>Math.random = () => 0.999;</script><script type="module">',
  );

it('in Chromium: while the client waits out a long backoff, the browser coming online reconnects at once', async () => {
  const { gateway, url } = await startGateway(
    { channels: ['logs'], authentication: () => ({ id: 'u1' }) },
    {
      before: (app) => {
        app.get('/', (_req, res) => {
          res.type('html').send(page60s());
        });
        app.get('/client.mjs', (_req, res) => {
          res.type('text/javascript').send(bundle);
        });
      },
    },
  );
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as PageState).statuses.includes('open'));
    await gateway.publish('logs:a', 1);
    await page.waitForFunction(() => (window as unknown as PageState).received.length === 1);
    // Offline, the stream drops: the client waits a minute before its next attempt.
    await context.setOffline(true);
    gateway.disconnect('u1');
    await page.waitForFunction(() => (window as unknown as PageState).statuses.includes('reconnecting'));
    await gateway.publish('logs:a', 2);
    const started = Date.now();
    await context.setOffline(false);
    await page.waitForFunction(() => (window as unknown as PageState).received.length === 2);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await state(page)).received).toEqual([1, 2]);
    expect((await state(page)).statuses).toEqual(['connecting', 'open', 'reconnecting', 'open']);
  } finally {
    await context.close();
  }
});

it('in Chromium: a hidden tab that becomes visible reconnects at once instead of waiting out its backoff', async () => {
  const { gateway, url } = await startGateway(
    { channels: ['logs'], authentication: () => ({ id: 'u1' }) },
    {
      before: (app) => {
        app.get('/', (_req, res) => {
          res.type('html').send(page60s());
        });
        app.get('/client.mjs', (_req, res) => {
          res.type('text/javascript').send(bundle);
        });
      },
    },
  );
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as PageState).statuses.includes('open'));
    await gateway.publish('logs:a', 'before');
    await page.waitForFunction(() => (window as unknown as PageState).received.length === 1);
    gateway.disconnect('u1');
    await page.waitForFunction(() => (window as unknown as PageState).statuses.includes('reconnecting'));
    await gateway.publish('logs:a', 'while away');
    const started = Date.now();
    // What the browser does when the user comes back to the tab (headless pages are always visible).
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await page.waitForFunction(() => (window as unknown as PageState).received.length === 2);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await state(page)).statuses).toEqual(['connecting', 'open', 'reconnecting', 'open']);
  } finally {
    await context.close();
  }
});

/// <reference lib="dom" />
import type { Browser, Page } from 'playwright-core';
import type { SseEvent } from '../../src';
import { launchChromium } from '../helpers/browser';
import { closeAll, eventually, type GatewayHarness, startGateway } from '../helpers/gateway';
import { bundlePage, servePage } from '../helpers/react-page';
import type { Harness, PageSetup } from './fixtures/react-app';

// The React bindings in Debian's Chromium against a real gateway: a page bundled from
// test/e2e/fixtures/react-app.tsx mounts probes (components using the hooks) that record what they render.
let browser: Browser;
let script: string;

beforeAll(async () => {
  [browser, script] = await Promise.all([launchChromium(), bundlePage('test/e2e/fixtures/react-app.tsx')]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
});
afterEach(closeAll);

interface Opened {
  readonly harness: GatewayHarness;
  readonly page: Page;
  /** Requests the page made below /events: `GET` streams and `POST` subscription changes. */
  readonly requests: string[];
}

async function openPage(setup: PageSetup): Promise<Opened> {
  const requests: string[] = [];
  const harness = await startGateway(
    { channels: ['logs', 'metrics', 'alerts'], authentication: () => ({ id: 'u1' }), retryMs: 300 },
    {
      before: (app) => {
        app.use('/events', (req, _res, next) => {
          requests.push(`${req.method} ${req.path}`);
          next();
        });
        servePage(app, script);
      },
    },
  );
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(harness.url);
  await page.evaluate((s) => window.harness.mount(s), setup);
  return { harness, page, requests };
}

/** A harness value, read in the page. */
function read<K extends keyof Harness>(page: Page, key: K): Promise<Harness[K]> {
  return page.evaluate((k) => window.harness[k], key) as Promise<Harness[K]>;
}

/** Wait until probe `id` shows `value` as its newest item. */
async function waitForLast(page: Page, id: string, value: unknown): Promise<void> {
  await page.waitForFunction(
    ([probe, expected]) => JSON.stringify(window.harness.data[probe as string]?.at(-1)) === JSON.stringify(expected),
    [id, value] as const,
    { timeout: 10_000 },
  );
}

async function publishAll(harness: GatewayHarness, channel: string, values: unknown[]): Promise<SseEvent[]> {
  return Promise.all(values.map((value) => harness.gateway.publish(channel, value)));
}

it('StrictMode, five components on three channels: one stream, one subscription each, every event once', async () => {
  const { harness, page, requests } = await openPage({
    strict: true,
    probes: [
      { id: 'a', channels: 'logs:ws1:*' },
      { id: 'b', channels: 'logs:ws1:*' },
      { id: 'c', channels: ['metrics:ws1', 'logs:ws1:*'] },
      { id: 'd', channels: 'metrics:ws1' },
      { id: 'e', channels: 'alerts:u1' },
    ],
  });
  await page.waitForSelector('#status:text("open")');
  expect(harness.gateway.stats().connections).toBe(1);
  expect(harness.gateway.activeTopics().sort()).toEqual(['alerts:u1', 'logs:ws1:*', 'metrics:ws1']);
  const logs = await publishAll(harness, 'logs:ws1:wf1', [1, 2, 3]);
  const metrics = await publishAll(harness, 'metrics:ws1', [10, 20]);
  await harness.gateway.publish('alerts:u1', 'end');
  await waitForLast(page, 'e', 'end');
  await waitForLast(page, 'c', 20);
  const data = await read(page, 'data');
  expect(data.a).toEqual(logs.map((event) => event.data));
  expect(data.b).toEqual([1, 2, 3]);
  expect(data.c).toEqual([1, 2, 3, 10, 20]);
  expect(data.d).toEqual(metrics.map((event) => event.data));
  expect(data.e).toEqual(['end']);
  // StrictMode's second effect run reused the first subscription: no change request, no second stream.
  expect(requests).toEqual(['GET /']);
  expect(harness.gateway.stats().connections).toBe(1);
}, 30_000);

it('a burst of events: one render per component per frame, transform once per event, maxItems, accumulate: false', async () => {
  const { harness, page } = await openPage({
    probes: [
      { id: 'capped', channels: 'logs:ws1:*', options: { maxItems: 5 } },
      { id: 'latest', channels: 'logs:ws1:*', options: { accumulate: false } },
      { id: 'mapped', channels: 'logs:ws1:*', options: { countTransform: true } },
      { id: 'other', channels: 'metrics:ws1' },
    ],
  });
  await page.waitForSelector('#status:text("open")');
  const before = await read(page, 'renders');
  // Published in one synchronous loop: the gateway writes them in one go; the browser may still dispatch them
  // over several tasks, and the bindings render once per animation frame whatever the number of tasks.
  const values = Array.from({ length: 40 }, (_, i) => i + 1);
  await publishAll(harness, 'logs:ws1:wf1', values);
  await waitForLast(page, 'mapped', 40);
  const renders = await read(page, 'renders');
  const data = await read(page, 'data');
  expect(data.capped).toEqual([36, 37, 38, 39, 40]);
  expect(data.latest).toEqual([40]);
  expect(data.mapped).toEqual(values);
  expect(await read(page, 'transforms')).toBe(40);
  // The frames in which the 40 events arrived (the counted transform runs on arrival, once per event).
  const frames = new Set(await read(page, 'arrivals')).size;
  expect(frames).toBeLessThanOrEqual(3);
  for (const id of ['capped', 'latest', 'mapped']) expect((renders[id] ?? 0) - (before[id] ?? 0)).toBe(frames);
  expect(renders.other).toBe(before.other);
}, 30_000);

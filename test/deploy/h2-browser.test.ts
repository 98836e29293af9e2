/// <reference lib="dom" />
import type { Page } from 'playwright-core';
import { chromiumForSuite } from '../helpers/browser';
import { closeAll, eventually, onCleanup, startGateway } from '../helpers/gateway';
import { startNginx } from '../helpers/nginx';

// Why the deploy guide says HTTP/2: Chromium allows six HTTP/1.1 connections per host, and an open stream
// holds one for good; through the shipped nginx.conf's HTTP/2 server, one page holds ten streams at once.
const browser = chromiumForSuite();
afterEach(closeAll);

const PAGE = `<!doctype html><meta charset="utf-8"><script>
  window.sources = [];
  window.ready = 0;
  window.got = 0;
  window.openStreams = (n) => {
    for (let i = 0; i < n; i++) {
      const source = new EventSource('/events?channels=logs:a');
      source.addEventListener('sse:ready', () => window.ready++);
      source.addEventListener('logs', () => window.got++);
      window.sources.push(source);
    }
  };
</script>`;

type PageState = { ready: number; got: number; openStreams(n: number): void; sources: EventSource[] };
const count = (page: Page, key: 'ready' | 'got') => page.evaluate((k) => (window as unknown as PageState)[k], key);

async function setup() {
  const harness = await startGateway(
    { channels: ['logs'] },
    {
      before: (app) => {
        app.get('/', (_req, res) => {
          res.type('html').send(PAGE);
        });
      },
    },
  );
  const nginx = await startNginx({ upstreams: [Number(new URL(harness.url).port)] });
  onCleanup(() => nginx.stop());
  const context = await browser().newContext({ ignoreHTTPSErrors: true }); // the test's self-signed certificate
  onCleanup(() => context.close());
  return { ...harness, nginx, page: await context.newPage() };
}

it('over HTTP/2 through nginx one page holds ten streams', async () => {
  const { gateway, nginx, page } = await setup();
  await page.goto(`${nginx.h2Url}/`);
  await page.evaluate(() => (window as unknown as PageState).openStreams(10));
  await page.waitForFunction(() => (window as unknown as PageState).ready === 10);
  const protocols = await page.evaluate(() =>
    performance.getEntriesByType('navigation').map((e) => (e as PerformanceNavigationTiming).nextHopProtocol),
  );
  expect(protocols).toEqual(['h2']);
  await gateway.publish('logs:a', 'to all ten');
  await page.waitForFunction(() => (window as unknown as PageState).got === 10);
  expect(gateway.stats().connections).toBe(10);
});

it('negative control: over HTTP/1.1 the seventh stream waits until one of the six ends', async () => {
  const { gateway, nginx, page } = await setup();
  await page.goto(`${nginx.url}/`);
  await page.evaluate(() => (window as unknown as PageState).openStreams(6));
  await page.waitForFunction(() => (window as unknown as PageState).ready === 6);
  await page.evaluate(() => (window as unknown as PageState).openStreams(1));
  // A full round trip on the six open streams: the seventh had that long and more to open, and did not.
  await eventually(() => gateway.stats().connections >= 6, 2_000, 'six streams');
  await gateway.publish('logs:a', 'round trip');
  await page.waitForFunction(() => (window as unknown as PageState).got === 6);
  expect(await count(page, 'ready')).toBe(6);
  expect(gateway.stats().connections).toBe(6);
  // Ending one frees its connection, and the queued seventh opens.
  await page.evaluate(() => (window as unknown as PageState).sources[0]?.close());
  await page.waitForFunction(() => (window as unknown as PageState).ready === 7);
});

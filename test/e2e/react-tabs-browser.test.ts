/// <reference lib="dom" />
import type { Page } from 'playwright-core';
import { chromiumForSuite, contextForEachTest } from '../helpers/browser';
import { closeAll, eventually, type GatewayHarness, startGateway } from '../helpers/gateway';
import { bundlePage, mountReactPage, servePage } from '../helpers/react-page';
import type { PageSetup } from './fixtures/react-app';

// The React bindings with a stream shared by two pages of one browser context: a follower page whose
// `persistence` keeps its data (and the id it is complete up to) reloads while the other page leads.
const browser = chromiumForSuite();
const context = contextForEachTest(browser);
let script: string;

beforeAll(async () => {
  script = await bundlePage('test/e2e/fixtures/react-app.tsx');
}, 60_000);
afterEach(closeAll);

async function mount(harness: GatewayHarness, setup: PageSetup): Promise<Page> {
  const page = await mountReactPage(context(), harness.url, setup);
  await page.waitForSelector('#status:text("open")');
  return page;
}

const kept = (page: Page) => page.evaluate(() => window.harness.data.kept ?? []);

it('a follower page with persistence reloads while the leader page streams: its data has no gap, no duplicate', async () => {
  const harness = await startGateway(
    { channels: ['logs'], authentication: () => ({ id: 'u1' }) },
    { before: (app) => servePage(app, script) },
  );
  await mount(harness, { shareAcrossTabs: true, probes: [{ id: 'all', channels: 'logs:ws1:*' }] });
  const follower = await mount(harness, {
    shareAcrossTabs: true,
    probes: [{ id: 'kept', channels: 'logs:ws1:*', options: { persistence: true, persistenceKey: 'logs' } }],
  });
  expect(harness.gateway.stats().connections).toBe(1);
  const published: unknown[] = [];
  let publishing = true;
  const publisher = (async () => {
    for (let i = 1; publishing; i++) {
      published.push((await harness.gateway.publish('logs:ws1:wf1', i)).data);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  try {
    await eventually(() => published.length >= 20, 10_000, '20 events');
    await follower.reload();
    await follower.waitForSelector('#status:text("open")');
    const afterReload = published.length;
    await follower.waitForFunction((n) => (window.harness.data.kept?.length ?? 0) >= n + 10, afterReload, {
      timeout: 10_000,
    });
  } finally {
    publishing = false;
    await publisher;
  }
  await harness.gateway.publish('logs:ws1:wf1', 'end');
  await follower.waitForFunction(() => window.harness.data.kept?.at(-1) === 'end', undefined, { timeout: 10_000 });
  expect(await kept(follower)).toEqual([...published, 'end']);
  expect(harness.gateway.stats().connections).toBe(1);
}, 60_000);

/// <reference lib="dom" />
import type { Page } from 'playwright-core';
import { chromiumForSuite, exampleForSuite } from '../helpers/browser';

// The L5-ETL example in headless Chromium: the page's two same-origin streams (sseProxy, and the gateway fed by
// bridgeUpstream) both show the workflow's upstream log lines live; a workspace Alice may not see gets 403 on
// both routes and shows nothing.
const server = exampleForSuite('upstream-proxy', { UPSTREAM_PORT: '0', TICK_MS: '100' });
const browser = chromiumForSuite();

const lines = (page: Page, id: string) =>
  page.evaluate((el) => (document.getElementById(el)?.textContent ?? '').split('\n').filter(Boolean), id);

it('both streams show the workflow upstream logs live, in order, and only that workflow', async () => {
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${server().baseUrl}/?workspace_id=ws1&workflow_id=wf2`);
    await page.waitForFunction(
      () => ['proxy', 'bridge'].every((id) => (document.getElementById(id)?.textContent ?? '').split('\n').length > 5),
      undefined,
      { timeout: 15_000 },
    );
    const proxied = await lines(page, 'proxy');
    // `<upstream id> wf2: step <n> done`: ids pass through the proxy unchanged and the upstream id is the step.
    for (const line of proxied) expect(line).toMatch(/^(\d+) wf2: step \1 done$/);
    const ids = proxied.map((line) => Number(line.split(' ')[0]));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    const bridged = await lines(page, 'bridge');
    for (const line of bridged) expect(line).toMatch(/^wf2: step \d+ done$/);
    const steps = bridged.map((line) => Number(/step (\d+)/.exec(line)?.[1]));
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
  } finally {
    await context.close();
  }
}, 30_000);

it('a workspace the user may not see: 403 on both routes, nothing shown', async () => {
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    const proxyAnswer = page.waitForResponse((r) => r.url().includes('/api/dapadmin/l5-etl/sse/logs/stream'));
    const bridgeAnswer = page.waitForResponse((r) => r.url().includes('/events?'));
    await page.goto(`${server().baseUrl}/?workspace_id=ws2&workflow_id=wf1`);
    expect((await proxyAnswer).status()).toBe(403);
    expect((await bridgeAnswer).status()).toBe(403);
    expect(await lines(page, 'proxy')).toEqual([]);
    expect(await lines(page, 'bridge')).toEqual([]);
  } finally {
    await context.close();
  }
}, 30_000);

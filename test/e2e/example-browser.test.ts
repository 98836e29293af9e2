/// <reference lib="dom" />
import { join } from 'node:path';
import { chromiumForSuite, exampleForSuite } from '../helpers/browser';

// The README's example BFF, driven in headless Chromium (Debian's package; never a downloaded browser):
// two users in two browser contexts each see their own workspace's logs, live, and nothing else.
const server = exampleForSuite('etl-logs', { TICK_MS: '100' });
const browser = chromiumForSuite();

it.each([
  ['alice', 'ws1', 'ws2'],
  ['bob', 'ws2', 'ws1'],
])(
  '%s sees live logs of %s only',
  async (user, own, other) => {
    const context = await browser().newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${server().baseUrl}/login/${user}`);
      await page.waitForSelector('#status.live', { timeout: 10_000 });
      // Wait for several live lines, then check none belong to the other workspace.
      await page.waitForFunction((ws) => document.querySelectorAll(`[data-workspace="${ws}"] li`).length >= 5, own, {
        timeout: 10_000,
      });
      expect(await page.locator(`[data-workspace="${other}"]`).count()).toBe(0);
      const lines = await page.locator(`[data-workspace="${own}"] li`).allTextContents();
      expect(lines.every((line) => /step \d+ processed/.test(line))).toBe(true);
      if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, `${user}.png`) });
    } finally {
      await context.close();
    }
  },
  30_000,
);

it('signing out in one tab ends the stream of the other tab too: it reconnects, gets 401 and stops', async () => {
  const context = await browser().newContext();
  try {
    const first = await context.newPage();
    await first.goto(`${server().baseUrl}/login/alice`);
    const second = await context.newPage();
    await second.goto(server().baseUrl);
    await Promise.all([first, second].map((page) => page.waitForSelector('#status.live', { timeout: 10_000 })));
    await first.click('#logout');
    await second.waitForSelector('#status.closed', { timeout: 10_000 });
    expect(await second.textContent('#status')).toBe('signed out');
  } finally {
    await context.close();
  }
}, 30_000);

/** The step numbers of a workspace's log lines: one line per tick, so a gap or a duplicate shows. */
async function steps(page: import('playwright-core').Page, workspace: string): Promise<number[]> {
  const lines = await page.locator(`[data-workspace="${workspace}"] li`).allTextContents();
  return lines.map((line) => Number(/step (\d+) processed/.exec(line)?.[1]));
}

function expectContiguous(values: number[]): void {
  expect(values.length).toBeGreaterThan(0);
  expect(values).toEqual(values.map((_, i) => (values[0] ?? 0) + i));
}

it('tabs: metrics show the latest value, alerts are the user’s own, and logs survive tab switches and a reload', async () => {
  const context = await browser().newContext();
  try {
    const page = await context.newPage();
    const eventRequests: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/events')) eventRequests.push(request.method());
    });
    await page.goto(`${server().baseUrl}/login/alice`);
    await page.waitForSelector('#status.live', { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-workspace="ws1"] li').length >= 5);
    const first = (await steps(page, 'ws1'))[0];

    await page.click('[data-tab="metrics"]');
    await page.waitForFunction(() =>
      /^\d+$/.test(document.querySelector('[data-metric="ws1"] .rows')?.textContent ?? ''),
    );
    expect(await page.locator('[data-metric="ws2"]').count()).toBe(0);
    await page.click('[data-tab="alerts"]');
    await page.waitForFunction(
      () => document.querySelector('#alerts')?.textContent?.includes('Hello Alice'),
      undefined,
      {
        timeout: 10_000,
      },
    );
    expect(await page.textContent('#alerts')).not.toContain('Bob');

    // Back on the logs: the lines received while the tab was hidden are there, none twice.
    await page.click('[data-tab="logs"]');
    const afterTabs = await steps(page, 'ws1');
    expect(afterTabs[0]).toBe(first);
    expectContiguous(afterTabs);
    // One stream carried the three tabs' channels, and switching tabs changed no subscription.
    expect(eventRequests).toEqual(['GET']);

    await page.reload();
    await page.waitForSelector('#status.live', { timeout: 10_000 });
    const lastBefore = afterTabs.at(-1) ?? 0;
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-workspace="ws1"] li').length >= n,
      afterTabs.length + 5,
    );
    const afterReload = await steps(page, 'ws1');
    expect(afterReload[0]).toBe(first);
    expect(afterReload.at(-1)).toBeGreaterThan(lastBefore);
    expectContiguous(afterReload);
  } finally {
    await context.close();
  }
}, 30_000);

/// <reference lib="dom" />
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, type RunningExample, startExample } from '../helpers/browser';

// The README's example BFF, driven in headless Chromium (Debian's package; never a downloaded browser):
// two users in two browser contexts each see their own workspace's logs, live, and nothing else.
let server: RunningExample;
let baseUrl: string;
let browser: Browser;

beforeAll(async () => {
  server = await startExample('etl-logs', { TICK_MS: '100' });
  baseUrl = server.baseUrl;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  server?.process.kill('SIGTERM');
});

it.each([
  ['alice', 'ws1', 'ws2'],
  ['bob', 'ws2', 'ws1'],
])(
  '%s sees live logs of %s only',
  async (user, own, other) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${baseUrl}/login/${user}`);
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
  const context = await browser.newContext();
  try {
    const first = await context.newPage();
    await first.goto(`${baseUrl}/login/alice`);
    const second = await context.newPage();
    await second.goto(baseUrl);
    await Promise.all([first, second].map((page) => page.waitForSelector('#status.live', { timeout: 10_000 })));
    await first.click('#logout');
    await second.waitForSelector('#status.closed', { timeout: 10_000 });
    expect(await second.textContent('#status')).toBe('signed out');
  } finally {
    await context.close();
  }
}, 30_000);

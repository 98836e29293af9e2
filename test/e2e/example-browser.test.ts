/// <reference lib="dom" />
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

// The README's example BFF, driven in headless Chromium (Debian's package; never a downloaded browser):
// two users in two browser contexts each see their own workspace's logs, live, and nothing else.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = join(__dirname, '../..');

let server: ChildProcess;
let baseUrl: string;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (npm test does it as root).`);
  server = spawn(process.execPath, [join(root, 'examples/etl-logs/server.js')], {
    cwd: root,
    env: { ...process.env, PORT: '0', TICK_MS: '100' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  baseUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /http:\/\/localhost:(\d+)/.exec(out);
      if (match) resolve(`http://127.0.0.1:${match[1]}`);
    });
    server.on('exit', (code) => reject(new Error(`example exited with ${code}`)));
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
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

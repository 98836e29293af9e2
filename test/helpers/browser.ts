import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import { forSuite } from './suite';

/** Debian's Chromium; a test never downloads a browser of its own. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = join(__dirname, '../..');

/** Headless Chromium with the flags this machine's closed network needs. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (npm test does it as root).`);
  return chromium.launch({
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
}

/**
 * Headless Chromium ({@link launchChromium}) for the enclosing file or `describe`: launched in `beforeAll`,
 * closed in `afterAll`.
 *
 * @returns a getter for the browser, to call inside tests and hooks.
 * @example
 * const browser = chromiumForSuite();
 * it('…', async () => {
 *   const context = await browser().newContext();
 * });
 */
export function chromiumForSuite(): () => Browser {
  return forSuite('Chromium', launchChromium, (browser) => browser.close(), 60_000);
}

/**
 * A new browser context for each test (pages of one context share storage, Web Locks and BroadcastChannel, as
 * the tabs of one profile do): opened in `beforeEach`, closed in `afterEach`, before the `afterEach` hooks
 * declared after this call.
 *
 * @param browser - the getter {@link chromiumForSuite} returned.
 * @returns a getter for the test's context.
 */
export function contextForEachTest(browser: () => Browser): () => BrowserContext {
  let context: BrowserContext | undefined;
  beforeEach(async () => {
    context = await browser().newContext();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
  });
  return () => {
    if (context === undefined) throw new Error('The browser context opens in beforeEach: use it in a test or a hook.');
    return context;
  };
}

/** A running example server and the base URL it printed. */
export interface RunningExample {
  readonly baseUrl: string;
  readonly process: ChildProcess;
}

/**
 * Start `examples/<name>/server.js` as the README says to, on free ports (`env` adds to the environment),
 * and resolve once it printed its `http://localhost:<port>` address.
 */
export function startExample(name: string, env: Record<string, string>): Promise<RunningExample> {
  const child = spawn(process.execPath, [join(root, 'examples', name, 'server.js')], {
    cwd: root,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /http:\/\/localhost:(\d+)/.exec(out);
      if (match) resolve({ baseUrl: `http://127.0.0.1:${match[1]}`, process: child });
    });
    child.on('exit', (code) => reject(new Error(`example ${name} exited with ${code}`)));
  });
}

/**
 * {@link startExample} for the enclosing file or `describe`: started in `beforeAll`, sent SIGTERM in `afterAll`.
 *
 * @returns a getter for the running example, to call inside tests and hooks.
 */
export function exampleForSuite(name: string, env: Record<string, string>): () => RunningExample {
  const stop = async (example: RunningExample) => {
    example.process.kill('SIGTERM');
  };
  return forSuite(`example ${name}`, () => startExample(name, env), stop, 60_000);
}

import { join } from 'node:path';
import { build } from 'esbuild';
import type express from 'express';
import type { BrowserContext, Page } from 'playwright-core';
import type { PageSetup } from '../e2e/fixtures/react-app';

const root = join(__dirname, '../..');

/** Bundle a test page's entry (React in development mode, so StrictMode double-invokes as in dev). */
export async function bundlePage(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [join(root, entry)],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'warning',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return file.text;
}

/** Serve `script` as `/app.js` under a page with a `#root` at `/`. */
export function servePage(app: express.Express, script: string): void {
  app.get('/', (_req, res) => {
    res
      .type('html')
      .send(
        '<!doctype html><meta charset="utf-8"><title>react</title><div id="root"></div><script src="/app.js"></script>',
      );
  });
  app.get('/app.js', (_req, res) => {
    res.type('js').send(script);
  });
}

/**
 * Open a page of `context` at `url` (a gateway app that {@link servePage} set up), with its errors logged, and
 * mount `setup` in it through `window.harness`.
 */
export async function mountReactPage(context: BrowserContext, url: string, setup: PageSetup): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(url);
  await page.evaluate((s) => window.harness.mount(s), setup);
  return page;
}

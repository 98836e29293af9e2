import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

// Loads the built package (npm test builds it first) the way users do: by name, with require and import.
const root = join(__dirname, '../..');
const names = ['sseMiddleware', 'publishEvent', 'createMemoryBus', 'createRedisBus', 'sseProxy', 'bridgeUpstream'];

function run(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();
}

describe('the built package', () => {
  it('loads with require()', () => {
    const out = run([
      '-e',
      `const m = require('@datashop/sse-gateway'); console.log(${JSON.stringify(names)}.map((n) => typeof m[n]).join(','))`,
    ]);
    expect(out).toBe(names.map(() => 'function').join(','));
  });

  it('loads with import, sharing one instance with require()', () => {
    const out = run([
      '--input-type=module',
      '-e',
      `import * as m from '@datashop/sse-gateway'; import { createRequire } from 'node:module';
       const cjs = createRequire(import.meta.url)('@datashop/sse-gateway');
       console.log(${JSON.stringify(names)}.map((n) => typeof m[n]).join(','), m.publishEvent === cjs.publishEvent);`,
    ]);
    expect(out).toBe(`${names.map(() => 'function').join(',')} true`);
  });

  it('has declarations that load without ioredis installed (it is an optional peer)', () => {
    const { existsSync, readFileSync } = require('node:fs') as typeof import('node:fs');
    const { dirname: dir, resolve } = require('node:path') as typeof import('node:path');
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const base = resolve(dir(file), spec as string);
        visit(existsSync(`${base}.d.ts`) ? `${base}.d.ts` : join(base, 'index.d.ts'));
      }
    };
    visit(join(root, 'dist/index.d.ts'));
    expect(seen.size).toBeGreaterThan(5);
    const importers = [...seen].filter((file) => /from 'ioredis'/.test(readFileSync(file, 'utf8')));
    expect(importers).toEqual([]);
  });

  it('loads the metrics entry with require() and import', () => {
    const cjs = run([
      '-e',
      "const m = require('@datashop/sse-gateway/metrics'); console.log(typeof m.registerMetrics, typeof m.registerUpstreamMetrics)",
    ]);
    expect(cjs).toBe('function function');
    const esm = run([
      '--input-type=module',
      '-e',
      "import { registerMetrics, registerUpstreamMetrics } from '@datashop/sse-gateway/metrics'; console.log(typeof registerMetrics, typeof registerUpstreamMetrics)",
    ]);
    expect(esm).toBe('function function');
  });

  it('loads prom-client only from the metrics entry (it is an optional peer)', () => {
    const loaded = "Object.keys(require.cache).some((f) => f.includes('/node_modules/prom-client/'))";
    expect(run(['-e', `require('@datashop/sse-gateway'); console.log(${loaded})`])).toBe('false');
    expect(run(['-e', `require('@datashop/sse-gateway/metrics'); console.log(${loaded})`])).toBe('true');
  });

  it('loads the browser client with require() and import', () => {
    const cjs = run(['-e', "const m = require('@datashop/sse-gateway/client'); console.log(typeof m.createSseClient)"]);
    expect(cjs).toBe('function');
    const esm = run([
      '--input-type=module',
      '-e',
      "import * as m from '@datashop/sse-gateway/client'; console.log(typeof m.createSseClient, 'default' in m)",
    ]);
    // Real ESM (esbuild's output), not a wrapper around the CommonJS build: no `default` export.
    expect(esm).toBe('function false');
  });

  it('loads the React bindings with require() and import, React staying an outside dependency', () => {
    const cjs = run([
      '-e',
      "const m = require('@datashop/sse-gateway/react'); console.log(typeof m.SSEProvider, typeof m.useSSESubscription)",
    ]);
    expect(cjs).toBe('function function');
    const esm = run([
      '--input-type=module',
      '-e',
      "import * as m from '@datashop/sse-gateway/react'; console.log(typeof m.withSSE, typeof m.useSSEStatus)",
    ]);
    expect(esm).toBe('function function');
    const bundle = require('node:fs').readFileSync(join(root, 'dist/react/index.mjs'), 'utf8') as string;
    expect(bundle).toMatch(/from "react"/);
    expect(bundle).not.toMatch(/react\.production|react\.development/);
  });

  it('ships type declarations', () => {
    const pkg = require(join(root, 'package.json')) as { exports: { '.': { types: string } } };
    expect(require('node:fs').existsSync(join(root, pkg.exports['.'].types))).toBe(true);
    for (const entry of ['./client', './react']) {
      const types = (pkg.exports as unknown as Record<string, Record<string, { types: string }>>)[entry];
      for (const condition of ['import', 'require'] as const)
        expect(require('node:fs').existsSync(join(root, types?.[condition]?.types ?? 'missing'))).toBe(true);
    }
  });

  it('packs what a user needs and nothing else: the build, its sources for source maps, the docs', () => {
    // npm's own CLI: npm_execpath when run through npm (npm test), else the one on the PATH.
    const npm = process.env.npm_execpath;
    const output = npm
      ? run([npm, 'pack', '--dry-run', '--json', '--ignore-scripts'])
      : execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
    const [pack] = JSON.parse(output) as [{ files: { path: string }[] }];
    const files = pack.files.map((f) => f.path);
    for (const needed of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'dist/index.js',
      'dist/index.mjs',
      'dist/index.d.ts',
      'dist/client/index.mjs',
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/client/index.d.mts',
      'dist/react/index.mjs',
      'dist/react/index.js',
      'dist/react/index.d.ts',
      'dist/react/index.d.mts',
      'src/index.ts',
    ])
      expect(files).toContain(needed);
    expect(files.filter((f) => /^(test|bench|examples|scripts|node_modules)\//.test(f))).toEqual([]);
  });
});

// Compiles src/ to CommonJS with types, then writes an ES module entry that re-exports the same names,
// so `require('@datashop/sse-gateway')` and `import { … } from '@datashop/sse-gateway'` share one instance.
// The browser entries (./client, later ./react) are bundled by esbuild, each as real ESM and as CJS, with
// declarations from their own tsconfig.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = (project) =>
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, project)], {
    stdio: 'inherit',
  });

rmSync(join(root, 'dist'), { recursive: true, force: true });
tsc('tsconfig.build.json');
// Node entries: one CommonJS instance behind both `require` and `import` (the process-wide default bus must
// not exist twice), so the ES module entry re-exports the CommonJS one's names.
for (const entry of ['index', 'ops/metrics']) {
  const file = join(root, `dist/${entry}.js`);
  const names = Object.keys(createRequire(import.meta.url)(file)).filter((n) => n !== 'default');
  const base = entry.split('/').pop();
  const body = [
    `import cjs from './${base}.js';`,
    ...names.map((n) => `export const ${n} = cjs.${n};`),
    'export default cjs;',
    '',
  ].join('\n');
  writeFileSync(join(root, `dist/${entry}.mjs`), body);
}

// Browser entries: `name` is the subpath (`./client` → dist/client/index.{mjs,js,d.ts,d.mts}); `external`
// lists the optional peers an entry imports (react for ./react) and never bundles.
const browserEntries = [
  { name: 'client', entry: 'src/client/index.ts', tsconfig: 'tsconfig.client-build.json' },
  {
    name: 'react',
    entry: 'src/react/index.ts',
    tsconfig: 'tsconfig.react-build.json',
    external: ['react', 'react/jsx-runtime', 'react-dom'],
  },
];
for (const { name, entry, tsconfig, external = [] } of browserEntries) {
  for (const [format, extension] of [
    ['esm', 'mjs'],
    ['cjs', 'js'],
  ]) {
    await build({
      entryPoints: [join(root, entry)],
      outfile: join(root, `dist/${name}/index.${extension}`),
      bundle: true,
      format,
      platform: 'browser',
      target: 'es2020',
      sourcemap: true,
      external,
      jsx: 'automatic',
      logLevel: 'warning',
    });
  }
  tsc(tsconfig);
  // The import condition's types: an ES module declaration that names the same declarations.
  writeFileSync(join(root, `dist/${name}/index.d.mts`), "export * from './index.js';\n");
}

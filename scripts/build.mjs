// Compiles src/ to CommonJS with types, then writes an ES module entry that re-exports the same names,
// so `require('@datashop/sse-gateway')` and `import { … } from '@datashop/sse-gateway'` share one instance.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  {
    stdio: 'inherit',
  },
);
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

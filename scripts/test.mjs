// The one command that runs every test on a fresh machine: makes sure redis-server is there (installing it
// with apt-get when we are root), builds the package, runs jest, and ends with one line `N passed, N failed`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

if (!has('redis-server')) {
  if (process.getuid?.() === 0 && has('apt-get')) {
    console.log('redis-server is missing: installing it with apt-get …');
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server'], {
      stdio: 'inherit',
    });
  } else {
    console.error(
      'redis-server is needed by the Redis bus tests. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and run npm test again.',
    );
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit', cwd: root });

const results = join(root, '.test-results.json');
rmSync(results, { force: true });
const jest = spawnSync(
  process.execPath,
  [join(root, 'node_modules/jest/bin/jest.js'), '--json', `--outputFile=${results}`, ...process.argv.slice(2)],
  { stdio: 'inherit', cwd: root },
);

let passed = 0;
let failed = 1;
let skipped = 0;
if (existsSync(results)) {
  const summary = JSON.parse(readFileSync(results, 'utf8'));
  passed = summary.numPassedTests;
  skipped = summary.numPendingTests + summary.numTodoTests;
  // A suite that fails to load has no failed test of its own; count it so it cannot pass unseen.
  failed = summary.numFailedTests + summary.numRuntimeErrorTestSuites;
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(jest.status === 0 && failed === 0 ? 0 : 1);

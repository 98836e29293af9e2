// The one command that runs every test on a fresh machine: makes sure redis-server, chromium and openssl are there
// (installing them with apt-get when we are root), builds the package, runs jest, and ends with one line `N passed, N failed`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

// Real parts only: the Redis tests start redis-server, the example is checked in Debian's Chromium.
const needs = [
  { command: 'redis-server', apt: 'redis-server', why: 'the Redis bus tests' },
  { command: 'chromium', apt: 'chromium', why: 'the browser check of the example' },
  { command: 'openssl', apt: 'openssl', why: 'the certificates of the TLS proxy tests' },
].filter((need) => !has(need.command));
if (needs.length > 0) {
  const packages = needs.map((need) => need.apt).join(' ');
  if (process.getuid?.() === 0 && has('apt-get')) {
    console.log(`Installing ${packages} with apt-get …`);
    execFileSync(
      'sh',
      ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages}`],
      {
        stdio: 'inherit',
      },
    );
  } else {
    for (const need of needs)
      console.error(`${need.command} is needed by ${need.why}: sudo apt-get install ${need.apt}`);
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

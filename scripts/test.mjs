// The one command that runs every test on a fresh machine: makes sure redis-server, chromium, openssl and, as root,
// iproute2 are there (installing them with apt-get when we are root), builds the package, runs jest, then the Python
// SDK's pytest suite, and ends with one line `N passed, N failed` over both.
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
  // /usr/sbin is not on every non-root PATH.
  {
    command: 'nginx',
    probe: 'command -v nginx || test -x /usr/sbin/nginx',
    apt: 'nginx',
    why: 'the nginx deploy tests',
  },
  {
    command: 'python3',
    // The interpreter the manifest test and runPytest pick: Debian's when it is there.
    probe: "P=/usr/bin/python3; [ -x $P ] || P=python3; $P -c 'import yaml'",
    apt: 'python3-yaml',
    why: 'reading the Kubernetes manifests',
  },
  // Root only: the dead-peer test makes network namespaces, which needs root; without root it skips itself.
  { command: 'ip', apt: 'iproute2', why: 'the dead-peer test (network namespaces)', rootOnly: true },
].filter(
  (need) =>
    !(need.rootOnly && process.getuid?.() !== 0) &&
    spawnSync('sh', ['-c', need.probe ?? `command -v ${need.command}`], { stdio: 'ignore' }).status !== 0,
);
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
// The Python SDK's suite (pytest against a real gateway on dist/), counted into the same final line. Skipped
// when arguments select jest tests.
const python = process.argv.length > 2 ? null : runPytest();
if (python !== null) {
  passed += python.passed;
  failed += python.failed;
  skipped += python.skipped;
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(jest.status === 0 && failed === 0 && (python?.ok ?? true) ? 0 : 1);

function runPytest() {
  const interpreter = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const ready = () =>
    spawnSync(interpreter, ['-c', 'import pytest, venv, ensurepip'], { stdio: 'ignore' }).status === 0;
  if (!ready()) {
    if (process.getuid?.() === 0 && has('apt-get')) {
      console.log('Installing python3 python3-venv python3-pytest with apt-get …');
      spawnSync(
        'sh',
        [
          '-c',
          'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pytest',
        ],
        { stdio: 'inherit' },
      );
    }
    if (!ready()) {
      console.error('The Python SDK tests need python3, python3-venv and python3-pytest: sudo apt-get install them.');
      return { passed: 0, failed: 1, skipped: 0, ok: false };
    }
  }
  const report = join(root, '.pytest-results.xml');
  rmSync(report, { force: true });
  const run = spawnSync(
    interpreter,
    ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', `--junitxml=${report}`, 'sdk/python/tests'],
    { stdio: 'inherit', cwd: root },
  );
  if (!existsSync(report)) return { passed: 0, failed: 1, skipped: 0, ok: false };
  const xml = readFileSync(report, 'utf8');
  const count = (name) =>
    [...xml.matchAll(new RegExp(`<testsuite\\b[^>]*\\b${name}="(\\d+)"`, 'g'))].reduce((n, m) => n + Number(m[1]), 0);
  const total = count('tests');
  const bad = count('failures') + count('errors');
  const skippedTests = count('skipped');
  // Exit 5 is "no tests collected", and a crash may count no failure: neither may pass unseen.
  const ok = run.status === 0 && total > 0;
  return { passed: total - bad - skippedTests, failed: ok || bad > 0 ? bad : 1, skipped: skippedTests, ok };
}

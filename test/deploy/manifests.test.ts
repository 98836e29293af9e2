import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startExample } from '../helpers/browser';
import { openStream } from '../helpers/sse-client';

// The container and Kubernetes files name routes, ports and timings the code must agree with. The YAML is read
// by real Python (PyYAML, Debian's python3-yaml); Docker cannot build here, so the Dockerfile is checked by rule.
const DEPLOY = join(__dirname, '../../examples/deploy');
const root = join(__dirname, '../..');
// Debian's python3 (with python3-yaml, which npm test installs), as scripts/test.mjs picks it.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, read field by field
type Json = Record<string, any>;
function readYaml(file: string): Json[] {
  const script = 'import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))';
  return JSON.parse(execFileSync(PYTHON, ['-c', script, join(DEPLOY, 'k8s', file)], { encoding: 'utf8' }));
}
const manifests = readdirSync(join(DEPLOY, 'k8s'))
  .filter((file) => file.endsWith('.yaml'))
  .flatMap(readYaml);
const byKind = (kind: string) => manifests.find((m) => m.kind === kind) as Json;
const deployment = byKind('Deployment');
const container = deployment.spec.template.spec.containers[0];
const env = (name: string) => container.env.find((e: Json) => e.name === name);
const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');

it('every manifest parses and has a kind, an apiVersion and a name', () => {
  expect(manifests.map((m) => m.kind).sort()).toEqual(['Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
  for (const m of manifests) expect([typeof m.apiVersion, typeof m.metadata.name]).toEqual(['string', 'string']);
});

it('the rollout keeps capacity, reads Redis from the Secret, and sizes the grace period from the drain', () => {
  expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  const secret = byKind('Secret');
  expect(env('REDIS_URL').valueFrom.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'url' });
  expect(Object.keys(secret.stringData)).toEqual(['url']);
  const drainSeconds = Number(env('DRAIN_MS').value) / 1000;
  const readiness = container.readinessProbe;
  const preStop = container.lifecycle.preStop.sleep.seconds;
  const needed = drainSeconds + readiness.periodSeconds * readiness.failureThreshold + preStop;
  expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(needed);
  expect(deployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
});

it('ports agree: container, probes, Prometheus annotation, Service, and the Dockerfile', () => {
  const port = container.ports[0];
  expect(port.containerPort).toBe(Number(env('PORT').value));
  expect(container.readinessProbe.httpGet.port).toBe(port.name);
  expect(container.livenessProbe.httpGet.port).toBe(port.name);
  expect(deployment.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port.containerPort));
  expect(byKind('Service').spec.ports[0].targetPort).toBe(port.name);
  expect(dockerfile).toMatch(new RegExp(`^EXPOSE ${port.containerPort}$`, 'm'));
  expect(dockerfile).toMatch(new RegExp(`PORT=${port.containerPort}\\b`));
});

it('Dockerfile rules: multi-stage, npm ci --omit=dev in the runtime stage, non-root, exec-form CMD, sources exist', () => {
  const stages = dockerfile.split(/^FROM /m).slice(1);
  expect(stages).toHaveLength(2);
  const runtime = stages[1] ?? '';
  expect(runtime).toMatch(/^RUN npm ci --omit=dev/m);
  expect(runtime).not.toMatch(/^RUN npm (ci|install)(?! --omit=dev)/m);
  expect(runtime).toMatch(/^USER (?!root|0\b)\w+$/m);
  expect(runtime).toMatch(/^CMD \["node", "etl-logs\/server\.js"\]$/m);
  for (const [, from, sources] of dockerfile.matchAll(/^COPY (--from=\w+ )?(.+) \S+$/gm)) {
    if (from) continue;
    for (const source of (sources ?? '').split(' ').filter((s) => s !== '.'))
      expect(existsSync(join(root, source))).toBe(true);
  }
});

it('the example serves the probe and scrape routes the Deployment names, and SIGTERM drains, closes and exits 0', async () => {
  const example = await startExample('etl-logs', { DRAIN_MS: '400', TICK_MS: '50' });
  try {
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect((await fetch(`${example.baseUrl}${probe.httpGet.path}`)).status).toBe(200);
    }
    const scrapePath = deployment.spec.template.metadata.annotations['prometheus.io/path'];
    const metrics = await (await fetch(`${example.baseUrl}${scrapePath}`)).text();
    expect(metrics).toMatch(/^sse_ready 1$/m);

    const stream = await openStream(`${example.baseUrl}/events?channels=logs:ws1:*`, {
      headers: { cookie: 'demo_user=alice' },
    });
    await stream.waitFor((e) => e.event === 'logs');
    const exited = new Promise<number | null>((resolve) => example.process.once('exit', (code) => resolve(code)));
    example.process.kill('SIGTERM');
    await stream.ended;
    // Sent away the way an EventSource comes back: a last retry: before the end.
    expect(stream.raw).toMatch(/\nretry: \d+\n$/);
    expect(await exited).toBe(0);
  } finally {
    example.process.kill('SIGKILL');
  }
});

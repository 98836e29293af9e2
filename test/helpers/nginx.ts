import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server';

/** Debian's nginx (`/usr/sbin` is not on a non-root PATH). */
const BINARY =
  ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path)) ?? 'nginx';
const DEPLOY = join(__dirname, '../../examples/deploy');

/** A throwaway nginx running the shipped `examples/deploy/nginx.conf`. */
export interface NginxServer {
  /** `http://127.0.0.1:<port>`: the HTTP/1.1 server. */
  readonly url: string;
  /** `https://localhost:<port>`: the TLS + HTTP/2 server, with a self-signed certificate. */
  readonly h2Url: string;
  /** The prefix directory (conf/, logs/, temp/). */
  readonly dir: string;
  /** The error log so far, for failure messages. */
  errorLog(): string;
  /** Fast shutdown (SIGTERM), wait for the exit, remove the directory. */
  stop(): Promise<void>;
}

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Ports of the BFF instances on 127.0.0.1, in upstream order. */
  readonly upstreams: readonly number[];
  /** Replaces the stream location's `proxy_read_timeout 60s` (a negative control: a timeout below the heartbeat). */
  readonly streamReadTimeout?: string;
}

/** The shipped template with its tokens replaced: what a deployment does with sed. */
export function renderNginxConf(values: Record<string, string>): string {
  let text = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8');
  for (const [token, value] of Object.entries(values)) text = text.replaceAll(`@@${token}@@`, value);
  const left = /@@[A-Z0-9_]+@@/.exec(text);
  if (left) throw new Error(`nginx.conf token ${left[0]} was not substituted`);
  return text;
}

function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'conf/cert.pem');
  const key = join(dir, 'conf/key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost'].concat([
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ]),
    { stdio: 'ignore' },
  );
  return { cert, key };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolve `true` once both ports accept connections, `false` when nginx exited first (a port was taken). */
async function waitForNginx(child: ChildProcess, ports: number[], dir: string): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const up = await Promise.all(ports.map(listening));
    if (up.every(Boolean)) return child.exitCode === null;
    if (Date.now() > deadline) throw new Error(`nginx did not listen within 10 s:\n${readLog(dir)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function readLog(dir: string): string {
  const path = join(dir, 'logs/error.log');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/**
 * Start nginx in the foreground (`-g 'daemon off;'`) with a prefix in a temp dir, the shipped config and
 * locations, and a self-signed certificate; fails with an install hint when nginx is missing.
 *
 * @example
 * ```ts
 * const nginx = await startNginx({ upstreams: [gatewayPort] });
 * ```
 */
export async function startNginx(options: NginxOptions): Promise<NginxServer> {
  if (!existsSync(BINARY) && BINARY === 'nginx')
    throw new Error('nginx not found: apt-get install nginx (npm test does it as root).');
  const dir = mkdtempSync(join(tmpdir(), 'sse-nginx-'));
  // Root's nginx runs its workers as `nobody`, who must reach the temp paths under the prefix.
  chmodSync(dir, 0o755);
  for (const sub of ['conf', 'logs', 'temp']) mkdirSync(join(dir, sub));
  const { cert, key } = selfSignedCertificate(dir);
  let locations = readFileSync(join(DEPLOY, 'sse-locations.conf'), 'utf8');
  if (options.streamReadTimeout !== undefined) {
    locations = locations.replace('proxy_read_timeout 60s;', `proxy_read_timeout ${options.streamReadTimeout};`);
  }
  writeFileSync(join(dir, 'conf/sse-locations.conf'), locations);

  let child: ChildProcess | undefined;
  let ports: number[] = [];
  for (let attempt = 1; ; attempt++) {
    ports = [await freePort(), await freePort()];
    const conf = renderNginxConf({
      UPSTREAM_SERVERS: options.upstreams.map((port) => `server 127.0.0.1:${port};`).join('\n    '),
      LISTEN: `127.0.0.1:${ports[0]}`,
      LISTEN_H2: `127.0.0.1:${ports[1]}`,
      TLS_CERT: cert,
      TLS_KEY: key,
    });
    writeFileSync(join(dir, 'conf/nginx.conf'), conf);
    const launched = spawn(
      BINARY,
      ['-p', dir, '-c', join(dir, 'conf/nginx.conf'), '-e', join(dir, 'logs/error.log'), '-g', 'daemon off;'],
      { stdio: 'ignore' },
    );
    const spawned = await new Promise<Error | null>((resolve) => {
      launched.once('spawn', () => resolve(null));
      launched.once('error', resolve);
    });
    if (spawned) throw new Error(`Cannot start nginx (${spawned.message}): apt-get install nginx.`);
    if (await waitForNginx(launched, ports, dir)) {
      child = launched;
      break;
    }
    if (attempt >= 5) throw new Error(`nginx did not start:\n${readLog(dir)}`);
  }
  const running = child;
  return {
    url: `http://127.0.0.1:${ports[0]}`,
    h2Url: `https://localhost:${ports[1]}`,
    dir,
    errorLog: () => readLog(dir),
    async stop() {
      if (running.exitCode === null && running.signalCode === null) {
        const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
        running.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

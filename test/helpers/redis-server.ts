import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forSuite } from './suite';

/** A throwaway redis-server on a free loopback port, without persistence. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Kill the process and wait for it to exit. */
  stop(): Promise<void>;
  /** Stop, then start again on the same port after `downMs` (all data is lost: there is no persistence). */
  restart(downMs?: number): Promise<void>;
  /** Run `redis-cli -p <port> ...args` and resolve with its output. */
  cli(...args: string[]): Promise<string>;
}

const BINARY =
  ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((path) => existsSync(path)) ?? 'redis-server';

/** A port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Resolve `true` once *our* server answers on `port` (its working directory is `dir`), `false` when the child
 * exited first, e.g. because another test process took the port between `freePort()` and the bind. Checking
 * the directory matters: otherwise a server started by a parallel test on the same port would answer for us.
 */
async function waitForOwnServer(port: number, child: ChildProcess, dir: string, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const reply = await new Promise<string>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      let text = '';
      socket.setTimeout(500, () => socket.destroy());
      socket.on('connect', () => socket.write('CONFIG GET dir\r\n'));
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.split('\r\n').length >= 6) socket.end();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(''));
    });
    if (reply.includes(dir)) return true;
    if (reply.startsWith('*')) {
      // Someone else's server holds the port; ours is about to exit on its failed bind.
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (child.exitCode !== null || child.signalCode !== null) return false;
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Start redis-server on a free port in a temp dir (`--save '' --appendonly no`), and wait until it answers.
 * Fails with an install hint when the binary is missing.
 *
 * @param extraArgs - more `redis-server` arguments, e.g. `['--cluster-enabled', 'yes']`.
 */
export async function startRedisServer(extraArgs: string[] = [], fixedPort?: number): Promise<RedisServer> {
  let port = fixedPort ?? (await freePort());
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sse-redis-')));
  let child: ChildProcess;

  /** Start on `port`; `false` when the port was taken first. */
  const launch = async (): Promise<boolean> => {
    child = spawn(
      BINARY,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs],
      { stdio: 'ignore' },
    );
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', resolve);
    });
    if (spawned !== null) {
      throw new Error(
        `Cannot start redis-server (${spawned.message}). The Redis tests need a local redis-server: \`sudo apt-get install redis-server\` (Debian/Ubuntu) or \`brew install redis\`.`,
      );
    }
    return waitForOwnServer(port, child, dir);
  };
  const start = async () => {
    for (let attempt = 1; !(await launch()); attempt++) {
      if (fixedPort !== undefined || attempt >= 5) throw new Error(`redis-server could not bind port ${port}`);
      port = await freePort();
    }
  };

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  };

  await start();
  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    async stop() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart(downMs = 0) {
      await stop();
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      // Same port: that is the point of a restart.
      if (!(await launch())) throw new Error(`redis-server could not bind port ${port} again`);
    },
    cli(...args) {
      return new Promise((resolve, reject) => {
        execFile('redis-cli', ['-p', String(port), ...args], (error, stdout, stderr) => {
          if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${stderr || error.message}`));
          else resolve(stdout.trim());
        });
      });
    },
  };
}

/**
 * One redis-server for the enclosing file or `describe`: started in `beforeAll`, stopped in `afterAll`. The
 * returned object stands for it (use it inside tests and hooks, once `beforeAll` has run).
 *
 * @param extraArgs - more `redis-server` arguments, as for {@link startRedisServer}.
 * @example
 * const server = redisServerForSuite();
 * test('…', async () => {
 *   const bus = redisBus({ url: server.url });
 * });
 */
export function redisServerForSuite(extraArgs: string[] = []): RedisServer {
  const current = forSuite(
    'redis-server',
    () => startRedisServer(extraArgs),
    (server) => server.stop(),
  );
  return {
    get url() {
      return current().url;
    },
    get port() {
      return current().port;
    },
    stop: () => current().stop(),
    restart: (downMs) => current().restart(downMs),
    cli: (...args) => current().cli(...args),
  };
}

/**
 * Something a whole file or `describe` shares: started in `beforeAll`, stopped in `afterAll`.
 *
 * @param what - named in the error when it is used before `beforeAll` ran.
 * @returns a getter for it, to call inside tests and hooks.
 * @example
 * const current = forSuite('redis-server', () => startRedisServer(), (server) => server.stop());
 */
export function forSuite<T>(
  what: string,
  start: () => Promise<T>,
  stop: (started: T) => Promise<void>,
  timeoutMs?: number,
): () => T {
  let started: T | undefined;
  beforeAll(async () => {
    started = await start();
  }, timeoutMs);
  afterAll(async () => {
    if (started !== undefined) await stop(started);
  });
  return () => {
    if (started === undefined) throw new Error(`The ${what} starts in beforeAll: use it in a test or a hook.`);
    return started;
  };
}

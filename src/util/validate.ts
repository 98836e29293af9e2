/**
 * The one options dialect of every factory (`sseMiddleware`, `sseProxy`, `bridgeUpstream`, the buses):
 * unknown keys get a "did you mean", numbers and functions are checked the same way, and every mistake is
 * an {@link OptionError}: a `TypeError` with a stable code, thrown at creation, never at the first request.
 */

/**
 * The shape of `src/types.ts`'s `Logger`, restated so this module imports nothing: the browser client uses it
 * too, and `src/types.ts` would pull Express and Node types into the browser type-check.
 */
interface Logger {
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

/** A wrong option: a `TypeError` whose `code` is always `ERR_SSE_INVALID_OPTION`. */
export class OptionError extends TypeError {
  /** Stable code: `ERR_SSE_INVALID_OPTION`. */
  readonly code = 'ERR_SSE_INVALID_OPTION' as const;

  /** @param message - what is wrong and how to fix it. */
  constructor(message: string) {
    super(message);
    this.name = 'TypeError';
  }
}

/** Misspellings that edit distance would not find, shared by every factory (alias → option). */
const ALIASES: Readonly<Record<string, string>> = {
  heartbeat: 'heartbeatMs',
  heartbeatInterval: 'heartbeatMs',
  retry: 'retryMs',
  auth: 'authentication',
  authenticate: 'authentication',
  scoping: 'userScoping',
  acl: 'authorize',
  route: 'path',
  namespaces: 'channels',
  url: 'target',
  upstream: 'target',
  timeout: 'connectTimeoutMs',
  connectTimeout: 'connectTimeoutMs',
  header: 'headers',
  ssl: 'tls',
  channel: 'channels',
};

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

/** "; did you mean `x`?" for `key` among `known`, or the list of known keys when nothing is close. */
export function suggest(key: string, known: readonly string[], hints: Readonly<Record<string, string>> = {}): string {
  const alias = hints[key] ?? ALIASES[key];
  if (alias !== undefined && known.includes(alias)) return `; did you mean \`${alias}\`?`;
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best ? `; did you mean \`${best}\`?` : `; known options are ${known.map((k) => `\`${k}\``).join(', ')}.`;
}

/**
 * Throw for the first key of `value` that is not in `known`.
 *
 * @param where - who is asking, e.g. `sseMiddleware: limits`.
 * @param hints - extra aliases for this factory (misspelling → option).
 */
export function checkKeys(
  where: string,
  value: object,
  known: readonly string[],
  hints?: Readonly<Record<string, string>>,
): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new OptionError(`${where}: unknown option \`${key}\`${suggest(key, known, hints)}`);
  }
}

/** True for a non-null, non-array object. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a value looks in an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * An integer option: `fallback` when absent, else an integer `>= min` (or `Infinity` when allowed).
 *
 * @param where - the option as the user wrote it, e.g. ``sseMiddleware: `retryMs` ``.
 */
export function integer(where: string, value: unknown, fallback: number, min: number, allowInfinity = false): number {
  if (value === undefined) return fallback;
  if (allowInfinity && value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new OptionError(
      `${where} must be an integer >= ${min}${allowInfinity ? ' (or Infinity)' : ''} (received ${describe(value)}).`,
    );
  }
  return value;
}

/** A boolean option: `fallback` when absent. */
export function boolean(where: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new OptionError(`${where} must be a boolean (received ${describe(value)}).`);
  return value;
}

/** An optional function option. */
export function optionalFunction<F>(where: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new OptionError(`${where} must be a function (received ${typeof value}).`);
  return value as F;
}

/** A `logger` option: anything with `warn` and `error`; `console` when absent. */
export function logger(where: string, value: unknown): Logger {
  if (value === undefined) return console;
  if (!isPlainObject(value) || typeof value.warn !== 'function' || typeof value.error !== 'function') {
    throw new OptionError(`${where}: \`logger\` must have \`warn\` and \`error\` methods (console works).`);
  }
  return value as unknown as Logger;
}

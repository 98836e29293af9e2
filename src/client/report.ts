/**
 * Small helpers shared by the client's parts: where a user callback's exception goes, and lenient JSON.
 */

/**
 * Hand a listener's exception to the page's error handling (`reportError`, as an uncaught error would be,
 * but without stopping the client), or to the console where there is none.
 *
 * @param error - what the listener threw.
 */
export function reportListenerError(error: unknown, what = 'sse client: a listener threw'): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (typeof report === 'function') report(error);
  else console.error(what, error);
}

/**
 * `JSON.parse`, or `undefined` for malformed input (a control event's data is checked field by field).
 *
 * @param data - an event's data.
 */
export function parseJson<T>(data: string): T | undefined {
  try {
    return JSON.parse(data) as T;
  } catch {
    return undefined;
  }
}

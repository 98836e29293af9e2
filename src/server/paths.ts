/**
 * Routes below the stream path.
 */

/**
 * The route `sub` below the stream path: `/events` + `/publish` → `/events/publish`, and `/` + `/publish` →
 * `/publish` (not `//publish`).
 */
export function below(path: string, sub: string): string {
  return `${path === '/' ? '' : path}${sub}`;
}

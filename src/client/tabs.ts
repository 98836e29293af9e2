/**
 * Sharing one stream across the tabs of a browser profile (owned by the `tabs` branch).
 */

/**
 * True where a client can share its stream with the other tabs of this origin (`navigator.locks` and
 * `BroadcastChannel`). Not built yet: always `false`.
 */
export function canShareAcrossTabs(): boolean {
  return false;
}

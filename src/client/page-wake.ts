/**
 * The page's hints that a retry should not wait: the network came back (`online`), or a hidden tab was
 * shown again (`visibilitychange`). Absent outside browsers.
 */

/**
 * Call `wake` on `online` and when the document becomes visible; returns the removal.
 *
 * @param wake - what to do (reset the backoff and reconnect).
 */
export function watchPageWake(wake: () => void): () => void {
  const onOnline = (): void => wake();
  const onVisibility = (): void => {
    if (document.visibilityState === 'visible') wake();
  };
  const win = typeof window !== 'undefined' && typeof window.addEventListener === 'function' ? window : undefined;
  const doc = typeof document !== 'undefined' && typeof document.addEventListener === 'function' ? document : undefined;
  win?.addEventListener('online', onOnline);
  doc?.addEventListener('visibilitychange', onVisibility);
  return () => {
    win?.removeEventListener('online', onOnline);
    doc?.removeEventListener('visibilitychange', onVisibility);
  };
}

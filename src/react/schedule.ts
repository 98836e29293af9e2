/**
 * When a store tells its renders: on the next animation frame while the page is visible, so a burst of
 * events spread over several network tasks still causes one render per component, with a timer beside it
 * because hidden pages get no frames; a microtask where there are no frames (Node, workers).
 */

/** Longest wait for a frame before the timer flushes instead (background tabs). */
const FRAME_FALLBACK_MS = 100;

/**
 * Run `callback` once, soon.
 *
 * @param callback - the flush.
 */
export function scheduleFlush(callback: () => void): void {
  const visible =
    typeof requestAnimationFrame === 'function' &&
    typeof document !== 'undefined' &&
    document.visibilityState !== 'hidden';
  if (!visible) {
    queueMicrotask(callback);
    return;
  }
  let done = false;
  const run = (): void => {
    if (done) return;
    done = true;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    callback();
  };
  const frame = requestAnimationFrame(run);
  const timer = setTimeout(run, FRAME_FALLBACK_MS);
}

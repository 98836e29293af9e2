// The connection badge: live, connecting, reconnecting with a retry countdown, signed out.
import { useSSEStatus } from '@datashop/sse-gateway/react';
import { useEffect, useState } from 'react';

/** Seconds until `deadline` (epoch ms), counted down every 250 ms while `active`. */
function useCountdown(deadline: number | undefined): number | undefined {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (deadline === undefined) return;
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [deadline]);
  return deadline === undefined ? undefined : Math.max(0, Math.ceil((deadline - now) / 1000));
}

/**
 * The browser retries after the gateway's `retryMs` (which the BFF tells the page); the countdown starts when
 * the stream drops.
 */
export function StatusBadge({ retryMs }: { retryMs: number }) {
  const { connectionStatus, error } = useSSEStatus();
  const [retryAt, setRetryAt] = useState<number | undefined>();
  useEffect(() => {
    setRetryAt(connectionStatus === 'reconnecting' ? Date.now() + retryMs : undefined);
  }, [connectionStatus, retryMs]);
  const seconds = useCountdown(retryAt);
  if (connectionStatus === 'open')
    return (
      <span id="status" className="live">
        live
      </span>
    );
  if (connectionStatus === 'closed' && error?.code === 'ERR_SSE_UNAUTHENTICATED')
    return (
      <span id="status" className="closed">
        signed out
      </span>
    );
  if (connectionStatus === 'reconnecting')
    return (
      <span id="status" className="reconnecting" title={error?.message}>
        {seconds ? `reconnecting, retry in ${seconds} s` : 'reconnecting…'}
      </span>
    );
  return <span id="status">{connectionStatus === 'closed' ? 'disconnected' : 'connecting…'}</span>;
}

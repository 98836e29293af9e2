/**
 * `<SSEProvider>`: one store, hence one client and one stream, for the tree below it.
 */
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';
import { createSseClient } from '../client/client';
import type { SseClient, SseClientOptions } from '../client/types';
import { integer, OptionError } from '../util/validate';
import { SseStore } from './store';
import type { SSEProviderProps, SSEProviderTuning } from './types';

const StoreContext = createContext<SseStore | null>(null);
StoreContext.displayName = 'SSEStore';

/** The store of the nearest provider; a readable error when there is none. */
export function useStore(caller: string): SseStore {
  const store = useContext(StoreContext);
  if (!store) throw new OptionError(`${caller}() needs an <SSEProvider url="…"> above it in the tree.`);
  return store;
}

/** The client options given as props: everything but children, client and the provider's own tuning. */
function clientOptions(props: SSEProviderProps & SSEProviderTuning): SseClientOptions {
  const {
    client: _client,
    graceMs: _graceMs,
    children: _children,
    ...options
  } = props as SseClientOptions & SSEProviderTuning & { client?: SseClient; children?: ReactNode };
  return options;
}

function makeStore(props: SSEProviderProps & SSEProviderTuning): SseStore {
  const graceMs = integer('SSEProvider: `graceMs`', props.graceMs, 1500, 0);
  const given = props.client;
  if (given) return new SseStore({ createClient: () => given, ownsClient: false, graceMs, scope: 'client' });
  const options = clientOptions(props);
  if (typeof options.url !== 'string' || options.url === '') {
    throw new OptionError('SSEProvider: give `url` (the gateway stream path, e.g. "/events") or a `client`.');
  }
  return new SseStore({
    // The kept id is handed to the client so a reloaded page resumes exactly after the data it kept.
    createClient: (resumeId) =>
      createSseClient(resumeId === undefined ? options : { ...options, lastEventId: resumeId }),
    ownsClient: true,
    graceMs,
    scope: options.url,
  });
}

/**
 * Give the tree below one client: every `useSSESubscription`, `withSSE` and `useSSEStatus` under it shares
 * one stream. The client is made on the first subscription (never during a render, so server rendering
 * needs no `window`) and closed when the provider unmounts, unless it was passed in as `client`. The
 * options are read when the provider mounts; a new `url` or `client` makes a new store.
 *
 * @param props - `url` plus any `SseClientOptions`, or `client`; `graceMs` (default 1500) is how long a
 *   channel stays subscribed after its last component unmounted.
 * @example
 * ```tsx
 * <SSEProvider url="/events" withCredentials>
 *   <App />
 * </SSEProvider>
 * ```
 */
export function SSEProvider(props: SSEProviderProps & SSEProviderTuning & { children?: ReactNode }): ReactNode {
  const identity = props.client ?? props.url;
  // useState, not useMemo: React may drop a memo, never state. A store made in a discarded render is inert.
  const [holder, setHolder] = useState(() => ({ identity, store: makeStore(props) }));
  let current = holder;
  if (holder.identity !== identity) {
    current = { identity, store: makeStore(props) };
    setHolder(current);
  }
  const { store } = current;
  useEffect(() => {
    // StrictMode runs this cleanup and the effect again at once: the deferred dispose is cancelled then.
    store.retain();
    return () => store.release();
  }, [store]);
  return <StoreContext.Provider value={store}>{props.children}</StoreContext.Provider>;
}

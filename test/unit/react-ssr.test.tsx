import { renderToString } from 'react-dom/server';
import type { EventSourceConstructor } from '../../src/client';
import { SSEProvider, useSSEStatus, useSSESubscription } from '../../src/react';

// Server rendering: the provider and the hooks render their empty state and touch no browser global.
const BROWSER_GLOBALS = ['window', 'document', 'sessionStorage', 'localStorage', 'EventSource', 'navigator'];

function Logs() {
  const { data, connectionStatus } = useSSESubscription<string>('logs:ws1:*', {
    persistence: true,
    persistenceKey: 'logs',
  });
  const { isConnected } = useSSEStatus();
  return (
    <p>
      {connectionStatus} {String(isConnected)} {data.length}
    </p>
  );
}

it('renderToString touches no browser global and opens no stream', () => {
  const touched: string[] = [];
  const saved = BROWSER_GLOBALS.map((name) => [name, Object.getOwnPropertyDescriptor(globalThis, name)] as const);
  for (const name of BROWSER_GLOBALS) {
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() {
        touched.push(name);
        return undefined;
      },
    });
  }
  const opened: string[] = [];
  const EventSource = class {
    constructor(url: string) {
      opened.push(url);
    }
  } as unknown as EventSourceConstructor;
  try {
    const html = renderToString(
      <SSEProvider url="/events" EventSource={EventSource}>
        <Logs />
      </SSEProvider>,
    );
    expect(html).toBe('<p>idle<!-- --> <!-- -->false<!-- --> <!-- -->0</p>');
  } finally {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete (globalThis as Record<string, unknown>)[name];
    }
  }
  expect(touched).toEqual([]);
  expect(opened).toEqual([]);
});

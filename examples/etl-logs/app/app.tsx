// The app shell: who is signed in, the connection badge, in-app tabs; one <SSEProvider>, so one stream
// carries every tab's channels.
import { SSEProvider, useSSEStatus } from '@datashop/sse-gateway/react';
import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useAlerts, useLogs, useMetric } from './data';
import { StatusBadge } from './status-badge';
import { AlertsTab, LogsTab, MetricsTab, type User } from './tabs';

const TABS = { logs: 'ETL logs', metrics: 'Metrics', alerts: 'Alerts' } as const;
type Tab = keyof typeof TABS;

/** Kept data belongs to the session: drop it when the user signs out (here or in another tab). */
function forgetKeptData(): void {
  for (const key of Object.keys(sessionStorage)) if (key.startsWith('sse-gateway:')) sessionStorage.removeItem(key);
}

/** Keeps a workspace's data subscribed while its tab is not shown; renders nothing. */
function KeepWorkspace({ user, workspace }: { user: User; workspace: string }) {
  useLogs(user.id, workspace);
  useMetric(user.id, workspace);
  return null;
}

/** Keeps the user's alerts subscribed while their tab is not shown. */
function KeepAlerts({ user }: { user: User }) {
  useAlerts(user.id);
  return null;
}

/** Signed out elsewhere: the stream answered 401. */
function useSignedOut(onSignedOut: () => void): void {
  const { connectionStatus, error } = useSSEStatus();
  useEffect(() => {
    if (connectionStatus === 'closed' && error?.code === 'ERR_SSE_UNAUTHENTICATED') onSignedOut();
  }, [connectionStatus, error, onSignedOut]);
}

function Shell({ user, onSignedOut }: { user: User; onSignedOut: () => void }) {
  const [tab, setTab] = useState<Tab>(() => (sessionStorage.getItem('tab') as Tab | null) ?? 'logs');
  useSignedOut(onSignedOut);
  const choose = (next: Tab) => {
    sessionStorage.setItem('tab', next);
    setTab(next);
  };
  return (
    <>
      <header>
        <h1>Datashop</h1>
        <span id="who">signed in as {user.name}</span>
        <StatusBadge retryMs={user.retryMs} />
        <form method="post" action="/logout" onSubmit={forgetKeptData}>
          <button type="submit" id="logout">
            Sign out
          </button>
        </form>
      </header>
      <nav>
        {(Object.keys(TABS) as Tab[]).map((name) => (
          <button key={name} type="button" data-tab={name} aria-pressed={tab === name} onClick={() => choose(name)}>
            {TABS[name]}
          </button>
        ))}
      </nav>
      {user.workspaces.map((workspace) => (
        <KeepWorkspace key={workspace} user={user} workspace={workspace} />
      ))}
      <KeepAlerts user={user} />
      <main>
        {tab === 'logs' ? <LogsTab user={user} /> : null}
        {tab === 'metrics' ? <MetricsTab user={user} /> : null}
        {tab === 'alerts' ? <AlertsTab user={user} /> : null}
      </main>
    </>
  );
}

function SignedOut({ status }: { status: string }) {
  return (
    <>
      <header>
        <h1>Datashop</h1>
        <span id="status" className="closed">
          {status}
        </span>
      </header>
      <main>
        <p>
          Sign in as <a href="/login/alice">Alice</a> (workspace ws1) or <a href="/login/bob">Bob</a> (workspace ws2).
        </p>
      </main>
    </>
  );
}

function App() {
  const [session, setSession] = useState<{ user?: User; checked: boolean }>({ checked: false });
  useEffect(() => {
    fetch('/api/me')
      .then((response) => (response.ok ? (response.json() as Promise<User>) : undefined))
      .then((user) => setSession({ user, checked: true }))
      .catch(() => setSession({ checked: true }));
  }, []);
  const [signedOut] = useState(() => () => {
    forgetKeptData();
    setSession({ checked: true });
  });
  if (!session.checked) return <p>Loading…</p>;
  if (!session.user) return <SignedOut status="signed out" />;
  return (
    // withCredentials is not needed on the same origin: the session cookie goes with the stream request.
    <SSEProvider url="/events">
      <Shell user={session.user} onSignedOut={signedOut} />
    </SSEProvider>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(<App />);

// The three in-app tabs. Each reads the data its shell keeps (same persistenceKey), so switching tabs and
// reloading lose nothing.
import { useLayoutEffect, useRef } from 'react';
import type { LogLine } from './channels';
import { useAlerts, useLogs, useMetric } from './data';

export interface User {
  id: string;
  name: string;
  workspaces: string[];
  workflows: Record<string, string[]>;
  retryMs: number;
}

function Logs({ user, workspace }: { user: User; workspace: string }) {
  const { data } = useLogs(user.id, workspace);
  const list = useRef<HTMLOListElement>(null);
  const pinned = useRef(true);
  // Auto-scroll while the reader is at the bottom; leave them alone once they scrolled up.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs after each new batch of lines
  useLayoutEffect(() => {
    const element = list.current;
    if (element && pinned.current) element.scrollTop = element.scrollHeight;
  }, [data]);
  const onScroll = () => {
    const element = list.current;
    if (element) pinned.current = element.scrollHeight - element.scrollTop - element.clientHeight < 24;
  };
  return (
    <section className="workspace" data-workspace={workspace}>
      <h2>Workspace {workspace}</h2>
      <small>{user.workflows[workspace]?.join(', ')}</small>
      <ol ref={list} onScroll={onScroll}>
        {data.map((line: LogLine, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: log lines have no identity of their own
          <li key={i} className={line.level}>
            {line.time.slice(11, 19)} {line.level} {line.message}
          </li>
        ))}
      </ol>
    </section>
  );
}

export function LogsTab({ user }: { user: User }) {
  return (
    <>
      {user.workspaces.map((workspace) => (
        <Logs key={workspace} user={user} workspace={workspace} />
      ))}
    </>
  );
}

function Metric({ user, workspace }: { user: User; workspace: string }) {
  const { lastMessage } = useMetric(user.id, workspace);
  return (
    <tr data-metric={workspace}>
      <th>{workspace}</th>
      <td className="rows">{lastMessage ? lastMessage.rowsPerSecond : '–'}</td>
      <td>{lastMessage ? `${lastMessage.lagMs} ms` : '–'}</td>
      <td>{lastMessage ? lastMessage.time.slice(11, 19) : ''}</td>
    </tr>
  );
}

export function MetricsTab({ user }: { user: User }) {
  return (
    <table>
      <thead>
        <tr>
          <th>Workspace</th>
          <th>Rows/s</th>
          <th>Lag</th>
          <th>At</th>
        </tr>
      </thead>
      <tbody>
        {user.workspaces.map((workspace) => (
          <Metric key={workspace} user={user} workspace={workspace} />
        ))}
      </tbody>
    </table>
  );
}

export function AlertsTab({ user }: { user: User }) {
  const { data } = useAlerts(user.id);
  return (
    <ul id="alerts">
      {data.length === 0 ? <li>No alerts yet.</li> : null}
      {data.map((alert, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: alerts have no identity of their own
        <li key={i}>{alert.message}</li>
      ))}
    </ul>
  );
}

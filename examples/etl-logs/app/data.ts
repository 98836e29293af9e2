// The app's data hooks, used both by the shell (which keeps them subscribed while their tab is hidden) and
// by the tabs that show them: the same persistenceKey makes them one subscription with one copy of the data.
import { ALERTS, keyFor, LOG_LINES, useSSESubscription } from './channels';

export function useLogs(userId: string, workspace: string) {
  return useSSESubscription(`logs:${workspace}:*`, {
    maxItems: LOG_LINES,
    persistence: true,
    persistenceKey: keyFor(userId, `logs:${workspace}`),
  });
}

export function useMetric(userId: string, workspace: string) {
  return useSSESubscription(`metrics:${workspace}`, {
    accumulate: false,
    persistence: true,
    persistenceKey: keyFor(userId, `metrics:${workspace}`),
  });
}

export function useAlerts(userId: string) {
  return useSSESubscription(`alerts:${userId}`, {
    maxItems: ALERTS,
    persistence: true,
    persistenceKey: keyFor(userId, 'alerts'),
  });
}

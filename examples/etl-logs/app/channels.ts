// The app's channels, typed once: every hook below infers its payload from the channel string.
import { createTypedSSE } from '@datashop/sse-gateway/react';

export interface LogLine {
  time: string;
  level: 'INFO' | 'WARN' | 'DEBUG';
  message: string;
}
export interface Metric {
  time: string;
  rowsPerSecond: number;
  lagMs: number;
}
export interface Alert {
  message: string;
}

type Channels = { logs: LogLine; metrics: Metric; alerts: Alert };

export const { useSSESubscription } = createTypedSSE<Channels>();

// A shell-level keeper and the tab showing the data share one subscription through the same persistenceKey,
// so they must ask for the same size.
export const LOG_LINES = 500;
export const ALERTS = 50;

/** Kept data is named per user: another user signing in on this tab never sees it. */
export const keyFor = (userId: string, what: string): string => `${userId}:${what}`;

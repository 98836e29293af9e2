/**
 * sessionStorage for kept subscription data and the id the stream resumes from. Every access is guarded:
 * no storage (server rendering, privacy modes) or a full quota means nothing is kept, never an error.
 */
import type { ClientEvent } from '../client/types';

/** What is kept of one subscription. */
export interface KeptData {
  readonly items: unknown[];
  readonly lastEvent: ClientEvent | undefined;
}

const PREFIX = 'sse-gateway:';

function storage(): Storage | undefined {
  try {
    return typeof sessionStorage === 'undefined' ? undefined : sessionStorage;
  } catch {
    // A sandboxed frame throws on the mere access.
    return undefined;
  }
}

function read(key: string): unknown {
  try {
    const text = storage()?.getItem(PREFIX + key);
    return text == null ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function write(key: string, value: unknown): void {
  try {
    storage()?.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    // Quota or serialisation failure: the data is simply not kept.
  }
}

/** The kept data of `persistenceKey`, if any. */
export function readKept(persistenceKey: string): KeptData | undefined {
  const value = read(`data:${persistenceKey}`) as Partial<KeptData> | undefined;
  if (typeof value !== 'object' || value === null || !Array.isArray(value.items)) return undefined;
  return { items: value.items, lastEvent: value.lastEvent ?? undefined };
}

/** Keep the data of `persistenceKey`. */
export function writeKept(persistenceKey: string, data: KeptData): void {
  write(`data:${persistenceKey}`, data);
}

/** The id a stream of `scope` (its url) resumes from after a reload, if one was kept. */
export function readResumeId(scope: string): string | undefined {
  const value = read(`resume:${scope}`);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Keep the id a stream of `scope` resumes from. */
export function writeResumeId(scope: string, id: string): void {
  write(`resume:${scope}`, id);
}

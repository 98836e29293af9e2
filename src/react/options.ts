/**
 * The options of `useSSESubscription()`, checked in the package's one options dialect and turned into the
 * spec the store works from.
 */

import type { ClientEvent } from '../client/types';
import { boolean, checkKeys, integer, isPlainObject, OptionError, optionalFunction } from '../util/validate';
import type { SSESubscriptionOptions } from './types';

/** What the store needs of one subscription. */
export interface SubscriptionSpec {
  /** The channels, deduplicated, in the order given. */
  readonly channels: readonly string[];
  /** Capacity of `data`: `maxItems`, or 1 without `accumulate`. */
  readonly capacity: number;
  /** sessionStorage name of the kept data, when `persistence` is on. */
  readonly persistenceKey: string | undefined;
  readonly enabled: boolean;
  /** The store's name for this subscription's data. */
  readonly key: string;
}

/** The newest `transform` of a hook, read at each event (so a new inline function per render costs nothing). */
export interface TransformRef {
  current: ((data: unknown, event: ClientEvent) => unknown) | undefined;
}

const KNOWN = ['accumulate', 'maxItems', 'transform', 'persistence', 'persistenceKey', 'enabled'] as const;
const HINTS = { limit: 'maxItems', max: 'maxItems', persist: 'persistence', key: 'persistenceKey', map: 'transform' };
const WHERE = 'useSSESubscription';

/** The channels as a list: one string, or an array of them. */
export function channelList(channels: string | readonly string[]): string[] {
  const list = typeof channels === 'string' ? [channels] : channels;
  if (!Array.isArray(list) || list.some((channel) => typeof channel !== 'string' || channel === '')) {
    throw new OptionError(`${WHERE}: channels must be a channel string or an array of them.`);
  }
  return [...new Set(list)];
}

/**
 * Check a hook's options.
 *
 * @param instance - the hook's own id (`useId()`), naming its data when nothing is persisted.
 * @throws OptionError for an unknown key or a wrong value.
 */
export function parseSubscription(
  channels: string | readonly string[],
  options: SSESubscriptionOptions<unknown>,
  instance: string,
): SubscriptionSpec {
  if (!isPlainObject(options)) throw new OptionError(`${WHERE}: options must be an object.`);
  checkKeys(WHERE, options, KNOWN, HINTS);
  optionalFunction(`${WHERE}: \`transform\``, options.transform);
  const list = channelList(channels);
  const accumulate = boolean(`${WHERE}: \`accumulate\``, options.accumulate, true);
  const maxItems = integer(`${WHERE}: \`maxItems\``, options.maxItems, 200, 1);
  const persistence = boolean(`${WHERE}: \`persistence\``, options.persistence, false);
  const enabled = boolean(`${WHERE}: \`enabled\``, options.enabled, true);
  const persistenceKey: unknown = options.persistenceKey;
  if (persistence && (typeof persistenceKey !== 'string' || persistenceKey === '')) {
    throw new OptionError(`${WHERE}: \`persistence\` needs a \`persistenceKey\` (a non-empty string naming the data).`);
  }
  const capacity = accumulate ? maxItems : 1;
  const kept = persistence ? (persistenceKey as string) : undefined;
  const key = kept !== undefined ? `p:${kept}` : `i:${instance}:${capacity}:${list.join(',')}`;
  return { channels: list, capacity, persistenceKey: kept, enabled, key };
}

/**
 * Redis Cluster support: the hash slot of a key, and the sharded subscriber that follows the slot of the
 * bus's `{prefix}` across failovers and resharding.
 *
 * Why not ioredis's own `shardedSubscribers` Cluster option: it keeps one subscriber per master and
 * resubscribes by itself, but it gives the bus no moment between "the link is back" and "messages flow"
 * in which to read the missed range from the history, and its subscribers do not reconnect on their own
 * (a slot refresh replaces them). The bus needs exactly one connection, to one slot's owner, whose
 * `ready` starts a recovery; that is what this follower is.
 */
import type { Cluster, Redis } from 'ioredis';
import { loadIoRedis, OWN_CONNECTION } from './clients';

/** Redis Cluster's hash slot of `key` (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/** True for an ioredis `Cluster` (which has no `instanceof`-safe class across copies of ioredis). */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/**
 * The sharded subscriber on a Cluster: a plain connection to the master that owns `slot`, which follows
 * the slot across failovers and resharding. Whenever the link closes, the Cluster's slot map is refreshed
 * and the next reconnect goes to whichever node owns the slot then (a link left on a node that lost the
 * slot stops receiving, and the watchdog closes it).
 *
 * @param closed - true once the bus is closed: stop following.
 */
export function followSlotOwner(cluster: Cluster, slot: number, closed: () => boolean): Redis {
  const IoRedis = loadIoRedis().Redis;
  const subscriber = new IoRedis({ ...cluster.options.redisOptions, ...OWN_CONNECTION, lazyConnect: true });
  const retarget = (): boolean => {
    const owner = cluster.slots[slot]?.[0];
    if (owner === undefined) return false;
    const colon = owner.lastIndexOf(':');
    subscriber.options.host = owner.slice(0, colon);
    subscriber.options.port = Number(owner.slice(colon + 1));
    return true;
  };
  const start = (): void => {
    if (closed()) return;
    if (!retarget()) {
      setTimeout(start, 200).unref();
      return;
    }
    subscriber.connect().catch(() => {
      // The retry strategy takes over, and each reconnect is retargeted on `close`.
    });
  };
  subscriber.on('close', () => {
    if (closed()) return;
    retarget();
    cluster.refreshSlotsCache(() => retarget());
  });
  if (cluster.status === 'ready') start();
  else cluster.once('ready', start);
  return subscriber;
}

/**
 * Redis Cluster support: the hash slot of a key, and the sharded subscriber that follows the slot of the
 * bus's `{prefix}` across failovers and resharding.
 *
 * Why not ioredis's own `shardedSubscribers` Cluster option (tried against the cluster and failover
 * tests, which pass with it behind an adapter): it needs ioredis 5.6 or later, above our `^5.4.0` peer
 * range; it has no lifecycle events to build a recovery on (`subscribersReady` fires before the Cluster
 * is ready, and also after a subscriber failed to start; `-node` is shared with the command pool); and
 * it resubscribes on its own without waiting for the answer, so reading the gap after it would race the
 * SSUBSCRIBE, while resubscribing ourselves as well grows its channel list by the whole interest on every
 * recovery (24 entries for 4 channels after 5 reconnects). The bus needs one connection to one slot's
 * owner whose `ready` starts a recovery; that is what this follower is.
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

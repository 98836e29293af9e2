/**
 * Epochs: the name of one event sequence (a memory bus, or one Redis history). Server-side only: it needs
 * randomness from `node:crypto`, and clients never create ids.
 */
import { randomBytes } from 'node:crypto';

/** A fresh epoch: base36 time plus randomness, never containing `-`. */
export function createEpoch(): string {
  return Date.now().toString(36) + randomBytes(4).toString('hex');
}

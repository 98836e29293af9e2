/**
 * A fixed-capacity queue of the newest items: a push is O(1) whatever the capacity, and the array a render
 * sees is copied once per flush, not once per event.
 */
export class RingBuffer<T> {
  private items: (T | undefined)[];
  private start = 0;
  private count = 0;

  /** @param cap - how many items are kept (at least 1). */
  constructor(private cap: number) {
    this.items = new Array<T | undefined>(cap);
  }

  /** How many items it keeps at most. */
  get capacity(): number {
    return this.cap;
  }

  /** How many items are held. */
  get size(): number {
    return this.count;
  }

  /** Add the newest item, dropping the oldest when full. */
  push(item: T): void {
    if (this.count < this.cap) {
      this.items[(this.start + this.count) % this.cap] = item;
      this.count++;
      return;
    }
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.cap;
  }

  /** The items, oldest first, as a new array. */
  toArray(): T[] {
    const out = new Array<T>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.items[(this.start + i) % this.cap] as T;
    return out;
  }

  /** Change the capacity, keeping the newest items. */
  resize(capacity: number): void {
    if (capacity === this.cap) return;
    const kept = this.toArray().slice(-capacity);
    this.cap = capacity;
    this.items = new Array<T | undefined>(capacity);
    this.start = 0;
    this.count = 0;
    for (const item of kept) this.push(item);
  }

  /** Drop everything. */
  clear(): void {
    this.items = new Array<T | undefined>(this.cap);
    this.start = 0;
    this.count = 0;
  }
}

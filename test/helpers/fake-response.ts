import { EventEmitter } from 'node:events';
import type { Response } from 'express';

/**
 * A stand-in for an Express response in unit tests of the stream's pure pieces: it records what is written
 * and reports back-pressure once `highWaterMark` bytes are buffered, until `drain()` is called.
 */
export class FakeResponse extends EventEmitter {
  readonly socket = null;
  readonly chunks: string[] = [];
  writableLength = 0;
  ended = false;
  destroyed = false;

  constructor(private readonly highWaterMark = Number.POSITIVE_INFINITY) {
    super();
  }

  write(bytes: Buffer): boolean {
    this.chunks.push(bytes.toString('utf8'));
    this.writableLength += bytes.length;
    return this.writableLength < this.highWaterMark;
  }

  cork(): void {}
  uncork(): void {}

  /** The client read everything. */
  drain(): void {
    this.writableLength = 0;
    this.emit('drain');
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    this.destroyed = true;
  }

  get text(): string {
    return this.chunks.join('');
  }

  asResponse(): Response {
    return this as unknown as Response;
  }
}

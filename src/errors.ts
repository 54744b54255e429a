/**
 * Typed errors thrown by bab. Configuration mistakes and out-of-range
 * arguments are plain `RangeError`s; the classes here are for conditions a
 * caller may want to catch and tell apart.
 *
 * @module
 */

/**
 * Thrown at once when a released {@linkcode Packet} or {@linkcode PooledBuffer}
 * is used again: released a second time, read through `bytes`, cloned or
 * sliced. The pool's counts are left exactly as they were before the bad call.
 *
 * @example Catching a double release
 * ```ts
 * import { BufferPool, ReleasedError } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
 * const packet = pool.tryAcquire()!.intoPacket(0, 8);
 * packet.release();
 * assert.throws(() => packet.release(), ReleasedError);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class ReleasedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was attempted on which released object.
   */
  constructor(message: string) {
    super(message);
    this.name = "ReleasedError";
  }
}

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

/**
 * Thrown when a pool object is used after {@linkcode BufferPool.detach}: the
 * worker gave its slot back, so it can no longer acquire or receive through
 * that object. Buffers and packets it still holds stay valid.
 *
 * @example Using a detached pool
 * ```ts
 * import { BufferPool, DetachedError } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, shared: true });
 * const worker = BufferPool.attach(pool.handle);
 * worker.detach();
 * assert.throws(() => worker.tryAcquire(), DetachedError);
 * ```
 */
export class DetachedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was attempted through the detached pool object.
   */
  constructor(message: string) {
    super(message);
    this.name = "DetachedError";
  }
}

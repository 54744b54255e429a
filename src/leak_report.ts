/**
 * Reports of packets, buffer handles and flush regions that were dropped
 * without being released, from a pool created with `leakDetection`.
 *
 * @module
 */

/**
 * How closely a pool watches for leaks: `"off"` (the default), `"sampled"`
 * (one object in 64 of each kind, cheap enough to leave on) or `"paranoid"`
 * (every object, with the stack of where it was made). Watched are the
 * {@linkcode Packet}s, {@linkcode PooledBuffer}s and {@linkcode FlushRegion}s
 * of that pool object.
 */
export type LeakDetection = "off" | "sampled" | "paranoid";

/**
 * What kind of object leaked: a {@linkcode Packet}, a {@linkcode PooledBuffer}
 * handle from `acquire`/`tryAcquire`, or a {@linkcode FlushRegion} from a
 * {@linkcode WriteFlusher}.
 */
export type LeakKind = "Packet" | "PooledBuffer" | "FlushRegion";

/**
 * An object that was garbage-collected while it still held a reference to
 * its buffer, as passed to {@linkcode BufferPoolOptions.onLeak}.
 *
 * @example Catching a leak in a test
 * ```ts
 * // Needs --v8-flags=--expose-gc for gc(), as this package's tests run.
 * import { BufferPool, type LeakReport } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const { promise: reported, resolve } = Promise.withResolvers<LeakReport>();
 * const pool = new BufferPool({
 *   bufferSize: 64,
 *   bufferCount: 4,
 *   leakDetection: "paranoid",
 *   onLeak: resolve,
 * });
 * (() => pool.tryAcquire()!.intoPacket(0, 8))(); // dropped, never released
 * (globalThis as unknown as { gc(): void }).gc();
 * const leak = await reported;
 * assert.equal(leak.kind, "Packet");
 * assert.match(leak.stack!, /packet made here/);
 * ```
 */
export interface LeakReport {
  /** What leaked. */
  readonly kind: LeakKind;
  /** The index of the buffer the object held; it stays in use for good. */
  readonly bufferIndex: number;
  /** The offset of the object's bytes in the buffer: 0 for a `PooledBuffer`. */
  readonly offset: number;
  /** The length of the object's bytes: the whole buffer for a `PooledBuffer`. */
  readonly length: number;
  /** Where the object was made: with `"paranoid"` detection only. */
  readonly stack: string | undefined;
}

/**
 * Reports of packets that were dropped without being released, from a pool
 * created with `leakDetection`.
 *
 * @module
 */

/**
 * How closely a pool watches for leaked packets: `"off"` (the default),
 * `"sampled"` (one packet in 64, cheap enough to leave on) or `"paranoid"`
 * (every packet, with the stack of where it was made).
 */
export type LeakDetection = "off" | "sampled" | "paranoid";

/**
 * A packet that was garbage-collected while it still held a reference to
 * its buffer, as passed to {@linkcode BufferPoolOptions.onLeak}.
 *
 * @example Catching a leak in a test
 * ```ts
 * // Needs --v8-flags=--expose-gc for gc(), as this package's tests run.
 * import { BufferPool, type LeakReport } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const leaks: LeakReport[] = [];
 * const pool = new BufferPool({
 *   bufferSize: 64,
 *   bufferCount: 4,
 *   leakDetection: "paranoid",
 *   onLeak: (leak) => leaks.push(leak),
 * });
 * (() => pool.tryAcquire()!.intoPacket(0, 8))(); // dropped, never released
 * (globalThis as unknown as { gc(): void }).gc();
 * await new Promise((resolve) => setTimeout(resolve, 0));
 * assert.equal(leaks.length, 1);
 * assert.match(leaks[0]!.stack!, /packet made here/);
 * ```
 */
export interface LeakReport {
  /** The index of the buffer the packet held; it stays in use for good. */
  readonly bufferIndex: number;
  /** The packet's offset in the buffer. */
  readonly offset: number;
  /** The packet's length. */
  readonly length: number;
  /** Where the packet was made: with `"paranoid"` detection only. */
  readonly stack: string | undefined;
}

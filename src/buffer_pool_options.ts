/**
 * What a {@linkcode BufferPool} is made with, and the plain values it hands
 * out: its options, the handle that lets workers attach, and its stats.
 *
 * @module
 */

import type { LeakDetection, LeakReport } from "./leak_report.ts";

/** Options for {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /** Bytes in each buffer: an integer from 1 to 2^30. */
  bufferSize: number;
  /** How many buffers the pool holds: an integer from 1 to 2^24. */
  bufferCount: number;
  /**
   * Buffers moved at a time between a worker's cache and the pool's free
   * stack: an integer from 1 to `bufferCount`. A cache holds up to twice
   * this many. Defaults to `bufferCount / 16`, clamped to 1..64.
   */
  batchSize?: number;
  /**
   * Back the pool with a `SharedArrayBuffer`, so that workers can attach to
   * it with {@linkcode BufferPool.attach} and pass packets with
   * {@linkcode Packet.send}. Defaults to false: a plain `ArrayBuffer`, and
   * no `Atomics` anywhere.
   */
  shared?: boolean;
  /**
   * Shared pools: how many workers (this one included) may be attached at
   * once; a detached worker's slot is reused. An integer from 1 to 4096.
   * Defaults to 16.
   */
  maxWorkers?: number;
  /**
   * Shared pools: how many sent packets one worker may have in flight, not
   * yet received. An integer from 1 to 2^20. Defaults to 16384.
   */
  maxInFlight?: number;
  /**
   * Watch for packets, buffer handles and flush regions garbage-collected
   * without `release()`: `"off"` (the default, which costs nothing),
   * `"sampled"` (one object in 64 of each kind) or `"paranoid"` (every
   * object, with the stack of where it was made). Applies to this pool
   * object; pass it to {@linkcode BufferPool.attach} in workers too.
   */
  leakDetection?: LeakDetection;
  /** Called for each leaked object found; by default one line on stderr. */
  onLeak?: (leak: LeakReport) => void;
}

/** Options for {@linkcode BufferPool.attach}: this worker's leak detection. */
export type AttachOptions = Pick<BufferPoolOptions, "leakDetection" | "onLeak">;

/**
 * The plain, structured-cloneable value that lets another worker attach to a
 * shared pool: `worker.postMessage(pool.handle)`, then
 * {@linkcode BufferPool.attach} there.
 */
export interface BufferPoolHandle {
  /** The pool's whole block of memory. */
  readonly block: SharedArrayBuffer;
}

/** Options for {@linkcode BufferPool.acquire}. */
export interface AcquireOptions {
  /** Aborting gives up the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A snapshot of a pool's counts, from {@linkcode BufferPool.stats}. */
export interface BufferPoolStats {
  /** Bytes in each buffer. */
  bufferSize: number;
  /** Buffers in the pool. */
  bufferCount: number;
  /** Buffers moved per refill or spill. */
  batchSize: number;
  /** Buffers nobody holds: on the free stack or in any worker's cache. */
  free: number;
  /** Buffers held by a handle, a packet or a packet in flight: `bufferCount - free`. */
  inUse: number;
  /** Free buffers in this worker's cache. */
  cached: number;
  /** Free buffers in each attached worker's cache, by worker slot; `-1` for a free slot. */
  cachedByWorker: number[];
  /** Workers attached to the pool, this one included. */
  workers: number;
  /** Calls to `acquire` in this worker waiting for a buffer. */
  waiters: number;
  /** Workers with at least one `acquire` waiting. */
  waitingWorkers: number;
}

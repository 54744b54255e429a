/**
 * {@linkcode BufferPool}: fixed-size buffers in one block of memory allocated
 * once, acquired and released with no allocation afterwards.
 *
 * @module
 */

import { type FreeStack, LocalFreeStack } from "./_free_stack.ts";
import {
  C_BATCH_SIZE,
  C_BUFFER_COUNT,
  C_BUFFER_SIZE,
  C_MAGIC,
  C_MAX_WORKERS,
  C_VERSION,
  computeLayout,
  H_NEXT,
  HEADER_WORDS,
  type Layout,
  LAYOUT_VERSION,
  MAGIC,
  MAX_BLOCK_BYTES,
  MAX_BUFFER_COUNT,
  MAX_BUFFER_SIZE,
} from "./_layout.ts";
import { PooledBuffer } from "./pooled_buffer.ts";
import { WaiterQueue } from "./waiter_queue.ts";

/** Options for {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /** Bytes in each buffer: an integer from 1 to 2^30. */
  bufferSize: number;
  /** How many buffers the pool holds: an integer from 1 to 2^24. */
  bufferCount: number;
  /**
   * Buffers moved at a time between this worker's cache and the pool's free
   * stack: an integer from 1 to `bufferCount`. The cache holds up to twice
   * this many. Defaults to `bufferCount / 16`, clamped to 1..64.
   */
  batchSize?: number;
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
  /** Buffers nobody holds: on the free stack or in a cache. */
  free: number;
  /** Buffers held by a handle or a packet: `bufferCount - free`. */
  inUse: number;
  /** Free buffers in this worker's cache. */
  cached: number;
  /** Calls to `acquire` waiting for a buffer. */
  waiters: number;
}

const MAX_DEFAULT_BATCH = 64;

/**
 * A pool of `bufferCount` buffers of `bufferSize` bytes, all in one block of
 * memory allocated when the pool is built. Acquiring and releasing a buffer
 * afterwards allocates nothing: each worker keeps a cache of free buffers and
 * moves them to and from the pool's free stack a batch at a time.
 *
 * When the pool is empty, {@linkcode BufferPool.tryAcquire} returns `null`
 * and {@linkcode BufferPool.acquire} waits; waiters are served first come,
 * first served.
 *
 * @example Acquire, write, release
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 64 });
 * {
 *   using buffer = pool.tryAcquire()!;
 *   buffer.bytes[0] = 42;
 *   assert.equal(pool.stats().inUse, 1);
 * } // `using` released it
 * assert.equal(pool.stats().inUse, 0);
 * ```
 *
 * @example Waiting for a buffer
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
 * const first = pool.tryAcquire()!;
 * const next = pool.acquire({ signal: AbortSignal.timeout(1000) });
 * first.release(); // goes straight to the waiter
 * (await next).release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class BufferPool {
  /** Bytes in each buffer. */
  readonly bufferSize: number;
  /** Buffers in the pool. */
  readonly bufferCount: number;
  /** Buffers moved at a time between a worker's cache and the free stack. */
  readonly batchSize: number;

  readonly #layout: Layout;
  readonly #block: ArrayBuffer;
  readonly #words: Int32Array;
  readonly #free: FreeStack;
  /** This worker's handle for each buffer, made on first acquire. */
  readonly #handles: (PooledBuffer | undefined)[];
  /** This worker's free buffers, a stack; the top is the next acquired. */
  readonly #cache: PooledBuffer[];
  #cached = 0;
  readonly #waiters: WaiterQueue<PooledBuffer> = new WaiterQueue();

  /**
   * Allocates the pool's whole block of memory.
   *
   * @param options Sizes of the pool.
   * @throws {RangeError} If a size is not an integer in its range, or the
   * block would be larger than one ArrayBuffer may be.
   */
  constructor(options: BufferPoolOptions) {
    const { bufferSize, bufferCount } = options;
    checkSize("bufferSize", bufferSize, 1, MAX_BUFFER_SIZE);
    checkSize("bufferCount", bufferCount, 1, MAX_BUFFER_COUNT);
    const batchSize = options.batchSize ??
      Math.max(1, Math.min(MAX_DEFAULT_BATCH, Math.floor(bufferCount / 16)));
    checkSize("batchSize", batchSize, 1, bufferCount, "bufferCount");

    const layout = computeLayout(bufferSize, bufferCount, batchSize, 1);
    if (layout.blockBytes > MAX_BLOCK_BYTES) {
      throw new RangeError(
        `Cannot create buffer pool: ${bufferCount} buffers of ${bufferSize} bytes need a ${layout.blockBytes}-byte block, over the limit of ${MAX_BLOCK_BYTES} bytes`,
      );
    }
    let block: ArrayBuffer;
    try {
      block = new ArrayBuffer(layout.blockBytes);
    } catch (cause) {
      throw new RangeError(
        `Cannot create buffer pool: allocating ${layout.blockBytes} bytes failed`,
        { cause },
      );
    }

    this.bufferSize = bufferSize;
    this.bufferCount = bufferCount;
    this.batchSize = batchSize;
    this.#layout = layout;
    this.#block = block;
    this.#words = new Int32Array(block, 0, layout.dataByte / 4);
    this.#free = new LocalFreeStack(this.#words, layout.headersWord);
    this.#handles = new Array(bufferCount);
    this.#cache = new Array(2 * batchSize);

    const words = this.#words;
    words[C_MAGIC] = MAGIC;
    words[C_VERSION] = LAYOUT_VERSION;
    words[C_BUFFER_SIZE] = bufferSize;
    words[C_BUFFER_COUNT] = bufferCount;
    words[C_BATCH_SIZE] = batchSize;
    words[C_MAX_WORKERS] = 1;
    // Push the highest batch first so that buffer 0 heads the top batch.
    const last = Math.ceil(bufferCount / batchSize) - 1;
    for (let b = last; b >= 0; b--) {
      const head = b * batchSize;
      const length = Math.min(batchSize, bufferCount - head);
      for (let i = head; i < head + length - 1; i++) {
        words[this.#header(i) + H_NEXT] = i + 1;
      }
      this.#free.push(head, length);
    }
  }

  /**
   * Acquires a buffer now if one is free.
   *
   * @returns The buffer's handle, holding one reference, or `null` when the
   * pool is empty.
   */
  tryAcquire(): PooledBuffer | null {
    if (this.#cached === 0 && !this.#refill()) return null;
    const buffer = this.#cache[--this.#cached]!;
    buffer._held = true;
    buffer._refs = 1;
    return buffer;
  }

  /**
   * Acquires a buffer, waiting for one to be released if the pool is empty.
   * Waiters are served in the order they called.
   *
   * @param options An optional `signal` to give up the wait.
   * @returns The buffer's handle, holding one reference.
   * @throws The signal's reason, if it aborts before a buffer is handed over.
   */
  acquire(options?: AcquireOptions): Promise<PooledBuffer> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const buffer = this.tryAcquire();
    if (buffer !== null) return Promise.resolve(buffer);
    return this.#waiters.wait(signal);
  }

  /**
   * Counts the pool's buffers now.
   *
   * @returns A new snapshot object.
   */
  stats(): BufferPoolStats {
    const free = this.#free.count() + this.#cached;
    return {
      bufferSize: this.bufferSize,
      bufferCount: this.bufferCount,
      batchSize: this.batchSize,
      free,
      inUse: this.bufferCount - free,
      cached: this.#cached,
      waiters: this.#waiters.size,
    };
  }

  /**
   * @ignore Called when the last reference to a buffer in this worker is
   * dropped: the oldest waiter gets it, or else the cache does.
   */
  _recycle(buffer: PooledBuffer): void {
    if (this.#waiters.size !== 0) {
      buffer._held = true;
      buffer._refs = 1;
      this.#waiters.grant(buffer);
      return;
    }
    this.#cache[this.#cached++] = buffer;
    if (this.#cached === this.#cache.length) this.#spill();
  }

  #header(index: number): number {
    return this.#layout.headersWord + index * HEADER_WORDS;
  }

  #handle(index: number): PooledBuffer {
    let handle = this.#handles[index];
    if (handle === undefined) {
      const { dataByte, bufferStride, bufferSize } = this.#layout;
      const view = new Uint8Array(
        this.#block,
        dataByte + index * bufferStride,
        bufferSize,
      );
      handle = this.#handles[index] = new PooledBuffer(this, index, view);
    }
    return handle;
  }

  /** Takes one batch from the free stack into the empty cache. */
  #refill(): boolean {
    const head = this.#free.pop();
    if (head < 0) return false;
    const words = this.#words;
    const length = this.#free.batchLength(head);
    let index = head;
    for (let i = 0; i < length; i++) {
      this.#cache[i] = this.#handle(index);
      index = words[this.#header(index) + H_NEXT]!;
    }
    this.#cached = length;
    return true;
  }

  /** Moves the top batch of the full cache to the free stack. */
  #spill(): void {
    const words = this.#words;
    const top = this.#cached;
    const bottom = top - this.batchSize;
    const cache = this.#cache;
    for (let i = bottom; i < top - 1; i++) {
      words[this.#header(cache[i]!.index) + H_NEXT] = cache[i + 1]!.index;
    }
    this.#free.push(cache[bottom]!.index, this.batchSize);
    this.#cached = bottom;
  }
}

function checkSize(
  name: string,
  value: number,
  min: number,
  max: number,
  maxName: string = String(max),
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const limit = maxName === String(max) ? maxName : `${maxName} (${max})`;
    throw new RangeError(
      `Cannot create buffer pool: ${name} must be an integer from ${min} to ${limit}, received ${value}`,
    );
  }
}

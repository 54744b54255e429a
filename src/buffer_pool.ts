/**
 * {@linkcode BufferPool}: fixed-size buffers in one block of memory allocated
 * once, acquired and released without allocating memory for them afterwards,
 * and shared by workers when the block is a `SharedArrayBuffer`.
 *
 * @module
 */

// A facade over PoolCore (src/_pool_core.ts), which wires this worker's side
// of each protocol; the hot paths go to the cache directly.

import type { BufferRecord } from "./_buffer_record.ts";
import { reportLeak } from "./_leak_detector.ts";
import { openBlock } from "./_pool_block.ts";
import { ATTACH, PoolCore } from "./_pool_core.ts";
import type { Waiter } from "./_waiter_queue.ts";
import type { WorkerCache } from "./_worker_cache.ts";
import type {
  AcquireOptions,
  AttachOptions,
  BufferPoolHandle,
  BufferPoolOptions,
  BufferPoolStats,
} from "./buffer_pool_options.ts";
import type { LeakDetection, LeakReport } from "./leak_report.ts";
import type { Packet } from "./packet.ts";
import { PooledBuffer } from "./pooled_buffer.ts";
import type { SendBatch, SendPacket } from "./send_packet.ts";

export type * from "./buffer_pool_options.ts";

/**
 * A pool of `bufferCount` buffers of `bufferSize` bytes, all in one block of
 * memory allocated when the pool is built. Acquiring and releasing a buffer
 * afterwards allocates no memory for it (each acquire makes only the small
 * handle it returns): each worker keeps a cache of free buffers and moves
 * them to and from the pool's free stack a batch at a time.
 *
 * When the pool is empty, {@linkcode BufferPool.tryAcquire} returns `null`
 * and {@linkcode BufferPool.acquire} waits; waiters are served first come,
 * first served.
 *
 * With `shared: true` the block is a `SharedArrayBuffer` that workers
 * {@linkcode BufferPool.attach} to, each with a pool object and cache of its
 * own, and packets move between them with no copy ({@linkcode Packet.send}).
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
 */
export class BufferPool {
  /** The `leakDetection` of pool objects made without one: `"off"`, or e.g. `"paranoid"` in tests. */
  static defaultLeakDetection: LeakDetection = "off";
  /** The `onLeak` of pool objects made without one: one line on stderr per leak by default. */
  static defaultOnLeak: (leak: LeakReport) => void = reportLeak;

  /** Bytes in each buffer. */
  readonly bufferSize: number;
  /** Buffers in the pool. */
  readonly bufferCount: number;
  /** Buffers moved at a time between a worker's cache and the free stack. */
  readonly batchSize: number;
  /** Whether the pool's memory is a `SharedArrayBuffer` that workers can attach to. */
  readonly shared: boolean;
  readonly #core: PoolCore;
  /** The core's cache, for the hot paths. */
  readonly #cache: WorkerCache;

  /**
   * Allocates the pool's whole block of memory.
   *
   * @example A pool of one thread, and one that workers share
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const local = new BufferPool({ bufferSize: 16 * 1024, bufferCount: 256 });
   * assert.equal(local.batchSize, 16); // bufferCount / 16 by default, 1 to 64
   * const shared = new BufferPool({ bufferSize: 1024, bufferCount: 64, shared: true });
   * assert.equal(shared.stats().workers, 1); // this pool object; others attach
   * assert.throws(() => new BufferPool({ bufferSize: 0, bufferCount: 1 }), RangeError);
   * ```
   *
   * @param options Sizes of the pool, and whether workers share it.
   * @throws {RangeError} If a size is not an integer in its range, or the
   * block would be larger than one ArrayBuffer may be.
   */
  constructor(options: BufferPoolOptions) {
    const core = this.#core = new PoolCore(options, {
      leakDetection: BufferPool.defaultLeakDetection,
      onLeak: BufferPool.defaultOnLeak,
    });
    this.#cache = core.cache;
    this.bufferSize = core.layout.bufferSize;
    this.bufferCount = core.layout.bufferCount;
    this.batchSize = core.layout.batchSize;
    this.shared = core.shared;
  }

  /**
   * Attaches this worker to a shared pool created in another worker (or in
   * this one): a new pool object over the same memory, with its own cache.
   *
   * @example Attaching where the handle was posted
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 8, shared: true });
   * const handle = structuredClone(pool.handle); // as `worker.postMessage(pool.handle)` delivers it
   * using there = BufferPool.attach(handle);
   * assert.equal(there.bufferCount, 8);
   * assert.equal(pool.stats().workers, 2);
   * ```
   *
   * @param handle The pool's {@linkcode BufferPool.handle}, as posted to this worker.
   * @param options Leak detection for this worker's pool object.
   * @returns This worker's pool object; {@linkcode BufferPool.detach} it when done.
   * @throws {TypeError} If the handle is not a bab pool's.
   * @throws {RangeError} If every worker slot is taken.
   */
  static attach(handle: BufferPoolHandle, options?: AttachOptions): BufferPool {
    const attaching = { ...options, bufferSize: 0, bufferCount: 0, [ATTACH]: openBlock(handle) };
    return new BufferPool(attaching);
  }

  /**
   * The value to post to a worker so it can {@linkcode BufferPool.attach}.
   *
   * @throws {TypeError} If the pool was not created with `shared: true`.
   */
  get handle(): BufferPoolHandle {
    return this.#core.handle();
  }

  /**
   * Acquires a buffer now if one is free to this worker: in its cache or on
   * the free stack (buffers idling in another worker's cache are reached
   * only by {@linkcode BufferPool.acquire}, which asks that worker to trim).
   *
   * @example Never waiting
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const buffer = pool.tryAcquire()!;
   * assert.equal(pool.tryAcquire(), null); // empty
   * buffer.release();
   * ```
   *
   * @returns A new handle on the buffer, holding one reference, or `null`
   * when none is free to this worker right now.
   * @throws {DetachedError} If this worker detached from the pool.
   */
  tryAcquire(): PooledBuffer | null {
    return this.#cache.takeHandle();
  }

  /**
   * Acquires a buffer, waiting for one to be released if the pool is empty.
   * Waiters in one worker are served in the order they called; a buffer
   * released in any worker can serve a waiter in any other.
   *
   * @example Waiting for a buffer, or giving up
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const first = pool.tryAcquire()!;
   * const next = pool.acquire({ signal: AbortSignal.timeout(1000) });
   * await assert.rejects(pool.acquire({ signal: AbortSignal.abort() })); // gave up
   * first.release(); // goes straight to the waiter
   * (await next).release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @param options An optional `signal` to give up the wait.
   * @returns A new handle on the buffer, holding one reference.
   * @throws The signal's reason, if it aborts before a buffer is handed over.
   * @throws {DetachedError} If this worker detached from the pool.
   */
  acquire(options?: AcquireOptions): Promise<PooledBuffer> {
    // Served at once, the common case makes one promise, not two.
    const cache = this.#cache;
    if (cache.waiting === 0 && !cache.detached && options?.signal?.aborted !== true) {
      const handle = cache.takeHandle();
      if (handle !== null) return Promise.resolve(handle);
    }
    return this.#handleOf(cache.acquire(options?.signal));
  }

  /**
   * Turns a {@linkcode SendPacket} from any worker into a packet in this one,
   * on the same memory. Each SendPacket can be received once.
   *
   * @example Receiving a packet sent from another worker
   * ```ts
   * import { BufferPool, ReleasedError } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, shared: true });
   * using there = BufferPool.attach(pool.handle); // usually in the other worker
   * const buffer = pool.tryAcquire()!;
   * buffer.bytes.set([7, 8, 9]);
   * const sent = buffer.intoPacket(0, 3).send(); // plain data: post it
   * using packet = there.receive(structuredClone(sent));
   * assert.deepEqual([...packet.bytes], [7, 8, 9]);
   * assert.throws(() => there.receive(sent), ReleasedError); // once only
   * ```
   *
   * @param sent The value {@linkcode Packet.send} returned, as posted here.
   * @returns A packet holding its own reference.
   * @throws {ReleasedError} If the SendPacket was already received.
   * @throws {TypeError} If it belongs to another pool, or this pool is not shared.
   * @throws {DetachedError} If this worker detached from the pool.
   */
  receive(sent: SendPacket): Packet {
    return this.#core.post.receive(sent);
  }

  /**
   * Hands packets to another worker in one go: a {@linkcode SendBatch} is a
   * small object around one `Int32Array`, so posting a thousand packets costs
   * about what posting one does. Each packet counts as released afterwards.
   *
   * @example Sending a thousand packets in one message
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 4, shared: true });
   * using there = BufferPool.attach(pool.handle); // usually in the other worker
   * const buffer = pool.tryAcquire()!;
   * const packets = Array.from({ length: 1000 }, (_, i) => buffer.toPacket(i * 8, i * 8 + 8));
   * buffer.release();
   * const batch = pool.sendBatch(packets); // post it: `worker.postMessage(batch)`
   * const received = there.receiveBatch(structuredClone(batch));
   * assert.equal(received.length, 1000);
   * for (const packet of received) packet.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @param packets Live packets of this pool; the array itself is not kept.
   * @returns The batch, to be received once with {@linkcode BufferPool.receiveBatch}.
   * @throws {TypeError} If the pool is not shared or a packet is from another pool.
   * @throws {ReleasedError} If a packet was released; no packet is sent then.
   * @throws {RangeError} If this worker already has `maxInFlight` sends in flight.
   */
  sendBatch(packets: readonly Packet[]): SendBatch {
    return this.#core.post.sendBatch(packets);
  }

  /**
   * Turns a {@linkcode SendBatch} from any worker into packets in this one,
   * on the same memory, in the order they were sent. Each batch can be
   * received once; {@linkcode BufferPool.sendBatch} shows how.
   *
   * @param batch The value {@linkcode BufferPool.sendBatch} returned, as posted here.
   * @returns A new array of packets, each holding its own reference.
   * @throws {ReleasedError} If the batch was already received.
   * @throws {TypeError} If it belongs to another pool, or this pool is not shared.
   * @throws {DetachedError} If this worker detached from the pool.
   */
  receiveBatch(batch: SendBatch): Packet[] {
    return this.#core.post.receiveBatch(batch);
  }

  /**
   * Gives this worker's cached buffers back to the shared pool and frees its
   * worker slot for another worker: what leaving a `using` scope does
   * (`[Symbol.dispose]` lists the effects). The pool that created the
   * memory is a worker like any other.
   *
   * @example A worker's pool object, detached at the end of its scope
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, shared: true });
   * let held;
   * {
   *   using worker = BufferPool.attach(pool.handle); // as in a worker's job
   *   held = worker.tryAcquire()!;
   *   assert.equal(pool.stats().workers, 2);
   * } // `worker.detach()` here
   * assert.equal(pool.stats().workers, 1);
   * held.release(); // still valid, and back in the shared pool now
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @throws {TypeError} If the pool is not shared.
   */
  detach(): void {
    if (!this.shared) throw new TypeError("Cannot detach from buffer pool: it is not shared");
    this.#core.end();
  }

  /**
   * Ends this pool object, for `using`: {@linkcode BufferPool.detach} for a
   * shared pool object, and the same for a pool of one thread, which has no
   * slot to free. Its cached buffers go back to the free stack; buffers,
   * packets and flush regions still held stay valid and go back when
   * released; `acquire()` calls still waiting, and any acquire or receive
   * through it from then on, reject with a {@linkcode DetachedError}
   * (writers waiting for a buffer fail the same way). Other workers' pool
   * objects go on as before, even when this one created the pool. Disposing
   * twice, or after `detach()`, does nothing.
   */
  [Symbol.dispose](): void {
    this.#core.end();
  }

  /**
   * This pool object's worker id in a shared pool, from 0 to `maxWorkers - 1`:
   * post it to the thread that may have to {@linkcode BufferPool.reclaim} it.
   *
   * @throws {TypeError} If the pool is not shared.
   */
  get workerId(): number {
    if (!this.shared) throw new TypeError("Cannot tell worker id: the pool is not shared");
    return this.#core.worker;
  }

  /**
   * Gives back everything a terminated worker held, so that the pool is
   * whole again and nobody waits on buffers that will never be released:
   * its cached buffers, the buffers it held alone (acquired, being written,
   * cut into packets), and its share of buffers it held with other workers.
   * Then frees its worker slot. Call it only after `worker.terminate()` (or
   * once the worker is otherwise known to be gone): buffers it still used
   * would be handed to others.
   *
   * Not recovered here: packets the dead worker sent that nobody will ever
   * receive; a flusher's token for a buffer its dead writer had begun to
   * flush, which comes back when that flusher closes; and, if the worker was
   * killed in the middle of a send or receive, the one share that operation
   * was moving, which leaves that buffer in use (a leak, never a buffer
   * handed out twice).
   *
   * @example Recovering from a crashed worker
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 8, shared: true });
   * // As a worker would: attach, take buffers, and die without releasing.
   * const doomed = BufferPool.attach(pool.handle);
   * const id = doomed.workerId;
   * doomed.tryAcquire();
   * doomed.tryAcquire()!.intoPacket().clone();
   * assert.equal(pool.stats().inUse, 2);
   *
   * assert.equal(pool.reclaim(id), 2);
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @param workerId The dead worker's {@linkcode BufferPool.workerId}.
   * @returns How many buffers came back to the free stack.
   * @throws {TypeError} If the pool is not shared.
   * @throws {RangeError} If the id is not another worker's slot number.
   */
  reclaim(workerId: number): number {
    if (!this.shared) throw new TypeError("Cannot reclaim: the pool is not shared");
    return this.#core.reclaim(workerId);
  }

  /**
   * Counts the pool's buffers now (other workers' caches as they are this instant).
   *
   * @example Where the buffers are
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 8, batchSize: 4 });
   * using _held = pool.tryAcquire()!; // the cache took a batch of 4 to give one
   * const { free, inUse, cached } = pool.stats();
   * assert.deepEqual({ free, inUse, cached }, { free: 7, inUse: 1, cached: 3 });
   * ```
   *
   * @returns A new snapshot object.
   */
  stats(): BufferPoolStats {
    return this.#core.stats();
  }

  // -- For the library's own users: writers, flushers and frame cutters --

  /** @ignore `tryAcquire` that returns the buffer's record: no handle to allocate. */
  _tryAcquireRecord(): BufferRecord | null {
    return this.#cache.take();
  }

  /** @ignore `acquire` that resolves to the buffer's record: no handle. */
  _acquireRecord(options?: AcquireOptions): Promise<BufferRecord> {
    return this.#cache.acquire(options?.signal);
  }

  /** @ignore `_acquireRecord` with a waiter the caller keeps, resolved within a release. */
  _waitRecord(waiter: Waiter<BufferRecord>): BufferRecord | null {
    return this.#cache.wait(waiter);
  }

  /** @ignore Takes back a waiter of `_waitRecord`; false if it was served already. */
  _cancelWait(waiter: Waiter<BufferRecord>): boolean {
    return this.#cache.cancel(waiter);
  }

  /** @ignore The block's Int32 words up to the data, for writers and flushers. */
  get _words(): Int32Array {
    return this.#core.words;
  }

  /** @ignore The pool's random id, shared by every worker's pool object. */
  get _id(): number {
    return this.#core.poolId;
  }

  /** @ignore The Int32 index of a buffer's header words. */
  _headerOf(index: number): number {
    return this.#core.headerOf(index);
  }

  /** @ignore Adds a reference that `_claim` takes over later, perhaps elsewhere: a token. */
  _lend(buffer: BufferRecord): void {
    buffer.lend();
  }

  /** @ignore Takes over a reference lent with `_lend`, in this worker's record. */
  _claim(index: number): BufferRecord {
    return this.#core.claim(index);
  }

  /** @ignore This worker's record of buffer `index`, taking no reference. */
  _recordOf(index: number): BufferRecord {
    return this.#core.records.get(index);
  }

  /** @ignore Worker slots in the pool's block: 1 for a one-worker pool. */
  get _maxWorkers(): number {
    return this.#core.layout.maxWorkers;
  }

  /** The handle for a buffer granted to an `acquire` that had to wait. */
  async #handleOf(waiting: Promise<BufferRecord>): Promise<PooledBuffer> {
    return new PooledBuffer(await waiting);
  }
}

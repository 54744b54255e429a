/**
 * {@linkcode BufferPool}: fixed-size buffers in one block of memory allocated
 * once, acquired and released without allocating memory for them afterwards,
 * and shared by workers when the block is a `SharedArrayBuffer`.
 *
 * @module
 */

import {
  fillFreeStack,
  type FreeStack,
  LocalFreeStack,
  pushAll,
  SharedFreeStack,
} from "./_free_stack.ts";
import {
  headerWord,
  type Layout,
  R_INDEX,
  R_LENGTH,
  R_OFFSET,
  SEND_RECORD_WORDS,
} from "./_layout.ts";
import { ReleasedError } from "./errors.ts";
import { isSharedArrayBuffer } from "./_shared_memory.ts";
import { Packet } from "./packet.ts";
import { PooledBuffer } from "./pooled_buffer.ts";
import { type BufferRecord, reclaimHeld, WorkerRecords } from "./_buffer_record.ts";
import type { SendBatch, SendPacket } from "./send_packet.ts";
import { SendTickets, takeTicket } from "./_send_tickets.ts";
import type { Waiter } from "./_waiter_queue.ts";
import { detachedError, WorkerCache } from "./_worker_cache.ts";
import { dropRegistration, waitingWorkers, wakeWaiters } from "./_cross_worker_wait.ts";
import { LeakDetector, reportLeak } from "./_leak_detector.ts";
import {
  allocateBlock,
  type Block,
  checkLeakDetection,
  claimSlot,
  freeDeadSlot,
  freeSlot,
  openBlock,
  poolIdOf,
  readSlots,
  writeControl,
} from "./_pool_block.ts";
import type {
  AcquireOptions,
  AttachOptions,
  BufferPoolHandle,
  BufferPoolOptions,
  BufferPoolStats,
} from "./buffer_pool_options.ts";

export type {
  AcquireOptions,
  AttachOptions,
  BufferPoolHandle,
  BufferPoolOptions,
  BufferPoolStats,
} from "./buffer_pool_options.ts";
import type { LeakDetection, LeakReport } from "./leak_report.ts";

/** The options key under which {@linkcode BufferPool.attach} passes the opened block. */
const ATTACH = Symbol("attach");

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
 * With `shared: true` the block is a `SharedArrayBuffer`: post
 * {@linkcode BufferPool.handle} to a worker and {@linkcode BufferPool.attach}
 * it there. Each worker then has its own pool object and cache over the same
 * memory, and packets move between workers with {@linkcode Packet.send} and
 * {@linkcode BufferPool.receive}, with no copy.
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
 *
 * @example Sharing a pool with a worker
 * ```ts ignore
 * // main.ts
 * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1024, shared: true });
 * const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
 * worker.postMessage(pool.handle);
 *
 * // worker.ts
 * self.onmessage = (event) => {
 *   const pool = BufferPool.attach(event.data); // its own cache, the same memory
 * };
 * ```
 */
export class BufferPool {
  /**
   * The `leakDetection` of pool objects made without one: `"off"` unless
   * changed, e.g. to `"paranoid"` for a whole test suite.
   *
   * @example Watching every pool of a test run
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * BufferPool.defaultLeakDetection = "paranoid";
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * pool.tryAcquire()!.intoPacket().release(); // handle and packet watched, released: no report
   * BufferPool.defaultLeakDetection = "off";
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  static defaultLeakDetection: LeakDetection = "off";
  /**
   * The `onLeak` of pool objects made without one: by default one line on
   * stderr per leak. A test suite can make it throw, so that a leak fails
   * the run.
   *
   * @example Failing a test run on any leak
   * ```ts
   * import { BufferPool, type LeakReport } from "@bab/bab";
   *
   * const before = BufferPool.defaultOnLeak;
   * BufferPool.defaultOnLeak = (leak: LeakReport) => {
   *   throw new Error(`leaked a ${leak.kind} of buffer ${leak.bufferIndex}\n${leak.stack}`);
   * };
   * BufferPool.defaultOnLeak = before;
   * ```
   */
  static defaultOnLeak: (leak: LeakReport) => void = reportLeak;

  /** Bytes in each buffer. */
  readonly bufferSize: number;
  /** Buffers in the pool. */
  readonly bufferCount: number;
  /** Buffers moved at a time between a worker's cache and the free stack. */
  readonly batchSize: number;
  /** Whether the pool's memory is a `SharedArrayBuffer` that workers can attach to. */
  readonly shared: boolean;

  readonly #layout: Layout;
  readonly #block: ArrayBuffer | SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #free: FreeStack;
  readonly #poolId: number;
  /** This worker's id: the number of its slot. */
  readonly #worker: number;
  /** This worker's record of each buffer, made on first use and kept. */
  readonly #records: WorkerRecords;
  /** This worker's free buffers and the acquires waiting for one. */
  readonly #cache: WorkerCache;
  /** Shared pools: this worker's send tickets. */
  readonly #tickets: SendTickets | null;
  #sendMark = 0;
  /** @ignore Watches this object's packets, handles and regions, when leak detection is on. */
  readonly _leaks: LeakDetector | null;

  /**
   * Allocates the pool's whole block of memory.
   *
   * @param options Sizes of the pool, and whether workers share it.
   * @throws {RangeError} If a size is not an integer in its range, or the
   * block would be larger than one ArrayBuffer may be.
   */
  constructor(options: BufferPoolOptions) {
    const attaching = (options as { [ATTACH]?: Block })[ATTACH];
    const { block, layout } = attaching ?? allocateBlock(options);
    this.bufferSize = layout.bufferSize;
    this.bufferCount = layout.bufferCount;
    this.batchSize = layout.batchSize;
    this.shared = isSharedArrayBuffer(block);
    this.#layout = layout;
    this.#block = block;
    const words = this.#words = new Int32Array(block, 0, layout.dataByte / 4);
    this.#free = this.shared
      ? new SharedFreeStack(words, layout)
      : new LocalFreeStack(words, layout);
    const detection = options.leakDetection ?? BufferPool.defaultLeakDetection;
    checkLeakDetection(detection);
    this._leaks = detection === "off"
      ? null
      : new LeakDetector(detection, options.onLeak ?? BufferPool.defaultOnLeak);
    if (attaching === undefined) {
      this.#poolId = writeControl(words, layout);
      fillFreeStack(this.#free, words, layout);
      this.#worker = 0;
    } else {
      this.#poolId = poolIdOf(words);
      this.#worker = claimSlot(words, layout);
    }
    this.#records = new WorkerRecords(this, block, words, layout, this.#worker);
    this.#tickets = this.shared ? new SendTickets(words, layout, this.#worker) : null;
    this.#cache = new WorkerCache(words, layout, this.#free, this.#records);
  }

  /**
   * Attaches this worker to a shared pool created in another worker (or in
   * this one): a new pool object over the same memory, with its own cache.
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
    if (!isSharedArrayBuffer(this.#block)) {
      throw new TypeError(
        "Cannot share buffer pool: it was created without shared: true, so its memory is not shared",
      );
    }
    return { block: this.#block };
  }

  /**
   * Acquires a buffer now if one is free to this worker: in its own cache
   * or on the pool's shared free stack. In a shared pool, free buffers
   * idling in another worker's cache are out of its reach; only
   * {@linkcode BufferPool.acquire} gets them, by asking that worker to trim.
   *
   * @returns A new handle on the buffer, holding one reference, or `null`
   * when none is free to this worker right now.
   * @throws {DetachedError} If this worker detached from the pool.
   */
  tryAcquire(): PooledBuffer | null {
    const record = this.#cache.take();
    return record === null ? null : new PooledBuffer(record);
  }

  /**
   * Acquires a buffer, waiting for one to be released if the pool is empty.
   * Waiters in one worker are served in the order they called; a buffer
   * released in any worker can serve a waiter in any other.
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
      const record = cache.take();
      if (record !== null) return Promise.resolve(new PooledBuffer(record));
    }
    return this.#handleOf(this._acquireRecord(options));
  }

  /**
   * Turns a {@linkcode SendPacket} from any worker into a packet in this one,
   * on the same memory. Each SendPacket can be received once.
   *
   * @param sent The value {@linkcode Packet.send} returned, as posted here.
   * @returns A packet holding its own reference.
   * @throws {ReleasedError} If the SendPacket was already received.
   * @throws {TypeError} If it belongs to another pool, or this pool is not shared.
   * @throws {DetachedError} If this worker detached from the pool.
   */
  receive(sent: SendPacket): Packet {
    const { index, offset, length } = sent;
    this.#checkRegion(index, offset, length);
    this.#takeTicket(sent, index);
    const buffer = this.#records.get(index);
    buffer.takeIn(1);
    return new Packet(buffer, offset, length);
  }

  /**
   * Gives this worker's cached buffers back to the shared pool and frees its
   * worker slot for another worker. Buffers and packets still held here stay
   * valid; each goes straight back to the shared pool when released.
   * Acquiring through this object afterwards throws a
   * {@linkcode DetachedError}, and so do the `acquire()` calls still waiting
   * here (they reject with it). The pool that created the memory is a worker
   * like any other: detaching it frees its slot, and the pool objects
   * attached elsewhere go on as before. Calling it again does nothing.
   *
   * @example Detaching a worker's pool object
   * ```ts
   * import { BufferPool, DetachedError } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, shared: true });
   * const worker = BufferPool.attach(pool.handle);
   * const held = worker.tryAcquire()!;
   * worker.detach();
   * assert.equal(pool.stats().workers, 1);
   * assert.throws(() => worker.tryAcquire(), DetachedError);
   * held.release(); // still valid, and back in the shared pool now
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @throws {TypeError} If the pool is not shared.
   */
  detach(): void {
    if (!this.shared) {
      throw new TypeError("Cannot detach from buffer pool: it is not shared");
    }
    this.#end();
  }

  /**
   * Ends this pool object, for `using`: what {@linkcode BufferPool.detach}
   * does, for a pool made with `shared: true` or attached, and the same for a
   * pool of one thread, which has no slot to free. Afterwards:
   *
   * - its cached buffers are back on the pool's free stack, where any
   *   worker's pool object can take them;
   * - buffers, packets and flush regions still held stay valid, and each
   *   goes back to the pool when released;
   * - the `acquire()` calls still waiting on it reject with a
   *   {@linkcode DetachedError}, and so does any acquire or receive through
   *   it from then on (writers that wait for a buffer fail the same way);
   * - in a shared pool, its worker slot is free, and the other workers' pool
   *   objects go on as before, including when this one created the pool:
   *   the memory lives as long as any worker refers to it, and its
   *   {@linkcode BufferPool.handle} still lets workers attach.
   *
   * Disposing twice, or after `detach()`, does nothing.
   *
   * @example Disposing a pool with a buffer held and an acquire waiting
   * ```ts
   * import { BufferPool, DetachedError } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const held = pool.tryAcquire()!;
   * const waiting = pool.acquire();
   * pool[Symbol.dispose](); // what the end of `using pool = ...`'s scope calls
   * await assert.rejects(waiting, DetachedError);
   * assert.throws(() => pool.tryAcquire(), DetachedError);
   * held.release(); // still valid, and back in the pool
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  [Symbol.dispose](): void {
    this.#end();
  }

  /** Gives back the cache, frees the slot and fails this object's waiters. */
  #end(): void {
    if (this.#cache.detached) return;
    this.#cache.end();
    freeSlot(this.#words, this.#layout, this.#worker);
  }

  /**
   * This pool object's worker id in a shared pool: the number of the worker
   * slot it holds, from 0 to `maxWorkers - 1`. Post it to the thread that
   * may have to {@linkcode BufferPool.reclaim} this worker's buffers.
   *
   * @throws {TypeError} If the pool is not shared.
   */
  get workerId(): number {
    if (!this.shared) throw new TypeError("Cannot tell worker id: the pool is not shared");
    return this.#worker;
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
    const layout = this.#layout;
    const { maxWorkers } = layout;
    if (!Number.isInteger(workerId) || workerId < 0 || workerId >= maxWorkers) {
      throw new RangeError(
        `Cannot reclaim worker ${workerId}: worker ids run from 0 to maxWorkers - 1 (${
          maxWorkers - 1
        })`,
      );
    }
    if (workerId === this.#worker && !this.#cache.detached) {
      throw new RangeError(`Cannot reclaim worker ${workerId}: it is this pool object's own`);
    }
    const words = this.#words;
    const freed = reclaimHeld(words, layout, workerId);
    pushAll(this.#free, words, layout, freed);
    dropRegistration(words, layout, workerId);
    freeDeadSlot(words, layout, workerId);
    wakeWaiters(words);
    return freed.length;
  }

  /**
   * Counts the pool's buffers now. In a shared pool the counts of other
   * workers' caches are read as they are this instant.
   *
   * @returns A new snapshot object.
   */
  stats(): BufferPoolStats {
    const cache = this.#cache;
    const own = cache.detached ? -1 : cache.cached;
    const slots = readSlots(this.#words, this.#layout, this.#worker, own);
    const free = this.#free.count() + slots.cached;
    return {
      bufferSize: this.bufferSize,
      bufferCount: this.bufferCount,
      batchSize: this.batchSize,
      free,
      inUse: this.bufferCount - free,
      cached: this.#cache.cached,
      cachedByWorker: slots.cachedByWorker,
      workers: slots.workers,
      waiters: this.#cache.waiting,
      waitingWorkers: waitingWorkers(this.#words),
    };
  }

  /**
   * Hands packets to another worker in one go: a {@linkcode SendBatch} is a
   * small object around one `Int32Array`, so posting a thousand packets costs
   * about what posting one does. Each packet counts as released afterwards.
   *
   * @param packets Live packets of this pool; the array itself is not kept.
   * @returns The batch, to be received once with {@linkcode BufferPool.receiveBatch}.
   * @throws {TypeError} If the pool is not shared or a packet is from another pool.
   * @throws {ReleasedError} If a packet was released; no packet is sent then.
   * @throws {RangeError} If this worker already has `maxInFlight` sends in flight.
   */
  sendBatch(packets: readonly Packet[]): SendBatch {
    this.#checkCanSend();
    // Check everything before changing anything, duplicates included.
    const mark = ++this.#sendMark;
    for (const packet of packets) {
      if (packet._buffer().pool !== this) {
        throw new TypeError("Cannot send packets: one belongs to another pool object");
      }
      if (packet._mark === mark) {
        throw new TypeError("Cannot send packets: the same packet is in the batch twice");
      }
      packet._mark = mark;
    }
    const tickets = this.#tickets!;
    const ticket = tickets.claim();
    const regions = new Int32Array(packets.length * SEND_RECORD_WORDS);
    let run: BufferRecord | undefined = undefined;
    let runLength = 0;
    for (let i = 0; i < packets.length; i++) {
      const packet = packets[i]!;
      const buffer = packet._buffer();
      const record = i * SEND_RECORD_WORDS;
      regions[record + R_INDEX] = buffer.index;
      regions[record + R_OFFSET] = packet._offset();
      regions[record + R_LENGTH] = packet.length;
      packet._forget();
      if (buffer !== run) {
        if (run !== undefined) run.moveOut(runLength);
        run = buffer;
        runLength = 0;
      }
      runLength++;
    }
    if (run !== undefined) run.moveOut(runLength);
    const stamp = tickets.publish(ticket);
    return { pool: this.#poolId, ticket, stamp, regions };
  }

  /**
   * Turns a {@linkcode SendBatch} from any worker into packets in this one,
   * on the same memory, in the order they were sent. Each batch can be
   * received once.
   *
   * @param batch The value {@linkcode BufferPool.sendBatch} returned, as posted here.
   * @returns A new array of packets, each holding its own reference.
   * @throws {ReleasedError} If the batch was already received.
   * @throws {TypeError} If it belongs to another pool, or this pool is not shared.
   * @throws {DetachedError} If this worker detached from the pool.
   */
  receiveBatch(batch: SendBatch): Packet[] {
    const { regions } = batch;
    const count = regions.length / SEND_RECORD_WORDS;
    if (!(regions instanceof Int32Array) || !Number.isInteger(count)) {
      throw new TypeError("Cannot receive batch: its regions are not triples in an Int32Array");
    }
    for (let record = 0; record < regions.length; record += SEND_RECORD_WORDS) {
      this.#checkRegion(
        regions[record + R_INDEX]!,
        regions[record + R_OFFSET]!,
        regions[record + R_LENGTH]!,
      );
    }
    this.#takeTicket(batch, -1);
    const packets: Packet[] = new Array(count);
    let run: BufferRecord | undefined = undefined;
    let runLength = 0;
    for (let i = 0; i < count; i++) {
      const record = i * SEND_RECORD_WORDS;
      const buffer = this.#records.get(regions[record + R_INDEX]!);
      if (buffer !== run) {
        if (run !== undefined) run.takeIn(runLength);
        run = buffer;
        runLength = 0;
      }
      runLength++;
      packets[i] = new Packet(buffer, regions[record + R_OFFSET]!, regions[record + R_LENGTH]!);
    }
    if (run !== undefined) run.takeIn(runLength);
    return packets;
  }

  /**
   * @ignore `tryAcquire` for the library's own users, who hold their
   * reference through the buffer's record with no handle to allocate.
   */
  _tryAcquireRecord(): BufferRecord | null {
    return this.#cache.take();
  }

  /** @ignore `acquire` for the library's own users: the buffer's record, no handle. */
  _acquireRecord(options?: AcquireOptions): Promise<BufferRecord> {
    return this.#cache.acquire(options?.signal);
  }

  /**
   * @ignore `_acquireRecord` for a caller that waits again and again (a
   * writer for its next buffer) with a waiter of its own: no promise and no
   * signal per wait. Returns the buffer if one is free now; otherwise queues
   * the waiter, whose `resolve` gets the buffer (or `reject` the detach
   * error) later, synchronously, from within a release: it must defer its
   * work. {@link _cancelWait} takes it back.
   *
   * @throws {DetachedError} If this pool object was detached.
   */
  _waitRecord(waiter: Waiter<BufferRecord>): BufferRecord | null {
    return this.#cache.wait(waiter);
  }

  /** @ignore Takes back a waiter of `_waitRecord`; false if it was served already. */
  _cancelWait(waiter: Waiter<BufferRecord>): boolean {
    return this.#cache.cancel(waiter);
  }

  /** @ignore The block's Int32 words up to the data, for writers and flushers. */
  get _words(): Int32Array {
    return this.#words;
  }

  /** @ignore The pool's random id, shared by every worker's pool object. */
  get _id(): number {
    return this.#poolId;
  }

  /** @ignore The Int32 index of a buffer's header words. */
  _headerOf(index: number): number {
    return this.#header(index);
  }

  /**
   * @ignore Adds a reference to a buffer that {@linkcode BufferPool._claim}
   * takes over later, perhaps in another worker: a flusher's token.
   */
  _lend(buffer: BufferRecord): void {
    buffer.lend();
  }

  /** @ignore Takes over a reference lent with `_lend`, in this worker's record. */
  _claim(index: number): BufferRecord {
    const buffer = this.#records.get(index);
    buffer.claimLent();
    return buffer;
  }

  /**
   * @ignore Makes a SendPacket of a packet's region, moving one of this
   * worker's references to it.
   */
  _send(buffer: BufferRecord, offset: number, length: number): SendPacket {
    this.#checkCanSend();
    const tickets = this.#tickets!;
    const ticket = tickets.claim();
    buffer.moveOut(1);
    const stamp = tickets.publish(ticket);
    return { pool: this.#poolId, index: buffer.index, offset, length, ticket, stamp };
  }

  #checkCanSend(): void {
    if (!this.shared) {
      throw new TypeError(
        "Cannot send packet: its pool was created without shared: true, so no other worker can see it",
      );
    }
  }

  /**
   * @ignore Called when the last reference to a buffer in this worker is
   * dropped: the buffer is free once no other worker holds it, and goes to
   * the oldest waiter here, or to another worker that waits, or the cache.
   */
  _recycle(buffer: BufferRecord): void {
    this.#cache.put(buffer);
  }

  #header(index: number): number {
    return headerWord(this.#layout, index);
  }

  /** The handle for a buffer granted to an `acquire` that had to wait. */
  async #handleOf(waiting: Promise<BufferRecord>): Promise<PooledBuffer> {
    return new PooledBuffer(await waiting);
  }

  /** Checks that a sent region lies within this pool. */
  #checkRegion(index: number, offset: number, length: number): void {
    const { bufferCount, bufferSize } = this.#layout;
    if (
      index >>> 0 !== index || index >= bufferCount || offset >>> 0 !== offset ||
      length >>> 0 !== length || offset + length > bufferSize
    ) {
      throw new TypeError(
        `Cannot receive packet: buffer ${index} at [${offset}, ${
          offset + length
        }) is outside this pool of ${bufferCount} buffers of ${bufferSize} bytes`,
      );
    }
  }

  /**
   * Takes a send's ticket back: exactly one receive anywhere succeeds.
   * `index` names the packet's buffer for messages; -1 for a batch.
   */
  #takeTicket(sent: { pool: number; ticket: number; stamp: number }, index: number): void {
    if (this.#cache.detached) throw detachedError("receive", this.shared);
    const what = index < 0 ? "batch" : `packet of buffer ${index}`;
    if (!this.shared || sent.pool !== this.#poolId) {
      throw new TypeError(
        `Cannot receive ${what}: it was sent from pool ${sent.pool}, and this is ${
          this.shared ? `pool ${this.#poolId}` : "a pool that is not shared"
        }`,
      );
    }
    if (!takeTicket(this.#words, this.#layout, sent.ticket, sent.stamp)) {
      throw new ReleasedError(`Cannot receive ${what}: it was already received`);
    }
  }
}

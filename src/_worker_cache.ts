// This worker's free buffers (its cache) and the acquires waiting for one.
//
// The cache is a stack of records: an acquire pops the top and a release
// pushes it back, touching no shared word (S_CACHED, this slot's count for
// stats, is a plain store). An empty cache refills with one batch popped from
// the free stack; a full one (twice the batch size) spills its top batch, so
// that a worker going back and forth across the boundary never ping-pongs.
// Buffers in the cache of a shared pool's worker are marked its own (H_OWNER),
// so that a reclaim finds them if it dies.
//
// A freed buffer goes to the oldest acquire waiting here first, then to the
// cache. During hand-off it goes to the free stack instead: while another
// worker waits for buffers (after a trim request, see _cross_worker_wait.ts),
// or for good once this pool object ended.

import {
  anyoneWaiting,
  CrossWorkerWait,
  type WaitingHost,
  wakeWaiters,
} from "./_cross_worker_wait.ts";
import { type BufferRecord, setOwner, type WorkerRecords } from "./_buffer_record.ts";
import { type FreeStack, linkNext, nextInBatch } from "./_free_stack.ts";
import { headerWord, type Layout, S_CACHED, slotWord } from "./_layout.ts";
import { type Waiter, WaiterQueue } from "./_waiter_queue.ts";
import { DetachedError } from "./errors.ts";
import { PooledBuffer } from "./pooled_buffer.ts";

/** The error for acting through a pool object that ended (`action`: "acquire", ...). */
export function detachedError(action: string, shared: boolean): DetachedError {
  return new DetachedError(
    shared
      ? `Cannot ${action} through this pool object: this worker detached from the pool; attach again with BufferPool.attach()`
      : `Cannot ${action} through this pool object: it was disposed; create a new pool`,
  );
}

/** One pool object's cache of free buffers and its waiting acquires. */
export class WorkerCache implements WaitingHost {
  readonly #words: Int32Array;
  readonly #layout: Layout;
  readonly #free: FreeStack;
  readonly #records: WorkerRecords;
  /** Int32 index of this worker's S_CACHED. */
  readonly #cachedWord: number;
  /** This worker as H_OWNER names it (slot + 1); 0 in a pool of one worker, which marks nothing. */
  readonly #owner: number;
  /** The free buffers; the top is the next acquired. */
  readonly #stack: BufferRecord[];
  #count = 0;
  readonly #waiters: WaiterQueue<BufferRecord>;
  /** Shared pools: waiting for buffers that other workers free. */
  readonly #cross: CrossWorkerWait | null;
  /**
   * Freed buffers go to the free stack, not the cache. A plain field, so the
   * release path reads no shared word until someone actually waits.
   */
  #handoff = false;
  #detached = false;

  constructor(words: Int32Array, layout: Layout, free: FreeStack, records: WorkerRecords) {
    this.#words = words;
    this.#layout = layout;
    this.#free = free;
    this.#records = records;
    this.#cachedWord = slotWord(layout, records.worker) + S_CACHED;
    this.#owner = records.shared ? records.worker + 1 : 0;
    this.#stack = new Array(2 * layout.batchSize);
    this.#waiters = new WaiterQueue(() => this.#afterLastWaiter());
    this.#cross = records.shared ? new CrossWorkerWait(words, layout, records.worker, this) : null;
    this.#cross?.listen();
  }

  /** Free buffers in the cache. */
  get cached(): number {
    return this.#count;
  }

  /** Acquires waiting here. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Whether the pool object ended (detached or disposed). */
  get detached(): boolean {
    return this.#detached;
  }

  /**
   * Takes a free buffer, holding its first reference: from the cache, or
   * from the free stack into it. Null if neither has one.
   *
   * @throws {DetachedError} If the pool object ended.
   */
  take(): BufferRecord | null {
    if (this.#count === 0 && !this.#refillToTake()) return null;
    const record = this.#stack[--this.#count]!;
    this.#words[this.#cachedWord] = this.#count;
    record.acquire();
    return record;
  }

  /**
   * {@link take} in a new handle, for a user: one function, not a call of
   * take() and the handle made by its caller, which cost a third more on the
   * hottest path.
   */
  takeHandle(): PooledBuffer | null {
    if (this.#count === 0 && !this.#refillToTake()) return null;
    const record = this.#stack[--this.#count]!;
    this.#words[this.#cachedWord] = this.#count;
    record.acquire();
    return new PooledBuffer(record);
  }

  /** Takes a free buffer, or waits for one behind the acquires already waiting. */
  acquire(signal: AbortSignal | undefined): Promise<BufferRecord> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#detached) return Promise.reject(detachedError("acquire", this.#records.shared));
    if (this.#waiters.size === 0) {
      const record = this.take();
      if (record !== null) return Promise.resolve(record);
    }
    const waiting = this.#waiters.wait(signal, undefined);
    this.#cross?.register();
    return waiting;
  }

  /**
   * {@link acquire} with a waiter the caller keeps: the buffer if one is free
   * now, or null once `waiter` is queued; its `resolve` is called from within
   * a release, synchronously.
   *
   * @throws {DetachedError} If the pool object ended.
   */
  wait(waiter: Waiter<BufferRecord>): BufferRecord | null {
    if (this.#detached) throw detachedError("acquire", this.#records.shared);
    if (this.#waiters.size === 0) {
      const record = this.take();
      if (record !== null) return record;
    }
    this.#waiters.push(waiter);
    this.#cross?.register();
    return null;
  }

  /** Takes back a waiter of {@link wait}; false if it was served already. */
  cancel(waiter: Waiter<BufferRecord>): boolean {
    return this.#waiters.cancel(waiter);
  }

  /**
   * A buffer came free in this worker: it goes to the oldest acquire waiting
   * here, or to the free stack during hand-off, or to the cache.
   */
  put(record: BufferRecord): void {
    if (this.#waiters.size !== 0) {
      record.acquire();
      this.#waiters.grant(record);
      this.#afterLastWaiter();
      return;
    }
    if (this.#handoff && this.#handOff(record)) return;
    this.#stack[this.#count++] = record;
    if (this.#count === this.#stack.length) this.#pushTop(this.#layout.batchSize);
    else this.#words[this.#cachedWord] = this.#count;
  }

  /**
   * Ends the pool object: the cache goes to the free stack, hand-off starts
   * for good, the records detach and the waiting acquires fail.
   */
  end(): void {
    this.#handoff = true;
    this.#spillAll();
    this.#records.detach();
    this.#detached = true;
    this.#waiters.rejectAll(detachedError("acquire", this.#records.shared));
    this.#afterLastWaiter();
    this.#cross?.end();
  }

  serveWaiters(): boolean {
    const waiters = this.#waiters;
    while (waiters.size !== 0 && (this.#count !== 0 || this.#refill())) {
      const record = this.#stack[--this.#count]!;
      record.acquire();
      waiters.grant(record);
    }
    this.#words[this.#cachedWord] = this.#count;
    return waiters.size !== 0;
  }

  shareSurplus(): void {
    if (this.#count !== 0 && anyoneWaiting(this.#words)) this.#spillAll();
  }

  trim(): void {
    if (this.#waiters.size !== 0) return;
    this.#handoff = true;
    this.#spillAll();
  }

  /** Ends the registration once no waiter is left here. */
  #afterLastWaiter(): void {
    if (this.#waiters.size === 0) this.#cross?.cancel();
  }

  /** Gives a freed buffer to the free stack while hand-off lasts; false once it is over. */
  #handOff(record: BufferRecord): boolean {
    if (this.#detached) {
      // The slot may have a new owner: no cache, no published count.
      setOwner(this.#words, headerWord(this.#layout, record.index), 0);
      this.#free.push(record.index, 1);
      this.#wake();
      return true;
    }
    if (anyoneWaiting(this.#words)) {
      this.#stack[this.#count++] = record;
      this.#spillAll();
      return true;
    }
    this.#handoff = false;
    this.#cross?.listen();
    return false;
  }

  #refillToTake(): boolean {
    if (this.#detached) throw detachedError("acquire", this.#records.shared);
    return this.#refill();
  }

  /** Takes one batch from the free stack into the empty cache. */
  #refill(): boolean {
    const free = this.#free;
    const head = free.pop();
    if (head < 0) return false;
    const words = this.#words;
    const layout = this.#layout;
    const owner = this.#owner;
    const length = free.batchLength(head);
    let index = head;
    for (let i = 0; i < length; i++) {
      this.#stack[i] = this.#records.get(index);
      if (owner !== 0) setOwner(words, headerWord(layout, index), owner);
      index = nextInBatch(words, layout, index);
    }
    this.#count = length;
    return true;
  }

  /** Moves the whole cache to the free stack and wakes waiting workers. */
  #spillAll(): void {
    if (this.#count !== 0) this.#pushTop(this.#count);
    else this.#wake();
  }

  /** Moves the top `count` buffers of the cache to the free stack, as one batch. */
  #pushTop(count: number): void {
    const words = this.#words;
    const layout = this.#layout;
    const stack = this.#stack;
    const top = this.#count;
    const bottom = top - count;
    for (let i = bottom; i < top - 1; i++) {
      linkNext(words, layout, stack[i]!.index, stack[i + 1]!.index);
    }
    if (this.#owner !== 0) {
      for (let i = bottom; i < top; i++) setOwner(words, headerWord(layout, stack[i]!.index), 0);
    }
    this.#free.push(stack[bottom]!.index, count);
    this.#count = bottom;
    words[this.#cachedWord] = bottom;
    this.#wake();
  }

  #wake(): void {
    if (this.#cross !== null) wakeWaiters(this.#words);
  }
}

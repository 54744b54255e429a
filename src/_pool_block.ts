// A pool's block, from its making to the slots pool objects attach through.
//
// Making: the options are checked and defaulted, the block is allocated, and
// its control words are written and its free stack filled once, before any
// other worker can see it.
// Opening: a handle posted from another worker is checked to hold a bab
// block of this layout version, whose shape the control words give.
// Attaching: each pool object over the block holds one worker slot: the
// creator takes slot 0, an attaching object the first free one with a CAS on
// S_STATE; detaching or reclaiming frees it for the next.

import type { BufferPoolHandle, BufferPoolOptions } from "./buffer_pool_options.ts";
import { fillFreeStack, type FreeStack, freeStackOf } from "./_free_stack.ts";
import {
  C_BATCH_SIZE,
  C_BUFFER_COUNT,
  C_BUFFER_SIZE,
  C_MAGIC,
  C_MAX_IN_FLIGHT,
  C_MAX_WORKERS,
  C_POOL_ID,
  C_VERSION,
  computeLayout,
  type Layout,
  LAYOUT_VERSION,
  LINE_BYTES,
  LINE_WORDS,
  MAGIC,
  MAX_BLOCK_BYTES,
  MAX_BUFFER_COUNT,
  MAX_BUFFER_SIZE,
  MAX_IN_FLIGHT,
  MAX_WORKERS,
  S_CACHED,
  S_STATE,
  slotWord,
  wordsBeforeData,
} from "./_layout.ts";
import {
  isSharedArrayBuffer,
  sharedMemoryAvailable,
  sharedMemoryUnavailable,
} from "./_shared_memory.ts";

const MAX_DEFAULT_BATCH = 64;
const DEFAULT_MAX_WORKERS = 16;
const DEFAULT_MAX_IN_FLIGHT = 16384;

/** A block and where everything lives in it. */
export interface Block {
  readonly block: ArrayBuffer | SharedArrayBuffer;
  readonly layout: Layout;
}

/** What a pool object starts from on its block. */
export interface PoolStart {
  /** The block's Int32 words up to the data. */
  readonly words: Int32Array;
  readonly free: FreeStack;
  /** The pool's random id, the same for every pool object on the block. */
  readonly poolId: number;
  /** The pool object's worker id: the number of the slot it took. */
  readonly worker: number;
}

/**
 * Starts a pool object on `block`: as its creator, which writes the control
 * words, fills the free stack and takes slot 0, or by attaching, which
 * takes the first free slot.
 *
 * @throws {RangeError} If attaching finds every slot taken.
 */
export function startPool({ block, layout }: Block, creating: boolean): PoolStart {
  const words = new Int32Array(block, 0, wordsBeforeData(layout));
  const free = freeStackOf(words, layout, isSharedArrayBuffer(block));
  if (!creating) return { words, free, poolId: poolIdOf(words), worker: claimSlot(words, layout) };
  const poolId = writeControl(words, layout);
  fillFreeStack(free, words, layout);
  return { words, free, poolId, worker: 0 };
}

// -- Making --

/**
 * Checks `options`, fills in the defaults and allocates a new block whose
 * control words are still to be written ({@link writeControl}).
 *
 * @throws {RangeError} If a size is out of its range or the block too large.
 */
export function allocateBlock(options: BufferPoolOptions): Block {
  const shared = options.shared ?? false;
  if (shared && !sharedMemoryAvailable()) {
    throw sharedMemoryUnavailable("create a shared buffer pool");
  }
  const { bufferSize, bufferCount } = options;
  checkSize("bufferSize", bufferSize, 1, MAX_BUFFER_SIZE);
  checkSize("bufferCount", bufferCount, 1, MAX_BUFFER_COUNT);
  const batchSize = options.batchSize ??
    Math.max(1, Math.min(MAX_DEFAULT_BATCH, Math.floor(bufferCount / 16)));
  checkSize("batchSize", batchSize, 1, bufferCount, "bufferCount");
  const maxWorkers = shared ? options.maxWorkers ?? DEFAULT_MAX_WORKERS : 1;
  checkSize("maxWorkers", maxWorkers, 1, MAX_WORKERS);
  const maxInFlight = shared ? options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT : 0;
  if (shared) checkSize("maxInFlight", maxInFlight, 1, MAX_IN_FLIGHT);
  const layout = computeLayout(bufferSize, bufferCount, batchSize, maxWorkers, maxInFlight);
  const bytes = layout.blockBytes;
  if (bytes > MAX_BLOCK_BYTES) {
    throw new RangeError(
      `Cannot create buffer pool: ${bufferCount} buffers of ${bufferSize} bytes need a ${bytes}-byte block, over the limit of ${MAX_BLOCK_BYTES} bytes`,
    );
  }
  try {
    return { block: shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes), layout };
  } catch (cause) {
    throw new RangeError(`Cannot create buffer pool: allocating ${bytes} bytes failed`, { cause });
  }
}

/** Writes a new block's control words and takes slot 0 for its creator; returns the new pool id. */
function writeControl(words: Int32Array, layout: Layout): number {
  const poolId = (Math.random() * 0x7fffffff) | 1;
  words[C_MAGIC] = MAGIC;
  words[C_VERSION] = LAYOUT_VERSION;
  words[C_BUFFER_SIZE] = layout.bufferSize;
  words[C_BUFFER_COUNT] = layout.bufferCount;
  words[C_BATCH_SIZE] = layout.batchSize;
  words[C_MAX_WORKERS] = layout.maxWorkers;
  words[C_MAX_IN_FLIGHT] = layout.maxInFlight;
  words[C_POOL_ID] = poolId;
  words[slotWord(layout, 0) + S_STATE] = 1;
  return poolId;
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

// -- Opening --

/**
 * The block of a handle posted from another worker, checked to be a bab
 * pool's of this layout version.
 *
 * @throws {TypeError} If it is not.
 */
export function openBlock(handle: BufferPoolHandle): Block {
  if (!sharedMemoryAvailable()) throw sharedMemoryUnavailable("attach to buffer pool");
  const block = handle?.block;
  if (!isSharedArrayBuffer(block) || block.byteLength < LINE_BYTES) {
    throw new TypeError(
      "Cannot attach to buffer pool: the handle holds no SharedArrayBuffer; pass pool.handle of a pool created with shared: true",
    );
  }
  // The control words, on the block's first line.
  const control = new Int32Array(block, 0, LINE_WORDS);
  if (control[C_MAGIC] !== MAGIC || control[C_VERSION] !== LAYOUT_VERSION) {
    throw new TypeError(
      `Cannot attach to buffer pool: the block is not a bab pool of layout version ${LAYOUT_VERSION}`,
    );
  }
  const layout = computeLayout(
    control[C_BUFFER_SIZE]!,
    control[C_BUFFER_COUNT]!,
    control[C_BATCH_SIZE]!,
    control[C_MAX_WORKERS]!,
    control[C_MAX_IN_FLIGHT]!,
  );
  return { block, layout };
}

/** The id of the pool whose block `words` covers. */
function poolIdOf(words: Int32Array): number {
  return words[C_POOL_ID]!;
}

// -- Worker slots --

/**
 * Takes the first free worker slot for an attaching pool object; returns
 * the worker id (the slot's number).
 *
 * @throws {RangeError} If every slot is taken.
 */
function claimSlot(words: Int32Array, layout: Layout): number {
  const { maxWorkers } = layout;
  for (let worker = 0; worker < maxWorkers; worker++) {
    const slot = slotWord(layout, worker);
    if (Atomics.compareExchange(words, slot + S_STATE, 0, 1) === 0) {
      Atomics.store(words, slot + S_CACHED, 0);
      return worker;
    }
  }
  throw new RangeError(
    `Cannot attach to buffer pool: all ${maxWorkers} worker slots are taken; detach a worker or create the pool with a larger maxWorkers`,
  );
}

/** Frees worker `worker`'s slot for the next pool object to attach. */
export function freeSlot(words: Int32Array, layout: Layout, worker: number): void {
  Atomics.store(words, slotWord(layout, worker) + S_STATE, 0);
}

/** Frees a dead worker's slot, whose cache a reclaim has emptied. */
export function freeDeadSlot(words: Int32Array, layout: Layout, worker: number): void {
  const slot = slotWord(layout, worker);
  Atomics.store(words, slot + S_CACHED, 0);
  Atomics.store(words, slot + S_STATE, 0);
}

/** What the slots say for stats: attached workers and their caches. */
export interface SlotCounts {
  /** Attached workers. */
  workers: number;
  /** Free buffers in all attached workers' caches. */
  cached: number;
  /** Free buffers in each attached worker's cache, by slot; -1 for a free slot. */
  cachedByWorker: number[];
}

/**
 * Reads every slot now. `worker`'s own cache count is `ownCached` (exact,
 * where the slot's word may lag); -1 reads it from the slot like the others.
 */
export function readSlots(
  words: Int32Array,
  layout: Layout,
  worker: number,
  ownCached: number,
): SlotCounts {
  const cachedByWorker: number[] = [];
  let cached = 0;
  let workers = 0;
  for (let i = 0; i < layout.maxWorkers; i++) {
    const slot = slotWord(layout, i);
    const count = i === worker && ownCached >= 0 ? ownCached : Atomics.load(words, slot + S_CACHED);
    cached += count;
    const attached = Atomics.load(words, slot + S_STATE) === 1;
    if (attached) workers++;
    cachedByWorker.push(attached ? count : -1);
  }
  return { workers, cached, cachedByWorker };
}

// One pool object's workings: the block it started on, and this worker's side
// of each protocol over it, wired together. BufferPool is its public face.
// The records of the buffers know their pool object through it (it is their
// RecordPool), and so do the packets, handles and flush regions on them,
// for its leak detector.
//
// Where each protocol lives, lowest first:
//   _layout.ts             where every word and byte of the block lives
//   _pool_block.ts         making, checking and opening the block; worker slots
//   _free_stack.ts         the shared stack of free batches
//   _buffer_record.ts      a buffer in this worker; the hybrid reference counts
//   _cross_worker_wait.ts  waiting for buffers across workers, trim requests
//   _worker_cache.ts       this worker's cache, its waiting acquires, hand-off
//   _send_tickets.ts       receiving each send exactly once
//   _packet_post.ts        SendPacket and SendBatch, made and received
//   _reclaim.ts            taking back what a dead worker held

import { type BufferRecord, type RecordPool, WorkerRecords } from "./_buffer_record.ts";
import { waitingWorkers } from "./_cross_worker_wait.ts";
import type { FreeStack } from "./_free_stack.ts";
import { headerWord, type Layout } from "./_layout.ts";
import { type LeakDetector, leakDetectorFor } from "./_leak_detector.ts";
import { PacketPost } from "./_packet_post.ts";
import { allocateBlock, type Block, freeSlot, readSlots, startPool } from "./_pool_block.ts";
import { reclaimWorker } from "./_reclaim.ts";
import { SendTickets } from "./_send_tickets.ts";
import { isSharedArrayBuffer } from "./_shared_memory.ts";
import { WorkerCache } from "./_worker_cache.ts";
import type {
  BufferPoolHandle,
  BufferPoolOptions,
  BufferPoolStats,
} from "./buffer_pool_options.ts";
import type { LeakDetection, LeakReport } from "./leak_report.ts";
import type { SendPacket } from "./send_packet.ts";

/** The options key under which BufferPool.attach passes the block it opened. */
export const ATTACH = Symbol("attach");

/** The leak detection a pool object gets when its options say nothing. */
export interface LeakDefaults {
  readonly leakDetection: LeakDetection;
  readonly onLeak: (leak: LeakReport) => void;
}

/** One pool object's workings; see the top of this file. */
export class PoolCore implements RecordPool {
  readonly _leaks: LeakDetector | null;
  readonly block: ArrayBuffer | SharedArrayBuffer;
  readonly layout: Layout;
  readonly shared: boolean;
  /** The block's Int32 words up to the data. */
  readonly words: Int32Array;
  readonly free: FreeStack;
  /** The pool's random id, the same for every pool object on the block. */
  readonly poolId: number;
  /** This pool object's worker id: the number of its slot. */
  readonly worker: number;
  readonly records: WorkerRecords;
  readonly cache: WorkerCache;
  readonly post: PacketPost;

  /**
   * Allocates a block for `options`, or starts on the one it carries under
   * {@link ATTACH}.
   *
   * @throws {RangeError} If an option is out of its range, or every slot is taken.
   */
  constructor(options: BufferPoolOptions, defaults: LeakDefaults) {
    const attaching = (options as { [ATTACH]?: Block })[ATTACH];
    const opened = attaching ?? allocateBlock(options);
    // Checked before a slot is taken, so that a bad option takes none.
    this._leaks = leakDetectorFor(
      options.leakDetection ?? defaults.leakDetection,
      options.onLeak ?? defaults.onLeak,
    );
    const { words, free, poolId, worker } = startPool(opened, attaching === undefined);
    const { block, layout } = opened;
    this.block = block;
    this.layout = layout;
    this.shared = isSharedArrayBuffer(block);
    this.words = words;
    this.free = free;
    this.poolId = poolId;
    this.worker = worker;
    this.records = new WorkerRecords(this, block, words, layout, worker);
    this.cache = new WorkerCache(words, layout, free, this.records);
    const tickets = this.shared ? new SendTickets(words, layout, worker) : null;
    this.post = new PacketPost(this, this.records, tickets, poolId);
  }

  /**
   * The value another worker attaches with.
   *
   * @throws {TypeError} If the block is not shared.
   */
  handle(): BufferPoolHandle {
    if (!isSharedArrayBuffer(this.block)) {
      throw new TypeError(
        "Cannot share buffer pool: it was created without shared: true, so its memory is not shared",
      );
    }
    return { block: this.block };
  }

  /** The Int32 index of a buffer's header words. */
  headerOf(index: number): number {
    return headerWord(this.layout, index);
  }

  /** Takes over a reference lent with BufferRecord.lend, in this worker's record. */
  claim(index: number): BufferRecord {
    const record = this.records.get(index);
    record.claimLent();
    return record;
  }

  /** Gives back the cache, fails the waiting acquires and frees the slot; once. */
  end(): void {
    if (this.cache.detached) return;
    this.cache.end();
    freeSlot(this.words, this.layout, this.worker);
  }

  /**
   * Takes back what dead worker `workerId` held; see BufferPool.reclaim.
   *
   * @throws {RangeError} If the id is not another worker's slot number.
   */
  reclaim(workerId: number): number {
    const self = this.cache.detached ? -1 : this.worker;
    return reclaimWorker(this.words, this.layout, this.free, workerId, self);
  }

  /** Counts the pool's buffers now. */
  stats(): BufferPoolStats {
    const { cache, layout } = this;
    const own = cache.detached ? -1 : cache.cached;
    const slots = readSlots(this.words, layout, this.worker, own);
    const free = this.free.count() + slots.cached;
    return {
      bufferSize: layout.bufferSize,
      bufferCount: layout.bufferCount,
      batchSize: layout.batchSize,
      free,
      inUse: layout.bufferCount - free,
      cached: cache.cached,
      cachedByWorker: slots.cachedByWorker,
      workers: slots.workers,
      waiters: cache.waiting,
      waitingWorkers: waitingWorkers(this.words),
    };
  }

  _recycle(record: BufferRecord): void {
    this.cache.put(record);
  }

  _send(record: BufferRecord, offset: number, length: number): SendPacket {
    return this.post.send(record, offset, length);
  }
}

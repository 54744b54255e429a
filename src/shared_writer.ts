/**
 * One writer for many workers: they claim space in the same buffer with one
 * compare-and-swap each, and the flusher gets the buffers whole, in order.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import { ClosedError } from "./errors.ts";
import type { ReserveOptions } from "./writer_options.ts";
import type { WriteFlusher, WriteFlusherHandle } from "./write_flusher.ts";
import type { SharedReservation } from "./shared_reservation.ts";
import type {
  SharedWriterAttachOptions,
  SharedWriterHandle,
  SharedWriterOptions,
} from "./shared_writer_options.ts";
import { SharedWriterCore } from "./_shared_writer_core.ts";
import { isSharedArrayBuffer } from "./_shared_memory.ts";
import { writerConfig } from "./_writer_config.ts";
import { registerPlacer } from "./_frame_placer.ts";
import {
  codecCode,
  initBlock,
  MAX_SHARED_BUFFER_SIZE as MAX_SIZE,
  MIN_RING_SLOTS,
  ringSlots,
  ringSlotsFor,
  sharedWriterWords,
  SW_BUFFER_SIZE,
  SW_CLOSED,
  SW_CODEC,
  SW_ID,
  SW_MAGIC,
  SW_MAGIC_VALUE,
  SW_POOL_ID,
  SW_WORKERS,
} from "./_shared_writer_block.ts";
import type { FrameCodec } from "./frame_codec.ts";

/**
 * A writer that several workers use at once: their messages are packed into
 * the same buffers, one after the other, and a full buffer goes to the
 * {@linkcode WriteFlusher} whole. Make it in one worker, post its
 * {@linkcode SharedWriter.handle} to the others, and
 * {@linkcode SharedWriter.attach} there.
 *
 * **Which writer?** A {@linkcode Writer} belongs to one worker and places a
 * message with no atomic operation at all; with N workers, each has its own
 * buffer, so a flush per tick sends N part-filled buffers. A SharedWriter
 * costs a compare-and-swap on a shared word per message and a fenced store
 * per commit (the cursor is contended when workers write at once), and
 * fills each buffer before the next: use it when the buffer is the unit
 * that matters, e.g. one datagram or one socket write of a fixed size, or
 * when many workers each write a little.
 *
 * Each worker's messages reach the flusher in the order it placed them.
 * Messages of different workers interleave in the order their space was
 * claimed. A message never spans two buffers: one that does not fit seals
 * the buffer and goes first in the next.
 *
 * The buffer switch is done by one worker, and finishes even if the call
 * that started it is aborted. A reservation held open holds back its whole
 * buffer and the ones after it (and new claims once the pool runs out, or
 * after 1,023 newer buffers in a pool of more; fewer with buffers over 1 MiB),
 * so a handle that holds one may not wait for the next buffer: that call
 * throws a `TypeError` instead of waiting forever. If a worker dies with
 * reservations open, {@linkcode SharedWriter.reclaim} settles them.
 *
 * @example Two writers' handles, one buffer
 * ```ts
 * import { BufferPool, lengthPrefix, SharedWriter, WriteFlusher } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 4, shared: true });
 * const flusher = new WriteFlusher(pool);
 * const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(2) });
 * // In another worker: SharedWriter.attach(pool, writer.handle, { codec: lengthPrefix(2) })
 * writer.tryWriteString("hi");
 * await writer.write(new Uint8Array([1, 2, 3]));
 * writer.close();
 * flusher.close();
 *
 * const bytes: number[] = [];
 * for await (const batch of flusher.readable) {
 *   for (const region of batch) {
 *     bytes.push(...region.bytes);
 *     region.release();
 *   }
 * }
 * assert.deepEqual(bytes, [0, 2, 104, 105, 0, 3, 1, 2, 3]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class SharedWriter {
  /** The id carried by this writer's {@linkcode FlushRegion}s. */
  readonly id: number;

  /** This worker's pool object. */
  readonly pool: BufferPool;

  /** What frames each message, or `null`: a message is its bytes and nothing else. */
  readonly codec: FrameCodec | null;

  readonly #core: SharedWriterCore;

  /**
   * Makes a shared writer of `pool`'s buffers for `flusher`.
   *
   * @example
   * ```ts
   * import { BufferPool, lengthPrefix, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 1500, bufferCount: 64, shared: true });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(2), flush: "manual" });
   * ```
   *
   * @param pool The pool (this worker's object of it).
   * @param flusher The flusher, or its handle posted from another worker.
   * @param options Id, codec and flush cadence.
   * @throws {TypeError} If the flusher takes another pool's buffers.
   * @throws {RangeError} If an option is out of range, or the pool's buffers
   * hold more than {@linkcode MAX_SHARED_BUFFER_SIZE} bytes.
   */
  constructor(
    pool: BufferPool,
    flusher: WriteFlusher | WriteFlusherHandle,
    options?: SharedWriterOptions,
  ) {
    let sw = attaching;
    attaching = null;
    const config = writerConfig(
      pool,
      flusher,
      sw === null ? options : { ...options, id: sw[SW_ID]! },
    );
    if (pool.bufferSize > MAX_SIZE) {
      throw new RangeError(
        `Cannot make shared writer: the pool's buffers hold ${pool.bufferSize} bytes; a shared writer's may hold at most ${MAX_SIZE}`,
      );
    }
    const code = codecCode(config.codec);
    if (sw === null) {
      const workers = pool.shared ? pool._maxWorkers : 0;
      const slots = ringSlotsFor(pool.bufferSize, pool.bufferCount);
      const bytes = sharedWriterWords(workers, slots) * 4;
      sw = new Int32Array(pool.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
      initBlock(sw, pool._id, config.id, pool.bufferSize, workers, code, slots);
    } else if (sw[SW_CODEC] !== code && sw[SW_CODEC] !== -1 && code !== -1) {
      throw new TypeError(
        "Cannot attach shared writer: its codec differs from the one it was made with; pass the same codec",
      );
    }
    this.id = config.id;
    this.pool = pool;
    this.codec = config.codec;
    this.#core = new SharedWriterCore(pool, config, sw);
    registerPlacer(this, this.#core);
  }

  /**
   * Attaches to a shared writer made in another worker, from its handle.
   *
   * @example
   * ```ts ignore
   * import { BufferPool, lengthPrefix, SharedWriter } from "@bab/bab";
   *
   * self.onmessage = (event) => {
   *   const pool = BufferPool.attach(event.data.pool);
   *   const writer = SharedWriter.attach(pool, event.data.writer, { codec: lengthPrefix(2) });
   *   writer.tryWriteString("from a worker");
   *   writer.close();
   * };
   * ```
   *
   * @param pool This worker's object of the writer's pool.
   * @param handle The writer's {@linkcode SharedWriter.handle}.
   * @param options The codec the writer was made with, and this worker's cadence.
   * @throws {TypeError} If the handle is not a shared writer's, of this pool, with this codec.
   */
  static attach(
    pool: BufferPool,
    handle: SharedWriterHandle,
    options?: SharedWriterAttachOptions,
  ): SharedWriter {
    const block = handle?.block;
    if (
      !isSharedArrayBuffer(block) ||
      block.byteLength < sharedWriterWords(0, MIN_RING_SLOTS) * 4
    ) {
      throw new TypeError("Cannot attach shared writer: the handle is not a SharedWriter's handle");
    }
    const sw = new Int32Array(block);
    if (
      sw[SW_MAGIC] !== SW_MAGIC_VALUE ||
      block.byteLength < sharedWriterWords(sw[SW_WORKERS]!, ringSlots(sw)) * 4
    ) {
      throw new TypeError("Cannot attach shared writer: the handle's memory is not a bab writer's");
    }
    if (
      sw[SW_POOL_ID] !== pool._id || sw[SW_WORKERS] !== pool._maxWorkers ||
      sw[SW_BUFFER_SIZE] !== pool.bufferSize
    ) {
      throw new TypeError(
        "Cannot attach shared writer: it fills buffers of another pool; pass this worker's object of its pool",
      );
    }
    if (Atomics.load(sw, SW_CLOSED) !== 0) {
      throw new ClosedError("Cannot attach shared writer: the writer was closed");
    }
    attaching = sw;
    try {
      return new SharedWriter(pool, { control: handle.control }, options);
    } finally {
      attaching = null;
    }
  }

  /**
   * What another worker needs to {@linkcode SharedWriter.attach}: post it.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 8, shared: true });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * const message = { pool: pool.handle, writer: writer.handle };
   * ```
   *
   * @throws {TypeError} If the pool is not shared: there is nothing to post.
   */
  get handle(): SharedWriterHandle {
    return this.#core.handle;
  }

  /** Whether this handle was closed, or the writer ended. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Claims space for a message of `length` bytes now, if the current buffer
   * has room or the next can be had at once.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * const reservation = writer.tryReserve(4);
   * if (reservation !== null) {
   *   reservation.bytes.fill(1);
   *   reservation.commit();
   * }
   * ```
   *
   * @returns The reservation, or null when the next buffer must be waited for.
   * @throws {RangeError} If the message cannot fit in a buffer, or this
   * worker holds {@linkcode MAX_OPEN_SHARED_RESERVATIONS} open already.
   * @throws {ClosedError} If the writer or its flusher closed.
   */
  tryReserve(length: number): SharedReservation | null {
    return this.#core.tryReserve(length);
  }

  /**
   * Claims space for a message of `length` bytes, waiting for the next
   * buffer if need be.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * const reservation = await writer.reserve(4, { signal: AbortSignal.timeout(1000) });
   * reservation.bytes.fill(1);
   * reservation.commit();
   * ```
   *
   * @param options `signal`: aborting gives up the wait; a switch to the
   * next buffer that the call started still finishes.
   * @throws {RangeError} If the message cannot fit in a buffer.
   * @throws {ClosedError} If the writer or its flusher closed.
   */
  reserve(length: number, options?: ReserveOptions): Promise<SharedReservation> {
    return this.#core.reserve(length, options);
  }

  /**
   * Copies `bytes` in as one message, now, if there is room.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * const message = new Uint8Array([1, 2, 3]);
   * if (!writer.tryWrite(message)) await writer.write(message);
   * ```
   *
   * @returns Whether it was placed: false when the next buffer must be waited for.
   * @throws {RangeError} If the message cannot fit in a buffer.
   * @throws {ClosedError} If the writer or its flusher closed.
   */
  tryWrite(bytes: Uint8Array): boolean {
    return this.#core.tryWrite(bytes);
  }

  /**
   * Copies `bytes` in as one message, waiting for the next buffer if need be.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * await writer.write(new Uint8Array([1, 2, 3]));
   * ```
   *
   * @param options `signal`: aborting gives up the wait.
   * @throws {RangeError} If the message cannot fit in a buffer.
   * @throws {ClosedError} If the writer or its flusher closed.
   */
  write(bytes: Uint8Array, options?: ReserveOptions): Promise<void> {
    return this.#core.write(bytes, options);
  }

  /**
   * Encodes `text` as UTF-8 straight into the buffer, as one message, if
   * there is room now.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * writer.tryWriteString("hello");
   * ```
   *
   * @returns Whether it was placed.
   * @throws {RangeError} If its frame cannot fit in a buffer.
   * @throws {ClosedError} If the writer or its flusher closed.
   */
  tryWriteString(text: string): boolean {
    return this.#core.tryWriteString(text);
  }

  /**
   * Encodes `text` as UTF-8 into the buffer as one message, waiting for the
   * next buffer if need be.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * await writer.writeString("hello");
   * ```
   *
   * @param options `signal`: aborting gives up the wait.
   * @throws {RangeError} If its frame cannot fit in a buffer.
   * @throws {ClosedError} If the writer or its flusher closed.
   */
  writeString(text: string, options?: ReserveOptions): Promise<void> {
    return this.#core.writeString(text, options);
  }

  /**
   * Hands the flusher every byte that is ready, from every worker: each
   * buffer up to its first reservation not yet committed.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher, { flush: "manual" });
   * writer.tryWriteString("now");
   * writer.flush();
   * ```
   *
   * @throws {ClosedError} If the flusher had ended: what was committed was dropped.
   */
  flush(): void {
    this.#core.flush();
  }

  /**
   * Closes this worker's handle: its open reservations are cancelled (sent
   * zeroed), waiting calls reject with a {@linkcode ClosedError}, and what
   * was committed is flushed. When the last handle in any worker closes,
   * the writer seals its buffer, which goes to the flusher once whole.
   * Calling it again does nothing.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new SharedWriter(pool, flusher);
   * writer.tryWriteString("bye");
   * writer.close();
   * flusher.close();
   * ```
   */
  close(): void {
    this.#core.close();
  }

  /** Closes this handle: `using` support. */
  [Symbol.dispose](): void {
    this.#core.close();
  }

  /**
   * Settles what a dead worker left open, so that the writer goes on: its
   * open reservations are sent with zeroed payloads (their codec's header
   * and trailer rewritten, so the stream still frames; no-op lines when a
   * `NatsPublisher` wraps this handle), a buffer switch or
   * publish it was in the middle of is taken over, and its handles no
   * longer count. Call it in a live worker with a handle once the dead
   * worker was terminated, before {@linkcode BufferPool.reclaim}.
   *
   * @example
   * ```ts ignore
   * worker.terminate();
   * writer.reclaim(deadWorkerId);
   * pool.reclaim(deadWorkerId);
   * ```
   *
   * @param workerId The dead worker's {@linkcode BufferPool.workerId}.
   * @returns How many of its reservations were settled.
   * @throws {RangeError} If the id is not another worker's slot of a shared pool.
   */
  reclaim(workerId: number): number {
    return this.#core.reclaim(workerId);
  }
}

/** Set by {@linkcode SharedWriter.attach} for the constructor it calls. */
let attaching: Int32Array | null = null;

/**
 * The send side of a bus: a writer packs messages into pooled buffers and
 * hands what it committed to a {@linkcode WriteFlusher} in batches.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import type { FrameCodec } from "./frame_codec.ts";
import { ClosedError } from "./errors.ts";
import { Packet } from "./packet.ts";
import { Reservation } from "./reservation.ts";
import type { WriteFlusher, WriteFlusherHandle } from "./write_flusher.ts";
import { WriterClaim } from "./writer_claim.ts";
import type { ClaimOptions, ReserveOptions, WriterOptions } from "./writer_options.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import type { Chunk } from "./_chunk.ts";
import { endReason, F_CLOSED, FAILED } from "./_flush_list.ts";
import { encodeInto } from "./_shared_memory.ts";
import type { WaiterQueue } from "./_waiter_queue.ts";
import { FLUSHER_ENDED, HELD_BACK, WriterBuffers } from "./_writer_buffers.ts";
import { checkCount, writerConfig } from "./_writer_config.ts";
import {
  frameAround,
  framedLength,
  inlinePrefix,
  lengthError,
  stringFrameLength,
  utf8Length,
  writePrefix,
} from "./_writer_framing.ts";
import { CLAIM, type Kind, type Request, RESERVE, WaitingCalls, WRITE } from "./_writer_waits.ts";

/** What a waiting call gets: a reservation, the claim, or nothing for a write. */
type Placed = Reservation | WriterClaim | null;

const encoder = new TextEncoder();

/**
 * Packs messages into pooled buffers for a {@linkcode WriteFlusher}.
 * Messages follow each other in a buffer, and one that does not fit starts
 * the next buffer, so the flusher gets them in the order they were placed.
 * A writer lives in one worker; a flusher can have many, in any worker that
 * attached to the pool.
 *
 * There are three ways to place a message; the flusher gets each as a
 * view of the buffer it was placed in, never a copy:
 *
 * - {@linkcode Writer.tryClaim} / {@linkcode Writer.claim}, **the fast
 *   path** for a message you build (serialize, encode, fill field by
 *   field): write it in place through the writer's one reusable
 *   {@linkcode WriterClaim} (the pool buffer's `Uint8Array` and `DataView`,
 *   an offset and a length), then commit. Nothing is made per message and
 *   nothing is copied; one claim is open at a time.
 * - {@linkcode Writer.tryWrite} / {@linkcode Writer.write} (and the string
 *   forms): for a message you already hold as bytes. Nothing is made per
 *   message, but the bytes are copied in, and building them elsewhere
 *   first is what a claim saves.
 * - {@linkcode Writer.tryReserve} / {@linkcode Writer.reserve}: a
 *   {@linkcode Reservation} object (and its `bytes` view) per message, that
 *   you can hold across awaits, keep several of, commit in any order or turn
 *   into a packet. The most flexible and the slowest: two small objects per
 *   message.
 *
 * Placing is synchronous while the writer has room: the `try` forms return
 * `false`/`null` when a new buffer would have to be waited for, and
 * `claim`/`write`/`reserve` wait for one. Before it waits, a writer
 * flushes, so it never waits on its own unflushed buffers, only on its open
 * reservations: a newer buffer goes to the flusher once every older one
 * went whole.
 *
 * When the flusher's consumer fails (its readable is cancelled, say by a
 * failed {@linkcode WriteFlusher.pipeTo}), waiting and later calls reject
 * with a {@linkcode ClosedError} whose message says so, with the
 * consumer's error as its `cause` (in the flusher's worker; elsewhere the
 * message quotes it).
 *
 * @example Length-prefixed messages to a flusher
 * ```ts
 * import { BufferPool, lengthPrefix, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 8 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher, { codec: lengthPrefix(4) });
 *
 * writer.tryWriteString("hello");
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
 * assert.deepEqual(bytes, [0, 0, 0, 5, 104, 101, 108, 108, 111, 0, 0, 0, 3, 1, 2, 3]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class Writer {
  /** The id carried by this writer's {@linkcode FlushRegion}s. */
  readonly id: number;
  /** The pool the writer takes its buffers from. */
  readonly pool: BufferPool;
  readonly #flusher: WriteFlusher | null;
  readonly #control: Int32Array;
  readonly #codec: FrameCodec | null;
  /** How the fast path frames: bytes of length prefix (0 without a codec), -1 for no fast path. */
  readonly #prefixSize: number;
  readonly #prefixLittleEndian: boolean;
  /** The largest payload the fast path frames. */
  readonly #prefixMax: number;
  readonly #size: number;
  readonly #microtask: boolean;
  readonly #flushBytes: number;
  /** Every buffer the writer still holds, and publishing them to the flusher. */
  readonly #buffers: WriterBuffers;
  #current: Chunk | null = null;
  /** Some chunk may have something new for the flusher. */
  #news = false;
  /** The one claim this writer hands out, again and again. */
  readonly #claim: WriterClaim = new WriterClaim(this);
  /** Open reservations, oldest first, linked through _prev/_next. */
  #oldest: Reservation | null = null;
  #newest: Reservation | null = null;
  /** Reserves, claims and writes waiting for a buffer, in call order. */
  readonly #waits: WaitingCalls<Placed>;
  /** The waiting calls' queue, whose size the fast paths check. */
  readonly #queue: WaiterQueue<Placed, Request>;
  #closed = false;
  /** Once closed: why, as the end of an error message. */
  #why = "";
  /** Once closed because the flusher's consumer failed in this worker: its error. */
  #cause: unknown = undefined;
  #unflushed = 0;
  #scheduled = false;
  readonly #flushTask = () => {
    this.#scheduled = false;
    if (this.#closed) return;
    try {
      this.flush();
    } catch {
      // The flusher ended; the next reserve reports it.
    }
  };

  /**
   * Makes a writer that takes buffers from `pool` and flushes to `target`.
   *
   * @param pool This worker's pool object: the flusher's pool, or attached to it.
   * @param target The flusher, or its {@linkcode WriteFlusher.handle} posted from another worker.
   * @param options Id, codec and flush cadence.
   * @throws {TypeError} If the target is not a flusher of this pool.
   * @throws {RangeError} If an option is out of range, or the pool's buffers
   * are too large for a writer (2^30 bytes or more).
   */
  constructor(
    pool: BufferPool,
    target: WriteFlusher | WriteFlusherHandle,
    options?: WriterOptions,
  ) {
    const config = writerConfig(pool, target, options);
    this.id = config.id;
    this.pool = pool;
    this.#flusher = config.flusher;
    this.#control = config.control;
    this.#codec = config.codec;
    this.#size = pool.bufferSize;
    const prefix = inlinePrefix(config.codec, pool.bufferSize);
    this.#prefixSize = prefix.size;
    this.#prefixLittleEndian = prefix.littleEndian;
    this.#prefixMax = prefix.max;
    this.#microtask = config.microtask;
    this.#flushBytes = config.flushBytes;
    this.#buffers = new WriterBuffers(pool, config.control, config.flusher, config.id);
    this.#waits = new WaitingCalls<Placed>(pool, {
      room: (frame) => this.#room(frame),
      place: (r) => this.#place(r.kind, r.length, r.frame, r.data, r.count),
      beforeWait: () => this.#beforeWait(),
      take: (buffer) => this.#take(buffer),
    }, this.#claim);
    this.#queue = this.#waits.queue;
    config.flusher?._register(this);
  }

  /** Whether {@linkcode Writer.close} was called, or the flusher ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Claims space for a message of `length` bytes now, if the writer has
   * room or a free buffer can be had at once: the fast path. Fill it in
   * place through the claim's `buffer` or `dataView`, from its `offset`,
   * then commit or cancel it before placing anything else on this writer.
   *
   * With `count` above 1 the claim covers a **run**: room for up to `count`
   * messages of `length` bytes each, as many as the current buffer holds
   * (at least one; a full buffer moves to the next as for one message),
   * framed back to back with their headers already written. Message `i`
   * starts at `offset + i * stride`; {@linkcode WriterClaim.count} says how
   * many there are. One commit settles them all, or the first few with
   * `commit(n)`. For many small messages of one size this is the fastest
   * way to send: the per-message cost is the filling alone.
   *
   * @example A run of fixed-size messages, one commit
   * ```ts
   * import { BufferPool, lengthPrefix, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * // 5,000 bytes to send before reading them: room for all of them.
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 8 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher, { codec: lengthPrefix(2) });
   *
   * let sent = 0;
   * while (sent < 500) {
   *   const run = writer.tryClaim(8, 500 - sent) ?? await writer.claim(8, { count: 500 - sent });
   *   for (let i = 0; i < run.count; i++) {
   *     run.dataView.setFloat64(run.offset + i * run.stride, sent + i);
   *   }
   *   sent += run.count;
   *   run.commit();
   * }
   * writer.close();
   * flusher.close();
   *
   * let received = 0;
   * for await (const batch of flusher.readable) {
   *   for (const region of batch) {
   *     const view = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.length);
   *     for (let at = 0; at < region.length; at += 10) {
   *       assert.equal(view.getUint16(at), 8);
   *       assert.equal(view.getFloat64(at + 2), received++);
   *     }
   *     region.release();
   *   }
   * }
   * assert.equal(received, 500);
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @example Claim, fill, commit
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   *
   * const claim = writer.tryClaim(4);
   * assert.ok(claim !== null); // null only when a buffer would have to be waited for
   * claim.buffer.set([1, 2, 3, 4], claim.offset);
   * claim.commit();
   *
   * writer.close();
   * flusher.close();
   * for await (const batch of flusher.readable) {
   *   for (const region of batch) {
   *     assert.deepEqual([...region.bytes], [1, 2, 3, 4]);
   *     region.release();
   *   }
   * }
   * ```
   *
   * @param length The message's size in bytes (its payload, under a codec).
   * @param count The most messages of a run to claim room for; default 1.
   * @returns The writer's claim, open, or `null` if a buffer would have to be waited for.
   * @throws {RangeError} If the message (framed) does not fit in one buffer,
   * or `count` is not an integer from 1 up.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryClaim(length: number, count = 1): WriterClaim | null {
    if (count === 1) {
      const start = this.#fastStart(length);
      if (start >= 0) {
        const claim = this.#claim;
        claim._frameStart = start;
        claim._offset = start + this.#prefixSize;
        claim._length = length;
        claim._count = 1;
        claim._stride = this.#prefixSize + length;
        claim._chunk = this.#current;
        return claim;
      }
    }
    const frame = this.#check(length);
    checkCount(count);
    if (this.#queue.size !== 0) return null;
    if (!this.#room(frame)) {
      this.flush();
      return null;
    }
    return this.#openClaim(length, frame, count);
  }

  /**
   * Claims space for a message of `length` bytes, waiting for a buffer if
   * need be; see {@linkcode Writer.tryClaim}. Calls are served in order,
   * together with `reserve` and `write`; those queued after this one wait
   * until the claim is committed or cancelled.
   *
   * @example Waiting for room, with a deadline
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   *
   * const claim = await writer.claim(8, { signal: AbortSignal.timeout(1000) });
   * claim.dataView.setFloat64(claim.offset, 0.25);
   * claim.commit();
   *
   * writer.close();
   * flusher.close();
   * for await (const batch of flusher.readable) {
   *   for (const region of batch) {
   *     assert.equal(new DataView(region.bytes.buffer, region.bytes.byteOffset).getFloat64(0), 0.25);
   *     region.release();
   *   }
   * }
   * ```
   *
   * @param length The message's size in bytes (its payload, under a codec).
   * @param options An optional `signal` to give up the wait, and a `count`
   * to claim a run of messages (see {@linkcode Writer.tryClaim}).
   * @returns The writer's claim, open.
   * @throws {RangeError} If the message (framed) does not fit in one buffer,
   * or `count` is not an integer from 1 up.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  claim(length: number, options?: ClaimOptions): Promise<WriterClaim> {
    const count = options?.count ?? 1;
    try {
      checkCount(count);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#enqueue(CLAIM, length, null, options?.signal, count) as Promise<WriterClaim>;
  }

  /**
   * Reserves space for a message of `length` bytes now, if the writer has
   * room or a free buffer can be had at once.
   *
   * @param length The message's size in bytes (its payload, under a codec).
   * @returns The reservation, or `null` if a buffer would have to be waited for.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryReserve(length: number): Reservation | null {
    const frame = this.#check(length);
    if (this.#queue.size !== 0) return null;
    if (!this.#room(frame)) {
      this.flush();
      return null;
    }
    return this.#reserve(length, frame);
  }

  /**
   * Reserves space for a message of `length` bytes, waiting for a buffer if
   * need be. Calls are served in order, together with `write`.
   *
   * @param length The message's size in bytes (its payload, under a codec).
   * @param options An optional `signal` to give up the wait.
   * @returns The reservation.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  reserve(length: number, options?: ReserveOptions): Promise<Reservation> {
    return this.#enqueue(RESERVE, length, null, options?.signal) as Promise<Reservation>;
  }

  /**
   * Copies `bytes` in as one message and commits it, if there is room now.
   *
   * @param bytes The message (its payload, under a codec).
   * @returns `false` if a buffer would have to be waited for; nothing was written then.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryWrite(bytes: Uint8Array): boolean {
    const length = bytes.length;
    const start = this.#fastStart(length);
    if (start >= 0) {
      const chunk = this.#current!;
      chunk.view.set(bytes, start + this.#prefixSize);
      if (chunk.open === 0) {
        chunk.committed = chunk.reserved;
        this.#committed(chunk.reserved - start);
      }
      return true;
    }
    const frame = this.#check(length);
    if (this.#queue.size !== 0) return false;
    if (!this.#room(frame)) {
      this.flush();
      return false;
    }
    this.#put(bytes, length, frame);
    return true;
  }

  /**
   * Copies `bytes` in as one message and commits it, waiting for a buffer if
   * need be. The bytes are copied when the message's turn comes: leave them
   * unchanged until the promise settles.
   *
   * @param bytes The message (its payload, under a codec).
   * @param options An optional `signal` to give up the wait.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  async write(bytes: Uint8Array, options?: ReserveOptions): Promise<void> {
    await this.#enqueue(WRITE, bytes.length, bytes, options?.signal);
  }

  /**
   * Encodes `text` as UTF-8 straight into the buffer as one message, if
   * there is room now.
   *
   * @param text The message.
   * @returns `false` if a buffer would have to be waited for; nothing was written then.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryWriteString(text: string): boolean {
    const length = utf8Length(text);
    this.#checkOpen();
    const frame = stringFrameLength(this.#codec, this.#size, text, length);
    if (this.#queue.size !== 0) return false;
    if (!this.#room(frame)) {
      this.flush();
      return false;
    }
    const chunk = this.#current!;
    const payload = this.#frame(chunk, length, frame);
    encodeInto(text, chunk.view.subarray(payload, payload + length));
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.#committed(frame);
    }
    return true;
  }

  /**
   * Encodes `text` as UTF-8 as one message, waiting for a buffer if need be.
   *
   * @param text The message.
   * @param options An optional `signal` to give up the wait.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  writeString(text: string, options?: ReserveOptions): Promise<void> {
    try {
      if (this.tryWriteString(text)) return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.write(encoder.encode(text), options);
  }

  /**
   * Hands everything committed since the last flush to the flusher in one
   * step, however many messages and buffers that is.
   *
   * @throws {ClosedError} If the flusher has ended, so the bytes could not
   * be delivered; the writer is closed then and its buffers are back.
   *
   * A buffer's bytes go only once every older buffer of this writer went
   * whole: a reservation still open holds back every later byte.
   */
  flush(): void {
    if (!this.#news) return;
    const state = this.#buffers.publish();
    if (state === FLUSHER_ENDED) {
      this.#end();
      throw this._closedError("flush", "; the bytes were dropped");
    }
    // What newer buffers hold goes with a later flush, and still counts towards flushBytes.
    this.#news = state === HELD_BACK;
    if (!this.#news) this.#unflushed = 0;
  }

  /**
   * Flushes what was committed and gives every buffer back: the open claim
   * and open reservations are cancelled, waiting calls reject with a
   * {@linkcode ClosedError}, and so does every later reserve or write.
   * Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#buffers.closedBy(this);
    // Newest first, so that open space at the end is taken back, not zeroed:
    // the claim, if open, is the newest of all.
    const claim = this.#claim;
    if (claim._chunk !== null) {
      claim._chunk.reserved = claim._frameStart;
      claim._chunk = null;
      claim._closed = true;
    }
    while (this.#newest !== null) this._cancel(this.#newest);
    this.#closed = true;
    this.#learnWhy("the writer was closed");
    this.#waits.rejectAll(this._closedError("write"));
    this.#finishCurrent();
    try {
      this.flush();
    } catch {
      // The flusher ended first: #end gave the buffers back.
    }
    this.#flusher?._unregister(this);
  }

  /** Closes the writer: `using` support. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @ignore Commits an open reservation. */
  _commit(reservation: Reservation): void {
    const chunk = reservation._chunk;
    const next = reservation._next;
    const oldestHere = reservation._prev === null || reservation._prev._chunk !== chunk;
    this.#unlink(reservation);
    chunk.open--;
    if (oldestHere) {
      // Up to the next open reservation here, or the open claim: it is newer than all of them.
      const claim = this.#claim;
      chunk.committed = next !== null && next._chunk === chunk
        ? next._frameStart
        : claim._chunk === chunk
        ? claim._frameStart
        : chunk.reserved;
      this.#committed(reservation._frameEnd - reservation._frameStart);
    }
  }

  /** @ignore Commits the open claim, then serves calls that waited behind it. */
  _commitClaim(claim: WriterClaim, count: number): void {
    const chunk = claim._chunk!;
    claim._chunk = null;
    // Messages of a run left out: the claim is the newest, so they are taken back.
    if (count !== claim._count) chunk.reserved = claim._frameStart + count * claim._stride;
    // Nothing was placed after the claim: its frame ends the buffer's reserved space.
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.#committed(chunk.reserved - claim._frameStart);
    }
    if (this.#queue.size !== 0) this.#waits.resume();
  }

  /** @ignore Takes back the open claim's space: nothing was placed after it. */
  _cancelClaim(claim: WriterClaim): void {
    claim._chunk!.reserved = claim._frameStart;
    claim._chunk = null;
    if (this.#queue.size !== 0) this.#waits.resume();
  }

  /** @ignore Commits an open reservation and makes a packet of its payload. */
  _commitToPacket(reservation: Reservation): Packet {
    const buffer = reservation._chunk.buffer;
    buffer.retain();
    const packet = new Packet(buffer, reservation._payloadStart, reservation.length);
    this._commit(reservation);
    return packet;
  }

  /** @ignore Takes back or zeroes an open reservation. */
  _cancel(reservation: Reservation): void {
    const chunk = reservation._chunk;
    if (reservation === this.#newest && chunk.reserved === reservation._frameEnd) {
      const next = reservation._prev;
      this.#unlink(reservation);
      chunk.open--;
      chunk.reserved = reservation._frameStart;
      if (next === null || next._chunk !== chunk) {
        chunk.committed = chunk.reserved;
        // It may have been all that held this buffer, and newer ones, back.
        this.#committed(0);
      }
      return;
    }
    chunk.view.fill(0, reservation._payloadStart, reservation._payloadStart + reservation.length);
    this._commit(reservation);
  }

  // -- Placing messages --

  /**
   * The common case in a few loads and one store: no codec or a length
   * prefix, room in the current buffer, nothing waiting, nothing open.
   * Reserves the frame, writes its prefix and returns where the frame
   * starts, or -1 when the general path must decide (and report errors).
   */
  #fastStart(length: number): number {
    const chunk = this.#current;
    const prefix = this.#prefixSize;
    if (
      chunk === null || prefix < 0 || this.#claim._chunk !== null || this.#queue.size !== 0 ||
      this.#control[F_CLOSED] !== 0 || length >>> 0 !== length || length > this.#prefixMax
    ) {
      return -1;
    }
    const start = chunk.reserved;
    const end = start + prefix + length;
    if (end > this.#size) return -1;
    chunk.reserved = end;
    writePrefix(chunk.data, start, prefix, this.#prefixLittleEndian, length);
    return start;
  }

  /**
   * Validates a message length; returns its frame length. Kept small so that
   * it inlines into the caller's loop (V8 inlines by bytecode size, within
   * one budget per optimized function): the errors are made elsewhere.
   */
  #check(length: number): number {
    if (this.#claim._chunk !== null || this.#closed || this.#control[F_CLOSED] !== 0) {
      throw this.#refusal();
    }
    if (length >>> 0 === length) {
      const frame = this.#codec === null ? length : framedLength(this.#codec, length);
      if (frame <= this.#size) return frame;
    }
    throw lengthError(this.#codec, this.#size, length);
  }

  /** Throws if nothing can be placed now: the claim is open, or the writer is closed. */
  #checkOpen(): void {
    if (this.#claim._chunk !== null || this.#closed || this.#control[F_CLOSED] !== 0) {
      throw this.#refusal();
    }
  }

  /**
   * Why nothing can be placed now: the claim is open, or the writer is
   * closed, which it does now if its flusher ended.
   */
  #refusal(): Error {
    if (this.#claim._chunk !== null) {
      return new TypeError(
        "Cannot place a message: the writer's claim is still open; commit or cancel it first",
      );
    }
    if (!this.#closed) this.close();
    return this._closedError("write");
  }

  /** Makes sure the current buffer has `frame` bytes free, taking a new one if need be. */
  #room(frame: number): boolean {
    const chunk = this.#current;
    if (chunk !== null && chunk.reserved + frame <= this.#size) return true;
    // Finishes the current buffer and starts a free one; false if none is free now.
    this.#finishCurrent();
    const buffer = this.pool._tryAcquireRecord();
    if (buffer === null) return false;
    this.#current = this.#buffers.add(buffer);
    return true;
  }

  #finishCurrent(): void {
    const chunk = this.#current;
    if (chunk === null) return;
    this.#current = null;
    if (this.#buffers.finish(chunk)) this.#news = true;
  }

  /** Reserves a frame in `chunk` and writes its header and trailer; returns where the payload goes. */
  #frame(chunk: Chunk, length: number, frame: number): number {
    const start = chunk.reserved;
    chunk.reserved = start + frame;
    return this.#codec === null ? start : frameAround(this.#codec, chunk.view, start, length);
  }

  #reserve(length: number, frame: number): Reservation {
    const chunk = this.#current!;
    const start = chunk.reserved;
    const payload = this.#frame(chunk, length, frame);
    const reservation = new Reservation(this, chunk, start, payload, length, start + frame);
    chunk.open++;
    const newest = this.#newest;
    reservation._prev = newest;
    if (newest === null) this.#oldest = reservation;
    else newest._next = reservation;
    this.#newest = reservation;
    return reservation;
  }

  #openClaim(length: number, frame: number, count: number): WriterClaim {
    const chunk = this.#current!;
    const claim = this.#claim;
    const start = chunk.reserved;
    // As many as the buffer holds, up to count; #room made sure of one.
    const n = Math.min(count, Math.floor((this.#size - start) / frame));
    claim._frameStart = start;
    claim._length = length;
    claim._count = n;
    claim._stride = frame;
    const prefix = this.#prefixSize;
    if (prefix >= 0) {
      const last = start + n * frame;
      chunk.reserved = last;
      claim._offset = start + prefix;
      const little = this.#prefixLittleEndian;
      for (let at = start; at < last; at += frame) {
        writePrefix(chunk.data, at, prefix, little, length);
      }
    } else {
      // Every frame of the run has the same header and trailer.
      claim._offset = this.#frame(chunk, length, frame);
      for (let i = 1; i < n; i++) this.#frame(chunk, length, frame);
    }
    claim._chunk = chunk;
    return claim;
  }

  #put(bytes: Uint8Array, length: number, frame: number): void {
    const chunk = this.#current!;
    chunk.view.set(bytes, this.#frame(chunk, length, frame));
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.#committed(frame);
    }
  }

  #unlink(reservation: Reservation): void {
    const { _prev: prev, _next: next } = reservation;
    if (prev === null) this.#oldest = next;
    else prev._next = next;
    if (next === null) this.#newest = prev;
    else next._prev = prev;
    reservation._prev = reservation._next = null;
    reservation._writer = null;
  }

  // -- Flushing and closing --

  /**
   * Notes bytes newly committed and flushes if the cadence says so. Calls
   * waiting for a buffer get a flush at the end of the microtask whatever
   * the cadence: the commit may free what holds back the writer's buffers.
   */
  #committed(bytes: number): void {
    this.#news = true;
    if ((this.#unflushed += bytes) >= this.#flushBytes) this.flush();
    else if (!this.#scheduled && (this.#microtask || this.#queue.size !== 0)) this.#schedule();
  }

  #schedule(): void {
    this.#scheduled = true;
    queueMicrotask(this.#flushTask);
  }

  /** The flusher is gone: give back every buffer, settle every call. */
  #end(): void {
    const claim = this.#claim;
    if (claim._chunk !== null) {
      claim._chunk = null;
      claim._closed = true;
    }
    for (let r = this.#oldest; r !== null; r = r._next) r._writer = null;
    this.#oldest = this.#newest = null;
    this.#closed = true;
    this.#learnWhy("the flusher has ended");
    this.#current = null;
    this.#news = false;
    this.#buffers.giveBack(this);
    this.#waits.rejectAll(this._closedError("write"));
    this.#flusher?._unregister(this);
  }

  /**
   * Notes why the writer closed: the flusher's reason once it was closed
   * or its consumer failed (with the error itself when that happened in
   * this worker), else `own`.
   */
  #learnWhy(own: string): void {
    const state = this.#control[F_CLOSED]!;
    this.#why = state === 0 ? own : endReason(this.#control);
    if (state === FAILED) this.#cause = this.#flusher?._failure;
  }

  /** @ignore The error for a call on the closed writer: `Cannot <action>: <why><more>`. */
  _closedError(action: string, more = ""): ClosedError {
    const message = `Cannot ${action}: ${this.#why}${more}`;
    return this.#cause === undefined
      ? new ClosedError(message)
      : new ClosedError(message, { cause: this.#cause });
  }

  // -- Waiting for a buffer --

  #enqueue(
    kind: Kind,
    length: number,
    data: Uint8Array | null,
    signal: AbortSignal | undefined,
    count = 1,
  ): Promise<Placed> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let frame: number;
    try {
      frame = this.#check(length);
      if (this.#queue.size === 0 && this.#room(frame)) {
        return Promise.resolve(this.#place(kind, length, frame, data, count));
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#waits.add(signal, { kind, length, frame, data, count });
  }

  /** Places a waiting call's message in the current buffer, which has room. */
  #place(
    kind: Kind,
    length: number,
    frame: number,
    data: Uint8Array | null,
    count: number,
  ): Placed {
    if (kind === RESERVE) return this.#reserve(length, frame);
    if (kind === CLAIM) return this.#openClaim(length, frame, count);
    this.#put(data!, length, frame);
    return null;
  }

  /** Before waiting for a buffer: finish the current one and flush; false if the flusher ended. */
  #beforeWait(): boolean {
    this.#finishCurrent();
    try {
      this.flush();
      return true;
    } catch {
      return false; // The flusher ended: #end rejected the waiting calls.
    }
  }

  /** Takes a granted buffer as the current one, unless the writer closed or has one. */
  #take(buffer: BufferRecord): boolean {
    if (this.#closed || this.#current !== null) {
      buffer.release();
      return false;
    }
    if (this.#control[F_CLOSED] !== 0) {
      // The flusher stopped while this writer waited (from another worker, unseen till now).
      buffer.release();
      this.close();
      return false;
    }
    this.#current = this.#buffers.add(buffer);
    return true;
  }
}

// Everything a Writer does, behind its documented face in writer.ts: the
// state of the writer's current buffer, the fast paths that place a message
// there with a few loads and stores, when to flush, the switch to a new
// buffer and the close. These share that state on every message, so they
// stay in one class. Framing (_writer_framing.ts), the buffers held and
// their publishing (_writer_buffers.ts), the open reservations
// (_open_reservations.ts), the claim's runs, commits and cancels
// (_open_claim.ts), the calls that wait for room (_writer_waits.ts) and why
// the writer closed (_close_reason.ts) are helpers of their own.

import type { BufferPool } from "./buffer_pool.ts";
import type { FrameCodec } from "./frame_codec.ts";
import type { Reservation } from "./reservation.ts";
import type { WriteFlusher, WriteFlusherHandle } from "./write_flusher.ts";
import type { WriterClaim } from "./writer_claim.ts";
import type { ClaimOptions, ReserveOptions, WriterOptions } from "./writer_options.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import type { Chunk } from "./_chunk.ts";
import { CloseReason } from "./_close_reason.ts";
import { type ClaimListener, OpenClaim } from "./_open_claim.ts";
import { OpenReservations } from "./_open_reservations.ts";
import { F_CLOSED } from "./_flush_list.ts";
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
import {
  CLAIM,
  type Kind,
  type PlaceRequest,
  RESERVE,
  WaitingCalls,
  type WaitingWriter,
  WRITE,
} from "./_writer_waits.ts";

/** What a waiting call gets: a reservation, the claim, or nothing for a write. */
type Placed = Reservation | WriterClaim | null;

const encoder = new TextEncoder();

/**
 * A writer's machinery. Its flusher reports to it directly, and its claim
 * and reservations through their owners, so that a commit costs no more
 * than a call; the {@linkcode Writer} a user holds forwards each call to it.
 */
export class WriterCore implements WaitingWriter<Placed>, ClaimListener {
  /** The id carried by this writer's regions. */
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
  /** The claim's owner, and the claim, which the fast path opens itself. */
  readonly #openClaim: OpenClaim;
  readonly #claim: WriterClaim;
  /** The reservations still open, oldest first: their owner. */
  readonly #reservations: OpenReservations;
  /** Reserves, claims and writes waiting for a buffer, in call order. */
  readonly #waits: WaitingCalls<Placed>;
  /** The waiting calls' queue, whose size the fast paths check. */
  readonly #queue: WaiterQueue<Placed, PlaceRequest>;
  #closed = false;
  /** Once closed: why, for the errors of later calls and of what it left open. */
  readonly #reason: CloseReason;
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

  /** Checks the target and options: see the {@linkcode Writer} constructor. */
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
    this.#reason = new CloseReason(config.control, config.flusher);
    this.#openClaim = new OpenClaim(this, this.#reason, config.codec, pool.bufferSize, prefix);
    this.#claim = this.#openClaim.claim;
    this.#reservations = new OpenReservations(this, this.#claim);
    this.#buffers = new WriterBuffers(pool, config.control, config.flusher, config.id);
    this.#waits = new WaitingCalls<Placed>(pool, this, this.#claim);
    this.#queue = this.#waits.queue;
    config.flusher?._register(this);
  }

  /** Whether the writer was closed, or its flusher ended. */
  get closed(): boolean {
    return this.#closed;
  }

  // -- The calls of Writer, documented there --
  // A try form that finds no room flushes before it says no, so that what it
  // finished goes out before the caller waits.

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
    const frame = this.check(length);
    checkCount(count);
    if (this.#queue.size !== 0) return null;
    if (!this.room(frame)) {
      this.flush();
      return null;
    }
    return this.#openClaim.open(this.#current!, length, frame, count);
  }

  claim(length: number, options?: ClaimOptions): Promise<WriterClaim> {
    const count = options?.count ?? 1;
    try {
      checkCount(count);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#waits.call(CLAIM, length, null, options?.signal, count) as Promise<WriterClaim>;
  }

  tryReserve(length: number): Reservation | null {
    const frame = this.check(length);
    if (this.#queue.size !== 0) return null;
    if (!this.room(frame)) {
      this.flush();
      return null;
    }
    return this.#reserve(length, frame);
  }

  reserve(length: number, options?: ReserveOptions): Promise<Reservation> {
    return this.#waits.call(RESERVE, length, null, options?.signal) as Promise<Reservation>;
  }

  tryWrite(bytes: Uint8Array): boolean {
    const length = bytes.length;
    const start = this.#fastStart(length);
    if (start >= 0) {
      const chunk = this.#current!;
      chunk.view.set(bytes, start + this.#prefixSize);
      if (chunk.open === 0) {
        chunk.committed = chunk.reserved;
        this.committed(chunk.reserved - start);
      }
      return true;
    }
    const frame = this.check(length);
    if (this.#queue.size !== 0) return false;
    if (!this.room(frame)) {
      this.flush();
      return false;
    }
    this.#put(bytes, length, frame);
    return true;
  }

  async write(bytes: Uint8Array, options?: ReserveOptions): Promise<void> {
    await this.#waits.call(WRITE, bytes.length, bytes, options?.signal);
  }

  tryWriteString(text: string): boolean {
    const length = utf8Length(text);
    if (this.#claim._chunk !== null || this.#closed || this.#control[F_CLOSED] !== 0) {
      throw this.#refusal();
    }
    const frame = stringFrameLength(this.#codec, this.#size, text, length);
    if (this.#queue.size !== 0) return false;
    if (!this.room(frame)) {
      this.flush();
      return false;
    }
    const chunk = this.#current!;
    const payload = this.#frame(chunk, length, frame);
    encodeInto(text, chunk.view.subarray(payload, payload + length));
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.committed(frame);
    }
    return true;
  }

  writeString(text: string, options?: ReserveOptions): Promise<void> {
    try {
      if (this.tryWriteString(text)) return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.write(encoder.encode(text), options);
  }

  flush(): void {
    if (!this.#news) return;
    const state = this.#buffers.publish();
    if (state === FLUSHER_ENDED) {
      this.#end();
      throw this.#reason._closedError("flush", "; the bytes were dropped");
    }
    // What newer buffers hold goes with a later flush, and still counts towards flushBytes.
    this.#news = state === HELD_BACK;
    if (!this.#news) this.#unflushed = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#buffers.closedBy(this.#reason);
    // Newest first, so that open space at the end is taken back, not zeroed:
    // the claim, if open, is the newest of all.
    this.#openClaim.takeBack();
    this.#reservations.cancelAll();
    this.#closed = true;
    this.#reason.learn("the writer was closed");
    this.#waits.rejectAll(this.#reason._closedError("write"));
    this.#finishCurrent();
    try {
      this.flush();
    } catch {
      // The flusher ended first: #end gave the buffers back.
    }
    this.#flusher?._unregister(this);
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
  check(length: number): number {
    if (this.#claim._chunk !== null || this.#closed || this.#control[F_CLOSED] !== 0) {
      throw this.#refusal();
    }
    if (length >>> 0 === length) {
      const frame = this.#codec === null ? length : framedLength(this.#codec, length);
      if (frame <= this.#size) return frame;
    }
    throw lengthError(this.#codec, this.#size, length);
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
    return this.#reason._closedError("write");
  }

  /** Makes sure the current buffer has `frame` bytes free, taking a new one if need be. */
  room(frame: number): boolean {
    const chunk = this.#current;
    if (chunk !== null && chunk.reserved + frame <= this.#size) return true;
    return this.#next();
  }

  /** Finishes the current buffer and starts a free one; false if none is free now. */
  #next(): boolean {
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
    return this.#reservations.open(chunk, start, payload, length, start + frame);
  }

  #put(bytes: Uint8Array, length: number, frame: number): void {
    const chunk = this.#current!;
    chunk.view.set(bytes, this.#frame(chunk, length, frame));
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.committed(frame);
    }
  }

  // -- Flushing and closing --

  /**
   * Notes bytes newly committed and flushes if the cadence says so. Calls
   * waiting for a buffer get a flush at the end of the microtask whatever
   * the cadence: the commit may free what holds back the writer's buffers.
   */
  committed(bytes: number): void {
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
    this.#openClaim.drop();
    this.#reservations.dropAll();
    this.#closed = true;
    this.#reason.learn("the flusher has ended");
    this.#current = null;
    this.#news = false;
    this.#buffers.giveBack(this.#reason);
    this.#waits.rejectAll(this.#reason._closedError("write"));
    this.#flusher?._unregister(this);
  }

  // -- Waiting for a buffer --

  /** The claim was settled: serves the calls that waited behind it. */
  claimSettled(): void {
    if (this.#queue.size !== 0) this.#waits.resume();
  }

  /** Places a waiting call's message in the current buffer, which has room. */
  place(kind: Kind, length: number, frame: number, data: Uint8Array | null, count: number): Placed {
    if (kind === RESERVE) return this.#reserve(length, frame);
    if (kind === CLAIM) return this.#openClaim.open(this.#current!, length, frame, count);
    this.#put(data!, length, frame);
    return null;
  }

  /** Before waiting for a buffer: finish the current one and flush; false if the flusher ended. */
  beforeWait(): boolean {
    this.#finishCurrent();
    try {
      this.flush();
      return true;
    } catch {
      return false; // The flusher ended: #end rejected the waiting calls.
    }
  }

  /** Takes a granted buffer as the current one, unless the writer closed or has one. */
  take(buffer: BufferRecord): boolean {
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

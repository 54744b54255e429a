/**
 * The send side of a bus: a writer packs messages into pooled buffers and
 * hands what it committed to a {@linkcode WriteFlusher} in batches.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import type { FrameCodec } from "./codec.ts";
import { ClosedError } from "./errors.ts";
import { Packet } from "./packet.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import { Reservation } from "./reservation.ts";
import type { WriteFlusher, WriteFlusherHandle } from "./write_flusher.ts";
import {
  ENDED,
  F_CLOSED,
  F_MAGIC,
  F_MAGIC_VALUE,
  F_NEXT_WRITER,
  F_POOL_ID,
  FLUSH_WORDS,
  pushChain,
  ringBell,
} from "./_flush_list.ts";
import {
  H_FLUSHED,
  H_NEXT,
  H_PUBLISH,
  H_WRITER,
  PUBLISH_DONE,
  PUBLISH_END,
  PUBLISH_LISTED,
} from "./_layout.ts";

/** When a writer flushes on its own, besides {@linkcode Writer.flush}. */
export type FlushCadence = "microtask" | "manual";

/** Options for {@linkcode Writer}. */
export interface WriterOptions {
  /**
   * The id every {@linkcode FlushRegion} of this writer carries, e.g. to
   * route by connection: an integer from 0 to 2^31 - 1. Default: the next id
   * the flusher hands out, unique among its writers.
   */
  id?: number;
  /**
   * Frames each message, e.g. with a length prefix, so that a reader can cut
   * the byte stream back into messages. Reservation sizes are payload sizes.
   */
  codec?: FrameCodec;
  /**
   * `"microtask"` (the default): flush at the end of the current microtask
   * after a commit, so that writes in one tick go out together.
   * `"manual"`: only {@linkcode Writer.flush}, and `flushBytes` if set.
   */
  flush?: FlushCadence;
  /** Also flush as soon as this many bytes were committed since the last flush. */
  flushBytes?: number;
}

/** Options for the waiting forms {@linkcode Writer.reserve} and {@linkcode Writer.write}. */
export interface ReserveOptions {
  /** Aborting gives up the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * @ignore The writer's record of one buffer it filled: what it reserved and
 * committed there, and what it told the flusher.
 */
export class Chunk {
  readonly buffer: BufferRecord;
  readonly index: number;
  readonly view: Uint8Array;
  /** Int32 index of the buffer's header. */
  readonly header: number;
  /** End of the last reservation or write. */
  reserved = 0;
  /** End of the contiguous committed prefix. */
  committed = 0;
  /** Reservations still open in this buffer. */
  open = 0;
  /** No more reservations go here. */
  done = false;
  /** The flusher holds a token reference. */
  lent = false;
  /** On the writer's list of chunks with news for the flusher. */
  pending = false;
  /** The last value published to the header, without the listed bit. */
  published = 0;

  constructor(buffer: BufferRecord, header: number) {
    this.buffer = buffer;
    this.index = buffer.index;
    this.view = buffer._view;
    this.header = header;
  }
}

interface Request {
  readonly length: number;
  readonly frame: number;
  /** Bytes to copy in and commit, or null for a reservation. */
  readonly data: Uint8Array | null;
  readonly resolve: (value: Reservation | null) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const encoder = new TextEncoder();

/**
 * Packs messages into pooled buffers for a {@linkcode WriteFlusher}. Each
 * message is reserved and committed, or written in one call; messages
 * follow each other in a buffer, and one that does not fit starts the next
 * buffer, so the flusher gets them in the order they were reserved. A
 * writer lives in one worker; a flusher can have many, in any worker that
 * attached to the pool.
 *
 * Writing is synchronous while the writer has room: `tryWrite` and
 * `tryReserve` return `false`/`null` when a new buffer would have to be
 * waited for, and `write`/`reserve` wait for one. Before it waits, a writer
 * flushes, so it never waits on its own unflushed buffers.
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
  readonly #words: Int32Array;
  readonly #codec: FrameCodec | null;
  readonly #size: number;
  readonly #microtask: boolean;
  readonly #flushBytes: number;
  #current: Chunk | null = null;
  /** Every chunk whose buffer the writer still holds, oldest first. */
  readonly #chunks: Chunk[] = [];
  /** Chunks with something new for the flusher, in the order they got it. */
  readonly #pending: Chunk[] = [];
  /** Open reservations, oldest first, linked through _prev/_next. */
  #oldest: Reservation | null = null;
  #newest: Reservation | null = null;
  /** Reserves and writes waiting for a buffer, in call order. */
  readonly #queue: Request[] = [];
  #switching: AbortController | null = null;
  #closed = false;
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
    const local = "readable" in target ? target as WriteFlusher : null;
    const control = local !== null ? local._control : controlOf(target as WriteFlusherHandle);
    if (control[F_POOL_ID] !== pool._id) {
      throw new TypeError(
        "Cannot make writer: the flusher takes buffers of another pool; pass this worker's object of the flusher's pool",
      );
    }
    if (pool.bufferSize > PUBLISH_END) {
      throw new RangeError(
        `Cannot make writer: the pool's buffers hold ${pool.bufferSize} bytes; a writer's may hold at most ${PUBLISH_END}`,
      );
    }
    const id = options?.id ?? Atomics.add(control, F_NEXT_WRITER, 1);
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
      throw new RangeError(`Cannot make writer: id ${id} is not an integer from 0 to 2^31 - 1`);
    }
    const flushBytes = options?.flushBytes ?? Infinity;
    if (!(flushBytes > 0)) {
      throw new RangeError(`Cannot make writer: flushBytes ${flushBytes} must be above 0`);
    }
    this.id = id;
    this.pool = pool;
    this.#flusher = local;
    this.#control = control;
    this.#words = pool._words;
    this.#codec = options?.codec ?? null;
    this.#size = pool.bufferSize;
    this.#microtask = (options?.flush ?? "microtask") === "microtask";
    this.#flushBytes = flushBytes;
    local?._register(this);
  }

  /** Whether {@linkcode Writer.close} was called, or the flusher ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Reserves space for a message of `length` bytes now, if the writer has
   * room or a free buffer can be had at once.
   *
   * @param length The message's size in bytes (its payload, under a codec).
   * @returns The reservation, or `null` if a buffer would have to be waited for.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryReserve(length: number): Reservation | null {
    const frame = this.#check(length);
    if (this.#queue.length !== 0) return null;
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
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  reserve(length: number, options?: ReserveOptions): Promise<Reservation> {
    return this.#enqueue(length, null, options?.signal) as Promise<Reservation>;
  }

  /**
   * Copies `bytes` in as one message and commits it, if there is room now.
   *
   * @param bytes The message (its payload, under a codec).
   * @returns `false` if a buffer would have to be waited for; nothing was written then.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryWrite(bytes: Uint8Array): boolean {
    const length = bytes.length;
    const frame = this.#check(length);
    if (this.#queue.length !== 0) return false;
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
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  async write(bytes: Uint8Array, options?: ReserveOptions): Promise<void> {
    await this.#enqueue(bytes.length, bytes, options?.signal);
  }

  /**
   * Encodes `text` as UTF-8 straight into the buffer as one message, if
   * there is room now.
   *
   * @param text The message.
   * @returns `false` if a buffer would have to be waited for; nothing was written then.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryWriteString(text: string): boolean {
    this.#checkOpen();
    if (this.#queue.length !== 0) return false;
    for (let attempt = 0; attempt < 2; attempt++) {
      const chunk = this.#current;
      if (chunk !== null && this.#encodeString(chunk, text)) return true;
      if (chunk !== null && chunk.reserved === 0) break;
      if (!this.#next()) {
        this.flush();
        return false;
      }
    }
    throw new RangeError(
      `Cannot write a string of ${text.length} characters: its UTF-8 frame does not fit in a buffer of ${this.#size} bytes`,
    );
  }

  /**
   * Encodes `text` as UTF-8 as one message, waiting for a buffer if need be.
   *
   * @param text The message.
   * @param options An optional `signal` to give up the wait.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
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
   */
  flush(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#unflushed = 0;
    const words = this.#words;
    let first: Chunk | null = null;
    let last: Chunk | null = null;
    for (let i = 0; i < pending.length; i++) {
      const chunk = pending[i]!;
      chunk.pending = false;
      const value = chunk.committed | (chunk.done && chunk.open === 0 ? PUBLISH_DONE : 0);
      if (value === chunk.published) continue;
      chunk.published = value;
      const old = Atomics.exchange(words, chunk.header + H_PUBLISH, value | PUBLISH_LISTED);
      if ((old & PUBLISH_LISTED) !== 0) continue;
      if (!chunk.lent) {
        this.pool._lend(chunk.buffer);
        chunk.lent = true;
      }
      // The chain runs newest first, as the flusher's list does.
      if (last === null) first = chunk;
      else words[chunk.header + H_NEXT] = last.index + 1;
      last = chunk;
    }
    if (first !== null) {
      const head = pushChain(this.#control, words, first.header + H_NEXT, last!.index);
      if (head === ENDED) {
        pending.length = 0;
        this.#end();
        throw new ClosedError("Cannot flush: the flusher has ended; the bytes were dropped");
      }
      if (head === 0) this.#ring();
    }
    for (let i = 0; i < pending.length; i++) {
      const chunk = pending[i]!;
      if ((chunk.published & PUBLISH_DONE) !== 0) this.#drop(chunk);
    }
    pending.length = 0;
  }

  /**
   * Flushes what was committed and gives every buffer back: open
   * reservations are cancelled, waiting calls reject with a
   * {@linkcode ClosedError}, and so does every later reserve or write.
   * Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    // Newest first, so that open space at the end is taken back, not zeroed.
    while (this.#newest !== null) this._cancel(this.#newest);
    this.#closed = true;
    this.#rejectQueue(new ClosedError("Cannot write: the writer was closed"));
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
      chunk.committed = next !== null && next._chunk === chunk ? next._frameStart : chunk.reserved;
      this.#committed(chunk, reservation._frameEnd - reservation._frameStart);
    }
  }

  /** @ignore Commits an open reservation and makes a packet of its payload. */
  _commitToPacket(reservation: Reservation): Packet {
    const buffer = reservation._chunk.buffer;
    buffer._refs++;
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
        this.#markPending(chunk);
      }
      return;
    }
    chunk.view.fill(0, reservation._payloadStart, reservation._payloadStart + reservation.length);
    this._commit(reservation);
  }

  // -- Placing messages --

  /** Validates a message length; returns its frame length. */
  #check(length: number): number {
    this.#checkOpen();
    const codec = this.#codec;
    if (length >>> 0 !== length) {
      throw new RangeError(`Cannot reserve ${length} bytes: not an integer from 0 up`);
    }
    if (codec !== null && length > codec.maxPayload) {
      throw new RangeError(
        `Cannot reserve ${length} bytes: the ${codec.name} codec can frame at most ${codec.maxPayload}`,
      );
    }
    const frame = codec === null
      ? length
      : codec.headerLength(length) + length + codec.trailerLength;
    if (frame > this.#size) {
      throw new RangeError(
        `Cannot reserve ${frame} bytes: the pool's buffers hold ${this.#size}`,
      );
    }
    return frame;
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("Cannot write: the writer was closed");
    if (this.#control[F_CLOSED] !== 0) {
      this.close();
      throw new ClosedError("Cannot write: the flusher was closed");
    }
  }

  /** Makes sure the current buffer has `frame` bytes free, taking a new one if need be. */
  #room(frame: number): boolean {
    const chunk = this.#current;
    if (chunk !== null && chunk.reserved + frame <= this.#size) return true;
    return this.#next();
  }

  /** Finishes the current buffer and starts a free one; false if none is free now. */
  #next(): boolean {
    this.#finishCurrent();
    const buffer = this.pool._tryAcquireRecord();
    if (buffer === null) return false;
    this.#install(buffer);
    return true;
  }

  #install(buffer: BufferRecord): void {
    const header = this.pool._headerOf(buffer.index);
    const words = this.#words;
    words[header + H_PUBLISH] = 0;
    words[header + H_FLUSHED] = -1;
    words[header + H_WRITER] = this.id;
    const chunk = new Chunk(buffer, header);
    this.#current = chunk;
    this.#chunks.push(chunk);
  }

  #finishCurrent(): void {
    const chunk = this.#current;
    if (chunk === null) return;
    this.#current = null;
    chunk.done = true;
    if (chunk.reserved === 0) this.#drop(chunk);
    else this.#markPending(chunk);
  }

  /** Writes the frame's header and trailer; returns where the payload goes. */
  #frame(chunk: Chunk, length: number, frame: number): number {
    const start = chunk.reserved;
    const codec = this.#codec;
    chunk.reserved = start + frame;
    if (codec === null) return start;
    const payload = start + codec.encodeHeader(chunk.view, start, length);
    if (codec.trailerLength !== 0) codec.encodeTrailer(chunk.view, payload + length);
    return payload;
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

  #put(bytes: Uint8Array, length: number, frame: number): void {
    const chunk = this.#current!;
    chunk.view.set(bytes, this.#frame(chunk, length, frame));
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.#committed(chunk, frame);
    }
  }

  /** Encodes a string into the chunk as one message if it fits; false if not. */
  #encodeString(chunk: Chunk, text: string): boolean {
    const codec = this.#codec;
    const start = chunk.reserved;
    const view = chunk.view;
    const trailer = codec?.trailerLength ?? 0;
    const space = this.#size - start - trailer;
    const most = Math.min(text.length * 3, codec?.maxPayload ?? Infinity, space);
    const header = codec?.headerLength(most) ?? 0;
    if (header > space) return false;
    const into = view.subarray(start + header, start + space);
    const { read, written } = encoder.encodeInto(text, into);
    if (read < text.length) return false;
    let payload = start;
    if (codec !== null) {
      const exact = codec.headerLength(written);
      // A varint prefix of a short text is shorter than the room left for it.
      if (exact !== header) {
        view.copyWithin(start + exact, start + header, start + header + written);
      }
      payload += codec.encodeHeader(view, start, written);
      if (trailer !== 0) codec.encodeTrailer(view, payload + written);
    }
    chunk.reserved = payload + written + trailer;
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.#committed(chunk, chunk.reserved - start);
    }
    return true;
  }

  // -- Flushing --

  #markPending(chunk: Chunk): void {
    if (!chunk.pending) {
      chunk.pending = true;
      this.#pending.push(chunk);
    }
  }

  /** Notes bytes newly committed in `chunk` and flushes if the cadence says so. */
  #committed(chunk: Chunk, bytes: number): void {
    this.#markPending(chunk);
    this.#unflushed += bytes;
    if (this.#unflushed >= this.#flushBytes) this.flush();
    else if (this.#microtask && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flushTask);
    }
  }

  /** Wakes the flusher: directly when it is in this worker, else through its bell. */
  #ring(): void {
    if (this.#flusher !== null) this.#flusher._ring();
    else ringBell(this.#control);
  }

  /** Drops the writer's own reference to a finished chunk's buffer. */
  #drop(chunk: Chunk): void {
    const chunks = this.#chunks;
    chunks.splice(chunks.indexOf(chunk), 1);
    chunk.buffer.release();
  }

  /** The flusher is gone: give back every buffer, settle every call. */
  #end(): void {
    for (let r = this.#oldest; r !== null; r = r._next) r._writer = null;
    this.#oldest = this.#newest = null;
    this.#closed = true;
    this.#current = null;
    for (const chunk of this.#chunks.splice(0)) {
      if (chunk.lent && !this.#claimedByFlusher(chunk)) {
        // The token was lent but never reached the flusher: take it back.
        const buffer = this.pool._claim(chunk.index);
        if (--buffer._refs === 0) this.pool._recycle(buffer);
      }
      chunk.buffer.release();
    }
    this.#rejectQueue(new ClosedError("Cannot write: the flusher has ended"));
    this.#flusher?._unregister(this);
  }

  #claimedByFlusher(chunk: Chunk): boolean {
    return this.#words[chunk.header + H_FLUSHED] !== -1;
  }

  // -- Waiting for a buffer --

  #enqueue(
    length: number,
    data: Uint8Array | null,
    signal: AbortSignal | undefined,
  ): Promise<Reservation | null> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let frame: number;
    try {
      frame = this.#check(length);
      if (this.#queue.length === 0 && this.#room(frame)) {
        if (data === null) return Promise.resolve(this.#reserve(length, frame));
        this.#put(data, length, frame);
        return Promise.resolve(null);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const request: Request = { length, frame, data, resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        request.onAbort = () => {
          const queue = this.#queue;
          const at = queue.indexOf(request);
          if (at >= 0) queue.splice(at, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", request.onAbort, { once: true });
      }
      this.#queue.push(request);
      if (this.#switching === null) this.#waitForBuffer();
    });
  }

  /** Acquires the next buffer for the queue; finishes even if every caller gives up. */
  #waitForBuffer(): void {
    this.#finishCurrent();
    try {
      this.flush();
    } catch {
      return; // The flusher ended: #end rejected the queue.
    }
    const controller = new AbortController();
    this.#switching = controller;
    this.pool._acquireRecord({ signal: controller.signal }).then((buffer) => {
      this.#switching = null;
      if (this.#closed || this.#current !== null) {
        buffer.release();
        return;
      }
      this.#install(buffer);
      this.#serveQueue();
    }, (error: unknown) => {
      this.#switching = null;
      if (!this.#closed) this.#rejectQueue(error);
    });
  }

  #serveQueue(): void {
    const queue = this.#queue;
    while (queue.length !== 0) {
      const request = queue[0]!;
      if (!this.#room(request.frame)) {
        this.#waitForBuffer();
        return;
      }
      queue.shift();
      if (request.onAbort !== undefined) {
        request.signal!.removeEventListener("abort", request.onAbort);
      }
      if (request.data === null) {
        request.resolve(this.#reserve(request.length, request.frame));
      } else {
        this.#put(request.data, request.length, request.frame);
        request.resolve(null);
      }
    }
  }

  #rejectQueue(reason: unknown): void {
    this.#switching?.abort();
    this.#switching = null;
    for (const request of this.#queue.splice(0)) {
      if (request.onAbort !== undefined) {
        request.signal!.removeEventListener("abort", request.onAbort);
      }
      request.reject(reason);
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
}

function controlOf(handle: WriteFlusherHandle): Int32Array {
  const block = handle?.control;
  if (!(block instanceof SharedArrayBuffer) || block.byteLength < FLUSH_WORDS * 4) {
    throw new TypeError(
      "Cannot make writer: the target is neither a WriteFlusher nor a WriteFlusher's handle",
    );
  }
  const control = new Int32Array(block);
  if (control[F_MAGIC] !== F_MAGIC_VALUE) {
    throw new TypeError("Cannot make writer: the handle's memory is not a bab flusher's");
  }
  return control;
}

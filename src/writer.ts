/**
 * The send side of a bus: a writer packs messages into pooled buffers and
 * hands what it committed to a {@linkcode WriteFlusher} in batches.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import type { FrameCodec } from "./frame_codec.ts";
import type { Reservation } from "./reservation.ts";
import type { WriteFlusher, WriteFlusherHandle } from "./write_flusher.ts";
import type { WriterClaim } from "./writer_claim.ts";
import type { ClaimOptions, ReserveOptions, WriterOptions } from "./writer_options.ts";
import { WriterCore } from "./_writer_core.ts";

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
 *   {@linkcode WriterClaim}, then commit. Nothing is made per message and
 *   nothing is copied; one claim is open at a time.
 * - {@linkcode Writer.tryWrite} / {@linkcode Writer.write} (and the string
 *   forms): for a message you already hold as bytes. Nothing is made per
 *   message, but the bytes are copied in.
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
 * reservations (see {@linkcode Writer.flush}).
 *
 * When the flusher's consumer fails (say its {@linkcode WriteFlusher.pipeTo}
 * does), waiting and later calls reject with a {@linkcode ClosedError} that
 * says so, with the consumer's error as its `cause` in the flusher's worker
 * (elsewhere the message quotes it).
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
  /** What frames each message, or `null`: a message is its bytes and nothing else. */
  readonly codec: FrameCodec | null;
  /** Does the work: each method forwards to it (see src/_writer_core.ts). */
  readonly #core: WriterCore;

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
    const core = new WriterCore(pool, target, options);
    this.id = core.id;
    this.pool = pool;
    this.codec = options?.codec ?? null;
    this.#core = core;
  }

  /** Whether {@linkcode Writer.close} was called, or the flusher ended. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Claims space for a message of `length` bytes now, if the writer has
   * room or a free buffer can be had at once: the fast path. Fill it and
   * settle it as {@linkcode WriterClaim} says. With `count` above 1 it
   * claims a **run** of up to `count` messages of that length, framed back
   * to back: see {@linkcode WriterClaim.count}.
   *
   * @example Claim, fill, commit, until there is no room
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * const claim = writer.tryClaim(4)!;
   * claim.buffer.set([1, 2, 3, 4], claim.offset);
   * claim.commit();
   * assert.equal(writer.tryClaim(64), null); // 60 bytes left, and no other buffer free
   * writer.close();
   * flusher.close();
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
    return this.#core.tryClaim(length, count);
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
   * const claim = await writer.claim(8, { signal: AbortSignal.timeout(1000) });
   * claim.dataView.setFloat64(claim.offset, 0.25);
   * claim.commit();
   * assert.equal(claim.open, false); // the writer may place the next message
   * writer.close();
   * flusher.close();
   * for await (const batch of flusher.readable) for (const region of batch) region.release();
   * ```
   *
   * @param length The message's size in bytes (its payload, under a codec).
   * @param options A `signal` to give up the wait, and a run's `count`.
   * @returns The writer's claim, open.
   * @throws {RangeError} If the message (framed) does not fit in one buffer,
   * or `count` is not an integer from 1 up.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  claim(length: number, options?: ClaimOptions): Promise<WriterClaim> {
    return this.#core.claim(length, options);
  }

  /**
   * Reserves space for a message of `length` bytes now, if the writer has
   * room or a free buffer can be had at once.
   *
   * @example Nothing waits: null when the pool has no room
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * const first = writer.tryReserve(40)!;
   * assert.equal(writer.tryReserve(40), null); // the one buffer has 24 bytes left
   * first.bytes.fill(7);
   * first.commit();
   * writer.close();
   * flusher.close();
   * ```
   *
   * @param length The message's size in bytes (its payload, under a codec).
   * @returns The reservation, or `null` if a buffer would have to be waited for.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryReserve(length: number): Reservation | null {
    return this.#core.tryReserve(length);
  }

  /**
   * Reserves space for a message of `length` bytes, waiting for a buffer if
   * need be. Calls are served in order, together with `write`.
   *
   * @example Two reservations open at once, committed out of order
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * const first = await writer.reserve(1);
   * const second = await writer.reserve(1);
   * second.bytes[0] = 2;
   * second.commit(); // held back until the first is committed
   * first.bytes[0] = 1;
   * first.commit();
   * writer.close();
   * flusher.close();
   * const [region] = (await flusher.readable.getReader().read()).value!;
   * assert.deepEqual([...region!.bytes], [1, 2]);
   * region!.release();
   * ```
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
    return this.#core.reserve(length, options);
  }

  /**
   * Copies `bytes` in as one message and commits it, if there is room now.
   *
   * @example Writing until the pool is full
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * let written = 0;
   * while (writer.tryWrite(new Uint8Array(16))) written++;
   * assert.equal(written, 4); // then false: the one buffer is full, and no other is free
   * writer.close();
   * flusher.close();
   * ```
   *
   * @param bytes The message (its payload, under a codec).
   * @returns `false` if a buffer would have to be waited for; nothing was written then.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryWrite(bytes: Uint8Array): boolean {
    return this.#core.tryWrite(bytes);
  }

  /**
   * Copies `bytes` in as one message and commits it, waiting for a buffer if
   * need be. The bytes are copied when the message's turn comes: leave them
   * unchanged until the promise settles.
   *
   * @example Waiting for the reader to give a buffer back
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * await writer.write(new Uint8Array(64)); // fills the one buffer
   * const second = writer.write(new Uint8Array([1])); // waits for it
   * const reader = flusher.readable.getReader();
   * for (const region of (await reader.read()).value!) region.release();
   * await second;
   * writer.close();
   * flusher.close();
   * for (const region of (await reader.read()).value!) assert.deepEqual([...region.bytes], [1]);
   * ```
   *
   * @param bytes The message (its payload, under a codec).
   * @param options An optional `signal` to give up the wait.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  write(bytes: Uint8Array, options?: ReserveOptions): Promise<void> {
    return this.#core.write(bytes, options);
  }

  /**
   * Encodes `text` as UTF-8 straight into the buffer as one message, if
   * there is room now.
   *
   * @example No copy through a temporary array
   * ```ts
   * import { BufferPool, lengthPrefix, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher, { codec: lengthPrefix(1) });
   * assert.ok(writer.tryWriteString("héllo")); // 6 bytes of UTF-8
   * writer.close();
   * flusher.close();
   * const [region] = (await flusher.readable.getReader().read()).value!;
   * assert.deepEqual([...region!.bytes.subarray(0, 2)], [6, 104]);
   * region!.release();
   * ```
   *
   * @param text The message.
   * @returns `false` if a buffer would have to be waited for; nothing was written then.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryWriteString(text: string): boolean {
    return this.#core.tryWriteString(text);
  }

  /**
   * Encodes `text` as UTF-8 as one message, waiting for a buffer if need be.
   *
   * @example A deadline, in case it has to wait
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * await writer.writeString("hi", { signal: AbortSignal.timeout(1000) });
   * writer.close();
   * flusher.close();
   * for await (const batch of flusher.readable) for (const region of batch) region.release();
   * ```
   *
   * @param text The message.
   * @param options An optional `signal` to give up the wait.
   * @throws {RangeError} If the message (framed) does not fit in one buffer.
   * @throws {TypeError} If the writer's claim is still open.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first.
   */
  writeString(text: string, options?: ReserveOptions): Promise<void> {
    return this.#core.writeString(text, options);
  }

  /**
   * Hands everything committed since the last flush to the flusher in one
   * step, however many messages and buffers that is. A buffer's bytes go
   * only once every older buffer of this writer went whole: a reservation
   * still open holds back every later byte.
   *
   * @example Flushing by hand
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher, { flush: "manual" });
   * writer.tryWrite(new Uint8Array([1]));
   * writer.tryWrite(new Uint8Array([2]));
   * writer.flush(); // both in one region
   * const [region] = (await flusher.readable.getReader().read()).value!;
   * assert.deepEqual([...region!.bytes], [1, 2]);
   * region!.release();
   * writer.close();
   * flusher.close();
   * ```
   *
   * @throws {ClosedError} If the flusher has ended, so the bytes could not
   * be delivered; the writer is closed then and its buffers are back.
   */
  flush(): void {
    this.#core.flush();
  }

  /**
   * Flushes what was committed and gives every buffer back: the open claim
   * and open reservations are cancelled, waiting calls reject with a
   * {@linkcode ClosedError}, and so does every later reserve or write.
   * Calling it again does nothing.
   *
   * @example
   * ```ts
   * import { BufferPool, ClosedError, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * const open = writer.tryReserve(8)!;
   * writer.close();
   * assert.equal(open.open, false); // cancelled
   * assert.throws(() => writer.tryWrite(new Uint8Array(1)), ClosedError);
   * flusher.close();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  close(): void {
    this.#core.close();
  }

  /**
   * Closes the writer: `using` support.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * {
   *   using writer = new Writer(pool, flusher);
   *   writer.tryWrite(new Uint8Array([1]));
   * } // closed here, its byte flushed
   * flusher.close();
   * for await (const batch of flusher.readable) for (const region of batch) region.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  [Symbol.dispose](): void {
    this.#core.close();
  }
}

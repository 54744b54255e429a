/**
 * {@linkcode FrameCutter}: the framer's synchronous core. Incoming bytes are
 * staged in pooled buffers and cut by a {@linkcode FrameCodec} into
 * {@linkcode Packet}s, or handed in place to a {@linkcode FrameVisitor},
 * with no streams and no promises on the way.
 *
 * Every reader is built on it. Which one to use, from the cheapest per
 * frame:
 *
 * | reader | made per frame | input copied | use it when |
 * | --- | --- | --- | --- |
 * | {@linkcode visitFrames} | nothing: one visitor call | no: reads into pool memory | reading a `Deno.Conn` or file: the fastest way to consume a connection |
 * | {@linkcode FrameCutter} with a {@linkcode FrameVisitor} | nothing: one visitor call | once by `push`; not by `writable`/`commit` | you own the read loop, or the bytes arrive synchronously |
 * | {@linkcode FrameSink} | nothing: one visitor call | once, plus the stream's chunk per read | the bytes come as a `ReadableStream` (`pipeTo`) |
 * | {@linkcode readFrames} | a {@linkcode Packet}, and an array per read | no | frames are kept or handed on (e.g. sent to another worker) |
 * | {@linkcode BatchFramer} | a packet, and an array per chunk | once | a stream pipeline of packets (`pipeThrough`) |
 * | {@linkcode Framer} | a packet and a stream read | once | one packet per read is simplest; it caps out at a few million frames a second |
 *
 * A visitor sees each frame's bytes in place, during the call only, and
 * makes a packet ({@linkcode FrameCutter.retain}) for just the frames it
 * keeps: at 32-byte frames that costs a few nanoseconds a frame, where a
 * packet per frame costs several times more (see `bench/framer_bench.ts`).
 *
 * @module
 */

import { FrameCutterCore } from "./_frame_cutter_core.ts";
import { frameLimit } from "./_frame_limit.ts";
import type { AcquireOptions, BufferPool } from "./buffer_pool.ts";
import type { FrameCodec } from "./frame_codec.ts";
import type { FrameCutterOptions } from "./frame_cutter_options.ts";
import type { Packet } from "./packet.ts";

/**
 * Called by a {@linkcode FrameCutter} for each frame, in place: the payload
 * is `bytes[start, end)`, where `bytes` is the whole staging buffer (the same
 * view for every frame on that buffer, so nothing is made per frame). The
 * bytes are valid only during the call: the cutter reuses the memory once
 * the visitor returns (so an `async` visitor sees them only up to its first
 * `await`). To keep a frame, call
 * {@linkcode FrameCutter.retain} on `cutter` during the call; to stop,
 * throw (the error propagates and the cutter closes) or call
 * {@linkcode FrameCutter.close} (the frames after this one are not visited).
 *
 * A visitor must not push, commit, end or wait on the cutter it is called
 * for: those throw a `TypeError` during a visit.
 *
 * @param bytes The staging buffer's memory; the payload is `bytes[start, end)`.
 * @param start First byte of the payload.
 * @param end Byte after the last of the payload.
 * @param cutter The cutter calling, for {@linkcode FrameCutter.retain}.
 *
 * @example Summing frame lengths and keeping the frames that start with 1
 * ```ts
 * import { BufferPool, FrameCutter, type FrameVisitor, lengthPrefix, type Packet } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 4 });
 * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
 * let total = 0;
 * const kept: Packet[] = [];
 * const visit: FrameVisitor = (bytes, start, end, cutter) => {
 *   total += end - start;
 *   if (bytes[start] === 1) kept.push(cutter.retain());
 * };
 * cutter.push(new Uint8Array([2, 1, 5, 1, 7, 3, 1, 8, 9]), visit);
 * cutter.end(visit);
 * assert.equal(total, 6);
 * assert.deepEqual(kept.map((p) => [...p.bytes]), [[1, 5], [1, 8, 9]]);
 * for (const packet of kept) packet.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export type FrameVisitor = (
  bytes: Uint8Array,
  start: number,
  end: number,
  cutter: FrameCutter,
) => void;

/**
 * Cuts a byte stream into frames with a {@linkcode FrameCodec}, staging the
 * bytes in buffers from a {@linkcode BufferPool}. Synchronous: the stream
 * forms ({@linkcode Framer}, {@linkcode BatchFramer},
 * {@linkcode readFrames}) are built on it.
 *
 * Each input byte is copied once, into the staging buffer
 * ({@linkcode FrameCutter.push}), or not at all when a reader fills the
 * staging memory itself ({@linkcode FrameCutter.writable} and
 * {@linkcode FrameCutter.commit}). Every frame is then a packet on that
 * memory (the `sink` is a `Packet[]`), no copy out; or, cheaper still, it is
 * handed in place to a {@linkcode FrameVisitor} (the `sink` is a function),
 * which makes no object at all and keeps a packet only for the frames it
 * {@linkcode FrameCutter.retain}s. A frame cut off by the end of a staging
 * buffer is moved, once: to the start of the same buffer when the cutter
 * holds it alone (every packet cut from it was released), else to the start
 * of a fresh one. Since `maxFrameLength` keeps every frame within one
 * buffer, nothing is ever moved twice.
 *
 * The cutter holds one staging buffer and each packet its own reference, so
 * a buffer goes back to the pool once the cutter has moved past it and its
 * packets are released. When the pool has none to give, the calls say so
 * and {@linkcode FrameCutter.waitForBuffer} waits for one.
 *
 * How many buffers a cutter needs: one, if the packets cut from it are
 * released before it is given more bytes (a visitor that retains nothing
 * always qualifies). Packets kept longer pin their buffers, and the pool
 * must hold those too; if they pin every buffer while their holder waits
 * for more frames, nothing can move, so give every wait a `signal`.
 *
 * After a {@linkcode FrameError} the cutter is closed: a stream that broke
 * the framing cannot be resynchronised.
 *
 * @example Visiting frames in place, keeping one
 * ```ts
 * import { BufferPool, FrameCutter, type FrameVisitor, lengthPrefix, type Packet } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 4 });
 * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
 * const lengths: number[] = [];
 * let kept: Packet | null = null;
 * const visit: FrameVisitor = (_bytes, start, end, cutter) => {
 *   lengths.push(end - start);
 *   if (end - start === 3) kept = cutter.retain(); // a packet of its own, to keep
 * };
 * cutter.push(new Uint8Array([2, 10, 11, 3, 20]), visit);
 * cutter.push(new Uint8Array([21, 22, 0]), visit);
 * cutter.end(visit);
 * assert.deepEqual(lengths, [2, 3, 0]);
 * assert.deepEqual([...kept!.bytes], [20, 21, 22]);
 * kept!.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class FrameCutter {
  /** The pool the staging buffers come from. */
  readonly pool: BufferPool;
  /** How frames are marked. */
  readonly codec: FrameCodec;
  /** The longest payload accepted, in bytes. */
  readonly maxFrameLength: number;
  /** Whether an unfinished frame at the end becomes a packet instead of an error. */
  readonly allowPartial: boolean;
  /** Does the work: each method forwards to it (see src/_frame_cutter_core.ts). */
  readonly #core: FrameCutterCore<FrameCutter>;

  /**
   * Makes a cutter. It acquires its first staging buffer when the first
   * bytes arrive.
   *
   * @param pool Where staging buffers come from.
   * @param options The codec, and optionally the longest payload and what
   * an unfinished last frame means.
   * @throws {RangeError} If no frame of the codec fits one of the pool's
   * buffers, or `maxFrameLength` is not an integer from 0 to the longest
   * payload that does ({@linkcode largestPayload}), or is below the size of a
   * {@linkcode fixedSize} codec's frames.
   *
   * @example The longest payload defaults to what one buffer holds
   * ```ts
   * import { BufferPool, FrameCutter, lengthPrefix } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * const cutter = new FrameCutter(pool, { codec: lengthPrefix(4) });
   * assert.equal(cutter.maxFrameLength, 252); // 256 bytes less the 4-byte prefix
   * assert.equal(pool.stats().inUse, 0); // no buffer until the first bytes
   * assert.throws(() => new FrameCutter(pool, { codec: lengthPrefix(4), maxFrameLength: 300 }), RangeError);
   * ```
   */
  constructor(pool: BufferPool, options: FrameCutterOptions) {
    const codec = options.codec;
    const maxFrameLength = frameLimit(codec, pool.bufferSize, options.maxFrameLength);
    this.pool = pool;
    this.codec = codec;
    this.maxFrameLength = maxFrameLength;
    this.allowPartial = options.allowPartial ?? false;
    this.#core = new FrameCutterCore(this, pool, codec, maxFrameLength, this.allowPartial);
  }

  /** Whether the cutter was closed, ended, or broken by a {@linkcode FrameError}. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /** Bytes of the unfinished frame staged so far. */
  get buffered(): number {
    return this.#core.buffered;
  }

  /**
   * Whether the next bytes need a staging buffer the cutter does not hold:
   * it has none, or the unfinished frame must move to the start of one.
   * {@linkcode FrameCutter.push} and {@linkcode FrameCutter.writable} move
   * it within the cutter's own buffer once no packet holds that buffer, or
   * take one from the pool themselves when it has one free.
   */
  get needsBuffer(): boolean {
    return this.#core.needsBuffer;
  }

  /**
   * Copies `chunk` into staging memory and hands `sink` every frame
   * completed by it, in order: appended to it as packets when it is an
   * array, or visited in place when it is a {@linkcode FrameVisitor}. Stops
   * early only when it needs a buffer and the pool has none free: then await
   * {@linkcode FrameCutter.waitForBuffer} and push the rest,
   * `chunk.subarray(taken)`; or when the visitor closed the cutter.
   *
   * @param chunk Bytes from the stream; not kept, so the caller may reuse it.
   * @param sink Receives the frames: an array gets packets, each to be
   * released by whoever ends up holding it; a visitor is called with each.
   * @returns How many bytes of `chunk` were taken.
   * @throws {FrameError} If the bytes break the framing; the cutter is then
   * closed. Frames handed to `sink` before the bad one are still the
   * caller's.
   * @throws {ClosedError} If the cutter was closed.
   * @throws {TypeError} If called by a visitor of this cutter.
   * @throws Whatever the visitor throws; the cutter is then closed.
   *
   * @example Frames split across chunks
   * ```ts
   * import { BufferPool, FrameCutter, lengthPrefix, type Packet } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 4 });
   * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
   * const packets: Packet[] = [];
   * cutter.push(new Uint8Array([2, 10, 11, 3, 20]), packets);
   * assert.equal(packets.length, 1); // the second frame is not complete yet
   * cutter.push(new Uint8Array([21, 22]), packets);
   * cutter.end(packets); // nothing left over: the input ended on a frame boundary
   * assert.deepEqual(packets.map((p) => [...p.bytes]), [[10, 11], [20, 21, 22]]);
   * for (const packet of packets) packet.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  push(chunk: Uint8Array, sink: Packet[] | FrameVisitor): number {
    return this.#core.push(chunk, sink);
  }

  /**
   * The free staging memory to read the next bytes into, as a view of pool
   * memory (e.g. for `conn.read(view)`), then {@linkcode FrameCutter.commit}
   * what was written. Takes a buffer from the pool when it needs one.
   *
   * Do not hand the view to a byte stream or a BYOB reader: those detach or
   * reject the memory behind it.
   *
   * @returns A non-empty view, or `null` if a buffer is needed and the pool
   * has none free: await {@linkcode FrameCutter.waitForBuffer} and try again.
   * @throws {ClosedError} If the cutter was closed.
   * @throws {TypeError} If called by a visitor of this cutter.
   *
   * @example Reading into pool memory, with no copy
   * ```ts
   * import { BufferPool, FrameCutter, lengthPrefix, type Packet } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 2 });
   * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
   * const packets: Packet[] = [];
   * const view = cutter.writable()!; // what conn.read(view) would fill
   * view.set([3, 7, 8, 9, 1]);
   * cutter.commit(5, packets);
   * assert.deepEqual(packets.map((p) => [...p.bytes]), [[7, 8, 9]]);
   * assert.equal(cutter.buffered, 1); // the next frame's header
   * packets[0]!.release();
   * cutter.close();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  writable(): Uint8Array | null {
    return this.#core.writable();
  }

  /**
   * Takes `length` bytes written at the start of the last
   * {@linkcode FrameCutter.writable} view as input, and hands `sink` every
   * frame they complete, as {@linkcode FrameCutter.push} does.
   *
   * @param length Bytes written: from 0 to the view's length.
   * @param sink Receives the frames: packets appended to an array, or a
   * visitor called with each.
   * @throws {RangeError} If `length` is not an integer within the free
   * staging memory.
   * @throws {FrameError} If the bytes break the framing; the cutter is then
   * closed.
   * @throws {ClosedError} If the cutter was closed.
   * @throws {TypeError} If called by a visitor of this cutter.
   * @throws Whatever the visitor throws; the cutter is then closed.
   */
  commit(length: number, sink: Packet[] | FrameVisitor): void {
    this.#core.commit(length, sink);
  }

  /**
   * Waits for a buffer from the pool when {@linkcode FrameCutter.needsBuffer};
   * resolves at once otherwise, or when the cutter's own buffer can take
   * the unfinished frame (every packet cut from it was released). While it
   * waits, the cutter holds no buffer, only a copy of the unfinished frame
   * (less than one buffer): its last buffer comes back to the pool, and to
   * the wait, as soon as the packets on it are released. Release packets you
   * hold, or the pool may never have one to give; a `signal` bounds the
   * wait.
   *
   * @param options An optional `signal` to give up the wait.
   * @throws The signal's reason, if it aborts first.
   * @throws {ClosedError} If the cutter is or gets closed.
   * @throws {TypeError} If called by a visitor of this cutter.
   *
   * @example A frame across the end of the only buffer
   * ```ts
   * import { BufferPool, FrameCutter, lengthPrefix, type Packet } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
   * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
   * // Two 3-byte frames, then a 4-byte one that cannot end within 8 bytes.
   * const chunk = new Uint8Array([2, 1, 1, 2, 2, 2, 3, 3, 3, 3]);
   * const packets: Packet[] = [];
   * let taken = cutter.push(chunk, packets);
   * assert.equal(taken, 8); // the packets pin the only buffer: it stops
   * assert.equal(cutter.needsBuffer, true);
   * const waiting = cutter.waitForBuffer({ signal: AbortSignal.timeout(1000) });
   * for (const packet of packets.splice(0)) packet.release(); // the buffer comes back
   * await waiting;
   * taken += cutter.push(chunk.subarray(taken), packets);
   * assert.equal(taken, chunk.length);
   * assert.deepEqual([...packets[0]!.bytes], [3, 3, 3]);
   * packets[0]!.release();
   * cutter.end(packets);
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  waitForBuffer(options?: AcquireOptions): Promise<void> {
    return this.#core.waitForBuffer(options);
  }

  /**
   * Ends the input: checks that it stopped on a frame boundary, then closes
   * the cutter. With `allowPartial`, an unfinished frame is handed to `sink`
   * as one last frame (its raw bytes, header included) instead of an error.
   *
   * @param sink Receives the unfinished frame, with `allowPartial`: its
   * packet appended to an array, or a visitor called with it.
   * @throws {TruncatedError} If the input stopped inside a frame (and
   * `allowPartial` is off, or the frame sits aside after a given-up
   * {@linkcode FrameCutter.waitForBuffer} and the pool has no buffer to
   * make it a packet on). The cutter is closed and the frame released
   * first.
   * @throws {ClosedError} If the cutter was closed.
   * @throws {TypeError} If called by a visitor of this cutter.
   * @throws Whatever the visitor throws; the cutter is closed all the same.
   *
   * @example Input that stops inside a frame
   * ```ts
   * import { BufferPool, FrameCutter, lengthPrefix, type Packet, TruncatedError } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 2 });
   * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
   * const packets: Packet[] = [];
   * cutter.push(new Uint8Array([1, 7, 4, 8, 9]), packets); // 2 of a 4-byte payload
   * assert.throws(() => cutter.end(packets), TruncatedError);
   * assert.equal(cutter.closed, true);
   * assert.deepEqual([...packets[0]!.bytes], [7]); // the whole frame is still yours
   * packets[0]!.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  end(sink: Packet[] | FrameVisitor): void {
    this.#core.end(sink);
  }

  /**
   * The frame being visited, as a {@linkcode Packet} holding its own
   * reference: call it from a {@linkcode FrameVisitor} to keep that frame
   * after the visit. Like any packet, it pins its staging buffer until
   * released; the cutter moves on to other buffers meanwhile. Each call
   * makes another packet.
   *
   * @returns The packet, the caller's to release.
   * @throws {ReleasedError} If no frame of this cutter is being visited:
   * outside a visitor, a frame's bytes are no longer the cutter's to give.
   *
   * @example Keeping every frame longer than 2 bytes
   * ```ts
   * import { BufferPool, FrameCutter, lengthPrefix, type Packet } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
   * const kept: Packet[] = [];
   * cutter.push(new Uint8Array([1, 9, 3, 1, 2, 3]), (_bytes, start, end, cutter) => {
   *   if (end - start > 2) kept.push(cutter.retain());
   * });
   * cutter.end([]);
   * assert.deepEqual(kept.map((p) => [...p.bytes]), [[1, 2, 3]]);
   * kept[0]!.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  retain(): Packet {
    return this.#core.retain();
  }

  /**
   * Releases the staging buffer and stops the cutter; an unfinished frame is
   * dropped. Packets already cut stay valid. Calling it again does nothing.
   * Called by a visitor, it stops the visiting: the frames after the one
   * being visited are not visited, and the buffer is released once the
   * visitor returns.
   */
  close(): void {
    this.#core.close();
  }

  /**
   * Closes the cutter, so `using` can own it.
   *
   * @example A cutter closed at the end of its scope
   * ```ts
   * import { BufferPool, FrameCutter, lengthPrefix, type Packet } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 2 });
   * const packets: Packet[] = [];
   * {
   *   using cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
   *   cutter.push(new Uint8Array([1, 7, 3, 8]), packets); // a frame, and 1 byte of the next
   * } // closed here: the unfinished frame is dropped
   * assert.deepEqual([...packets[0]!.bytes], [7]); // packets cut stay valid
   * packets[0]!.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  [Symbol.dispose](): void {
    this.#core.close();
  }
}

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

import { lengthPrefixLayout, LITTLE_ENDIAN } from "./_length_prefix.ts";
import type { AcquireOptions, BufferPool } from "./buffer_pool.ts";
import { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";
import { largestPayload } from "./largest_payload.ts";
import { ClosedError, FrameError, ReleasedError, TruncatedError } from "./errors.ts";
import type { Packet } from "./packet.ts";
import type { BufferRecord } from "./_buffer_record.ts";

const NO_BYTES = new Uint8Array(0);

/** Options for {@linkcode FrameCutter} and the framers built on it. */
export interface FrameCutterOptions {
  /** How frames are marked in the byte stream. */
  codec: FrameCodec;
  /**
   * The longest payload to accept, in bytes. A header announcing more, or a
   * delimiter not found within this many bytes, is a {@linkcode FrameError}
   * raised before the payload is buffered. Defaults to the longest payload
   * whose frame fits one of the pool's buffers
   * ({@linkcode largestPayload}), which is the longest message a
   * {@linkcode Writer} on such a pool sends with the same codec; a frame
   * must fit one buffer, so it may not be more (beyond the codec's own
   * `maxPayload`, it makes no difference).
   */
  maxFrameLength?: number;
  /**
   * What to do with an unfinished frame when the input ends: by default it
   * is a {@linkcode TruncatedError}; with `allowPartial: true` its raw bytes,
   * header included, become one last packet. For a delimiter codec that is
   * the last payload, sent without its delimiter.
   */
  allowPartial?: boolean;
}

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
 * {@linkcode FrameCutter.retain}s. A retained packet pins its buffer exactly
 * as any packet does. A frame cut off by the end of a staging buffer is
 * moved, once: to the start of the same buffer when the cutter holds it
 * alone (every packet cut from it was released), else to the start of a
 * fresh one. Since `maxFrameLength` keeps every frame within one buffer,
 * nothing is ever moved twice.
 *
 * The cutter holds one staging buffer; each packet holds its own reference,
 * so a buffer goes back to the pool when the cutter has moved past it and
 * its packets are released. When the pool has no buffer to give,
 * {@linkcode FrameCutter.push} stops early and says how far it got; await
 * {@linkcode FrameCutter.waitForBuffer} and push the rest. While it waits,
 * the cutter lets go of its staging buffer and keeps the unfinished frame
 * (less than one buffer) aside, so that the buffer comes back to the pool,
 * and to the wait, as soon as its packets are released.
 *
 * How many buffers a cutter needs: one, if the packets cut from it are
 * released before it is given more bytes (a visitor that retains nothing
 * always qualifies). Packets kept longer pin their
 * buffers, and the pool must hold those too; if they pin every buffer
 * while their holder waits for more frames, nothing can move, so give
 * every wait a `signal`.
 *
 * After a {@linkcode FrameError} the cutter is closed: a stream that broke
 * the framing cannot be resynchronised.
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

  readonly #size: number;
  readonly #bounds = new FrameBounds();
  /** Bytes of a `lengthPrefix()` codec's prefix, read inline; 0 for other codecs. */
  readonly #prefixSize: number;
  readonly #prefixLittleEndian: boolean;
  /** The staging buffer, holding the cutter's own reference; null when it holds none. */
  #buffer: BufferRecord | null = null;
  #view: Uint8Array = NO_BYTES;
  /** Where the unfinished frame starts in the staging buffer. */
  #start = 0;
  /** Byte after the last one staged. */
  #end = 0;
  /** Where a delimiter search resumes. */
  #scan = 0;
  /** Where the unfinished frame ends once complete, or -1 while unknown. */
  #frameEnd = -1;
  /** The unfinished frame has to move to a buffer's start before more bytes come. */
  #move = false;
  /**
   * The unfinished frame's bytes while the cutter waits for a buffer holding
   * none, so that its last buffer can go back to the pool meanwhile.
   */
  #parked: Uint8Array | null = null;
  #closed = false;
  /**
   * A visitor is running: the frame it was given is
   * `[#bounds.payloadStart, #bounds.payloadEnd)`, and the cutter's state
   * must not change under it.
   */
  #visiting = false;

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
   */
  constructor(pool: BufferPool, options: FrameCutterOptions) {
    const codec = options.codec;
    const size = pool.bufferSize;
    const largest = largestPayload(codec, size);
    if (largest < 0) {
      throw new RangeError(
        `Cannot create frame cutter: not one ${codec.name} frame fits the pool's ${size}-byte buffers`,
      );
    }
    const maxFrameLength = options.maxFrameLength ?? largest;
    if (
      !Number.isInteger(maxFrameLength) || maxFrameLength < 0 ||
      Math.min(maxFrameLength, codec.maxPayload) > largest
    ) {
      // Past the codec's own limit, a larger maxFrameLength changes nothing.
      const range = largest < codec.maxPayload
        ? `from 0 to ${largest} (the pool's ${size}-byte buffers less ${
          size - largest
        } bytes of ${codec.name} framing)`
        : `from 0 up`;
      throw new RangeError(
        `Cannot create frame cutter: maxFrameLength must be an integer ${range}, received ${maxFrameLength}`,
      );
    }
    try {
      // A codec whose frames are longer than the limit fails on every input.
      codec.decode(NO_BYTES, 0, 0, maxFrameLength, this.#bounds);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      throw new RangeError(
        `Cannot create frame cutter: ${codec.name} frames carry ${error.frameLength}-byte payloads, over the maxFrameLength of ${maxFrameLength} bytes`,
      );
    }
    this.pool = pool;
    this.codec = codec;
    this.maxFrameLength = maxFrameLength;
    this.allowPartial = options.allowPartial ?? false;
    this.#size = pool.bufferSize;
    const layout = lengthPrefixLayout(codec);
    this.#prefixSize = layout & ~LITTLE_ENDIAN;
    this.#prefixLittleEndian = (layout & LITTLE_ENDIAN) !== 0;
  }

  /** Whether the cutter was closed, ended, or broken by a {@linkcode FrameError}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes of the unfinished frame staged so far. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Whether the next bytes need a staging buffer the cutter does not hold:
   * it has none, or the unfinished frame must move to the start of one.
   * {@linkcode FrameCutter.push} and {@linkcode FrameCutter.writable} move
   * it within the cutter's own buffer once no packet holds that buffer, or
   * take one from the pool themselves when it has one free.
   */
  get needsBuffer(): boolean {
    return this.#buffer === null || this.#move;
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
   */
  push(chunk: Uint8Array, sink: Packet[] | FrameVisitor): number {
    if (this.#closed || this.#visiting) throw this.#stateError("push bytes into");
    const length = chunk.length;
    let taken = 0;
    try {
      while (taken < length) {
        if ((this.#buffer === null || this.#move) && (this.#closed || !this.#next())) break;
        const end = this.#end;
        const room = this.#size - end;
        const rest = length - taken;
        if (rest <= room) {
          this.#view.set(taken === 0 ? chunk : chunk.subarray(taken), end);
          this.#end = end + rest;
          taken = length;
        } else {
          this.#view.set(chunk.subarray(taken, taken + room), end);
          this.#end = end + room;
          taken += room;
        }
        this.#cut(sink);
      }
    } catch (error) {
      this.#abandon();
      throw error;
    }
    return taken;
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
   */
  writable(): Uint8Array | null {
    if (this.#closed || this.#visiting) throw this.#stateError("read into");
    if ((this.#buffer === null || this.#move) && !this.#next()) return null;
    return this.#view.subarray(this.#end);
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
    if (this.#closed || this.#visiting) throw this.#stateError("commit bytes to");
    if (length === 0) return;
    const room = this.#buffer === null || this.#move ? 0 : this.#size - this.#end;
    if (!Number.isInteger(length) || length < 0 || length > room) {
      throw new RangeError(
        `Cannot commit ${length} bytes: the staging memory from writable() has ${room} free`,
      );
    }
    this.#end += length;
    try {
      this.#cut(sink);
    } catch (error) {
      this.#abandon();
      throw error;
    }
  }

  /**
   * Waits for a buffer from the pool when {@linkcode FrameCutter.needsBuffer};
   * resolves at once otherwise, or when the cutter's own buffer can take
   * the unfinished frame (every packet cut from it was released). While it
   * waits, the cutter holds no buffer: its last one comes back as soon as
   * the packets on it are released. Release packets you hold, or the pool
   * may never have one to give; a `signal` bounds the wait.
   *
   * @param options An optional `signal` to give up the wait.
   * @throws The signal's reason, if it aborts first.
   * @throws {ClosedError} If the cutter is or gets closed.
   * @throws {TypeError} If called by a visitor of this cutter.
   */
  async waitForBuffer(options?: AcquireOptions): Promise<void> {
    if (this.#closed || this.#visiting) throw this.#stateError("wait for a buffer for");
    if (!this.needsBuffer || this.#next()) return;
    // Packets pin the staging buffer and the pool has nothing free. Let go
    // of the buffer, so that releasing those packets hands it back here.
    this.#park();
    const fresh = await this.pool._acquireRecord(options);
    if (this.#closed || !this.needsBuffer) {
      fresh.release();
      if (this.#closed) throw this.#closedError("wait for a buffer for");
      return;
    }
    this.#install(fresh);
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
   */
  end(sink: Packet[] | FrameVisitor): void {
    if (this.#closed || this.#visiting) throw this.#stateError("end");
    const received = this.#end - this.#start;
    if (received > 0) {
      // A frame set aside by a given-up wait needs a buffer to be a packet on.
      const buffer = this.allowPartial ? this.#buffer ?? this.#restore() : null;
      if (buffer === null) {
        const expected = this.#frameEnd < 0 ? NaN : this.#frameEnd - this.#start;
        this.close();
        const frame = Number.isNaN(expected)
          ? "a frame whose end was not yet known"
          : `a ${expected}-byte frame`;
        const why = this.allowPartial
          ? "the pool had no free buffer to hand it out on"
          : "pass allowPartial: true to receive unfinished frames";
        throw new TruncatedError(
          `Cannot end ${this.codec.name} framing: the input stopped ${received} bytes into ${frame}; ${why}`,
          received,
          expected,
        );
      }
      if (typeof sink !== "function") {
        sink.push(buffer.toPacket(this.#start, this.#end));
      } else {
        const bounds = this.#bounds;
        bounds.payloadStart = this.#start;
        bounds.payloadEnd = this.#end;
        this.#visiting = true;
        try {
          sink(this.#view, this.#start, this.#end, this);
        } finally {
          this.#abandon();
        }
        return;
      }
    }
    this.close();
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
    if (!this.#visiting) {
      throw new ReleasedError(
        "Cannot retain a frame: none is being visited; call retain() from the visitor, during the visit of the frame to keep",
      );
    }
    const bounds = this.#bounds;
    return this.#buffer!.toPacket(bounds.payloadStart, bounds.payloadEnd);
  }

  /**
   * Releases the staging buffer and stops the cutter; an unfinished frame is
   * dropped. Packets already cut stay valid. Calling it again does nothing.
   * Called by a visitor, it stops the visiting: the frames after the one
   * being visited are not visited, and the buffer is released once the
   * visitor returns.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The visiting loop lets go of the buffer once the visitor returns.
    if (!this.#visiting) this.#drop();
  }

  /** Closes the cutter after an error, even one thrown by a visitor that had closed it. */
  #abandon(): void {
    this.#visiting = false;
    this.#closed = true;
    this.#drop();
  }

  /** Releases the staging buffer and forgets the unfinished frame. */
  #drop(): void {
    const buffer = this.#buffer;
    this.#buffer = null;
    this.#view = NO_BYTES;
    this.#parked = null;
    this.#start = this.#end = 0;
    buffer?.release();
  }

  /** Closes the cutter, so `using` can own it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Cuts every complete frame in the staging buffer and hands it to `sink`;
   * notes how the unfinished one stands. One loop per kind of sink, so that
   * each stays small and its calls monomorphic.
   */
  #cut(sink: Packet[] | FrameVisitor): void {
    const codec = this.codec;
    const view = this.#view;
    const bounds = this.#bounds;
    const max = this.maxFrameLength;
    const buffer = this.#buffer!;
    const end = this.#end;
    let start = this.#start;
    let scan = this.#scan;
    // A length prefix is read inline, one load per frame; the codec's own
    // decode takes over at the first frame that is unfinished or too long,
    // to say so in its own way.
    const prefix = this.#prefixSize;
    if (typeof sink === "function") {
      this.#visiting = true;
      if (prefix !== 0) {
        const data = buffer._dataView;
        const little = this.#prefixLittleEndian;
        for (;;) {
          const payloadEnd = prefixedFrameEnd(data, start, end, prefix, little, max);
          if (payloadEnd < 0) break;
          // Where retain() finds the frame being visited.
          bounds.payloadStart = start + prefix;
          bounds.payloadEnd = payloadEnd;
          sink(view, start + prefix, payloadEnd, this);
          start = scan = payloadEnd;
          if (this.#closed) break;
        }
      }
      while (!this.#closed && start < end && codec.decode(view, start, end, max, bounds, scan)) {
        sink(view, bounds.payloadStart, bounds.payloadEnd, this);
        start = scan = bounds.frameEnd;
        if (this.#closed) break;
      }
      this.#visiting = false;
      if (this.#closed) {
        // The visitor closed the cutter: it kept the buffer until now.
        this.#drop();
        return;
      }
    } else {
      if (prefix !== 0) {
        const data = buffer._dataView;
        const little = this.#prefixLittleEndian;
        for (;;) {
          const payloadEnd = prefixedFrameEnd(data, start, end, prefix, little, max);
          if (payloadEnd < 0) break;
          sink.push(buffer.toPacket(start + prefix, payloadEnd));
          start = scan = payloadEnd;
        }
      }
      while (start < end && codec.decode(view, start, end, max, bounds, scan)) {
        sink.push(buffer.toPacket(bounds.payloadStart, bounds.payloadEnd));
        start = scan = bounds.frameEnd;
      }
    }
    this.#start = start;
    // Alone in its buffer (no packet holds it) and past the half: start
    // over at the front, so that reads keep getting at least half a buffer,
    // when the unfinished frame to move is smaller than the room it frees.
    const restart = end > this.#size >> 1 && end - start < start && buffer.alone;
    if (start === end) {
      this.#scan = start;
      this.#frameEnd = -1;
      if (restart) {
        this.#rebase(start);
      } else if (end === this.#size) {
        // Full and nothing unfinished: the packets keep the buffer alive.
        this.#buffer = null;
        this.#view = NO_BYTES;
        buffer.release();
      }
      return;
    }
    const frameEnd = bounds.frameEnd;
    this.#scan = bounds.scanned;
    this.#frameEnd = frameEnd;
    // A frame longer than a buffer cannot be staged anywhere. Only a header
    // longer than a writer makes (a padded varint) gets here, since
    // maxFrameLength keeps writers' frames within one buffer.
    if (frameEnd - start > this.#size) throw this.#frameTooLong(start, frameEnd);
    if (end === this.#size && start === 0) throw this.#headerTooLong(end);
    // Move the unfinished frame now if it cannot end in this buffer: the
    // fewer of its bytes are staged, the fewer are copied.
    if (end === this.#size || frameEnd > this.#size || restart) this.#move = true;
  }

  /**
   * Gets the unfinished frame to the start of a buffer: its own, when no
   * packet holds that any more, else a fresh one if the pool has one.
   */
  #next(): boolean {
    const buffer = this.#buffer;
    if (buffer !== null && buffer.alone) {
      const start = this.#start;
      this.#view.copyWithin(0, start, this.#end);
      this.#rebase(start);
      this.#move = false;
      return true;
    }
    const fresh = this.pool._tryAcquireRecord();
    if (fresh === null) return false;
    this.#install(fresh);
    return true;
  }

  /** Makes `fresh` the staging buffer, moving the unfinished frame into it. */
  #install(fresh: BufferRecord): void {
    const old = this.#buffer;
    const parked = this.#parked;
    const view = fresh._view;
    if (old !== null) {
      const start = this.#start;
      view.set(this.#view.subarray(start, this.#end));
      old.release();
      this.#rebase(start);
    } else if (parked !== null) {
      view.set(parked);
      this.#parked = null;
    } else {
      this.#start = this.#end = this.#scan = 0;
      this.#frameEnd = -1;
    }
    this.#move = false;
    this.#buffer = fresh;
    this.#view = view;
  }

  /** Sets the unfinished frame aside and releases the staging buffer, to wait for one. */
  #park(): void {
    const buffer = this.#buffer;
    if (buffer === null) return;
    const start = this.#start;
    // Slow path only: the pool is empty and packets pin this buffer.
    this.#parked = this.#view.slice(start, this.#end);
    this.#rebase(start);
    this.#buffer = null;
    this.#view = NO_BYTES;
    buffer.release();
  }

  /** Takes a buffer for a frame set aside, if the pool has one free now. */
  #restore(): BufferRecord | null {
    return this.#parked !== null && this.#next() ? this.#buffer : null;
  }

  /** Counts the unfinished frame's offsets from `start`, its new first byte. */
  #rebase(start: number): void {
    this.#start = 0;
    this.#end -= start;
    this.#scan -= start;
    if (this.#frameEnd >= 0) this.#frameEnd -= start;
  }

  #frameTooLong(start: number, frameEnd: number): FrameError {
    const bounds = this.#bounds;
    const payload = bounds.payloadEnd - bounds.payloadStart;
    return new FrameError(
      `Cannot decode frame: the ${this.codec.name} frame of a ${payload}-byte payload takes ${
        frameEnd - start
      } bytes with its header, more than the pool's ${this.#size}-byte buffers hold; its header is longer than a writer makes it`,
      payload,
      this.maxFrameLength,
    );
  }

  #headerTooLong(staged: number): FrameError {
    return new FrameError(
      `Cannot decode frame: ${staged} bytes of one ${this.codec.name} frame fill a whole ${this.#size}-byte buffer before its length is known`,
      NaN,
      this.maxFrameLength,
    );
  }

  #stateError(action: string): Error {
    if (this.#visiting) {
      return new TypeError(
        `Cannot ${action} the frame cutter during a visit: a visitor may only retain() or close() it`,
      );
    }
    return this.#closedError(action);
  }

  #closedError(action: string): ClosedError {
    return new ClosedError(
      `Cannot ${action} the frame cutter: it was closed (by close(), end() or a framing error)`,
    );
  }
}

/**
 * Where the payload of the length-prefixed frame at `start` ends, if the
 * frame is whole before `end` and its length within `max`; else -1, and the
 * codec's decode says why.
 */
function prefixedFrameEnd(
  data: DataView,
  start: number,
  end: number,
  prefix: number,
  little: boolean,
  max: number,
): number {
  if (end - start < prefix) return -1;
  const n = prefix === 4
    ? data.getUint32(start, little)
    : prefix === 2
    ? data.getUint16(start, little)
    : data.getUint8(start);
  const payloadEnd = start + prefix + n;
  return n > max || payloadEnd > end ? -1 : payloadEnd;
}

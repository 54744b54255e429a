/**
 * Typed errors thrown by bab. Configuration mistakes and out-of-range
 * arguments are plain `RangeError`s; the classes here are for conditions a
 * caller may want to catch and tell apart.
 *
 * @module
 */

/**
 * Thrown at once when a released {@linkcode Packet}, {@linkcode PooledBuffer},
 * {@linkcode FlushRegion}, settled {@linkcode Reservation} or
 * {@linkcode WriterClaim} is used again: released a second time, read
 * through `bytes`, cloned or sliced; and by {@linkcode FrameCutter.retain}
 * called outside a visit, when there is no frame to keep. The pool's counts
 * are left exactly as they were before the bad call.
 *
 * @example Catching a double release
 * ```ts
 * import { BufferPool, ReleasedError } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
 * const packet = pool.tryAcquire()!.intoPacket(0, 8);
 * packet.release();
 * assert.throws(() => packet.release(), ReleasedError);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class ReleasedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was attempted on which released object.
   */
  constructor(message: string) {
    super(message);
    this.name = "ReleasedError";
  }
}

/**
 * Thrown when a pool object is used after {@linkcode BufferPool.detach} or
 * after it was disposed (`using`): the worker gave its slot back, or the
 * pool object's scope ended, so it can no longer acquire or receive through
 * that object, and its pending `acquire()` calls reject with it. Buffers and
 * packets it still holds stay valid.
 *
 * @example Using a detached pool
 * ```ts
 * import { BufferPool, DetachedError } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, shared: true });
 * const worker = BufferPool.attach(pool.handle);
 * worker.detach();
 * assert.throws(() => worker.tryAcquire(), DetachedError);
 * ```
 */
export class DetachedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was attempted through the detached pool object.
   */
  constructor(message: string) {
    super(message);
    this.name = "DetachedError";
  }
}

/**
 * Thrown when a byte stream cannot be cut into frames: a header announces a
 * payload longer than the reader's `maxFrameLength`, no delimiter turns up
 * within that many bytes, or a header is malformed. It is thrown as soon as
 * the header shows it, before the payload is buffered. The stream cannot be
 * resynchronised after it; close the connection.
 *
 * @example An oversized length prefix
 * ```ts
 * import { FrameBounds, FrameError, lengthPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const header = new Uint8Array([0, 0, 0x10, 0]); // announces 4096 bytes
 * assert.throws(
 *   () => lengthPrefix(4).decode(header, 0, 4, 1024, new FrameBounds()),
 *   (error: unknown) => {
 *     assert.ok(error instanceof FrameError);
 *     assert.equal(error.frameLength, 4096);
 *     assert.equal(error.maxFrameLength, 1024);
 *     return true;
 *   },
 * );
 * ```
 */
export class FrameError extends Error {
  /**
   * The payload length the header announced, or for a delimiter the bytes
   * searched without finding one; `NaN` when the header is malformed.
   */
  readonly frameLength: number;
  /** The longest payload the reader accepts, in bytes. */
  readonly maxFrameLength: number;

  /**
   * Makes the error.
   *
   * @param message What was wrong with the frame and what the limit is.
   * @param frameLength The announced or searched length; `NaN` if unknown.
   * @param maxFrameLength The limit it broke.
   */
  constructor(message: string, frameLength: number, maxFrameLength: number) {
    super(message);
    this.name = "FrameError";
    this.frameLength = frameLength;
    this.maxFrameLength = maxFrameLength;
  }
}

/**
 * Thrown when a {@linkcode Writer} is used after it or its
 * {@linkcode WriteFlusher} was closed: nothing written now could reach the
 * flusher. What was committed before the close is still delivered.
 *
 * @example Reserving after close
 * ```ts
 * import { BufferPool, ClosedError, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 256, bufferCount: 4 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher);
 * writer.close();
 * assert.throws(() => writer.tryReserve(8), ClosedError);
 * flusher.close();
 * ```
 */
export class ClosedError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was attempted, and what was closed.
   * @param options `cause`: why it was closed, e.g. the error the flusher's
   * consumer failed with.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClosedError";
  }
}

/**
 * Thrown when a byte stream ends in the middle of a frame: the peer closed
 * the connection after sending part of a header, payload or delimited
 * frame. The complete frames before it were delivered; the partial one is
 * dropped, and its buffer released, before this is thrown.
 *
 * @example A stream that stops 2 bytes into a 4-byte payload
 * ```ts
 * import { BufferPool, FrameCutter, lengthPrefix, type Packet, TruncatedError } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
 * const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
 * const packets: Packet[] = [];
 * cutter.push(new Uint8Array([4, 1, 2]), packets);
 * assert.throws(() => cutter.end(packets), (error: unknown) => {
 *   assert.ok(error instanceof TruncatedError);
 *   assert.equal(error.received, 3);
 *   assert.equal(error.expected, 5);
 *   return true;
 * });
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class TruncatedError extends Error {
  /** Bytes of the unfinished frame that arrived, header included. */
  readonly received: number;
  /**
   * The whole frame's length in bytes, header and trailer included, as far
   * as its header told; `NaN` when the header was incomplete or the codec
   * marks frame ends with a delimiter.
   */
  readonly expected: number;

  /**
   * Makes the error.
   *
   * @param message Where the stream stopped.
   * @param received Bytes of the unfinished frame that arrived.
   * @param expected The frame's full length; `NaN` if unknown.
   */
  constructor(message: string, received: number, expected: number) {
    super(message);
    this.name = "TruncatedError";
    this.received = received;
    this.expected = expected;
  }
}

/**
 * Thrown when shared memory is asked for where the runtime has no
 * `SharedArrayBuffer`: a {@linkcode BufferPool} created with `shared: true`,
 * or {@linkcode BufferPool.attach}, in a browser page that is not
 * cross-origin isolated. Such a page gets `SharedArrayBuffer` once it is
 * served with the headers `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp`; a pool without
 * `shared: true` works everywhere, on a plain `ArrayBuffer`.
 *
 * @example Falling back to a pool of one thread
 * ```ts
 * import { BufferPool, SharedMemoryUnavailableError } from "@bab/bab";
 *
 * function makePool(): BufferPool {
 *   const sizes = { bufferSize: 4096, bufferCount: 64 };
 *   try {
 *     return new BufferPool({ ...sizes, shared: true });
 *   } catch (error) {
 *     if (!(error instanceof SharedMemoryUnavailableError)) throw error;
 *     return new BufferPool(sizes); // no workers, but the same API in this thread
 *   }
 * }
 * makePool().tryAcquire()?.release();
 * ```
 */
export class SharedMemoryUnavailableError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was attempted, and how to get shared memory.
   */
  constructor(message: string) {
    super(message);
    this.name = "SharedMemoryUnavailableError";
  }
}

/**
 * What a {@linkcode WriteFlusher} takes: its options, and where and how
 * {@linkcode WriteFlusher.pipeTo} writes.
 *
 * @module
 */

/** Options for {@linkcode WriteFlusher}. */
export interface WriteFlusherOptions {
  /**
   * Must be a number from 0 up, and changes nothing: the readable takes no
   * batch ahead of its reader, so that a cancel strands none. What was not
   * read yet waits on the flusher's list in the writers' buffers, and the
   * next read takes all of it as one batch.
   *
   * @deprecated Has no effect since read-ahead was dropped; it will be removed.
   */
  highWaterMark?: number;
}

/**
 * Where {@linkcode WriteFlusher.pipeTo} writes: a `Deno.Conn`, for one, or
 * any object with such a `write`.
 *
 * @example A sink that counts bytes
 * ```ts
 * import { BufferPool, type ByteSink, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * let total = 0;
 * const counter: ByteSink = {
 *   write(bytes) {
 *     total += bytes.length;
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
 * const flusher = new WriteFlusher(pool);
 * const piped = flusher.pipeTo(counter);
 * new Writer(pool, flusher).tryWriteString("twelve bytes");
 * flusher.close();
 * await piped;
 * assert.equal(total, 12);
 * ```
 */
export interface ByteSink {
  /** Writes some of `bytes`, resolving to how many were written. */
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Options for {@linkcode WriteFlusher.pipeTo}.
 *
 * @example Stopping a pipe with a signal
 * ```ts
 * import { BufferPool, WriteFlusher } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
 * const flusher = new WriteFlusher(pool);
 * const controller = new AbortController();
 * const piped = flusher.pipeTo(new WritableStream(), { signal: controller.signal });
 * controller.abort(new Error("shutting down"));
 * await assert.rejects(piped, /shutting down/);
 * assert.equal(flusher.closed, true);
 * ```
 */
export interface PipeToOptions {
  /** Aborting stops the pipe: the flusher is cancelled, everything released. */
  signal?: AbortSignal;
  /** Leave the destination open when the flusher ends (a `WritableStream` is closed otherwise). */
  preventClose?: boolean;
}

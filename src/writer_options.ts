/**
 * The options of a {@linkcode Writer} and of its calls that wait for room.
 *
 * @module
 */

import type { FrameCodec } from "./frame_codec.ts";

/**
 * When a writer flushes on its own, besides {@linkcode Writer.flush}:
 * `"microtask"` at the end of the microtask of a commit, `"manual"` never.
 *
 * @example Flushing by hand
 * ```ts
 * import { BufferPool, type FlushCadence, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const cadence: FlushCadence = "manual";
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher, { flush: cadence });
 * writer.tryWrite(new Uint8Array([1, 2]));
 * writer.flush(); // nothing goes before this
 * writer.close();
 * flusher.close();
 * for await (const batch of flusher.readable) {
 *   for (const region of batch) {
 *     assert.deepEqual([...region.bytes], [1, 2]);
 *     region.release();
 *   }
 * }
 * ```
 */
export type FlushCadence = "microtask" | "manual";

/**
 * Options for {@linkcode Writer}.
 *
 * @example A writer for one connection, flushing every 16 KiB
 * ```ts
 * import { BufferPool, lengthPrefix, WriteFlusher, Writer, type WriterOptions } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 4 });
 * const flusher = new WriteFlusher(pool);
 * const options: WriterOptions = {
 *   id: 7, // e.g. the connection's number, carried by every region
 *   codec: lengthPrefix(4),
 *   flush: "manual",
 *   flushBytes: 16 * 1024,
 * };
 * const writer = new Writer(pool, flusher, options);
 * assert.equal(writer.id, 7);
 * writer.close();
 * flusher.close();
 * ```
 */
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
   * `"manual"`: only {@linkcode Writer.flush}, and `flushBytes` if set;
   * but while a call waits for a buffer, a commit flushes at the end of its
   * microtask, since it may free what holds the writer's buffers back.
   */
  flush?: FlushCadence;
  /** Also flush as soon as this many bytes were committed since the last flush. */
  flushBytes?: number;
}

/**
 * Options for the waiting forms {@linkcode Writer.claim},
 * {@linkcode Writer.reserve} and {@linkcode Writer.write}.
 *
 * @example Giving up a wait for room after a second
 * ```ts
 * import { BufferPool, type ReserveOptions, WriteFlusher, Writer } from "@bab/bab";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher);
 * const options: ReserveOptions = { signal: AbortSignal.timeout(1000) };
 * await writer.write(new Uint8Array([1, 2, 3]), options);
 * writer.close();
 * flusher.close();
 * ```
 */
export interface ReserveOptions {
  /** Aborting gives up the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Writer.claim}.
 *
 * @example Room for a run of up to 100 messages of 8 bytes
 * ```ts
 * import { BufferPool, type ClaimOptions, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher);
 * const options: ClaimOptions = { count: 100 };
 * const run = await writer.claim(8, options);
 * assert.equal(run.count, 32); // as many as the 256-byte buffer holds
 * run.cancel();
 * writer.close();
 * flusher.close();
 * ```
 */
export interface ClaimOptions extends ReserveOptions {
  /**
   * Claim room for a run of up to this many messages of the same length,
   * framed back to back (see {@linkcode Writer.tryClaim}). Default 1.
   */
  count?: number;
}

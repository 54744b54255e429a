/**
 * Options, handle and limits of a {@linkcode SharedWriter}.
 *
 * @module
 */

import type { FrameCodec } from "./frame_codec.ts";
import type { FlushCadence } from "./writer_options.ts";
import { MAX_SHARED_BUFFER_SIZE as MAX_SIZE, OPEN_MAX } from "./_shared_writer_block.ts";

/**
 * Options for {@linkcode SharedWriter}.
 *
 * @example Datagram-sized buffers sent only when full
 * ```ts
 * import { BufferPool, lengthPrefix, SharedWriter, type SharedWriterOptions, WriteFlusher } from "@bab/bab";
 *
 * const options: SharedWriterOptions = { codec: lengthPrefix(2), flush: "manual" };
 * const pool = new BufferPool({ bufferSize: 1500, bufferCount: 16, shared: true });
 * using flusher = new WriteFlusher(pool);
 * using writer = new SharedWriter(pool, flusher, options);
 * ```
 */
export interface SharedWriterOptions {
  /**
   * The id every {@linkcode FlushRegion} of this writer carries: an integer
   * from 0 to 2^31 - 1. Default: the next id the flusher hands out.
   */
  id?: number;
  /** Frames each message, e.g. with a length prefix. Attach with the same codec. */
  codec?: FrameCodec;
  /**
   * `"microtask"` (the default): each worker flushes at the end of the
   * microtask after its commit. `"manual"`: only {@linkcode SharedWriter.flush}
   * (and `flushBytes`); a buffer still goes to the flusher once it is full
   * and every message in it was committed (at the end of that microtask,
   * with the other buffers that became whole in it), so with `"manual"` the
   * flusher gets whole buffers only.
   */
  flush?: FlushCadence;
  /** Also flush once this worker committed this many bytes since its last flush. */
  flushBytes?: number;
}

/**
 * Options for {@linkcode SharedWriter.attach}: the codec (the one the writer
 * was made with) and this worker's flush cadence.
 *
 * @example
 * ```ts
 * import { lengthPrefix, type SharedWriterAttachOptions } from "@bab/bab";
 *
 * const options: SharedWriterAttachOptions = { codec: lengthPrefix(2), flushBytes: 64 * 1024 };
 * ```
 */
export type SharedWriterAttachOptions = Omit<SharedWriterOptions, "id">;

/**
 * What another worker needs to attach to a {@linkcode SharedWriter}: plain
 * data (two SharedArrayBuffers), to post to the worker.
 *
 * @example
 * ```ts
 * import { BufferPool, SharedWriter, type SharedWriterHandle, WriteFlusher } from "@bab/bab";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 8, shared: true });
 * using flusher = new WriteFlusher(pool);
 * using writer = new SharedWriter(pool, flusher);
 * const handle: SharedWriterHandle = structuredClone(writer.handle);
 * using elsewhere = SharedWriter.attach(pool, handle);
 * ```
 */
export interface SharedWriterHandle {
  /** The writer's shared words. */
  readonly block: SharedArrayBuffer;
  /** The flusher's shared words. */
  readonly control: SharedArrayBuffer;
}

/**
 * The largest buffer a {@linkcode SharedWriter} can fill: 2^26 - 1 bytes,
 * since its offsets take 26 bits of the one word every claim swaps.
 *
 * @example
 * ```ts
 * import { MAX_SHARED_BUFFER_SIZE } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * assert.ok(64 * 1024 <= MAX_SHARED_BUFFER_SIZE);
 * ```
 */
export const MAX_SHARED_BUFFER_SIZE: number = MAX_SIZE;

/**
 * Open reservations one worker may hold on one {@linkcode SharedWriter}:
 * each is recorded where a reclaim finds it if the worker dies.
 *
 * @example
 * ```ts
 * import { MAX_OPEN_SHARED_RESERVATIONS } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_OPEN_SHARED_RESERVATIONS, 32);
 * ```
 */
export const MAX_OPEN_SHARED_RESERVATIONS: number = OPEN_MAX;

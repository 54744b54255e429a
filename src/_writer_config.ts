// What a writer is made from, once checked: the flusher it hands its bytes
// to (the object in this worker, or the words behind a handle posted from
// another), its id, its codec and when it flushes. Every check a writer's
// constructor makes is here, with the error that says what was wrong.

import type { BufferPool } from "./buffer_pool.ts";
import type { FrameCodec } from "./frame_codec.ts";
import type { WriteFlusher, WriteFlusherHandle } from "./write_flusher.ts";
import type { WriterOptions } from "./writer_options.ts";
import { F_MAGIC, F_MAGIC_VALUE, F_NEXT_WRITER, F_POOL_ID, FLUSH_WORDS } from "./_flush_list.ts";
import { PUBLISH_END } from "./_layout.ts";
import { isSharedArrayBuffer } from "./_shared_memory.ts";

/** A writer's target and options, checked. */
export interface WriterConfig {
  /** The flusher, when it lives in this worker; null for a handle. */
  readonly flusher: WriteFlusher | null;
  /** The flusher's words. */
  readonly control: Int32Array;
  /** The id the writer's regions carry. */
  readonly id: number;
  /** Frames each message; null for none. */
  readonly codec: FrameCodec | null;
  /** Flush at the end of the microtask of a commit. */
  readonly microtask: boolean;
  /** Flush once this many bytes were committed since the last flush. */
  readonly flushBytes: number;
}

/**
 * Checks a writer's pool, target and options.
 *
 * @throws {TypeError} If the target is not a flusher of this pool.
 * @throws {RangeError} If an option is out of range, or the pool's buffers
 * are too large for a writer.
 */
export function writerConfig(
  pool: BufferPool,
  target: WriteFlusher | WriteFlusherHandle,
  options: WriterOptions | undefined,
): WriterConfig {
  const flusher = "readable" in target ? target as WriteFlusher : null;
  const control = flusher !== null ? flusher._control : controlOf(target as WriteFlusherHandle);
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
  return {
    flusher,
    control,
    id,
    codec: options?.codec ?? null,
    microtask: (options?.flush ?? "microtask") === "microtask",
    flushBytes,
  };
}

/**
 * Checks the `count` of a claim.
 *
 * @throws {RangeError} Unless it is an integer from 1 up.
 */
export function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Cannot claim ${count} messages: count must be an integer from 1 up`);
  }
}

/** The words behind a flusher's handle, checked. */
function controlOf(handle: WriteFlusherHandle): Int32Array {
  const block = handle?.control;
  if (!isSharedArrayBuffer(block) || block.byteLength < FLUSH_WORDS * 4) {
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

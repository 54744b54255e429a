/**
 * {@linkcode FrameCutterOptions}: how a {@linkcode FrameCutter}, and every
 * reader built on one, cuts its input: the codec, the longest payload, and
 * what an unfinished last frame means.
 *
 * @module
 */

import type { FrameCodec } from "./frame_codec.ts";

/**
 * Options for {@linkcode FrameCutter} and the readers built on it.
 *
 * @example A limit below what the pool allows, and unfinished frames kept
 * ```ts
 * import { BufferPool, FrameCutter, type FrameCutterOptions, lengthPrefix, type Packet } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 4 });
 * const options: FrameCutterOptions = { codec: lengthPrefix(2), maxFrameLength: 100, allowPartial: true };
 * const cutter = new FrameCutter(pool, options);
 * const packets: Packet[] = [];
 * cutter.push(new Uint8Array([0, 1, 7, 0, 5, 8]), packets);
 * cutter.end(packets); // the unfinished frame, header included, comes last
 * assert.deepEqual(packets.map((p) => [...p.bytes]), [[7], [0, 5, 8]]);
 * for (const packet of packets) packet.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
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

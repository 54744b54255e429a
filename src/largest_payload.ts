/**
 * {@linkcode largestPayload}: the longest payload a codec frames within a
 * pool buffer, the limit that writers and frame cutters on the same pool
 * share.
 *
 * @module
 */

import { isFixedSize } from "./_fixed_size.ts";
import type { FrameCodec } from "./frame_codec.ts";

/**
 * The longest payload that `codec` can frame within `bufferSize` bytes: the
 * largest `n` up to `codec.maxPayload` for which
 * `codec.headerLength(n) + n + codec.trailerLength` is at most `bufferSize`,
 * or -1 when no frame fits at all. A frame never spans two pool buffers, so
 * this is the largest message a {@linkcode Writer} on a pool of
 * `bufferSize`-byte buffers accepts, and the `maxFrameLength` a
 * {@linkcode FrameCutter} on such a pool defaults to: whatever one side can
 * send, the other accepts.
 *
 * For {@linkcode varintPrefix} this counts the header a writer would write
 * for that length (1 byte below 128, 2 below 16384, ...), not the longest
 * header the codec can read.
 *
 * @param codec How frames are marked.
 * @param bufferSize Bytes a frame may take: a pool's `bufferSize`.
 * @returns The longest payload, or -1 if not even an empty one fits.
 * @throws {RangeError} If `bufferSize` is not a non-negative safe integer.
 *
 * @example Header and trailer come out of the buffer
 * ```ts
 * import { delimiter, fixedSize, largestPayload, lengthPrefix, varintPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * assert.equal(largestPayload(lengthPrefix(4), 256), 252);
 * assert.equal(largestPayload(varintPrefix(), 256), 254); // a 2-byte header
 * assert.equal(largestPayload(varintPrefix(), 129), 127); // 128 would need 2 bytes
 * assert.equal(largestPayload(delimiter("\r\n"), 256), 254);
 * assert.equal(largestPayload(lengthPrefix(1), 4096), 255); // the prefix's own limit
 * assert.equal(largestPayload(fixedSize(300), 256), -1); // never fits
 * ```
 */
export function largestPayload(codec: FrameCodec, bufferSize: number): number {
  if (!Number.isSafeInteger(bufferSize) || bufferSize < 0) {
    throw new RangeError(
      `Cannot find the largest payload: bufferSize must be a non-negative integer, received ${bufferSize}`,
    );
  }
  const room = bufferSize - codec.trailerLength;
  if (isFixedSize(codec)) return codec.maxPayload <= room ? codec.maxPayload : -1;
  const most = Math.min(codec.maxPayload, room);
  if (most < 0) return -1;
  const header = codec.headerLength(most);
  if (header + most <= room) return most;
  // Headers never shrink as payloads grow, so taking this header's bytes off
  // leaves a payload that fits; a shorter header for it may free a few bytes
  // more, at most `header` of them.
  let n = room - header < -1 ? -1 : room - header;
  while (n + 1 < most && codec.headerLength(n + 1) + n + 1 <= room) n++;
  return n;
}

/**
 * {@linkcode FrameBounds}: where a codec found a frame, filled in by
 * {@linkcode FrameCodec.decode} so that decoding allocates nothing.
 *
 * @module
 */

/**
 * Where {@linkcode FrameCodec.decode} found a frame, or how far it got. Made
 * once by the caller and reused for every call, so decoding allocates
 * nothing. All fields are absolute offsets into the bytes passed to `decode`.
 *
 * @example Reusing one FrameBounds for every frame of a chunk
 * ```ts
 * import { FrameBounds, lengthPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const codec = lengthPrefix(1);
 * const bytes = new Uint8Array([2, 10, 11, 1, 12]);
 * const out = new FrameBounds();
 * const payloads: number[][] = [];
 * let start = 0;
 * while (codec.decode(bytes, start, bytes.length, 100, out)) {
 *   payloads.push([...bytes.subarray(out.payloadStart, out.payloadEnd)]);
 *   start = out.frameEnd;
 * }
 * assert.deepEqual(payloads, [[10, 11], [12]]);
 * ```
 */
export class FrameBounds {
  /**
   * First byte of the payload. Set when `decode` returns true, and by the
   * codecs with a header when it returns false with `frameEnd` known.
   */
  payloadStart: number = 0;
  /**
   * Byte after the last of the payload. Set when `decode` returns true, and
   * by the codecs with a header when it returns false with `frameEnd` known.
   */
  payloadEnd: number = 0;
  /**
   * Byte after the whole frame (header, payload and trailer): where the next
   * frame starts. When `decode` returns false: where the incomplete frame
   * will end once its length is known, so the caller can check that it fits
   * its buffer, or -1 while it is not (a header not yet complete, or a
   * delimiter not yet found).
   */
  frameEnd: number = -1;
  /**
   * How far the search has got. When `decode` returns false, no frame can end
   * before a delimiter starting below this offset, so the next call for the
   * same frame, with more bytes, may pass it as `scanFrom` instead of
   * searching those bytes again. Only the delimiter codec moves it past the
   * frame's start. When `decode` returns true it equals `frameEnd`.
   */
  scanned: number = 0;
}

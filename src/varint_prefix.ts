/**
 * {@linkcode varintPrefix}: a codec that puts each payload's length before
 * it as an unsigned LEB128 varint.
 *
 * @module
 */

import { checkPayloadLength, encodeFrame } from "./_encode_frame.ts";
import { finishKnownLength, tooLong } from "./_known_length.ts";
import { FrameError } from "./errors.ts";
import type { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";

/**
 * A codec that puts the payload's length before each payload as an unsigned
 * LEB128 varint, as Protocol Buffers do: 7 bits a byte, least significant
 * first, the high bit set on every byte but the last. Lengths up to 2^32-1
 * take 1 to 5 bytes.
 *
 * Decoding accepts a length padded with extra `0x80` bytes as long as it fits
 * in 5 bytes, and rejects with a {@linkcode FrameError} a 5th byte that would
 * set bits beyond the 32nd or continue to a 6th byte.
 *
 * @returns The codec.
 *
 * @example A 300-byte payload takes a 2-byte header
 * ```ts
 * import { varintPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const codec = varintPrefix();
 * assert.equal(codec.headerLength(127), 1);
 * assert.equal(codec.headerLength(300), 2);
 * const frame = codec.encode(new Uint8Array(300));
 * assert.deepEqual([...frame.subarray(0, 2)], [0xac, 0x02]);
 * assert.equal(frame.length, 302);
 * ```
 */
export function varintPrefix(): FrameCodec {
  return new VarintCodec();
}

// The class stays private: the factory is the API, FrameCodec the type, and
// the class keeps its hot methods monomorphic.

// Varint headers by payload length: below 2^7 one byte, below 2^14 two, ...
const VARINT_1 = 0x80;
const VARINT_2 = 0x4000;
const VARINT_3 = 0x200000;
const VARINT_4 = 0x10000000;

class VarintCodec implements FrameCodec {
  readonly name = "varint prefix";
  readonly maxPayload = 0xffffffff;
  readonly trailerLength = 0;

  headerLength(payloadLength: number): number {
    checkPayloadLength(this, payloadLength);
    const n = payloadLength;
    return n < VARINT_1 ? 1 : n < VARINT_2 ? 2 : n < VARINT_3 ? 3 : n < VARINT_4 ? 4 : 5;
  }

  encodeHeader(target: Uint8Array, offset: number, payloadLength: number): number {
    checkPayloadLength(this, payloadLength);
    // The length is at most 2^32-1, so unsigned shifts see all of it.
    let n = payloadLength;
    let i = offset;
    while (n >= 0x80) {
      target[i++] = n & 0x7f | 0x80;
      n >>>= 7;
    }
    target[i++] = n;
    return i - offset;
  }

  encodeTrailer(): void {
    // No trailer: the header already marks where the frame ends.
  }

  encode(payload: Uint8Array): Uint8Array {
    return encodeFrame(this, payload);
  }

  decode(
    bytes: Uint8Array,
    start: number,
    end: number,
    maxFrameLength: number,
    out: FrameBounds,
  ): boolean {
    out.scanned = start;
    let n = 0;
    for (let i = 0; i < 4; i++) {
      if (start + i >= end) {
        out.frameEnd = -1;
        return false;
      }
      const b = bytes[start + i]!;
      // Four bytes carry 28 bits: an int32 `|` cannot overflow yet.
      n |= (b & 0x7f) << 7 * i;
      if (b < 0x80) {
        if (n > maxFrameLength) throw tooLong(this, n, maxFrameLength);
        return finishKnownLength(start + i + 1, n, end, out);
      }
    }
    if (start + 4 >= end) {
      out.frameEnd = -1;
      return false;
    }
    // The 5th byte holds bits 28-31 only; anything above them overflows 32
    // bits or asks for a 6th byte, and either way the stream is corrupt.
    const last = bytes[start + 4]!;
    if (last > 0x0f) throw malformedVarint(last, maxFrameLength);
    n += last * VARINT_4; // bits 28-31; a multiply, as `<<` would go negative
    if (n > maxFrameLength) throw tooLong(this, n, maxFrameLength);
    return finishKnownLength(start + 5, n, end, out);
  }
}

function malformedVarint(fifth: number, maxFrameLength: number): FrameError {
  const why = fifth >= 0x80
    ? "continues past 5 bytes, the most a 32-bit length takes"
    : "sets bits beyond the 32 a length may use";
  return new FrameError(
    `Cannot decode frame: malformed varint prefix: its 5th byte 0x${fifth.toString(16)} ${why}`,
    NaN,
    maxFrameLength,
  );
}

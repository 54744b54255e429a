/**
 * {@linkcode lengthPrefix}: a codec that puts each payload's length before
 * it, as a 1-, 2- or 4-byte unsigned integer.
 *
 * @module
 */

import { checkPayloadLength, encodeFrame } from "./_encode_frame.ts";
import { finishKnownLength, tooLong } from "./_known_length.ts";
import { registerLengthPrefix } from "./_length_prefix.ts";
import type { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";

/** Options for {@linkcode lengthPrefix}. */
export interface LengthPrefixOptions {
  /**
   * Whether the length is stored least significant byte first. Defaults to
   * false: big-endian, network byte order. Ignored for a 1-byte prefix.
   */
  littleEndian?: boolean;
}

/**
 * A codec that puts the payload's length, an unsigned integer of `size`
 * bytes, before each payload. The length counts payload bytes only, so the
 * longest payload is 255 bytes for a 1-byte prefix, 65535 for 2 bytes and
 * 2^32-1 for 4.
 *
 * @param size The prefix's size in bytes: 1, 2 or 4.
 * @param options Byte order; big-endian unless `littleEndian` is set.
 * @returns The codec.
 * @throws {RangeError} If `size` is not 1, 2 or 4.
 *
 * @example Big- and little-endian prefixes
 * ```ts
 * import { lengthPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const payload = new Uint8Array([7, 8, 9]);
 * assert.deepEqual([...lengthPrefix(4).encode(payload)], [0, 0, 0, 3, 7, 8, 9]);
 * const le = lengthPrefix(2, { littleEndian: true });
 * assert.equal(le.name, "u16le length prefix");
 * assert.deepEqual([...le.encode(payload)], [3, 0, 7, 8, 9]);
 * ```
 */
export function lengthPrefix(size: 1 | 2 | 4, options: LengthPrefixOptions = {}): FrameCodec {
  if (size !== 1 && size !== 2 && size !== 4) {
    throw new RangeError(
      `Cannot create length prefix codec: size must be 1, 2 or 4 bytes, received ${size}`,
    );
  }
  const littleEndian = options.littleEndian ?? false;
  const codec = new LengthPrefixCodec(size, littleEndian);
  registerLengthPrefix(codec, size, littleEndian);
  return codec;
}

// The class stays private: the factory is the API, FrameCodec the type, and
// the class keeps its hot methods monomorphic.

class LengthPrefixCodec implements FrameCodec {
  readonly name: string;
  readonly maxPayload: number;
  readonly trailerLength = 0;
  readonly #size: 1 | 2 | 4;
  readonly #littleEndian: boolean;

  constructor(size: 1 | 2 | 4, littleEndian: boolean) {
    this.#size = size;
    this.#littleEndian = littleEndian;
    this.name = size === 1
      ? "u8 length prefix"
      : `u${size * 8}${littleEndian ? "le" : "be"} length prefix`;
    this.maxPayload = 2 ** (size * 8) - 1;
  }

  headerLength(payloadLength: number): number {
    checkPayloadLength(this, payloadLength);
    return this.#size;
  }

  encodeHeader(target: Uint8Array, offset: number, payloadLength: number): number {
    checkPayloadLength(this, payloadLength);
    const n = payloadLength;
    switch (this.#size) {
      case 1:
        target[offset] = n;
        break;
      case 2:
        if (this.#littleEndian) {
          target[offset] = n;
          target[offset + 1] = n >>> 8;
        } else {
          target[offset] = n >>> 8;
          target[offset + 1] = n;
        }
        break;
      case 4:
        if (this.#littleEndian) {
          target[offset] = n;
          target[offset + 1] = n >>> 8;
          target[offset + 2] = n >>> 16;
          target[offset + 3] = n >>> 24;
        } else {
          target[offset] = n >>> 24;
          target[offset + 1] = n >>> 16;
          target[offset + 2] = n >>> 8;
          target[offset + 3] = n;
        }
    }
    return this.#size;
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
    const size = this.#size;
    out.scanned = start;
    if (end - start < size) {
      out.frameEnd = -1;
      return false;
    }
    // Byte arithmetic rather than a DataView: nothing to allocate per call.
    // `>>> 0` keeps a 4-byte length unsigned when its top bit is set.
    let n: number;
    if (size === 1) {
      n = bytes[start]!;
    } else if (size === 2) {
      n = this.#littleEndian
        ? bytes[start]! | bytes[start + 1]! << 8
        : bytes[start]! << 8 | bytes[start + 1]!;
    } else {
      n = this.#littleEndian
        ? (bytes[start]! | bytes[start + 1]! << 8 | bytes[start + 2]! << 16 |
          bytes[start + 3]! << 24) >>> 0
        : (bytes[start]! << 24 | bytes[start + 1]! << 16 | bytes[start + 2]! << 8 |
          bytes[start + 3]!) >>> 0;
    }
    if (n > maxFrameLength) throw tooLong(this, n, maxFrameLength);
    return finishKnownLength(start + size, n, end, out);
  }
}

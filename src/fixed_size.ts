/**
 * {@linkcode fixedSize}: a codec whose every payload has the same length,
 * with no header and no trailer.
 *
 * @module
 */

import { registerFixedSize } from "./_fixed_size.ts";
import { encodeFrame } from "./_encode_frame.ts";
import { finishKnownLength } from "./_known_length.ts";
import { FrameError } from "./errors.ts";
import type { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";

/**
 * A codec whose every payload is exactly `size` bytes: no header, no
 * trailer.
 *
 * @param size The payload length in bytes: a positive integer.
 * @returns The codec.
 * @throws {RangeError} If `size` is not a positive safe integer.
 *
 * @example Records of 4 bytes
 * ```ts
 * import { FrameBounds, fixedSize } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const codec = fixedSize(4);
 * const bytes = new Uint8Array(10);
 * const out = new FrameBounds();
 * assert.equal(codec.decode(bytes, 4, 8, 64, out), true);
 * assert.deepEqual([out.payloadStart, out.payloadEnd], [4, 8]);
 * assert.equal(codec.decode(bytes, 8, 10, 64, out), false);
 * assert.equal(out.frameEnd, 12);
 * ```
 */
export function fixedSize(size: number): FrameCodec {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new RangeError(
      `Cannot create fixed-size codec: size must be a positive integer, received ${size}`,
    );
  }
  const codec = new FixedSizeCodec(size);
  registerFixedSize(codec);
  return codec;
}

// The class stays private: the factory is the API, FrameCodec the type, and
// the class keeps its hot methods monomorphic.

class FixedSizeCodec implements FrameCodec {
  readonly name: string;
  readonly maxPayload: number;
  readonly trailerLength = 0;

  constructor(size: number) {
    this.maxPayload = size;
    this.name = `fixed ${size}`;
  }

  headerLength(payloadLength: number): number {
    this.#check(payloadLength);
    return 0;
  }

  encodeHeader(_target: Uint8Array, _offset: number, payloadLength: number): number {
    this.#check(payloadLength);
    return 0;
  }

  encodeTrailer(): void {
    // No trailer: the header already marks where the frame ends.
  }

  encode(payload: Uint8Array): Uint8Array {
    return encodeFrame(this, payload);
  }

  decode(
    _bytes: Uint8Array,
    start: number,
    end: number,
    maxFrameLength: number,
    out: FrameBounds,
  ): boolean {
    const size = this.maxPayload;
    if (size > maxFrameLength) {
      throw new FrameError(
        `Cannot decode frame: ${this.name} frames carry ${size}-byte payloads, over the maxFrameLength of ${maxFrameLength} bytes`,
        size,
        maxFrameLength,
      );
    }
    out.scanned = start;
    return finishKnownLength(start, size, end, out);
  }

  #check(payloadLength: number): void {
    if (payloadLength !== this.maxPayload) {
      throw new RangeError(
        `Cannot encode payload length ${payloadLength} with ${this.name}: every payload must be exactly ${this.maxPayload} bytes`,
      );
    }
  }
}

/**
 * {@linkcode delimiter}: a codec that ends each payload with one or more
 * bytes.
 *
 * @module
 */

import { checkPayloadLength, encodeFrame } from "./_encode_frame.ts";
import { FrameError } from "./errors.ts";
import { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";

/**
 * A codec that ends each payload with `bytes` (a string is UTF-8 encoded).
 * Decoding strips the delimiter. Payloads are not escaped, so a payload must
 * not contain the delimiter; {@linkcode FrameCodec.encode} checks, framing in
 * place cannot.
 *
 * @param bytes The delimiter: one byte or more, copied.
 * @returns The codec.
 * @throws {RangeError} If the delimiter is empty.
 *
 * @example Lines ending in CRLF
 * ```ts
 * import { delimiter, FrameBounds } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const codec = delimiter("\r\n");
 * assert.equal(codec.name, "delimiter 0d0a");
 * const bytes = new TextEncoder().encode("ping\r\npo");
 * const out = new FrameBounds();
 * assert.equal(codec.decode(bytes, 0, bytes.length, 1024, out), true);
 * assert.deepEqual([out.payloadStart, out.payloadEnd, out.frameEnd], [0, 4, 6]);
 * assert.equal(codec.decode(bytes, 6, bytes.length, 1024, out), false);
 * ```
 */
export function delimiter(bytes: Uint8Array | string): FrameCodec {
  const copy = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes.slice();
  if (copy.length === 0) {
    throw new RangeError("Cannot create delimiter codec: the delimiter must be at least 1 byte");
  }
  return new DelimiterCodec(copy);
}

// The class stays private: the factory is the API, FrameCodec the type, and
// the class keeps its hot methods monomorphic.

// A search first checks this many bytes in a plain loop, which beats
// `indexOf` over short distances; past them it bounds `indexOf` with one
// `subarray`, whose cost is then small beside the search.
const SHORT_SCAN = 128;

class DelimiterCodec implements FrameCodec {
  readonly name: string;
  readonly maxPayload = Number.MAX_SAFE_INTEGER;
  readonly trailerLength: number;
  readonly #delimiter: Uint8Array;
  readonly #first: number;

  constructor(delimiter: Uint8Array) {
    this.#delimiter = delimiter;
    this.#first = delimiter[0]!;
    this.trailerLength = delimiter.length;
    this.name = `delimiter ${[...delimiter].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  headerLength(payloadLength: number): number {
    checkPayloadLength(this, payloadLength);
    return 0;
  }

  encodeHeader(_target: Uint8Array, _offset: number, payloadLength: number): number {
    checkPayloadLength(this, payloadLength);
    return 0;
  }

  encodeTrailer(target: Uint8Array, offset: number): void {
    const delimiter = this.#delimiter;
    for (let k = 0; k < delimiter.length; k++) target[offset + k] = delimiter[k]!;
  }

  encode(payload: Uint8Array): Uint8Array {
    const frame = encodeFrame(this, payload);
    // Decoding the frame must stop at the delimiter we appended. This also
    // catches a payload whose tail and the delimiter form an earlier match,
    // as "xa" + "aa" would.
    const out = new FrameBounds();
    this.decode(frame, 0, frame.length, Infinity, out);
    if (out.payloadEnd !== payload.length) {
      throw new RangeError(
        `Cannot encode payload with ${this.name}: the delimiter occurs in the payload at byte ${out.payloadEnd}, so it would decode as a shorter frame`,
      );
    }
    return frame;
  }

  decode(
    bytes: Uint8Array,
    start: number,
    end: number,
    maxFrameLength: number,
    out: FrameBounds,
    scanFrom: number = start,
  ): boolean {
    const delimiter = this.#delimiter;
    const length = delimiter.length;
    // A delimiter may start at most maxFrameLength bytes in, so nothing past
    // its end there is read however much is buffered.
    const windowLength = maxFrameLength + length;
    const windowEnd = end - start < windowLength ? end : start + windowLength;
    // The last position where a whole delimiter fits in the window. A
    // delimiter cut off by `end` is looked at again when more bytes come.
    const last = windowEnd - length;
    const from = scanFrom > start ? scanFrom : start;
    let p = from;
    while (p <= last) {
      p = findByte(bytes, this.#first, p, last + 1);
      if (p < 0) break;
      let k = 1;
      while (k < length && bytes[p + k] === delimiter[k]) k++;
      if (k === length) {
        out.payloadStart = start;
        out.payloadEnd = p;
        out.frameEnd = p + length;
        out.scanned = p + length;
        return true;
      }
      p++;
    }
    if (windowEnd - start === windowLength) {
      throw new FrameError(
        `Cannot decode frame: no ${this.name} in the ${windowLength} bytes after the frame's start, so the payload is over the maxFrameLength of ${maxFrameLength} bytes`,
        windowLength,
        maxFrameLength,
      );
    }
    out.frameEnd = -1;
    out.scanned = last + 1 > from ? last + 1 : from;
    return false;
  }
}

/** The first index in `[from, to)` holding `byte`, or -1. */
function findByte(bytes: Uint8Array, byte: number, from: number, to: number): number {
  const near = to - from > SHORT_SCAN ? from + SHORT_SCAN : to;
  for (let i = from; i < near; i++) {
    if (bytes[i] === byte) return i;
  }
  if (near === to) return -1;
  // `indexOf` alone would search to the end of `bytes`, past `to`.
  const i = bytes.subarray(near, to).indexOf(byte);
  return i < 0 ? -1 : near + i;
}

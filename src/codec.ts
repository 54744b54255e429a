/**
 * Framing codecs: how messages are cut out of a byte stream and how they are
 * marked when written into one. A codec is shared by the encode side, which
 * writes a frame's header and trailer straight into pooled memory around a
 * payload already there, and the decode side, which finds one complete frame
 * at a time in buffered bytes.
 *
 * - {@linkcode lengthPrefix}: a 1-, 2- or 4-byte unsigned length before each
 *   payload, big- or little-endian.
 * - {@linkcode varintPrefix}: an unsigned LEB128 length before each payload.
 * - {@linkcode delimiter}: one or more bytes after each payload.
 * - {@linkcode fixedSize}: every payload has the same length; no header.
 *
 * Encoding and decoding allocate nothing: the methods take bytes and offsets
 * and return numbers, and {@linkcode FrameCodec.decode} reports a frame
 * through a caller-owned {@linkcode FrameBounds}.
 *
 * @module
 */

import { FrameError } from "./errors.ts";
import { registerLengthPrefix } from "./_length_prefix.ts";

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

/**
 * A way of marking frames in a byte stream. A frame is a header of
 * `headerLength(n)` bytes, then the `n`-byte payload, then a trailer of
 * `trailerLength` bytes.
 *
 * Get one from {@linkcode lengthPrefix}, {@linkcode varintPrefix},
 * {@linkcode delimiter} or {@linkcode fixedSize}. Codecs are immutable and
 * hold no per-stream state, so one codec may serve any number of streams.
 *
 * @example Writing a frame around a payload in place, then decoding it
 * ```ts
 * import { FrameBounds, lengthPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const codec = lengthPrefix(2);
 * const memory = new Uint8Array(64);
 * const payload = new TextEncoder().encode("hello");
 *
 * // Encode: leave room for the header, write the payload, then frame it.
 * const header = codec.headerLength(payload.length);
 * memory.set(payload, header);
 * codec.encodeHeader(memory, 0, payload.length);
 * codec.encodeTrailer(memory, header + payload.length);
 * const frameLength = header + payload.length + codec.trailerLength;
 * assert.deepEqual([...memory.subarray(0, 3)], [0, 5, 104]);
 *
 * // Decode: false until the whole frame is there.
 * const out = new FrameBounds();
 * assert.equal(codec.decode(memory, 0, 4, 1024, out), false);
 * assert.equal(out.frameEnd, frameLength); // known from the header alone
 * assert.equal(codec.decode(memory, 0, frameLength, 1024, out), true);
 * const text = new TextDecoder().decode(memory.subarray(out.payloadStart, out.payloadEnd));
 * assert.equal(text, "hello");
 * ```
 */
export interface FrameCodec {
  /** What the codec is, for messages: "u32be length prefix", "delimiter 0d0a". */
  readonly name: string;
  /** The longest payload the codec can express, in bytes. */
  readonly maxPayload: number;
  /** Bytes after each payload: the delimiter's length, or 0. */
  readonly trailerLength: number;

  /**
   * Bytes before a payload of `payloadLength` bytes. Constant except for
   * {@linkcode varintPrefix}, whose header grows with the length.
   *
   * @param payloadLength The payload's length in bytes.
   * @returns The header's length in bytes.
   * @throws {RangeError} If the codec cannot frame that length (see
   * {@linkcode FrameCodec.encodeHeader}).
   */
  headerLength(payloadLength: number): number;

  /**
   * Writes the header for a payload of `payloadLength` bytes at
   * `target[offset]`. The caller makes sure `headerLength(payloadLength)`
   * bytes fit there: writes past the end of `target` are lost.
   *
   * @param target Memory to write into.
   * @param offset Where the header goes.
   * @param payloadLength The payload's length in bytes.
   * @returns The number of bytes written: `headerLength(payloadLength)`.
   * @throws {RangeError} If `payloadLength` is not an integer from 0 to
   * `maxPayload`, or, for {@linkcode fixedSize}, not exactly its size.
   */
  encodeHeader(target: Uint8Array, offset: number, payloadLength: number): number;

  /**
   * Writes the trailer (the delimiter, for {@linkcode delimiter}; nothing
   * otherwise) at `target[offset]`, just after the payload. The caller makes
   * sure `trailerLength` bytes fit there.
   *
   * @param target Memory to write into.
   * @param offset Where the trailer goes.
   */
  encodeTrailer(target: Uint8Array, offset: number): void;

  /**
   * Makes a new array holding the whole frame for `payload`. Allocates: for
   * tests and simple uses; a writer frames in place with `encodeHeader` and
   * `encodeTrailer`.
   *
   * @param payload The payload to frame.
   * @returns Header, payload and trailer in one new array.
   * @throws {RangeError} If the payload's length cannot be framed, or, for
   * {@linkcode delimiter}, the payload contains the delimiter: delimited
   * frames are not escaped, so it would decode as a different frame.
   */
  encode(payload: Uint8Array): Uint8Array;

  /**
   * Looks for one complete frame starting at `bytes[start]` and ending by
   * `bytes[end]`. Reads nothing outside `[start, end)` and allocates nothing.
   *
   * Returns true and fills `out` when the frame is complete. Returns false
   * when more bytes are needed, setting `out.frameEnd` (the frame's end once
   * its length is known, else -1) and `out.scanned` (see
   * {@linkcode FrameBounds}).
   *
   * A hostile peer cannot make the caller buffer more than it allows: a
   * header announcing a payload over `maxFrameLength` bytes throws as soon as
   * the header is readable, before any of the payload is there, and a
   * delimiter not found within `maxFrameLength` bytes of the frame's start
   * throws once `maxFrameLength + trailerLength` bytes have been searched.
   *
   * The offsets are not checked, so that a framer pays nothing for them: the
   * caller keeps `0 <= start <= end <= bytes.length`.
   *
   * @param bytes Buffered input.
   * @param start Where the frame starts.
   * @param end Byte after the last buffered one.
   * @param maxFrameLength The longest payload to accept, in bytes.
   * @param out Receives the result; see {@linkcode FrameBounds}.
   * @param scanFrom Where to resume a search for a delimiter: `out.scanned`
   * from the previous call for the same frame. Defaults to `start`; values
   * below `start` count as `start`. Codecs with a header ignore it.
   * @returns Whether a complete frame was found.
   * @throws {FrameError} If the payload is longer than `maxFrameLength`
   * (`frameLength` is the announced length, or for a delimiter the number of
   * bytes searched without finding one), or a varint header is malformed
   * (`frameLength` is `NaN`).
   */
  decode(
    bytes: Uint8Array,
    start: number,
    end: number,
    maxFrameLength: number,
    out: FrameBounds,
    scanFrom?: number,
  ): boolean;
}

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
  return new FixedSizeCodec(size);
}

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
  if (codec instanceof FixedSizeCodec) return codec.maxPayload <= room ? codec.maxPayload : -1;
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

// The codec classes stay private: the factories are the API, FrameCodec the
// type, and each class keeps its hot methods monomorphic.

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
    return finish(start + size, n, end, out);
  }
}

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
        return finish(start + i + 1, n, end, out);
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
    return finish(start + 5, n, end, out);
  }
}

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
    return finish(start, size, end, out);
  }

  #check(payloadLength: number): void {
    if (payloadLength !== this.maxPayload) {
      throw new RangeError(
        `Cannot encode payload length ${payloadLength} with ${this.name}: every payload must be exactly ${this.maxPayload} bytes`,
      );
    }
  }
}

/**
 * Completes a decode once the header is read: the payload is `length` bytes
 * from `payloadStart`, and the frame is complete when they are all before
 * `end`. The bounds are known either way, so they are set either way. Only
 * for codecs without a trailer.
 */
function finish(payloadStart: number, length: number, end: number, out: FrameBounds): boolean {
  const frameEnd = payloadStart + length;
  out.frameEnd = frameEnd;
  out.payloadStart = payloadStart;
  out.payloadEnd = frameEnd;
  if (frameEnd > end) return false;
  out.scanned = frameEnd;
  return true;
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

function checkPayloadLength(codec: FrameCodec, payloadLength: number): void {
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > codec.maxPayload) {
    throw new RangeError(
      `Cannot encode payload length ${payloadLength} with ${codec.name}: it must be an integer from 0 to ${codec.maxPayload}`,
    );
  }
}

function encodeFrame(codec: FrameCodec, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const header = codec.headerLength(length);
  const frame = new Uint8Array(header + length + codec.trailerLength);
  codec.encodeHeader(frame, 0, length);
  frame.set(payload, header);
  codec.encodeTrailer(frame, header + length);
  return frame;
}

function tooLong(codec: FrameCodec, length: number, maxFrameLength: number): FrameError {
  return new FrameError(
    `Cannot decode frame: the ${codec.name} announces a ${length}-byte payload, over the maxFrameLength of ${maxFrameLength} bytes`,
    length,
    maxFrameLength,
  );
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

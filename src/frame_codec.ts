/**
 * {@linkcode FrameCodec}: how messages are cut out of a byte stream and how
 * they are marked when written into one. A codec is shared by the encode
 * side, which writes a frame's header and trailer straight into pooled
 * memory around a payload already there, and the decode side, which finds
 * one complete frame at a time in buffered bytes.
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

import type { FrameBounds } from "./frame_bounds.ts";

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

// How a writer lays a message out in a pooled buffer: how long its frame is
// under the writer's codec, the RangeError when it cannot fit, and the
// codec's header and trailer written in place around the payload. The
// length prefixes that `lengthPrefix()` makes are written inline instead,
// with one DataView store, since calling the codec twice per message costs
// more than the message. Functions of the codec alone, so that every kind
// of writer frames alike.

import type { FrameCodec } from "./frame_codec.ts";
import { lengthPrefixLayout, LITTLE_ENDIAN } from "./_length_prefix.ts";

/** How a writer frames inline, without calling its codec. */
export interface InlinePrefix {
  /** Bytes of length prefix: 0 without a codec, -1 when the codec is not a length prefix. */
  readonly size: number;
  /** Whether the prefix is little-endian. */
  readonly littleEndian: boolean;
  /** The largest payload framed inline. */
  readonly max: number;
}

/** How a writer with `codec` (or none) and buffers of `bufferSize` bytes frames inline. */
export function inlinePrefix(codec: FrameCodec | null, bufferSize: number): InlinePrefix {
  if (codec === null) return { size: 0, littleEndian: false, max: bufferSize };
  const layout = lengthPrefixLayout(codec);
  return {
    size: layout === 0 ? -1 : layout & ~LITTLE_ENDIAN,
    littleEndian: (layout & LITTLE_ENDIAN) !== 0,
    max: codec.maxPayload,
  };
}

/** Writes a `size`-byte length prefix (none for 0) for `length` at `at`. */
export function writePrefix(
  data: DataView,
  at: number,
  size: number,
  littleEndian: boolean,
  length: number,
): void {
  if (size === 4) data.setUint32(at, length, littleEndian);
  else if (size === 2) data.setUint16(at, length, littleEndian);
  else if (size === 1) data.setUint8(at, length);
}

/** The frame length of a payload of `length` bytes under `codec`; Infinity past its limit. */
export function framedLength(codec: FrameCodec, length: number): number {
  if (length > codec.maxPayload) return Infinity;
  return codec.headerLength(length) + length + codec.trailerLength;
}

/**
 * Writes `codec`'s header and trailer around a payload of `length` bytes
 * whose frame starts at `start`; returns where the payload goes.
 */
export function frameAround(
  codec: FrameCodec,
  view: Uint8Array,
  start: number,
  length: number,
): number {
  const payload = start + codec.encodeHeader(view, start, length);
  if (codec.trailerLength !== 0) codec.encodeTrailer(view, payload + length);
  return payload;
}

/** What is wrong with a message of `length` bytes that a writer refused. */
export function lengthError(
  codec: FrameCodec | null,
  bufferSize: number,
  length: number,
): RangeError {
  if (length >>> 0 !== length) {
    return new RangeError(`Cannot reserve ${length} bytes: not an integer from 0 up`);
  }
  if (codec !== null && length > codec.maxPayload) {
    return new RangeError(
      `Cannot reserve ${length} bytes: the ${codec.name} codec can frame at most ${codec.maxPayload}`,
    );
  }
  const frame = codec === null ? length : framedLength(codec, length);
  return new RangeError(`Cannot reserve ${frame} bytes: the pool's buffers hold ${bufferSize}`);
}

/**
 * The frame length of `text`, whose UTF-8 takes `length` bytes.
 *
 * @throws {RangeError} If the codec cannot frame it or its frame does not
 * fit in a buffer of `bufferSize` bytes.
 */
export function stringFrameLength(
  codec: FrameCodec | null,
  bufferSize: number,
  text: string,
  length: number,
): number {
  if (codec !== null && length > codec.maxPayload) {
    throw new RangeError(
      `Cannot write a string of ${text.length} characters: its UTF-8 takes ${length} bytes, more than the ${codec.name} codec can frame (${codec.maxPayload})`,
    );
  }
  const frame = codec === null ? length : framedLength(codec, length);
  if (frame > bufferSize) {
    throw new RangeError(
      `Cannot write a string of ${text.length} characters: its UTF-8 frame of ${frame} bytes does not fit in a buffer of ${bufferSize} bytes`,
    );
  }
  return frame;
}

/**
 * The UTF-8 length of `text` as `TextEncoder` encodes it, a lone surrogate
 * as U+FFFD: known before encoding, the frame is placed like any other.
 */
export function utf8Length(text: string): number {
  const units = text.length;
  let length = units;
  for (let i = 0; i < units; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      length += 1;
      continue;
    }
    length += 2;
    // A surrogate pair takes 4 bytes for its 2 units; a lone one becomes U+FFFD, 3 bytes.
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
  }
  return length;
}

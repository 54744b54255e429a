// How a writer with a given codec and buffer size lays one message out: its
// frame length (or the RangeError saying why it cannot be placed), and its
// header and trailer written in place around the payload, inline for the
// length prefixes lengthPrefix() makes. One object per writer, made once.

import type { FrameCodec } from "./frame_codec.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import {
  frameAround,
  framedLength,
  inlinePrefix,
  lengthError,
  stringFrameLength,
  writePrefix,
} from "./_writer_framing.ts";

/** A writer's framing of one message. */
export class MessageLayout {
  readonly codec: FrameCodec | null;
  readonly bufferSize: number;
  /** Bytes of inline length prefix: 0 without a codec, -1 when the codec frames. */
  readonly #prefixSize: number;
  readonly #littleEndian: boolean;
  readonly #prefixMax: number;
  /**
   * What a cancelled frame of a writer that frames nothing is rewritten as,
   * when its bytes' protocol says (NATS: no-op lines); else zeros.
   */
  filler: ((view: Uint8Array, start: number, length: number) => void) | null = null;

  constructor(codec: FrameCodec | null, bufferSize: number) {
    this.codec = codec;
    this.bufferSize = bufferSize;
    const prefix = inlinePrefix(codec, bufferSize);
    this.#prefixSize = prefix.size;
    this.#littleEndian = prefix.littleEndian;
    this.#prefixMax = prefix.max;
  }

  /**
   * The frame length of a payload of `length` bytes.
   *
   * @throws {RangeError} If it is not a length, the codec cannot frame it, or it does not fit a buffer.
   */
  frameOf(length: number): number {
    if (length >>> 0 === length) {
      const frame = this.#prefixSize >= 0
        ? (length <= this.#prefixMax ? length + this.#prefixSize : Infinity)
        : framedLength(this.codec!, length);
      if (frame <= this.bufferSize) return frame;
    }
    throw lengthError(this.codec, this.bufferSize, length);
  }

  /**
   * The frame length of `text`, whose UTF-8 takes `length` bytes.
   *
   * @throws {RangeError} If the codec cannot frame it or it does not fit a buffer.
   */
  stringFrameOf(text: string, length: number): number {
    return stringFrameLength(this.codec, this.bufferSize, text, length);
  }

  /** Writes the header and trailer of a frame at `start`; returns where its payload goes. */
  frame(buffer: BufferRecord, start: number, length: number): number {
    const size = this.#prefixSize;
    if (size === 0) return start;
    if (size > 0) {
      writePrefix(buffer._dataView, start, size, this.#littleEndian, length);
      return start + size;
    }
    return frameAround(this.codec!, buffer._view, start, length);
  }

  /** Rewrites the frame at `start` with a zeroed payload (or the filler): what a cancelled message sends. */
  zero(buffer: BufferRecord, start: number, frame: number, length: number): void {
    if (this.filler !== null && this.codec === null) {
      this.filler(buffer._view, start, frame);
      return;
    }
    buffer._view.fill(0, start, start + frame);
    this.frame(buffer, start, length);
  }
}

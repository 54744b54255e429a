// A frame cutter's staging: the pooled buffer its input is copied or read
// into, where the unfinished frame lies in it, and how that frame moves to
// the start of a buffer when it cannot end where it is: within its own
// buffer once no packet holds that, else into a fresh one, or aside while
// the cutter waits for one. It also holds what the cutting loops read on
// every frame (the codec, its limit, a length prefix's layout), so that
// they take one object. The cutter's lifecycle (closed, visiting) is the
// cutter's own.

import { lengthPrefixLayout, LITTLE_ENDIAN } from "./_length_prefix.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { FrameError, TruncatedError } from "./errors.ts";
import { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";
import type { BufferRecord } from "./_buffer_record.ts";

const NO_BYTES = new Uint8Array(0);

/** The staging buffer of one cutter and the unfinished frame in it. */
export class Staging {
  readonly pool: BufferPool;
  /** Bytes in each of the pool's buffers. */
  readonly size: number;
  readonly codec: FrameCodec;
  readonly maxFrameLength: number;
  /** Bytes of a `lengthPrefix()` codec's prefix, read inline; 0 for other codecs. */
  readonly prefixSize: number;
  readonly prefixLittleEndian: boolean;
  /** Where the codec found the last frame, or how far it got with the unfinished one. */
  readonly bounds: FrameBounds = new FrameBounds();
  /** The staging buffer, holding the cutter's own reference; null when it holds none. */
  buffer: BufferRecord | null = null;
  view: Uint8Array = NO_BYTES;
  /** Where the unfinished frame starts in the staging buffer. */
  start = 0;
  /** Byte after the last one staged. */
  end = 0;
  /** Where a delimiter search resumes. */
  scan = 0;
  /** Where the unfinished frame ends once complete, or -1 while unknown. */
  frameEnd = -1;
  /** The unfinished frame has to move to a buffer's start before more bytes come. */
  move = false;
  /**
   * The unfinished frame's bytes while the cutter waits for a buffer holding
   * none, so that its last buffer can go back to the pool meanwhile.
   */
  parked: Uint8Array | null = null;

  constructor(pool: BufferPool, codec: FrameCodec, maxFrameLength: number) {
    this.pool = pool;
    this.size = pool.bufferSize;
    this.codec = codec;
    this.maxFrameLength = maxFrameLength;
    const layout = lengthPrefixLayout(codec);
    this.prefixSize = layout & ~LITTLE_ENDIAN;
    this.prefixLittleEndian = (layout & LITTLE_ENDIAN) !== 0;
  }

  /** Whether the next bytes need a buffer: none is held, or the unfinished frame must move. */
  get needsBuffer(): boolean {
    return this.buffer === null || this.move;
  }

  /**
   * Copies as much of `chunk` from byte `taken` on as fits after the staged
   * bytes; returns how far into `chunk` that got. The caller made sure a
   * buffer is held.
   */
  append(chunk: Uint8Array, taken: number): number {
    const end = this.end;
    const room = this.size - end;
    const rest = chunk.length - taken;
    if (rest <= room) {
      this.view.set(taken === 0 ? chunk : chunk.subarray(taken), end);
      this.end = end + rest;
      return chunk.length;
    }
    this.view.set(chunk.subarray(taken, taken + room), end);
    this.end = end + room;
    return taken + room;
  }

  /**
   * Notes how the unfinished frame stands once every complete frame before
   * `start` was handed out, and decides whether it must move before more
   * bytes come.
   *
   * @throws {FrameError} If the frame cannot be staged in one buffer.
   */
  settle(start: number): void {
    const buffer = this.buffer!;
    const end = this.end;
    const size = this.size;
    this.start = start;
    // Alone in its buffer (no packet holds it) and past the half: start
    // over at the front, so that reads keep getting at least half a buffer,
    // when the unfinished frame to move is smaller than the room it frees.
    const restart = end > size >> 1 && end - start < start && buffer.alone;
    if (start === end) {
      this.scan = start;
      this.frameEnd = -1;
      if (restart) {
        this.rebase(start);
      } else if (end === size) {
        // Full and nothing unfinished: the packets keep the buffer alive.
        this.buffer = null;
        this.view = NO_BYTES;
        buffer.release();
      }
      return;
    }
    const bounds = this.bounds;
    const frameEnd = bounds.frameEnd;
    this.scan = bounds.scanned;
    this.frameEnd = frameEnd;
    // A frame longer than a buffer cannot be staged anywhere. Only a header
    // longer than a writer makes (a padded varint) gets here, since
    // maxFrameLength keeps writers' frames within one buffer.
    if (frameEnd - start > size) throw this.#frameTooLong(start, frameEnd);
    if (end === size && start === 0) throw this.#headerTooLong(end);
    // Move the unfinished frame now if it cannot end in this buffer: the
    // fewer of its bytes are staged, the fewer are copied.
    if (end === size || frameEnd > size || restart) this.move = true;
  }

  /**
   * Gets the unfinished frame to the start of a buffer: its own, when no
   * packet holds that any more, else a fresh one if the pool has one.
   */
  next(): boolean {
    const buffer = this.buffer;
    if (buffer !== null && buffer.alone) {
      const start = this.start;
      this.view.copyWithin(0, start, this.end);
      this.rebase(start);
      this.move = false;
      return true;
    }
    const fresh = this.pool._tryAcquireRecord();
    if (fresh === null) return false;
    this.install(fresh);
    return true;
  }

  /** Makes `fresh` the staging buffer, moving the unfinished frame into it. */
  install(fresh: BufferRecord): void {
    const old = this.buffer;
    const parked = this.parked;
    const view = fresh._view;
    if (old !== null) {
      const start = this.start;
      view.set(this.view.subarray(start, this.end));
      old.release();
      this.rebase(start);
    } else if (parked !== null) {
      view.set(parked);
      this.parked = null;
    } else {
      this.start = this.end = this.scan = 0;
      this.frameEnd = -1;
    }
    this.move = false;
    this.buffer = fresh;
    this.view = view;
  }

  /** Sets the unfinished frame aside and releases the staging buffer, to wait for one. */
  park(): void {
    const buffer = this.buffer;
    if (buffer === null) return;
    const start = this.start;
    // Slow path only: the pool is empty and packets pin this buffer.
    this.parked = this.view.slice(start, this.end);
    this.rebase(start);
    this.buffer = null;
    this.view = NO_BYTES;
    buffer.release();
  }

  /** Takes a buffer for a frame set aside, if the pool has one free now. */
  restore(): BufferRecord | null {
    return this.parked !== null && this.next() ? this.buffer : null;
  }

  /** Releases the staging buffer and forgets the unfinished frame. */
  drop(): void {
    const buffer = this.buffer;
    this.buffer = null;
    this.view = NO_BYTES;
    this.parked = null;
    this.start = this.end = 0;
    buffer?.release();
  }

  /**
   * The error for input that stopped inside the unfinished frame: with
   * `allowPartial`, only when the pool had no buffer to hand it out on.
   */
  truncated(allowPartial: boolean): TruncatedError {
    const received = this.end - this.start;
    const expected = this.frameEnd < 0 ? NaN : this.frameEnd - this.start;
    const frame = Number.isNaN(expected)
      ? "a frame whose end was not yet known"
      : `a ${expected}-byte frame`;
    const why = allowPartial
      ? "the pool had no free buffer to hand it out on"
      : "pass allowPartial: true to receive unfinished frames";
    return new TruncatedError(
      `Cannot end ${this.codec.name} framing: the input stopped ${received} bytes into ${frame}; ${why}`,
      received,
      expected,
    );
  }

  /** Counts the unfinished frame's offsets from `start`, its new first byte. */
  rebase(start: number): void {
    this.start = 0;
    this.end -= start;
    this.scan -= start;
    if (this.frameEnd >= 0) this.frameEnd -= start;
  }

  #frameTooLong(start: number, frameEnd: number): FrameError {
    const bounds = this.bounds;
    const payload = bounds.payloadEnd - bounds.payloadStart;
    return new FrameError(
      `Cannot decode frame: the ${this.codec.name} frame of a ${payload}-byte payload takes ${
        frameEnd - start
      } bytes with its header, more than the pool's ${this.size}-byte buffers hold; its header is longer than a writer makes it`,
      payload,
      this.maxFrameLength,
    );
  }

  #headerTooLong(staged: number): FrameError {
    return new FrameError(
      `Cannot decode frame: ${staged} bytes of one ${this.codec.name} frame fill a whole ${this.size}-byte buffer before its length is known`,
      NaN,
      this.maxFrameLength,
    );
  }
}

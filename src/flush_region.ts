/**
 * What a {@linkcode WriteFlusher} delivers: one contiguous range of one
 * pooled buffer, holding the messages a writer committed there since the
 * last delivery.
 *
 * @module
 */

import type { Packet } from "./packet.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import { ReleasedError } from "./errors.ts";
import { checkRange } from "./_range.ts";

/**
 * One contiguous range of one pooled buffer, as a {@linkcode WriteFlusher}
 * delivers it: the bytes of one or more whole messages from one writer, in
 * the order they were reserved. It holds a reference to its buffer until
 * {@linkcode FlushRegion.release}: release it once its bytes were written,
 * so that the buffer can be reused.
 *
 * @example Reading the regions of a flush
 * ```ts
 * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher, { flush: "manual" });
 * writer.tryWrite(new TextEncoder().encode("hi "));
 * writer.tryWrite(new TextEncoder().encode("there"));
 * writer.flush();
 *
 * const reader = flusher.readable.getReader();
 * const { value: batch } = await reader.read();
 * const [region] = batch!;
 * assert.equal(new TextDecoder().decode(region!.bytes), "hi there");
 * assert.equal(region!.writerId, writer.id);
 * region!.release();
 *
 * writer.close();
 * flusher.close();
 * assert.equal((await reader.read()).done, true);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class FlushRegion {
  /** The id of the {@linkcode Writer} that wrote these bytes. */
  readonly writerId: number;
  /** Bytes in the region. */
  readonly length: number;
  #buffer: BufferRecord | null;
  readonly #offset: number;
  #bytes: Uint8Array | undefined = undefined;
  /** Whether the pool's leak detector watches this region. */
  #tracked = false;
  /** Whether its bytes were read, a packet made of it, or it was released. */
  #touched = false;

  /** @ignore Made by the flusher, holding one reference to `buffer`. */
  constructor(buffer: BufferRecord, offset: number, length: number, writerId: number) {
    this.#buffer = buffer;
    this.#offset = offset;
    this.length = length;
    this.writerId = writerId;
    const leaks = buffer.pool._leaks;
    if (leaks !== null) {
      this.#tracked = leaks.track(this, FlushRegion, "FlushRegion", buffer.index, offset, length);
    }
  }

  /**
   * The region's bytes: a view of pool memory, valid until release. Pass it
   * straight to a socket's `write`.
   *
   * @throws {ReleasedError} If the region was released.
   */
  get bytes(): Uint8Array {
    const buffer = this.#buffer;
    if (buffer === null) throw released("read the bytes of");
    this.#touched = true;
    return this.#bytes ??= buffer._view.subarray(this.#offset, this.#offset + this.length);
  }

  /** Whether {@linkcode FlushRegion.release} was called. */
  get released(): boolean {
    return this.#buffer === null;
  }

  /**
   * Makes a packet of the region's bytes, e.g. to forward them without a
   * copy. The packet holds its own reference; the region still needs its
   * release.
   *
   * @param begin Offset of the packet's first byte in the region.
   * @param end Offset just past the packet's last byte.
   * @returns A new packet.
   * @throws {ReleasedError} If the region was released.
   * @throws {RangeError} If the range is not inside the region.
   */
  toPacket(begin = 0, end: number = this.length): Packet {
    const buffer = this.#buffer;
    if (buffer === null) throw released("make a packet of");
    checkRange(begin, end, this.length, "make a packet of region bytes");
    this.#touched = true;
    return buffer.toPacket(this.#offset + begin, this.#offset + end);
  }

  /**
   * Drops the region's reference to its buffer; the buffer goes back to the
   * pool once nothing else holds it.
   *
   * @throws {ReleasedError} If the region was already released.
   */
  release(): void {
    const buffer = this.#buffer;
    if (buffer === null) throw released("release");
    this.#buffer = null;
    this.#bytes = undefined;
    this.#touched = true;
    if (this.#tracked) {
      this.#tracked = false;
      buffer.pool._leaks!.untrack(this);
    }
    buffer.release();
  }

  /**
   * @ignore Whether anyone has used the region: read its bytes, made a
   * packet of it or released it. The flusher reclaims batches a failed pipe
   * left untouched.
   */
  get _touched(): boolean {
    return this.#touched;
  }

  /** Releases the region unless it already was: `using` support. */
  [Symbol.dispose](): void {
    if (this.#buffer !== null) this.release();
  }
}

function released(action: string): ReleasedError {
  return new ReleasedError(`Cannot ${action} a flush region: it was already released`);
}

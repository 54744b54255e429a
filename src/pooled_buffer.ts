/**
 * {@linkcode PooledBuffer}: a buffer acquired from a {@linkcode BufferPool}.
 *
 * @module
 */

import type { BufferRecord } from "./_buffer_record.ts";
import { checkRange } from "./_range.ts";
import { ReleasedError } from "./errors.ts";
import { Packet } from "./packet.ts";

/**
 * A whole buffer acquired from a {@linkcode BufferPool}, to write into and cut
 * into {@linkcode Packet}s. The buffer goes back to the pool when this handle
 * and every packet made from it have been released.
 *
 * Each acquire makes a new handle, and a handle holds its buffer only until
 * it is released (or turned into a packet with `intoPacket`): afterwards every
 * use of it throws a {@linkcode ReleasedError}, even once the buffer has gone
 * to its next owner, who is never touched through an old handle.
 *
 * @example Writing a message and handing it on as a packet
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 8 });
 * const buffer = pool.tryAcquire()!;
 * const { written } = new TextEncoder().encodeInto("hello", buffer.bytes);
 * const packet = buffer.intoPacket(0, written);
 * assert.equal(new TextDecoder().decode(packet.bytes), "hello");
 * packet.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 *
 * @example A handle kept after its release cannot reach the buffer's next owner
 * ```ts
 * import { BufferPool, ReleasedError } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
 * const stale = pool.tryAcquire()!;
 * stale.release();
 * const owner = pool.tryAcquire()!; // the same buffer, a new handle
 * assert.equal(owner.index, stale.index);
 * assert.throws(() => stale.release(), ReleasedError);
 * assert.throws(() => stale.bytes, ReleasedError);
 * owner.bytes[0] = 1; // still the owner's
 * owner.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class PooledBuffer {
  /** The buffer's index in its pool; the same in every worker. */
  readonly index: number;
  /** The buffer's record while this handle holds its reference; null after. */
  #record: BufferRecord | null;
  /** Whether the pool's leak detector watches this handle. */
  #tracked = false;

  /**
   * @ignore Made by the pool for each acquire, taking over the reference the
   * acquire took.
   */
  constructor(record: BufferRecord) {
    this.index = record.index;
    this.#record = record;
    const leaks = record.pool._leaks;
    if (leaks !== null) {
      this.#tracked = leaks.track(
        this,
        PooledBuffer,
        "PooledBuffer",
        record.index,
        0,
        record._view.length,
      );
    }
  }

  /**
   * The whole buffer, `pool.bufferSize` bytes. Its contents are whatever the
   * last user left there: pooled memory is not cleared on reuse.
   *
   * @throws {ReleasedError} If this handle was released.
   */
  get bytes(): Uint8Array {
    const record = this.#record;
    if (record === null) throw this.#released("read the bytes of");
    return record._view;
  }

  /** Whether this handle was released (or turned into a packet). */
  get released(): boolean {
    return this.#record === null;
  }

  /**
   * Makes a packet of bytes `[begin, end)` of this buffer. The packet holds
   * its own reference: this handle still has to be released.
   *
   * @param begin First byte of the packet. Defaults to 0.
   * @param end Byte after the packet's last. Defaults to the buffer's size.
   * @returns A new packet sharing this buffer's memory.
   * @throws {RangeError} If the range does not lie within the buffer.
   * @throws {ReleasedError} If this handle was released.
   */
  toPacket(begin = 0, end?: number): Packet {
    const record = this.#record;
    if (record === null) throw this.#released("make a packet of");
    const size = record._view.length;
    end ??= size;
    checkRange(begin, end, size, "make a packet of bytes");
    return record.toPacket(begin, end);
  }

  /**
   * Turns this handle's reference into a packet of bytes `[begin, end)`: the
   * handle counts as released afterwards, so there is nothing else to free.
   *
   * @param begin First byte of the packet. Defaults to 0.
   * @param end Byte after the packet's last. Defaults to the buffer's size.
   * @returns A packet that now owns this handle's reference.
   * @throws {RangeError} If the range does not lie within the buffer.
   * @throws {ReleasedError} If this handle was released.
   */
  intoPacket(begin = 0, end?: number): Packet {
    const record = this.#record;
    if (record === null) throw this.#released("make a packet of");
    const size = record._view.length;
    end ??= size;
    checkRange(begin, end, size, "make a packet of bytes");
    this.#drop(record);
    return new Packet(record, begin, end - begin);
  }

  /**
   * Drops the acquirer's reference. The buffer returns to the pool once no
   * packet made from it is alive either.
   *
   * @throws {ReleasedError} If this handle was already released.
   */
  release(): void {
    const record = this.#record;
    if (record === null) throw this.#released("release");
    this.#drop(record);
    record.release();
  }

  /** Releases the handle if it is still held, so `using` can own it. */
  [Symbol.dispose](): void {
    if (this.#record !== null) this.release();
  }

  /** Lets go of the record: this handle holds nothing from now on. */
  #drop(record: BufferRecord): void {
    this.#record = null;
    if (this.#tracked) {
      this.#tracked = false;
      record.pool._leaks!.untrack(this);
    }
  }

  #released(action: string): ReleasedError {
    return new ReleasedError(
      `Cannot ${action} buffer ${this.index}: this handle was already released`,
    );
  }
}

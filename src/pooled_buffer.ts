/**
 * {@linkcode PooledBuffer}: a buffer acquired from a {@linkcode BufferPool}.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import { checkRange } from "./_range.ts";
import { ReleasedError } from "./errors.ts";
import { Packet } from "./packet.ts";

/**
 * A whole buffer acquired from a {@linkcode BufferPool}, to write into and cut
 * into {@linkcode Packet}s. The buffer goes back to the pool when this handle
 * and every packet made from it have been released.
 *
 * Handles are made once per buffer and reused, so that acquiring allocates
 * nothing: after `release()`, drop the reference, because the same object
 * comes back from the pool's next acquire of this buffer.
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
 */
export class PooledBuffer {
  /** The pool this buffer belongs to. */
  readonly pool: BufferPool;
  /** The buffer's index in its pool; the same in every worker. */
  readonly index: number;
  /** @ignore The buffer's memory, whatever the handle's state. */
  readonly _view: Uint8Array;
  /** @ignore References held in this worker: the acquirer's and its packets'. */
  _refs = 0;
  /** @ignore Units of the shared count this worker holds (shared pools). */
  _units = 0;
  /** @ignore Whether the acquirer's own reference is live. */
  _held = false;

  /** @ignore Made by the pool, once per buffer and worker. */
  constructor(pool: BufferPool, index: number, view: Uint8Array) {
    this.pool = pool;
    this.index = index;
    this._view = view;
  }

  /**
   * The whole buffer, `pool.bufferSize` bytes. Its contents are whatever the
   * last user left there: pooled memory is not cleared on reuse.
   *
   * @throws {ReleasedError} If this handle was released.
   */
  get bytes(): Uint8Array {
    if (!this._held) throw this.#released("read the bytes of");
    return this._view;
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
  toPacket(begin = 0, end: number = this._view.length): Packet {
    if (!this._held) throw this.#released("make a packet of");
    checkRange(begin, end, this._view.length, "make a packet of bytes");
    this._refs++;
    return new Packet(this, begin, end - begin);
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
  intoPacket(begin = 0, end: number = this._view.length): Packet {
    if (!this._held) throw this.#released("make a packet of");
    checkRange(begin, end, this._view.length, "make a packet of bytes");
    this._held = false;
    return new Packet(this, begin, end - begin);
  }

  /**
   * Drops the acquirer's reference. The buffer returns to the pool once no
   * packet made from it is alive either.
   *
   * @throws {ReleasedError} If this handle was already released.
   */
  release(): void {
    if (!this._held) throw this.#released("release");
    this._held = false;
    if (--this._refs === 0) this.pool._recycle(this);
  }

  /** Releases the handle if it is still held, so `using` can own it. */
  [Symbol.dispose](): void {
    if (this._held) this.release();
  }

  #released(action: string): ReleasedError {
    return new ReleasedError(
      `Cannot ${action} buffer ${this.index}: this handle was already released`,
    );
  }
}

/**
 * {@linkcode Packet}: a ref-counted view of a region of a pooled buffer.
 *
 * @module
 */

import type { BufferLink } from "./_buffer_link.ts";
import type { SendPacket } from "./send_packet.ts";
import { checkRange } from "./_range.ts";
import { ReleasedError } from "./errors.ts";

/**
 * A ref-counted view of bytes `[offset, offset + length)` of a pooled buffer.
 * Many packets may share one buffer; the buffer returns to its pool when the
 * last of them (and the handle it was acquired with) is released.
 *
 * Cloning and slicing take a reference with a plain counter: no copy, no
 * `Atomics`. Each packet must be released exactly once, by `release()` or by
 * leaving a `using` scope; using it afterwards throws a {@linkcode ReleasedError}.
 *
 * @example Sharing one buffer between packets
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 256, bufferCount: 4 });
 * const buffer = pool.tryAcquire()!;
 * buffer.bytes.set([1, 2, 3, 4, 5, 6]);
 * const whole = buffer.intoPacket(0, 6);
 * {
 *   using tail = whole.subarray(3); // shares the buffer
 *   assert.deepEqual([...tail.bytes], [4, 5, 6]);
 * }
 * const copy = whole.clone();
 * whole.release();
 * assert.equal(pool.stats().inUse, 1); // `copy` still holds the buffer
 * copy.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class Packet {
  #buffer: BufferLink | null;
  readonly #offset: number;
  readonly #length: number;
  #bytes: Uint8Array | undefined = undefined;
  /** @ignore Set by BufferPool.sendBatch to catch a packet listed twice. */
  _mark = 0;
  /** Whether the pool's leak detector watches this packet. */
  #tracked = false;

  /**
   * @ignore Made by {@linkcode PooledBuffer.toPacket} and friends, which take
   * the reference this packet will release.
   */
  constructor(buffer: BufferLink, offset: number, length: number) {
    this.#buffer = buffer;
    this.#offset = offset;
    this.#length = length;
    const leaks = buffer.pool._leaks;
    if (leaks !== null) {
      this.#tracked = leaks.track(this, Packet, "Packet", buffer.index, offset, length);
    }
  }

  /**
   * The packet's bytes: a view of pool memory, made on first use and kept.
   * Writing through it changes what every packet on the region sees.
   *
   * @throws {ReleasedError} If the packet was released.
   */
  get bytes(): Uint8Array {
    const buffer = this.#buffer;
    if (buffer === null) throw released("read the bytes of");
    if (this.#bytes === undefined) {
      const view = buffer._view;
      this.#bytes = new Uint8Array(
        view.buffer,
        view.byteOffset + this.#offset,
        this.#length,
      );
    }
    return this.#bytes;
  }

  /**
   * The packet's bytes decoded as UTF-8 text. Malformed sequences become
   * U+FFFD rather than throwing, and a leading byte order mark is dropped,
   * as `TextDecoder` does by default.
   *
   * @example Reading a text message
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const buffer = pool.tryAcquire()!;
   * const { written } = new TextEncoder().encodeInto("héllo", buffer.bytes);
   * using packet = buffer.intoPacket(0, written);
   * assert.equal(packet.text(), "héllo");
   * ```
   *
   * @returns The decoded text.
   * @throws {ReleasedError} If the packet was released.
   */
  text(): string {
    if (this.#buffer === null) throw released("read the text of");
    const bytes = this.bytes;
    // A copy for shared memory: not every runtime's TextDecoder takes a view of it.
    return decoder.decode(bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice());
  }

  /**
   * The packet's bytes parsed as JSON text (decoded as by
   * {@linkcode Packet.text}).
   *
   * @example Reading a JSON message
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
   * const buffer = pool.tryAcquire()!;
   * const { written } = new TextEncoder().encodeInto('{"id":7}', buffer.bytes);
   * using packet = buffer.intoPacket(0, written);
   * assert.deepEqual(packet.json(), { id: 7 });
   * ```
   *
   * @returns The parsed value.
   * @throws {SyntaxError} If the text is not valid JSON.
   * @throws {ReleasedError} If the packet was released.
   */
  json(): unknown {
    if (this.#buffer === null) throw released("parse the JSON of");
    return JSON.parse(this.text());
  }

  /** The packet's length in bytes; still readable after release. */
  get length(): number {
    return this.#length;
  }

  /** Whether the packet was released. */
  get released(): boolean {
    return this.#buffer === null;
  }

  /**
   * Another packet on the same bytes, holding its own reference.
   *
   * @returns The new packet, to be released on its own.
   * @throws {ReleasedError} If this packet was released.
   */
  clone(): Packet {
    const buffer = this.#buffer;
    if (buffer === null) throw released("clone");
    buffer.retain();
    return new Packet(buffer, this.#offset, this.#length);
  }

  /**
   * A packet on bytes `[begin, end)` of this one, sharing its buffer and
   * holding its own reference. Unlike `Uint8Array.prototype.subarray`, the
   * range is not clamped: out-of-range or negative indices throw.
   *
   * @param begin First byte, relative to this packet. Defaults to 0.
   * @param end Byte after the last, relative to this packet. Defaults to its length.
   * @returns The new packet, to be released on its own.
   * @throws {RangeError} If the range does not lie within this packet.
   * @throws {ReleasedError} If this packet was released.
   */
  subarray(begin = 0, end: number = this.#length): Packet {
    const buffer = this.#buffer;
    if (buffer === null) throw released("slice");
    checkRange(begin, end, this.#length, "slice a packet at");
    buffer.retain();
    return new Packet(buffer, this.#offset + begin, end - begin);
  }

  /**
   * Drops this packet's reference; the buffer returns to the pool when it
   * was the last one.
   *
   * @throws {ReleasedError} If the packet was already released.
   */
  release(): void {
    const buffer = this.#buffer;
    if (buffer === null) throw released("release");
    this.#buffer = null;
    this.#bytes = undefined;
    if (this.#tracked) this.#untrack(buffer);
    buffer.release();
  }

  /**
   * Turns this packet into a {@linkcode SendPacket} for another worker: plain
   * data to post, which {@linkcode BufferPool.receive} there turns back into
   * a packet on the same memory. This packet counts as released afterwards;
   * its reference travels with the SendPacket.
   *
   * @returns The SendPacket, to be received exactly once.
   * @throws {TypeError} If the pool is not shared.
   * @throws {RangeError} If this worker already has `maxInFlight` packets in flight.
   * @throws {ReleasedError} If the packet was released.
   */
  send(): SendPacket {
    const buffer = this.#buffer;
    if (buffer === null) throw released("send");
    const sent = buffer.send(this.#offset, this.#length);
    this._forget();
    return sent;
  }

  /**
   * @ignore Whether anyone used the packet: released or sent it, or made
   * its bytes' view (which `bytes`, `text` and `json` do).
   */
  _used(): boolean {
    return this.#buffer === null || this.#bytes !== undefined;
  }

  /** @ignore The packet's buffer; throws if released. */
  _buffer(): BufferLink {
    if (this.#buffer === null) throw released("send");
    return this.#buffer;
  }

  /** @ignore The packet's offset in its buffer. */
  _offset(): number {
    return this.#offset;
  }

  /** @ignore Marks the packet released without touching counts: its reference moved. */
  _forget(): void {
    const buffer = this.#buffer;
    this.#buffer = null;
    this.#bytes = undefined;
    if (this.#tracked && buffer !== null) this.#untrack(buffer);
  }

  #untrack(buffer: BufferLink): void {
    this.#tracked = false;
    buffer.pool._leaks!.untrack(this);
  }

  /** Releases the packet if it is still live, so `using` can own it. */
  [Symbol.dispose](): void {
    if (this.#buffer !== null) this.release();
  }
}

/** Shared by every packet's `text()`: decoding keeps no state between calls. */
const decoder = new TextDecoder();

function released(action: string): ReleasedError {
  return new ReleasedError(
    `Cannot ${action} a packet: it was already released`,
  );
}

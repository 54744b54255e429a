/**
 * Space for one message in a {@linkcode SharedWriter}'s current buffer.
 *
 * @module
 */

import type { Packet } from "./packet.ts";
import { ClosedError, ReleasedError } from "./errors.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import type { SharedReservationOwner } from "./_shared_link.ts";

/**
 * Space for one message of `length` bytes, claimed in the buffer that
 * several workers fill together through one {@linkcode SharedWriter}. Write
 * the payload into {@linkcode SharedReservation.bytes}, then commit it (or
 * cancel it). Commits of different reservations may come in any order, in
 * any worker: the flusher gets bytes only up to the first reservation not
 * yet committed, so it never sees a hole.
 *
 * Hold a reservation only as long as it takes to fill it: until it is
 * committed, the bytes after it in its buffer (other workers' messages
 * too) wait for it.
 *
 * @example Fill a message in place, then commit it
 * ```ts
 * import { BufferPool, lengthPrefix, SharedWriter, WriteFlusher } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 4 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(1) });
 *
 * const reservation = writer.tryReserve(3)!;
 * reservation.bytes.set([7, 8, 9]);
 * reservation.commit();
 * writer.close();
 * flusher.close();
 *
 * const bytes: number[] = [];
 * for await (const batch of flusher.readable) {
 *   for (const region of batch) {
 *     bytes.push(...region.bytes);
 *     region.release();
 *   }
 * }
 * assert.deepEqual(bytes, [3, 7, 8, 9]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class SharedReservation {
  /** The payload's length in bytes. */
  readonly length: number;
  /** @ignore The writer, until the reservation is settled. */
  _owner: SharedReservationOwner<SharedReservation> | null;
  /** @ignore The buffer the space is in. */
  readonly _buffer: BufferRecord;
  /** @ignore The writer's cursor where the claim began: the buffer's ring slot and the frame's start. */
  readonly _cursor: number;
  /** @ignore Where the frame starts in the buffer. */
  readonly _frameStart: number;
  /** @ignore The frame's length: header, payload, trailer. */
  readonly _frameLength: number;
  /** @ignore Where the payload starts in the buffer. */
  readonly _payloadStart: number;
  /** @ignore The record of this reservation kept for a reclaim; -1 for none. */
  readonly _record: number;
  /** @ignore Why its writer's handle closed while it was open (it was sent zeroed); null if not. */
  _closed: string | null = null;
  /** @ignore Neighbours in the writer's list of open reservations. */
  _prev: SharedReservation | null = null;
  /** @ignore Neighbours in the writer's list of open reservations. */
  _next: SharedReservation | null = null;
  #bytes: Uint8Array | null = null;

  /** @ignore Made by {@linkcode SharedWriter} only. */
  constructor(
    owner: SharedReservationOwner<SharedReservation>,
    buffer: BufferRecord,
    cursor: number,
    frameStart: number,
    frameLength: number,
    payloadStart: number,
    length: number,
    record: number,
  ) {
    this._owner = owner;
    this._buffer = buffer;
    this._cursor = cursor;
    this._frameStart = frameStart;
    this._frameLength = frameLength;
    this._payloadStart = payloadStart;
    this.length = length;
    this._record = record;
  }

  /**
   * The payload's bytes, to fill in place: a view of the pooled buffer.
   *
   * @throws {ReleasedError} If the reservation was committed or cancelled.
   */
  get bytes(): Uint8Array {
    if (this._owner === null) throw settled(this, "read the bytes of");
    return this.#bytes ??= this._buffer._view.subarray(
      this._payloadStart,
      this._payloadStart + this.length,
    );
  }

  /** Whether the reservation is still open: neither committed nor cancelled. */
  get open(): boolean {
    return this._owner !== null;
  }

  /**
   * Marks the message written. The flusher gets it once every reservation
   * before it in its buffer was settled too, with the next flush of the
   * writer's cadence (in any worker), or as soon as its buffer is whole.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * const reservation = writer.tryReserve(2)!;
   * reservation.bytes.set([1, 2]);
   * reservation.commit();
   * ```
   *
   * @throws {ReleasedError} If it was already committed or cancelled.
   * @throws {ClosedError} If its writer's handle closed while it was open.
   */
  commit(): void {
    const owner = this._owner;
    if (owner === null) throw settled(this, "commit");
    owner._commit(this);
  }

  /**
   * Commits the message and returns its payload as a packet as well, which
   * holds its own reference to the buffer (in this worker): e.g. to keep a
   * copy-free record of what was sent.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * const reservation = writer.tryReserve(2)!;
   * reservation.bytes.set([1, 2]);
   * using packet = reservation.commitToPacket();
   * assert.deepEqual([...packet.bytes], [1, 2]);
   * ```
   *
   * @returns A packet of the payload's bytes.
   * @throws {ReleasedError} If it was already committed or cancelled.
   */
  commitToPacket(): Packet {
    const owner = this._owner;
    if (owner === null) throw settled(this, "make a packet of");
    return owner._commitToPacket(this);
  }

  /**
   * Gives the space up. Other workers may have claimed space after it, so
   * it cannot be taken back: the message is sent with its payload zeroed
   * (its codec's header and trailer kept, so the stream still frames).
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * writer.tryReserve(8)!.cancel();
   * ```
   *
   * @throws {ReleasedError} If it was already committed or cancelled.
   */
  cancel(): void {
    const owner = this._owner;
    if (owner === null) throw settled(this, "cancel");
    owner._cancel(this);
  }

  /** Cancels the reservation if it is still open: `using` support. */
  [Symbol.dispose](): void {
    this._owner?._cancel(this);
  }
}

/** The error for using a settled reservation: a ClosedError saying why if its handle closed. */
function settled(reservation: SharedReservation, action: string): Error {
  const closed = reservation._closed;
  if (closed !== null) {
    return new ClosedError(`Cannot ${action} a shared reservation: ${closed}; it was sent zeroed`);
  }
  return new ReleasedError(
    `Cannot ${action} a shared reservation: it was already committed or cancelled`,
  );
}

/**
 * Space a {@linkcode Writer} reserved for one message.
 *
 * @module
 */

import type { Packet } from "./packet.ts";
import type { Chunk } from "./_chunk.ts";
import type { ReservationOwner } from "./_writer_link.ts";
import { ReleasedError } from "./errors.ts";

/**
 * Space for one message inside a pooled buffer, from
 * {@linkcode Writer.tryReserve} or {@linkcode Writer.reserve}: fill
 * {@linkcode Reservation.bytes}, then {@linkcode Reservation.commit} it (or
 * {@linkcode Reservation.commitToPacket} to keep the message as a packet too).
 *
 * Reservations may be committed in any order; the flusher gets a writer's
 * bytes only up to its oldest reservation still open, across buffers as
 * within one, so messages arrive in the order they were reserved. One left
 * open holds back everything its writer commits after it, while the writer
 * goes on filling buffers as long as the pool has them:
 * {@linkcode Reservation.cancel} it (or let `using` dispose it), and it is
 * taken back if nothing was reserved after it, or else sent as that many
 * zero bytes (a frame of zeros under a codec) so that the messages after it
 * keep their place.
 *
 * @example Serializing straight into pool memory
 * ```ts
 * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 256, bufferCount: 4 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher);
 *
 * const reservation = writer.tryReserve(8)!;
 * new DataView(reservation.bytes.buffer, reservation.bytes.byteOffset, 8)
 *   .setFloat64(0, Math.PI);
 * reservation.commit();
 *
 * writer.close();
 * flusher.close();
 * for await (const batch of flusher.readable) {
 *   for (const region of batch) {
 *     assert.equal(new DataView(region.bytes.buffer, region.bytes.byteOffset).getFloat64(0), Math.PI);
 *     region.release();
 *   }
 * }
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class Reservation {
  /** Bytes reserved for the message (its payload, without a codec's framing). */
  readonly length: number;
  /** @ignore The writer, until the reservation is committed or cancelled. */
  _writer: ReservationOwner<Reservation> | null;
  /** @ignore The writer's record of the buffer the space is in. */
  readonly _chunk: Chunk;
  /** @ignore Offset of the frame (header included) in the buffer. */
  readonly _frameStart: number;
  /** @ignore Offset just past the frame (trailer included). */
  readonly _frameEnd: number;
  /** @ignore Offset of the payload in the buffer. */
  readonly _payloadStart: number;
  /** @ignore The previous and next reservations still open in the writer. */
  _prev: Reservation | null = null;
  /** @ignore See `_prev`. */
  _next: Reservation | null = null;
  #bytes: Uint8Array | undefined = undefined;

  /** @ignore Made by the writer. */
  constructor(
    writer: ReservationOwner<Reservation>,
    chunk: Chunk,
    frameStart: number,
    payloadStart: number,
    length: number,
    frameEnd: number,
  ) {
    this._writer = writer;
    this._chunk = chunk;
    this._frameStart = frameStart;
    this._payloadStart = payloadStart;
    this.length = length;
    this._frameEnd = frameEnd;
  }

  /**
   * Exactly {@linkcode Reservation.length} writable bytes of pool memory.
   * They hold whatever an earlier message left there: write all of them.
   *
   * @throws {ReleasedError} If the reservation was committed or cancelled.
   * @throws {ClosedError} If its writer closed (or its flusher's consumer
   * failed) while it was open, saying why.
   */
  get bytes(): Uint8Array {
    if (this._writer === null) throw settled(this, "read the bytes of");
    return this.#bytes ??= this._chunk.view.subarray(
      this._payloadStart,
      this._payloadStart + this.length,
    );
  }

  /** Whether the reservation is still open: neither committed nor cancelled. */
  get open(): boolean {
    return this._writer !== null;
  }

  /**
   * Marks the message written: the flusher gets it with the next flush once
   * every reservation before it was committed too.
   *
   * @example Once only
   * ```ts
   * import { BufferPool, ReleasedError, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   *
   * const reservation = writer.tryReserve(2)!;
   * reservation.bytes.set([1, 2]);
   * reservation.commit();
   * assert.equal(reservation.open, false);
   * assert.throws(() => reservation.commit(), ReleasedError);
   * writer.close();
   * flusher.close();
   * for await (const batch of flusher.readable) for (const region of batch) region.release();
   * ```
   *
   * @throws {ReleasedError} If it was already committed or cancelled.
   * @throws {ClosedError} If its writer closed (or its flusher's consumer
   * failed) while it was open, saying why: the message was dropped.
   */
  commit(): void {
    const writer = this._writer;
    if (writer === null) throw settled(this, "commit");
    writer._commit(this);
  }

  /**
   * Commits the message and returns it as a packet as well, holding its own
   * reference: e.g. to keep a copy-free record of what was sent.
   *
   * @example Keeping what was sent, without a copy
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   *
   * const reservation = writer.tryReserve(3)!;
   * reservation.bytes.set([7, 8, 9]);
   * const sent = reservation.commitToPacket(); // committed: the flusher gets it too
   * writer.close();
   * flusher.close();
   * for await (const batch of flusher.readable) for (const region of batch) region.release();
   * assert.deepEqual([...sent.bytes], [7, 8, 9]); // the packet still holds the buffer
   * sent.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @returns A packet of the payload's bytes.
   * @throws {ReleasedError} If it was already committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open, saying why.
   */
  commitToPacket(): Packet {
    const writer = this._writer;
    if (writer === null) throw settled(this, "make a packet of");
    return writer._commitToPacket(this);
  }

  /**
   * The former name of {@linkcode Reservation.commitToPacket}, which it calls.
   *
   * @deprecated Use {@linkcode Reservation.commitToPacket}: the name says that it commits.
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const writer = new Writer(pool, new WriteFlusher(pool));
   * writer.tryReserve(1)!.toPacket().release(); // as commitToPacket()
   * writer.close();
   * ```
   * @returns A packet of the payload's bytes.
   * @throws {ReleasedError} If it was already committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open, saying why.
   */
  toPacket(): Packet {
    return this.commitToPacket();
  }

  /**
   * Gives the space up: taken back when nothing was reserved after it,
   * otherwise sent as zero bytes so later messages keep their place. Does
   * nothing once its writer's close cancelled it.
   *
   * @example Taken back, or zeroed
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   *
   * const first = writer.tryReserve(2)!;
   * const second = writer.tryReserve(1)!;
   * second.cancel(); // the newest: taken back
   * const third = writer.tryReserve(1)!;
   * first.cancel(); // a message follows it: sent as zeros
   * third.bytes[0] = 9;
   * third.commit();
   * writer.close();
   * flusher.close();
   * const bytes: number[] = [];
   * for await (const batch of flusher.readable) {
   *   for (const region of batch) {
   *     bytes.push(...region.bytes);
   *     region.release();
   *   }
   * }
   * assert.deepEqual(bytes, [0, 0, 9]);
   * ```
   *
   * @throws {ReleasedError} If it was already committed or cancelled.
   */
  cancel(): void {
    const writer = this._writer;
    if (writer !== null) writer._cancel(this);
    // Its writer closed: cancelled already, as asked.
    else if (this._chunk.closedBy === null) throw settled(this, "cancel");
  }

  /** Cancels the reservation if it is still open: `using` support. */
  [Symbol.dispose](): void {
    if (this._writer !== null) this._writer._cancel(this);
  }
}

/**
 * The error for using a settled reservation: its writer's ClosedError once
 * that closed, which says why, else a ReleasedError. A function, not a
 * private method: those make every instance carry a brand, a cost per
 * reservation.
 */
function settled(reservation: Reservation, action: string): Error {
  const closer = reservation._chunk.closedBy;
  if (closer !== null) return closer._closedError(`${action} a reservation`);
  return new ReleasedError(`Cannot ${action} a reservation: it was already committed or cancelled`);
}

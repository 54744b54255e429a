/**
 * Space for one NATS message's payload in pooled memory, its control line
 * already written around it.
 *
 * @module
 */

import { ReleasedError } from "../errors.ts";
import { Reservation } from "../reservation.ts";
import type { SharedReservation } from "../shared_reservation.ts";
import type { NatsSubject } from "./nats_subject.ts";
import type { ReservationList } from "./_nats_link.ts";
import { writeVoid } from "./_nats_wire.ts";

/**
 * A publish whose payload you write in place, from
 * {@linkcode NatsPublisher.tryReserve} or {@linkcode NatsPublisher.reserve}:
 * the control line, the headers and the closing CRLF are written already;
 * fill {@linkcode NatsReservation.payload} (all of it), then
 * {@linkcode NatsReservation.commit}. Nothing is copied: the payload is a
 * view of the buffer the flusher sends.
 *
 * It holds a reservation of its writer, with that reservation's rules: until
 * it is settled, whatever was placed after it in the writer waits for it.
 *
 * **Cancelling** never sends the message, nor bytes the server would
 * refuse. If nothing was placed after it, a {@linkcode Writer} takes the
 * space back and nothing is sent. Otherwise its place in the stream must be
 * filled, and zeros (what a writer fills a cancelled reservation with) are
 * a protocol error for a NATS server; so the whole frame is rewritten as
 * lines of `UNSUB _` padded with spaces, each at most 512 bytes: the server
 * drops a subscription id that was never used, which does nothing. The
 * payload written so far is overwritten, not sent.
 *
 * Close the writer through {@linkcode NatsPublisher.close}, which cancels
 * the reservations still open this way first: the writer's own close (and a
 * {@linkcode SharedWriter.reclaim}) cancels them its own way, with zeros
 * when something follows them.
 *
 * @example Serialize straight into the buffer the socket write sends
 * ```ts
 * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
 * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher);
 * const publisher = new NatsPublisher(writer);
 *
 * const reservation = publisher.tryReserve(new NatsSubject("sensor.7"), 8)!;
 * new DataView(reservation.payload.buffer, reservation.payload.byteOffset, 8)
 *   .setFloat64(0, 21.5);
 * reservation.commit();
 * writer.close();
 * flusher.close();
 *
 * const wire = new Uint8Array(await new Response(flusher.bytes()).arrayBuffer());
 * assert.equal(new TextDecoder().decode(wire.subarray(0, 16)), "PUB sensor.7 8\r\n");
 * assert.equal(new DataView(wire.buffer, 16, 8).getFloat64(0), 21.5);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class NatsReservation {
  /** The subject the message goes to. */
  readonly subject: NatsSubject;
  /** The payload's length in bytes. */
  readonly length: number;
  /** @ignore The writer's reservation of the whole frame. */
  readonly _inner: Reservation | SharedReservation;
  /** @ignore The whole frame: control line, headers, payload, CRLF. */
  readonly _frame: Uint8Array;
  /** @ignore Its publisher's list of open reservations. */
  readonly _list: ReservationList<NatsReservation>;
  /** @ignore Neighbours in that list while open. */
  _prev: NatsReservation | null = null;
  /** @ignore See `_prev`. */
  _next: NatsReservation | null = null;
  readonly #payload: Uint8Array;

  /** @ignore Made by {@linkcode NatsPublisher}, once the frame around the payload is written. */
  constructor(
    subject: NatsSubject,
    inner: Reservation | SharedReservation,
    frame: Uint8Array,
    payloadStart: number,
    length: number,
    list: ReservationList<NatsReservation>,
  ) {
    this.subject = subject;
    this.length = length;
    this._inner = inner;
    this._frame = frame;
    this._list = list;
    this.#payload = frame.subarray(payloadStart, payloadStart + length);
  }

  /**
   * Exactly {@linkcode NatsReservation.length} writable bytes of pool
   * memory: the payload. They hold whatever an earlier message left there:
   * write all of them.
   *
   * @throws {ReleasedError} If the reservation was committed or cancelled.
   */
  get payload(): Uint8Array {
    if (!this._inner.open) {
      throw new ReleasedError(
        "Cannot read the payload of a NATS reservation: it was already committed or cancelled",
      );
    }
    return this.#payload;
  }

  /** Whether it is still open: neither committed nor cancelled. */
  get open(): boolean {
    return this._inner.open;
  }

  /**
   * Marks the message written: the flusher gets it once everything placed
   * before it was committed too.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new Writer(pool, flusher);
   * const reservation = new NatsPublisher(writer).tryReserve(new NatsSubject("a"), 2)!;
   * reservation.payload.set([104, 105]);
   * reservation.commit();
   * assert.equal(reservation.open, false);
   * ```
   *
   * @throws {ReleasedError} If it was already committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open, saying why.
   */
  commit(): void {
    const inner = this._inner;
    if (inner.open) this._list._remove(this);
    inner.commit();
  }

  /**
   * Gives the message up: taken back if nothing was placed after it in a
   * {@linkcode Writer}, otherwise rewritten as `UNSUB` lines that do
   * nothing (see {@linkcode NatsReservation}). Does nothing once its
   * writer's close cancelled it.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * const publisher = new NatsPublisher(writer);
   * const subject = new NatsSubject("a");
   * const first = publisher.tryReserve(subject, 1)!;
   * publisher.tryPublishString(subject, "x");
   * first.cancel(); // a message follows it: rewritten
   * writer.close();
   * flusher.close();
   * assert.equal(
   *   await new Response(flusher.bytes()).text(),
   *   "UNSUB _   \r\nPUB a 1\r\nx\r\n",
   * );
   * ```
   *
   * @throws {ReleasedError} If it was already committed or cancelled.
   */
  cancel(): void {
    const inner = this._inner;
    if (inner.open) this._list._remove(this);
    if (!inner.open || takenBack(inner)) inner.cancel();
    else {
      writeVoid(this._frame, 0, this._frame.length);
      inner.commit();
    }
  }

  /** Cancels it if it is still open: `using` support. */
  [Symbol.dispose](): void {
    if (this._inner.open) this.cancel();
  }
}

/**
 * Whether the writer's own cancel takes `inner` back whole, so that nothing
 * is sent: a {@linkcode Writer}'s newest reservation, with nothing placed
 * after it in its buffer (the test its cancel makes before it would zero).
 */
function takenBack(inner: Reservation | SharedReservation): boolean {
  return inner instanceof Reservation && inner._next === null &&
    inner._chunk.reserved === inner._frameEnd;
}

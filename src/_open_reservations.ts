// A writer's open reservations, oldest first, and what committing or
// cancelling one does to the buffer it is in. Committed bytes reach the
// flusher only as a contiguous prefix of each buffer, so a commit moves a
// buffer's committed end only when the reservation was the oldest open one
// there, up to the next one still open (or the claim, which is newer than
// all of them).

import { Packet } from "./packet.ts";
import { Reservation } from "./reservation.ts";
import type { WriterClaim } from "./writer_claim.ts";
import type { Chunk } from "./_chunk.ts";
import type { ReservationOwner } from "./_writer_link.ts";

/** What the reservations tell their writer. */
export interface CommitListener {
  /** `bytes` more are committed, or 0 when a cancel may have let bytes go. */
  committed(bytes: number): void;
}

/** The open reservations of one writer: their owner, until each is settled. */
export class OpenReservations implements ReservationOwner<Reservation> {
  readonly #writer: CommitListener;
  /** The writer's claim: a commit's committed end stops at it when it is open in the same buffer. */
  readonly #claim: WriterClaim;
  /** Open reservations, oldest first, linked through _prev/_next. */
  #oldest: Reservation | null = null;
  #newest: Reservation | null = null;

  constructor(writer: CommitListener, claim: WriterClaim) {
    this.#writer = writer;
    this.#claim = claim;
  }

  /** A reservation for the frame from `start` to `end` in `chunk`, just placed there. */
  open(chunk: Chunk, start: number, payload: number, length: number, end: number): Reservation {
    const reservation = new Reservation(this, chunk, start, payload, length, end);
    chunk.open++;
    const newest = this.#newest;
    reservation._prev = newest;
    if (newest === null) this.#oldest = reservation;
    else newest._next = reservation;
    this.#newest = reservation;
    return reservation;
  }

  /** Cancels every open reservation, newest first, so that open space at the end is taken back. */
  cancelAll(): void {
    while (this.#newest !== null) this._cancel(this.#newest);
  }

  /** Forgets every open reservation: the writer's buffers are gone, its close says why. */
  dropAll(): void {
    for (let r = this.#oldest; r !== null; r = r._next) r._writer = null;
    this.#oldest = this.#newest = null;
  }

  /** @ignore Commits an open reservation. */
  _commit(reservation: Reservation): void {
    const chunk = reservation._chunk;
    const next = reservation._next;
    const oldestHere = reservation._prev === null || reservation._prev._chunk !== chunk;
    this.#unlink(reservation);
    chunk.open--;
    if (oldestHere) {
      // Up to the next open reservation here, or the open claim: it is newer than all of them.
      const claim = this.#claim;
      chunk.committed = next !== null && next._chunk === chunk
        ? next._frameStart
        : claim._chunk === chunk
        ? claim._frameStart
        : chunk.reserved;
      this.#writer.committed(reservation._frameEnd - reservation._frameStart);
    }
  }

  /** @ignore Commits an open reservation and makes a packet of its payload. */
  _commitToPacket(reservation: Reservation): Packet {
    const buffer = reservation._chunk.buffer;
    buffer.retain();
    const packet = new Packet(buffer, reservation._payloadStart, reservation.length);
    this._commit(reservation);
    return packet;
  }

  /** @ignore Takes back an open reservation if nothing was placed after it, else zeroes it. */
  _cancel(reservation: Reservation): void {
    const chunk = reservation._chunk;
    if (reservation === this.#newest && chunk.reserved === reservation._frameEnd) {
      const next = reservation._prev;
      this.#unlink(reservation);
      chunk.open--;
      chunk.reserved = reservation._frameStart;
      if (next === null || next._chunk !== chunk) {
        chunk.committed = chunk.reserved;
        // It may have been all that held this buffer, and newer ones, back.
        this.#writer.committed(0);
      }
      return;
    }
    chunk.view.fill(0, reservation._payloadStart, reservation._payloadStart + reservation.length);
    this._commit(reservation);
  }

  #unlink(reservation: Reservation): void {
    const { _prev: prev, _next: next } = reservation;
    if (prev === null) this.#oldest = next;
    else prev._next = next;
    if (next === null) this.#newest = prev;
    else next._prev = prev;
    reservation._prev = reservation._next = null;
    reservation._writer = null;
  }
}

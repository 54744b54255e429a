// How a writer's reservations, its claim and its flusher see the writer:
// only the calls they make on it (on its list of open reservations for a
// reservation, on its open claim, _open_claim.ts, for the claim). They depend on these shapes, not on the writer's files, so
// that the writer is the one that imports them and no file on the send side
// imports its own importer.

import type { ClosedError } from "./errors.ts";
import type { Packet } from "./packet.ts";

/** The writer as its reservations (of type `R`) see it. */
export interface ReservationOwner<R> {
  /** Commits `reservation`. */
  _commit(reservation: R): void;
  /** Takes `reservation` back, or zeroes it if anything came after it. */
  _cancel(reservation: R): void;
  /** Commits `reservation` and returns a packet of its bytes. */
  _commitToPacket(reservation: R): Packet;
}

/** The writer's open claim (_open_claim.ts) as the claim of type `C` sees it. */
export interface ClaimOwner<C> {
  /** Commits the claim's first `count` messages and takes the rest back. */
  _commitClaim(claim: C, count: number): void;
  /** Takes the claim's space back. */
  _cancelClaim(claim: C): void;
  /** The ClosedError for `action`, saying why the writer closed. */
  _closedError(action: string, more?: string): ClosedError;
}

/** A writer as the flusher it was made with sees it: closed with the flusher. */
export interface FlusherWriter {
  /** Closes the writer, flushing what it committed. */
  close(): void;
}

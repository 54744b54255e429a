// The reservations a publisher handed out that are still open, oldest
// first, so that its close cancels them the NATS way (taken back or
// rewritten as UNSUB lines) before the writer's own close would cancel them
// with zeros, which the server rejects and closes the connection over,
// losing every message after them.

import type { NatsReservation } from "./nats_reservation.ts";
import type { ReservationList } from "./_nats_link.ts";

/** A publisher's open reservations, linked through their _prev/_next. */
export class OpenNatsReservations implements ReservationList<NatsReservation> {
  #newest: NatsReservation | null = null;

  /** Links `reservation`, just made, as the newest. */
  add(reservation: NatsReservation): void {
    const newest = this.#newest;
    reservation._prev = newest;
    if (newest !== null) newest._next = reservation;
    this.#newest = reservation;
  }

  /** @ignore Unlinks a reservation being settled. */
  _remove(reservation: NatsReservation): void {
    const { _prev: prev, _next: next } = reservation;
    if (prev !== null) prev._next = next;
    if (next !== null) next._prev = prev;
    else this.#newest = prev;
    reservation._prev = reservation._next = null;
  }

  /** Cancels every one still open, newest first, so that a Writer takes back what it can. */
  cancelAll(): void {
    for (let r = this.#newest; r !== null; r = this.#newest) {
      if (r.open) r.cancel();
      else this._remove(r); // its writer closed it already
    }
  }
}

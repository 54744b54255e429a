// How a NATS reservation sees the list of open reservations it is in: only
// the call it makes on it. A shape of its own, so that the reservation does
// not import the list that imports it.

/** A publisher's list of open reservations, as a reservation of type `R` sees it. */
export interface ReservationList<R> {
  /** Unlinks `reservation`, being settled. */
  _remove(reservation: R): void;
}

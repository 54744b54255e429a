// What a SharedReservation knows of the writer handle that made it: its
// three ways to settle. An interface here, so that the reservation's file
// does not import the writer's (the writer's imports the reservation's).

import type { Packet } from "./packet.ts";

/** The owner of a shared reservation `R`, until it is settled. */
export interface SharedReservationOwner<R> {
  _commit(reservation: R): void;
  _commitToPacket(reservation: R): Packet;
  _cancel(reservation: R): void;
}

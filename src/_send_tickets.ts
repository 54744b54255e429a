// Send tickets: how a shared pool makes sure each SendPacket or SendBatch is
// received exactly once, in whichever worker it lands.
//
// Each worker slot owns `maxInFlight` ticket words. A send claims one that
// holds 0 (free), then publishes a fresh stamp into it: the stamp travels
// with the SendPacket, and the store publishes every write the sender made
// before it. A receive swaps the stamp back to 0 with one CAS: exactly one
// receive of a stamp succeeds anywhere, a second finds 0 or another stamp.
// Stamps count on in the slot's S_STAMP across the slot's owners, so a stale
// SendPacket of a previous owner never matches a new send.
//
// The sender's side is a SendTickets per pool object; the receiver's side is
// takeTicket. Each step touches one ticket word that another worker touches,
// so that tests/explorer/ref_count_model.ts runs these very functions one
// step at a time; claim's loop is repeated there from isTicketFree.

import { firstTicket, type Layout, S_STAMP, slotWord, ticketCount, ticketWord } from "./_layout.ts";

/** The send tickets of one worker slot, as its pool object uses them to send. */
export class SendTickets {
  readonly #words: Int32Array;
  readonly #layout: Layout;
  /** Int32 index of the slot's S_STAMP. */
  readonly #stampWord: number;
  /** The slot's first ticket. */
  readonly #first: number;
  /** Where the next search for a free ticket starts, relative to #first. */
  #cursor = 0;

  constructor(words: Int32Array, layout: Layout, worker: number) {
    this.#words = words;
    this.#layout = layout;
    this.#stampWord = slotWord(layout, worker) + S_STAMP;
    this.#first = firstTicket(layout, worker);
  }

  /**
   * Finds a free ticket of this slot's; it is not taken until published.
   *
   * @throws {RangeError} If every ticket of the slot is in flight.
   */
  claim(): number {
    const layout = this.#layout;
    const { maxInFlight } = layout;
    for (let tried = 0; tried < maxInFlight; tried++) {
      const ticket = this.#first + this.#cursor;
      this.#cursor = this.#cursor + 1 === maxInFlight ? 0 : this.#cursor + 1;
      if (isTicketFree(this.#words, layout, ticket)) return ticket;
    }
    throw new RangeError(
      `Cannot send packet: this worker already has ${maxInFlight} sends in flight (maxInFlight); receive some first or create the pool with a larger maxInFlight`,
    );
  }

  /**
   * Marks a claimed ticket in flight with a fresh stamp, which it returns.
   * The store also publishes every write made before it to the worker whose
   * receive swaps it back.
   */
  publish(ticket: number): number {
    const words = this.#words;
    let stamp = (words[this.#stampWord]! + 1) & 0x7fffffff;
    if (stamp === 0) stamp = 1;
    words[this.#stampWord] = stamp;
    Atomics.store(words, ticketWord(this.#layout, ticket), stamp);
    return stamp;
  }
}

/** Whether `ticket` is free: no send in flight holds it. */
export function isTicketFree(words: Int32Array, layout: Layout, ticket: number): boolean {
  return Atomics.load(words, ticketWord(layout, ticket)) === 0;
}

/**
 * Receives a send: frees its ticket if it still holds the send's stamp.
 * Returns false if the send was received already, or names no ticket.
 */
export function takeTicket(
  words: Int32Array,
  layout: Layout,
  ticket: number,
  stamp: number,
): boolean {
  // A free ticket holds 0, which no send ever stamps.
  return stamp !== 0 && ticket >>> 0 === ticket && ticket < ticketCount(layout) &&
    Atomics.compareExchange(words, ticketWord(layout, ticket), stamp, 0) === stamp;
}

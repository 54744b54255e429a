// Each worker's count of the bytes it committed in each buffer of a
// SharedWriter's ring, a row of its own in the block (see
// _shared_writer_block.ts for the layout): a commit writes a line no other
// worker writes, where one shared sum per buffer would be a second
// contended line per message, beside the cursor's. A buffer's committed
// bytes are the sum over the rows; install zeroes a slot's counts.

import { commitRowWord, E_SEALED, ringSlots, ringWord, SW_ROWS } from "./_shared_writer_block.ts";

/** Counts worker `worker`'s row of commit counts in, before it makes its first claim. */
export function useRow(sw: Int32Array, worker: number): void {
  for (let rows = Atomics.load(sw, SW_ROWS); rows <= worker;) {
    const seen = Atomics.compareExchange(sw, SW_ROWS, rows, worker + 1);
    if (seen === rows) return;
    rows = seen;
  }
}

/**
 * The bytes committed in ring slot `slot`'s buffer, over every row. Each
 * row only grows while the buffer is in the slot, so the sum read is at most
 * what was committed once it was read.
 */
export function committedIn(sw: Int32Array, slot: number): number {
  const end = commitRowWord(sw, Atomics.load(sw, SW_ROWS)) + slot;
  let sum = 0;
  const slots = ringSlots(sw);
  for (let word = commitRowWord(sw, 0) + slot; word < end; word += slots) {
    sum += Atomics.load(sw, word);
  }
  return sum;
}

/**
 * Counts `frame` bytes committed in the buffer of ring slot `slot`, in the
 * row of counts at `row` (see {@link commitRowWord}). Only the row's worker
 * writes it (a reclaim counts a dead worker's claims in its own).
 *
 * @returns Whether the buffer is sealed: then this commit may have made it
 * whole, and the caller must publish. An open buffer's bytes go with the
 * committing worker's next flush.
 */
export function commit(
  sw: Int32Array,
  row: number,
  slot: number,
  frame: number,
  shared: boolean,
): boolean {
  const word = row + slot;
  if (!shared) {
    sw[word]! += frame;
    return sw[ringWord(slot) + E_SEALED]! > 0;
  }
  // A store, not an add: nobody else writes the row. Sequentially
  // consistent, so the bytes written before it are visible to whoever
  // reads the count, and the read of E_SEALED after it cannot move above
  // it: the sealer stores E_SEALED before it reads the counts, so one of
  // the two sees the other.
  Atomics.store(sw, word, sw[word]! + frame);
  return Atomics.load(sw, ringWord(slot) + E_SEALED) > 0;
}

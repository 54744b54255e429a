// A SharedWriter's publishing steps over its block (see
// _shared_writer_block.ts for the words): the publisher's lock, which never
// blocks (a worker that finds it taken leaves a note, and the holder goes
// round again); collecting, oldest first, what each buffer in use can hand
// to the flusher; and moving the delivery mark past the buffers delivered
// whole, which frees their ring slots.

import { PUBLISH_DONE } from "./_layout.ts";
import {
  cursorSeq,
  E_INDEX,
  E_PUBLISHED,
  E_SEALED,
  E_SEQ,
  NOTE_OPEN,
  NOTE_WHOLE,
  offsetOf,
  ringWord,
  slotOf,
  slotOfSeq,
  SW_AGAIN,
  SW_CURSOR,
  SW_DELIVER,
  SW_LOCK,
} from "./_shared_writer_block.ts";
import { committedIn } from "./_shared_commit_counts.ts";

/**
 * Takes the publisher's lock for worker slot + 1 `me`. When it is taken,
 * leaves a note so that the holder publishes once more for us, offering
 * the open buffer's committed bytes too if `open`.
 */
export function lockPublish(sw: Int32Array, me: number, open: boolean): boolean {
  if (Atomics.compareExchange(sw, SW_LOCK, 0, me) === 0) return true;
  // An or, so that a note for whole buffers never hides one for a flush.
  Atomics.or(sw, SW_AGAIN, open ? NOTE_OPEN | NOTE_WHOLE : NOTE_WHOLE);
  // The holder may have let go before it saw the note.
  return Atomics.compareExchange(sw, SW_LOCK, 0, me) === 0;
}

/**
 * Lets the publisher's lock go.
 *
 * @returns Whether to publish again: a note was left and the lock was
 * taken back (the caller holds it again).
 */
export function unlockPublish(sw: Int32Array, me: number): boolean {
  Atomics.store(sw, SW_LOCK, 0);
  if (Atomics.load(sw, SW_AGAIN) === 0) return false;
  return Atomics.compareExchange(sw, SW_LOCK, 0, me) === 0;
}

/**
 * Under the lock: works out what each buffer from SW_DELIVER on can hand to
 * the flusher, oldest first, and stops at the first one not delivered
 * whole. For each buffer with news, calls `deliver(index, value)`, where
 * value is the committed end, with PUBLISH_DONE once the buffer is whole and
 * sealed. Then moves SW_DELIVER past the whole ones, which the caller must
 * do only after pushing them: call {@link advance} with the returned number.
 * The buffer that takes claims has news only if `open` (a flush), or a
 * note left for this round asked for it.
 *
 * @returns The sequence number of the first buffer not yet whole.
 */
export function collect(
  sw: Int32Array,
  open: boolean,
  deliver: (index: number, value: number) => void,
): number {
  if ((Atomics.exchange(sw, SW_AGAIN, 0) & NOTE_OPEN) !== 0) open = true;
  const last = cursorSeq(sw);
  let seq = Atomics.load(sw, SW_DELIVER);
  for (; seq <= last; seq++) {
    const word = ringWord(slotOfSeq(sw, seq));
    // A slot not installed yet (its switch is under way).
    if (Atomics.load(sw, word + E_SEQ) !== seq) break;
    const committed = committedIn(sw, slotOfSeq(sw, seq));
    let sealed = Atomics.load(sw, word + E_SEALED);
    if (sealed < 0) {
      const cursor = Atomics.load(sw, SW_CURSOR);
      if (slotOf(sw, cursor) === (slotOfSeq(sw, seq)) && cursor < 0) {
        sealed = offsetOf(sw, cursor) + 1;
      } else if (slotOf(sw, cursor) === (slotOfSeq(sw, seq))) {
        // Open: the claimed offset is read after the sum, and both only grow,
        // so equal means every claim below it was committed.
        if (open && offsetOf(sw, cursor) === committed) offer(sw, word, committed, deliver);
        break;
      } else {
        // Sealed and switched, but the mark is not visible yet: read again.
        sealed = Atomics.load(sw, word + E_SEALED);
        if (sealed < 0) break;
      }
    }
    if (committed !== sealed - 1) break;
    offer(sw, word, committed | PUBLISH_DONE, deliver);
  }
  return seq;
}

/** Hands a buffer's value to `deliver` when it differs from what was published last. */
function offer(
  sw: Int32Array,
  word: number,
  value: number,
  deliver: (index: number, value: number) => void,
): void {
  if (sw[word + E_PUBLISHED] === value) return;
  sw[word + E_PUBLISHED] = value;
  deliver(sw[word + E_INDEX]!, value);
}

/** Moves SW_DELIVER to `seq` (from {@link collect}), waking a switcher waiting for a slot. */
export function advance(sw: Int32Array, seq: number): void {
  if (Atomics.load(sw, SW_DELIVER) === seq) return;
  Atomics.store(sw, SW_DELIVER, seq);
  Atomics.notify(sw, SW_DELIVER);
}

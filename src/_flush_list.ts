// The words a WriteFlusher shares with its writers, and the list of buffers
// they hand it. The list is threaded through the buffers' H_NEXT words as
// index + 1 (0 ends it), so handing over a whole chain of buffers is one CAS on
// the head and taking them all is one exchange, in any worker.
//
// A flusher's words live in a small block of their own (a SharedArrayBuffer
// when the pool is shared), one cache line each where writers contend.

import { LINE_WORDS } from "./_layout.ts";

/** Identifies a flusher's block, so that a foreign handle fails loudly. */
export const F_MAGIC_VALUE = 0x62616266; // "babf"
export const F_MAGIC = 0;
/** The id of the pool whose buffers the flusher takes. */
export const F_POOL_ID = 1;
/** Hands out writer ids. */
export const F_NEXT_WRITER = 2;
/** 1 once the flusher was closed: writers stop reserving. */
export const F_CLOSED = 3;
/** Index + 1 of the most recently pushed buffer; 0 when empty; {@link ENDED} after the end. */
export const F_HEAD = LINE_WORDS;
/** 1 while the flusher sleeps on F_BELL. */
export const F_WAITING = 2 * LINE_WORDS;
/** Bumped to wake the flusher. */
export const F_BELL = 2 * LINE_WORDS + 1;
/** Words in a flusher's block. */
export const FLUSH_WORDS = 3 * LINE_WORDS;

/** The head once the flusher has ended: pushes fail and the writer keeps its buffers. */
export const ENDED = -1;

/** Wakes a flusher sleeping on F_BELL in any worker; costs one load when none sleeps. */
export function ringBell(control: Int32Array): void {
  if (Atomics.load(control, F_WAITING) !== 0) {
    Atomics.add(control, F_BELL, 1);
    Atomics.notify(control, F_BELL);
  }
}

/**
 * Pushes a chain of buffers already linked through H_NEXT, `last` first
 * down to `first`, whose H_NEXT is set here to the old head.
 *
 * @returns The old head (0 if the list was empty), or {@link ENDED} when the
 * flusher is gone and nothing was pushed.
 */
export function pushChain(
  control: Int32Array,
  words: Int32Array,
  firstNext: number,
  last: number,
): number {
  for (;;) {
    const head = Atomics.load(control, F_HEAD);
    if (head === ENDED) return ENDED;
    words[firstNext] = head;
    if (Atomics.compareExchange(control, F_HEAD, head, last + 1) === head) return head;
  }
}

// The words a WriteFlusher shares with its writers, and the list of buffers
// they hand it. The list is threaded through the buffers' H_NEXT words as
// index + 1 (0 ends it), so handing over a whole chain of buffers is one CAS on
// the head and taking them all is one exchange, in any worker.
//
// A flusher's words live in a small block of their own (a SharedArrayBuffer
// when the pool is shared), one cache line each where writers contend.

import { H_NEXT, H_PUBLISH, LINE_WORDS, PUBLISH_LISTED } from "./_layout.ts";
import { encodeInto } from "./_shared_memory.ts";

/** Identifies a flusher's block, so that a foreign handle fails loudly. */
export const F_MAGIC_VALUE = 0x62616266; // "babf"
export const F_MAGIC = 0;
/** The id of the pool whose buffers the flusher takes. */
export const F_POOL_ID = 1;
/** Hands out writer ids. */
export const F_NEXT_WRITER = 2;
/**
 * Why writers stop: 0 while open, {@link CLOSED} once the flusher was closed,
 * {@link FAILED} once its consumer stopped reading.
 */
export const F_CLOSED = 3;
/** In F_CLOSED: `close()` was called. */
export const CLOSED = 1;
/** In F_CLOSED: the readable was cancelled, e.g. because the sink failed; the text says why. */
export const FAILED = 2;
/** Index + 1 of the most recently pushed buffer; 0 when empty; {@link ENDED} after the end. */
export const F_HEAD = LINE_WORDS;
/** 1 while the flusher sleeps on F_BELL. */
export const F_WAITING = 2 * LINE_WORDS;
/** Bumped to wake the flusher. */
export const F_BELL = 2 * LINE_WORDS + 1;
/** UTF-8 bytes of the consumer's error message, set before F_CLOSED becomes FAILED. */
export const F_REASON_LENGTH = 3 * LINE_WORDS;
/** Byte offset of that message's text. */
const REASON_START = (F_REASON_LENGTH + 1) * 4;
/** Words in a flusher's block: 4 lines hold the message, cut to fit. */
export const FLUSH_WORDS = 7 * LINE_WORDS;
const REASON_BYTES = FLUSH_WORDS * 4 - REASON_START;

/** The head once the flusher has ended: pushes fail and the writer keeps its buffers. */
export const ENDED = -1;

/** Wakes a flusher sleeping on F_BELL in any worker; costs one load when none sleeps. */
export function ringBell(control: Int32Array): void {
  if (Atomics.load(control, F_WAITING) !== 0) {
    Atomics.add(control, F_BELL, 1);
    Atomics.notify(control, F_BELL);
  }
}

// -- The writers' side: publish, link, push --

/**
 * Publishes a buffer's new committed end (with PUBLISH_DONE once the writer
 * is done with it) in its header at `header`, and marks it listed.
 *
 * @returns Whether it must be linked and pushed: false while the flusher
 * has not taken it off the list yet, since it reads the new value there.
 */
export function publish(words: Int32Array, header: number, value: number): boolean {
  const old = Atomics.exchange(words, header + H_PUBLISH, value | PUBLISH_LISTED);
  return (old & PUBLISH_LISTED) === 0;
}

/** Links the buffer with header `header` to `newer` (a buffer index) in a chain to push. */
export function linkTo(words: Int32Array, header: number, newer: number): void {
  words[header + H_NEXT] = newer + 1;
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
  firstHeader: number,
  last: number,
): number {
  for (;;) {
    const head = Atomics.load(control, F_HEAD);
    if (head === ENDED) return ENDED;
    words[firstHeader + H_NEXT] = head;
    if (Atomics.compareExchange(control, F_HEAD, head, last + 1) === head) return head;
  }
}

// -- The flusher's side: take, then read each buffer's news --

/**
 * Takes the whole list at once and puts the index of every buffer on it in
 * `out`, oldest first. Reads every link before any listed bit is cleared
 * (by {@link takePublished}): a writer may relink a buffer right after.
 * Takes nothing from an ended list.
 */
export function takeList(
  control: Int32Array,
  words: Int32Array,
  headerOf: (index: number) => number,
  out: number[],
): void {
  const start = out.length;
  // An ended list stays ended, or a writer could push onto a list nobody
  // takes. Only the flusher ends it, so it cannot end between these two.
  if (Atomics.load(control, F_HEAD) === ENDED) return;
  let head = Atomics.exchange(control, F_HEAD, 0);
  while (head > 0) {
    out.push(head - 1);
    head = words[headerOf(head - 1) + H_NEXT]!;
  }
  // The list runs newest first.
  if (out.length - start > 1) reverseFrom(out, start);
}

/**
 * Clears a taken buffer's listed bit and returns what its writer published
 * last: the committed end, with PUBLISH_DONE once the writer is done.
 */
export function takePublished(words: Int32Array, header: number): number {
  return Atomics.and(words, header + H_PUBLISH, ~PUBLISH_LISTED) & ~PUBLISH_LISTED;
}

/** Reverses `items` from `start` to the end, in place. */
function reverseFrom(items: number[], start: number): void {
  let i = start;
  let j = items.length - 1;
  for (; i < j; i++, j--) {
    const item = items[i]!;
    items[i] = items[j]!;
    items[j] = item;
  }
}

/**
 * Ends the writers' side because the consumer failed: stores what it failed
 * with (as text, since an error object cannot cross workers), then FAILED.
 */
export function storeFailure(control: Int32Array, reason: unknown): void {
  const text = reason === undefined ? "" : describeReason(reason);
  const bytes = new Uint8Array(control.buffer, REASON_START, REASON_BYTES);
  const whole = encodeInto(text, bytes);
  let written = whole.written;
  if (whole.read < text.length) {
    // Cut on a character boundary, leaving room for an ellipsis.
    written = encodeInto(text, bytes.subarray(0, REASON_BYTES - 3)).written;
    written += encodeInto("…", bytes.subarray(written)).written;
  }
  control[F_REASON_LENGTH] = written;
  // The atomic store publishes the text to whoever loads FAILED.
  Atomics.store(control, F_CLOSED, FAILED);
}

/**
 * Why the flusher stopped taking writes, as the end of an error message:
 * "the flusher was closed", or what its consumer failed with.
 */
export function endReason(control: Int32Array): string {
  if (Atomics.load(control, F_CLOSED) !== FAILED) return "the flusher was closed";
  const length = control[F_REASON_LENGTH]!;
  if (length === 0) return "the flusher's readable was cancelled";
  // A copy: TextDecoder may refuse a view of shared memory.
  const text = decoder.decode(new Uint8Array(control.buffer, REASON_START, length).slice());
  return `the flusher's consumer failed: ${text}`;
}

/** An error's name and message, or the value as text. */
export function describeReason(reason: unknown): string {
  if (reason instanceof Error) {
    if (reason.name === "Error" || reason.name === "") return reason.message || "Error";
    return reason.message === "" ? reason.name : `${reason.name}: ${reason.message}`;
  }
  try {
    return String(reason);
  } catch {
    return Object.prototype.toString.call(reason);
  }
}

const decoder = new TextDecoder();

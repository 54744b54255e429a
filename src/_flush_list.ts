// The flush list: how writers hand a WriteFlusher the buffers they filled,
// both sides of it, over a flusher's words and the buffers' headers.
//
// The list is threaded through the buffers' H_NEXT words as index + 1 (0
// ends it), newest first. A writer publishes each buffer's committed end in
// its H_PUBLISH word; the first publish since the flusher last read it marks
// the buffer listed, and only then does the writer link it into a chain and
// push the chain onto F_HEAD with one CAS. The flusher takes the whole list
// with one exchange, reads every link, and only then reads each buffer's
// news, which clears the listed bit: from then on a writer may relink it.
// A flusher asleep on F_BELL says so in F_WAITING, and a writer that pushes
// onto an empty list rings it. The flusher ends the list by swapping an
// empty head for ENDED, after which pushes fail and writers keep their
// buffers.
//
// Each exported step below touches at most one word that another thread
// may touch at the same time, so that tests/explorer/flush_list_model.ts
// can run these very functions one step at a time under many
// interleavings. The composites (pushChain, takeList, ringBell,
// prepareSleep) only call steps, in one call for speed; the model repeats
// their order from the same steps, so keep the two in step: the explorer
// checks the order the model runs, not the order written here.
//
// A flusher's words live in a small block of their own (a SharedArrayBuffer
// when the pool is shared), one cache line each where writers contend.

import { H_FLUSHED, H_NEXT, H_PUBLISH, H_WRITER, lineWord, PUBLISH_LISTED } from "./_layout.ts";
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
export const F_HEAD = lineWord(1);
/** 1 while the flusher sleeps on F_BELL. */
export const F_WAITING = lineWord(2);
/** Bumped to wake the flusher. */
export const F_BELL = lineWord(2) + 1;
/** UTF-8 bytes of the consumer's error message, set before F_CLOSED becomes FAILED. */
export const F_REASON_LENGTH = lineWord(3);
/** Byte offset of that message's text. */
const REASON_START = (F_REASON_LENGTH + 1) * 4;
/** Words in a flusher's block: 4 lines hold the message, cut to fit. */
export const FLUSH_WORDS = lineWord(7);
const REASON_BYTES = FLUSH_WORDS * 4 - REASON_START;

/** The head once the flusher has ended: pushes fail and the writer keeps its buffers. */
export const ENDED = -1;
/** In H_FLUSHED until the flusher claims the buffer. */
const UNCLAIMED = -1;

/**
 * A new flusher's words for writers of the pool with id `poolId`: shared
 * memory when the pool is, so that writers in other workers can push.
 */
export function newFlushWords(shared: boolean, poolId: number): Int32Array {
  const bytes = FLUSH_WORDS * 4;
  const control = new Int32Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  control[F_MAGIC] = F_MAGIC_VALUE;
  control[F_POOL_ID] = poolId;
  control[F_NEXT_WRITER] = 0;
  return control;
}

// -- A buffer joins a writer --

/**
 * In H_WRITER: the buffer is a SharedWriter's, whose token is the buffer's
 * only hold while workers write in it (see {@link handsBack}).
 */
const SHARED_BUFFER = 1 << 30;

/**
 * Readies the header at `header` of a buffer writer `writerId` just took:
 * nothing published, unclaimed; `shared` for a SharedWriter's.
 */
export function startBuffer(
  words: Int32Array,
  header: number,
  writerId: number,
  shared = false,
): void {
  words[header + H_PUBLISH] = 0;
  words[header + H_FLUSHED] = UNCLAIMED;
  words[header + H_WRITER] = shared ? writerId | SHARED_BUFFER : writerId;
}

// -- The writers' side: publish, link, push, ring --

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

/**
 * Links the buffer with header `header` to `newer` (a buffer index) in a
 * chain to push. Only once {@link publish} said so: the flusher no longer
 * reads this link then.
 */
export function linkTo(words: Int32Array, header: number, newer: number): void {
  words[header + H_NEXT] = newer + 1;
}

/** The list's head, as a push must see it first: index + 1, 0, or {@link ENDED}. */
export function listHead(control: Int32Array): number {
  return Atomics.load(control, F_HEAD);
}

/** Links the oldest buffer of a chain to push (header `firstHeader`) to the list's `head`. */
export function linkToHead(words: Int32Array, firstHeader: number, head: number): void {
  words[firstHeader + H_NEXT] = head;
}

/**
 * Swaps the list's head for `last + 1` (`last` the newest buffer of a chain
 * linked to `head`) if it is still `head`.
 *
 * @returns Whether the chain was pushed; if not, read the head again and retry.
 */
export function swapHead(control: Int32Array, head: number, last: number): boolean {
  return Atomics.compareExchange(control, F_HEAD, head, last + 1) === head;
}

/**
 * Pushes a chain of buffers already linked through H_NEXT, `last` first
 * down to `first`, whose H_NEXT is set here to the old head.
 *
 * @returns The old head (0 if the list was empty: ring the flusher), or
 * {@link ENDED} when the flusher is gone and nothing was pushed.
 */
export function pushChain(
  control: Int32Array,
  words: Int32Array,
  firstHeader: number,
  last: number,
): number {
  for (;;) {
    const head = listHead(control);
    if (head === ENDED) return ENDED;
    // The link first: once the swap succeeds, the flusher may read it.
    linkToHead(words, firstHeader, head);
    if (swapHead(control, head, last)) return head;
  }
}

/** Whether the flusher sleeps on its bell, or is about to. */
export function flusherSleeps(control: Int32Array): boolean {
  return Atomics.load(control, F_WAITING) !== 0;
}

/** Rings the bell: a flusher waiting on it in any worker wakes. */
export function bumpBell(control: Int32Array): void {
  Atomics.add(control, F_BELL, 1);
  Atomics.notify(control, F_BELL);
}

/** Wakes a flusher sleeping on F_BELL in any worker; costs one load when none sleeps. */
export function ringBell(control: Int32Array): void {
  if (flusherSleeps(control)) bumpBell(control);
}

// -- The flusher's side: take, then read each buffer's news --

/**
 * Takes the whole list, leaving it empty.
 *
 * @returns The head taken (index + 1 of the newest buffer, or 0), and 0
 * from an ended list, which stays ended: a writer that pushed onto it
 * would push onto a list nobody takes. Only the flusher ends the list, so
 * it cannot end between the load and the exchange.
 */
export function takeHead(control: Int32Array): number {
  if (Atomics.load(control, F_HEAD) === ENDED) return 0;
  return Atomics.exchange(control, F_HEAD, 0);
}

/** The link of a taken buffer at `header`: index + 1 of the next older one, or 0. */
export function nextLink(words: Int32Array, header: number): number {
  return words[header + H_NEXT]!;
}

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
  let head = takeHead(control);
  while (head > 0) {
    out.push(head - 1);
    head = nextLink(words, headerOf(head - 1));
  }
  // The list runs newest first.
  if (out.length - start > 1) reverseFrom(out, start);
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

/** The flusher takes over a buffer it took for the first time: nothing of it delivered yet. */
export function claim(words: Int32Array, header: number): void {
  words[header + H_FLUSHED] = 0;
}

/**
 * Whether the flusher has claimed the buffer at `header`. A writer asks once
 * the list has ended, to take back a buffer it lent but never got onto it.
 */
export function claimedByFlusher(words: Int32Array, header: number): boolean {
  return words[header + H_FLUSHED] !== UNCLAIMED;
}

/**
 * Clears a taken buffer's listed bit and returns what its writer published
 * last: the committed end, with PUBLISH_DONE once the writer is done.
 */
export function takePublished(words: Int32Array, header: number): number {
  return Atomics.and(words, header + H_PUBLISH, ~PUBLISH_LISTED) & ~PUBLISH_LISTED;
}

/** How far the flusher has delivered a claimed buffer. */
export function flushedTo(words: Int32Array, header: number): number {
  return words[header + H_FLUSHED]!;
}

/** Notes that the flusher has delivered a claimed buffer up to `end`. */
export function setFlushedTo(words: Int32Array, header: number, end: number): void {
  words[header + H_FLUSHED] = end;
}

/** The id of the writer that filled the buffer at `header`. */
export function writerOf(words: Int32Array, header: number): number {
  return words[header + H_WRITER]! & ~SHARED_BUFFER;
}

/**
 * Whether an ending flusher gives the token of the buffer at `header` back
 * to its writer (lent and unclaimed, see {@link unclaim}) instead of
 * releasing it: a SharedWriter's buffer has no other hold while other
 * workers may still write in it. A Writer's has its own, and the writer may
 * be dead (reclaimed), so its token is released.
 */
export function handsBack(words: Int32Array, header: number): boolean {
  return (words[header + H_WRITER]! & SHARED_BUFFER) !== 0;
}

/** The flusher gives the buffer at `header` back unclaimed, its token lent again. */
export function unclaim(words: Int32Array, header: number): void {
  words[header + H_FLUSHED] = UNCLAIMED;
}

// -- Ending: close, end the list --

/** Whether the flusher was closed or failed: writers stop, the flusher ends once the list is empty. */
export function listClosed(control: Int32Array): boolean {
  return Atomics.load(control, F_CLOSED) !== 0;
}

/** Closes the flusher unless it already was closed or failed. @returns Whether this call did. */
export function closeList(control: Int32Array): boolean {
  return Atomics.compareExchange(control, F_CLOSED, 0, CLOSED) === 0;
}

/**
 * Ends the list if it is empty: from then on pushes fail.
 *
 * @returns Whether it ended; if not, take what is on it and retry.
 */
export function endList(control: Int32Array): boolean {
  return Atomics.compareExchange(control, F_HEAD, 0, ENDED) === 0;
}

// -- The flusher's sleep on its bell --

/** The flusher says it is about to sleep: a writer that pushes from now on rings. */
export function announceSleep(control: Int32Array): void {
  Atomics.store(control, F_WAITING, 1);
}

/** The bell's value: the flusher sleeps only while it still is this. */
export function bellOf(control: Int32Array): number {
  return Atomics.load(control, F_BELL);
}

/** Whether nothing was pushed since the flusher last took the list. */
export function listEmpty(control: Int32Array): boolean {
  return Atomics.load(control, F_HEAD) === 0;
}

/** Waits, without blocking, while the bell is still `bell` (from {@link prepareSleep}). */
export function waitOnBell(
  control: Int32Array,
  bell: number,
): ReturnType<typeof Atomics.waitAsync> {
  return Atomics.waitAsync(control, F_BELL, bell);
}

/** The flusher is awake: writers need not ring. */
export function endSleep(control: Int32Array): void {
  Atomics.store(control, F_WAITING, 0);
}

/**
 * The flusher's steps to sleep: it says it sleeps, reads the bell, and only
 * then looks for news, so a push after the look rings a bell it has read.
 *
 * @returns The value to wait on F_BELL while it holds, or null when there
 * is news (a push, or close) and the flusher must not sleep. Either way,
 * call {@link endSleep} once awake.
 */
export function prepareSleep(control: Int32Array): number | null {
  announceSleep(control);
  const bell = bellOf(control);
  return listEmpty(control) && !listClosed(control) ? bell : null;
}

// -- Why the flusher ended --

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

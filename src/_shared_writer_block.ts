// The words a SharedWriter's handles share, in every worker, and the
// protocol over them: claiming room in the current buffer, sealing it,
// switching to the next one, counting commits, and publishing finished bytes
// to the flusher in order. Both sides of each step live here.
//
//   [line 0: identity][line 1: cursor][line 2: switch, order][line 3: publish lock]
//   [ring: one line per slot, a slot per buffer in use]
//   [open reservations: one record per worker]
//   [commit counts: one row per worker, a word per ring slot]
//
// The cursor is one Int32, so that claiming room is one compare-and-swap:
//
//   bit 31            SEALED: the buffer takes no more claims (full, or the writer closed)
//   bits SHIFT-30     the buffer's sequence number modulo the ring's size: its ring slot
//   bits 0-(SHIFT-1)  bytes claimed so far in the buffer
//
// The ring has a slot for every buffer of the pool (a power of 2 from
// MIN_RING_SLOTS up to MAX_RING_SLOTS, and no more than the bits left beside
// the buffer size's allow), so that a held reservation stalls other writers
// only when the pool runs out; SHIFT is 31 minus the slot bits. Both are
// fixed when the writer is made and kept in line 0 (SW_SHIFT, SW_SLOT_MASK).
//
// A compare-and-swap, not an add: with an add, claims that do not fit would
// push the offset past the buffer and into the sequence bits, and 32 bits
// leave no headroom for that across many workers. The swap keeps the word
// exact, and exactly one claim seals each buffer.
//
// Each buffer in use has a ring slot: its pool index and its end once
// sealed. Each worker counts the bytes it committed in each buffer in a row
// of its own, so that a commit writes a line no other worker writes (one
// shared sum would be a second contended line per message, beside the
// cursor's). Commits may come in any order. Bytes reach the flusher only as
// a prefix in which every claim was committed: when the rows' sum equals the
// claimed offset, nothing is missing below it. Buffers reach the flusher in sequence order (one
// publisher at a time, under a lock that never blocks: a worker that finds
// it taken leaves a note, and the holder goes round again), so each worker's
// messages arrive in the order it placed them.
//
// A ring slot is reused only once its previous buffer was delivered whole,
// so a claim made in a buffer can always find it through the slot, and a
// reservation held open delays other writers only when the pool runs out,
// or after ring slots - 1 newer buffers where the ring is smaller than the
// pool: beyond MAX_RING_SLOTS buffers, or with buffers over 1 MiB, whose
// offsets leave fewer bits for the slot.

import { LINE_WORDS, lineWord } from "./_layout.ts";
import { startBuffer } from "./_flush_list.ts";
import { lengthPrefixLayout } from "./_length_prefix.ts";
import type { FrameCodec } from "./frame_codec.ts";

/** Identifies a shared writer's block, so that a foreign handle fails loudly. */
export const SW_MAGIC_VALUE = 0x62616277; // "babw"

// -- Line 0: identity, read-only after construction --
export const SW_MAGIC = 0;
/** The id of the pool whose buffers the writer fills. */
export const SW_POOL_ID = 1;
/** The id carried by every FlushRegion of the writer. */
export const SW_ID = 2;
/** The pool's buffer size. */
export const SW_BUFFER_SIZE = 3;
/** Worker slots in the block's reservation records. */
export const SW_WORKERS = 4;
/** A code for the writer's codec, so that a handle attached with another one is refused. */
export const SW_CODEC = 5;
/** Where the slot's bits start in the cursor: the offset takes the bits below. */
export const SW_SHIFT = 6;
/** Ring slots - 1 (a power of 2 - 1). */
export const SW_SLOT_MASK = 7;

// -- Line 1: the cursor, on its own line: every claim swaps it --
export const SW_CURSOR = lineWord(1);

// -- Line 2: switching buffers, and the writer's life --
/** The last buffer's sequence number; may lag the cursor's by one while a switch finishes. */
export const SW_SEQ = lineWord(2);
/** Worker slot + 1 of the worker switching to the next buffer; 0 when none is. */
export const SW_SWITCHER = lineWord(2) + 1;
/** Sequence number of the oldest buffer not yet delivered whole. */
export const SW_DELIVER = lineWord(2) + 2;
/** Handles open across workers; the last one to close finishes the writer. */
export const SW_HANDLES = lineWord(2) + 3;
/** 1 once the last handle closed, or the writer failed: claims are refused. */
export const SW_CLOSED = lineWord(2) + 4;
/** Rows of commit counts in use: the highest worker slot + 1 that opened a handle. */
export const SW_ROWS = lineWord(2) + 5;

// -- Line 3: the publisher's lock --
/** Worker slot + 1 of the publisher; 0 when free. */
export const SW_LOCK = lineWord(3);
/**
 * Set by a worker that found the lock taken: the holder publishes once more
 * (NOTE_WHOLE), and offers the open buffer too if any note asked (NOTE_OPEN).
 */
export const SW_AGAIN = lineWord(3) + 1;
/** In SW_AGAIN: publish whole buffers once more. */
export const NOTE_WHOLE = 1;
/** In SW_AGAIN: and the open buffer's committed bytes (a flush). */
export const NOTE_OPEN = 2;

/** The fewest ring slots a writer has: buffers it may have in use at once. */
export const MIN_RING_SLOTS = 32;
/** The most: beyond it, a held reservation stalls other writers before the pool runs out. */
export const MAX_RING_SLOTS = 1024;
const RING_WORD = lineWord(4);
// -- A ring slot: one line per buffer in use --
/** The buffer's pool index. */
export const E_INDEX = 0;
/**
 * End + 1 once sealed; ~seq (below 0) while the buffer takes claims, so that
 * a sealer marks only its own buffer (see {@link markSealed}).
 */
export const E_SEALED = 1;
/** What the publisher published for it last (the publisher's own word). */
export const E_PUBLISHED = 2;
/** The buffer's full sequence number. */
export const E_SEQ = 3;

// -- Open reservations, per worker: one line of bits and OPEN_MAX records --
/** Open reservations one worker may hold on one shared writer. */
export const OPEN_MAX = 32;
/** Words of one reservation record: sequence number, offset, frame length, payload length. */
export const OPEN_RECORD_WORDS = 4;
export const O_SEQ = 0;
export const O_OFFSET = 1;
export const O_FRAME = 2;
export const O_PAYLOAD = 3;
/** In a worker's first word: one bit per record in use. */
const OPEN_WORKER_WORDS = LINE_WORDS + OPEN_MAX * OPEN_RECORD_WORDS;

/** Ring slots of a writer whose pool has `bufferCount` buffers of `bufferSize` bytes. */
export function ringSlotsFor(bufferSize: number, bufferCount: number): number {
  // The offset must hold bufferSize itself; the slot takes what is left below bit 31.
  const most = Math.min(MAX_RING_SLOTS, 2 ** (31 - (32 - Math.clz32(bufferSize))));
  let slots = MIN_RING_SLOTS;
  while (slots < bufferCount && slots < most) slots *= 2;
  return slots;
}

/** Ring slots of the writer whose block is `sw`. */
export function ringSlots(sw: Int32Array): number {
  return sw[SW_SLOT_MASK]! + 1;
}

/** Int32 index of the first word after a ring of `slots` slots: the open reservations. */
function openWord(slots: number): number {
  return RING_WORD + slots * LINE_WORDS;
}

/**
 * Int32 index of worker `row`'s row of commit counts: one word per ring
 * slot, the bytes the worker committed in the slot's buffer. A one-worker
 * pool's writer has one row and no worker slots.
 */
export function commitRowWord(sw: Int32Array, row: number): number {
  const slots = ringSlots(sw);
  return openWord(slots) + sw[SW_WORKERS]! * OPEN_WORKER_WORDS + row * slots;
}

/**
 * Words in the block of a writer with a ring of `slots` slots, whose pool
 * has `maxWorkers` worker slots (0: a one-worker pool).
 */
export function sharedWriterWords(maxWorkers: number, slots: number): number {
  return openWord(slots) + maxWorkers * OPEN_WORKER_WORDS + Math.max(maxWorkers, 1) * slots;
}

/** In the cursor: no more claims in this buffer. */
export const SEALED = 1 << 31;
/** The largest buffer a shared writer can fill: with the fewest ring slots, offsets take 26 bits. */
export const MAX_SHARED_BUFFER_SIZE = (1 << 26) - 1;

/** The bytes claimed in a cursor value's buffer. */
export function offsetOf(sw: Int32Array, cursor: number): number {
  return cursor & ((1 << sw[SW_SHIFT]!) - 1);
}

/** The ring slot a cursor value's buffer occupies. */
export function slotOf(sw: Int32Array, cursor: number): number {
  return (cursor >>> sw[SW_SHIFT]!) & sw[SW_SLOT_MASK]!;
}

/** The full sequence number of the buffer a claim at `cursor` is in. */
export function seqOf(sw: Int32Array, cursor: number): number {
  return sw[ringWord(slotOf(sw, cursor)) + E_SEQ]!;
}

/** The ring slot of the buffer with sequence number `seq`. */
export function slotOfSeq(sw: Int32Array, seq: number): number {
  return seq & sw[SW_SLOT_MASK]!;
}

/** Int32 index of ring slot `slot`'s first word. */
export function ringWord(slot: number): number {
  return RING_WORD + slot * LINE_WORDS;
}

/** Int32 index of worker `worker`'s bits of open reservations. */
export function openBitsWord(sw: Int32Array, worker: number): number {
  return openWord(ringSlots(sw)) + worker * OPEN_WORKER_WORDS;
}

/** Int32 index of worker `worker`'s reservation record `record`. */
export function openRecordWord(sw: Int32Array, worker: number, record: number): number {
  return openBitsWord(sw, worker) + LINE_WORDS + record * OPEN_RECORD_WORDS;
}

/** Sets up a new block: no buffer yet (a sealed, empty sequence 0 that counts as delivered). */
/** How a block records its codec: 0 none, a length prefix's layout, -1 any other (unchecked). */
export function codecCode(codec: FrameCodec | null): number {
  return codec === null ? 0 : lengthPrefixLayout(codec) || -1;
}

export function initBlock(
  sw: Int32Array,
  poolId: number,
  id: number,
  bufferSize: number,
  workers: number,
  codec: number,
  slots: number,
): void {
  sw[SW_MAGIC] = SW_MAGIC_VALUE;
  sw[SW_POOL_ID] = poolId;
  sw[SW_ID] = id;
  sw[SW_BUFFER_SIZE] = bufferSize;
  sw[SW_WORKERS] = workers;
  sw[SW_CODEC] = codec;
  sw[SW_SHIFT] = 31 - Math.log2(slots);
  sw[SW_SLOT_MASK] = slots - 1;
  sw[SW_ROWS] = 1;
  sw[SW_CURSOR] = SEALED;
  sw[ringWord(0) + E_INDEX] = -1;
  sw[ringWord(0) + E_SEALED] = 1;
  sw[SW_DELIVER] = 1;
}

// -- Claiming room: any worker, lock-free --

/**
 * Claims `frame` bytes in the current buffer.
 *
 * @returns The cursor before the claim (the claim starts at its offset, in
 * the buffer of its slot), or -1 when the buffer is sealed or has no room
 * left for the frame: then the caller seals it (see {@link seal}) or waits
 * for the next one.
 */
export function claim(sw: Int32Array, frame: number, size: number, shared: boolean): number {
  const mask = (1 << sw[SW_SHIFT]!) - 1;
  if (!shared) {
    const v = sw[SW_CURSOR]!;
    if (v < 0 || (v & mask) + frame > size) return -1;
    sw[SW_CURSOR] = v + frame;
    return v;
  }
  // A plain read: the swap checks it, and a failed swap returns the word as
  // it is. A stale "no room" sends the caller to the slow path, which reads
  // the cursor with Atomics.load before it seals or waits.
  let v = sw[SW_CURSOR]!;
  for (;;) {
    if (v < 0 || (v & mask) + frame > size) return -1;
    const seen = Atomics.compareExchange(sw, SW_CURSOR, v, v + frame);
    if (seen === v) return v;
    v = seen;
  }
}

/**
 * Seals the current buffer: it takes no more claims, its end is fixed and
 * marked in its ring slot (see {@link markSealed}: a mark made after a
 * stall cannot land on a newer buffer of the slot). Exactly one caller
 * seals each buffer; it must publish afterwards, since the buffer may be
 * whole already. A switcher marks too, for a sealer that died in between.
 *
 * @returns The cursor as sealed, or -1 when it was sealed already.
 */
export function seal(sw: Int32Array, shared: boolean): number {
  for (;;) {
    const v = shared ? Atomics.load(sw, SW_CURSOR) : sw[SW_CURSOR]!;
    if (v < 0) return -1;
    // Read while the cursor shows the buffer open: its slot is not reused
    // before the buffer is sealed, so this is the buffer a swap from v seals.
    const word = ringWord(slotOf(sw, v)) + E_SEQ;
    const seq = shared ? Atomics.load(sw, word) : sw[word]!;
    if (!shared) sw[SW_CURSOR] = v | SEALED;
    else if (Atomics.compareExchange(sw, SW_CURSOR, v, v | SEALED) !== v) continue;
    markSealed(sw, v | SEALED, seq);
    return v | SEALED;
  }
}

/**
 * Ends the writer: no more claims (SW_CLOSED), and the cursor sealed and
 * marked, also when its sealer died before marking, since no switch will
 * come to mark it. The caller must publish afterwards.
 */
export function sealForGood(sw: Int32Array, shared: boolean): void {
  Atomics.store(sw, SW_CLOSED, 1);
  seal(sw, shared);
  const cursor = Atomics.load(sw, SW_CURSOR);
  if (cursor < 0) markSealed(sw, cursor, cursorSeq(sw));
}

/**
 * Records sealed buffer `seq`'s end in its ring slot, where committers look.
 * Idempotent, and a no-op once the slot holds a newer buffer: a sealer that
 * stalled may come back to it after the ring wrapped.
 */
export function markSealed(sw: Int32Array, sealed: number, seq: number): void {
  Atomics.compareExchange(
    sw,
    ringWord(slotOf(sw, sealed)) + E_SEALED,
    ~seq,
    offsetOf(sw, sealed) + 1,
  );
}

// -- Switching to the next buffer: one worker at a time --

/** Makes this worker (slot + 1 = `me`) the one that switches buffers; false if another is. */
export function claimSwitch(sw: Int32Array, me: number): boolean {
  return Atomics.compareExchange(sw, SW_SWITCHER, 0, me) === 0;
}

/**
 * How often a claim that finds another worker switching looks at the
 * cursor again before it waits: a switch with a buffer at hand takes a few
 * hundred nanoseconds, and an async wait costs tens of microseconds.
 */
const SPIN_LOOKS = 5000;

/**
 * Another worker switches: looks until the cursor opens or the switch is
 * given up (then claim again), a few microseconds at most; false if it
 * goes on longer (then wait, see {@link switchWaitValue}).
 */
export function switchEnds(sw: Int32Array): boolean {
  for (let i = 0; i < SPIN_LOOKS; i++) {
    if (Atomics.load(sw, SW_CURSOR) >= 0 || Atomics.load(sw, SW_SWITCHER) === 0) return true;
  }
  return false;
}

/**
 * Gives up the switch without installing a buffer, so that another worker
 * may do it. Waiters wait on SW_SWITCHER (see {@link switchWaitValue}).
 */
export function dropSwitch(sw: Int32Array, me: number): void {
  if (Atomics.compareExchange(sw, SW_SWITCHER, me, 0) === me) Atomics.notify(sw, SW_SWITCHER);
}

/**
 * What a claim that found no room waits on: the switcher's word, whose
 * holder clears it (and notifies) after opening the next buffer or giving
 * up. Returns 0 when there is nothing to wait for: the cursor is open, or
 * nobody switches (claim again, and switch if need be). Otherwise wait
 * while SW_SWITCHER still holds the returned value: read after the cursor,
 * so a switch that ends in between changes it, and no wake-up is lost.
 */
export function switchWaitValue(sw: Int32Array): number {
  if (Atomics.load(sw, SW_CURSOR) >= 0) return 0;
  return Atomics.load(sw, SW_SWITCHER);
}

/**
 * The sequence number of the cursor's buffer. SW_SEQ is stored after the
 * cursor, so it may lag by one (for good, if the switcher died in between);
 * the cursor's slot bits settle it.
 */
export function cursorSeq(sw: Int32Array): number {
  const seq = Atomics.load(sw, SW_SEQ);
  const slot = slotOf(sw, Atomics.load(sw, SW_CURSOR));
  return seq + ((slot - seq) & sw[SW_SLOT_MASK]!);
}

/**
 * Where the switcher stands, once it holds the switch: the sequence number
 * the next buffer gets, or -1 if the cursor is not sealed (another switch
 * finished first: nothing to do), or -2 if the next buffer's ring slot still
 * holds a buffer not delivered whole (wait for SW_DELIVER to move).
 */
export function nextSeq(sw: Int32Array): number {
  const cursor = Atomics.load(sw, SW_CURSOR);
  if (cursor >= 0) return -1;
  // Exact: the cursor stays sealed while this worker holds the switch.
  const seq = cursorSeq(sw);
  // A sealer that died after sealing but before marking leaves it to us.
  markSealed(sw, cursor, seq);
  const next = seq + 1;
  if (Atomics.load(sw, SW_DELIVER) <= next - ringSlots(sw)) return -2;
  return next;
}

/**
 * Installs buffer `index` (its header at `header` in the pool's words) as
 * sequence `seq`, opens the cursor on it, and ends the switch. The buffer
 * must already carry the flusher's token.
 */
export function install(
  sw: Int32Array,
  pool: Int32Array,
  header: number,
  index: number,
  seq: number,
): void {
  startBuffer(pool, header, sw[SW_ID]!, true);
  const slot = slotOfSeq(sw, seq);
  const word = ringWord(slot);
  sw[word + E_INDEX] = index;
  // The slot's last buffer was delivered whole: no commit to it is left.
  // Rows that are 0 already are not written, so their lines stay with
  // their workers.
  const end = commitRowWord(sw, Atomics.load(sw, SW_ROWS)) + slot;
  const slots = ringSlots(sw);
  for (let count = commitRowWord(sw, 0) + slot; count < end; count += slots) {
    if (sw[count] !== 0) sw[count] = 0;
  }
  sw[word + E_SEALED] = ~seq;
  sw[word + E_PUBLISHED] = 0;
  // Last of the slot: a reclaim that finds E_SEQ = seq while the cursor is
  // still sealed knows this buffer holds a token nobody else will release.
  Atomics.store(sw, word + E_SEQ, seq);
  Atomics.store(sw, SW_CURSOR, slot << sw[SW_SHIFT]!);
  Atomics.store(sw, SW_SEQ, seq);
  Atomics.store(sw, SW_SWITCHER, 0);
  Atomics.notify(sw, SW_SWITCHER);
}

/**
 * Wakes every worker waiting on the block (for a switch, or for a ring
 * slot): a worker that died between clearing SW_SWITCHER or moving
 * SW_DELIVER and its notify left them asleep. Waking for nothing is
 * harmless: a waiter looks again.
 */
export function notifyAll(sw: Int32Array): void {
  Atomics.notify(sw, SW_SWITCHER);
  Atomics.notify(sw, SW_DELIVER);
}

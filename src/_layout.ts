// Where everything lives in a pool's one memory block. The block is a single
// ArrayBuffer (one worker) or SharedArrayBuffer (many workers); every offset
// here is fixed when the pool is built so that any worker can compute them
// from the five numbers stored in the control words.
//
//   [control words][worker slots][send tickets][holder bits][buffer headers][data]
//
//   control words   CONTROL_WORDS: the pool's shape, the free stack's top,
//                   the wait sequence (C_*)
//   worker slots    maxWorkers × SLOT_WORDS, one line each (S_*)
//   send tickets    maxWorkers × maxInFlight words: a stamp while a send is
//                   in flight, 0 when free
//   holder bits     shared pools only: per worker slot, one bit per buffer
//                   (holderWords words, line-aligned), set while that worker
//                   holds a share of the buffer's count, so that a reclaim
//                   knows what a dead worker held
//   buffer headers  bufferCount × HEADER_WORDS, one line each (H_*)
//   data            bufferCount buffers, each bufferStride bytes apart
//
// Every address is computed by the functions at the end of this file.
// Words are Int32. Anything two workers may touch at once sits on its own
// 64-byte line so that one worker's traffic does not stall another's.

/** Bytes per cache line; shared words are padded to it. */
export const LINE_BYTES = 64;
/** Int32 words per cache line. */
export const LINE_WORDS = LINE_BYTES / 4;

/**
 * Int32 index of the first word of cache line `line` of a block: how the
 * small blocks of flushers and shared writers place their words too.
 */
export function lineWord(line: number): number {
  return line * LINE_WORDS;
}

/** Identifies a bab block, so that attaching to foreign memory fails loudly. */
export const MAGIC = 0x62616221; // "bab!"
/** Bumped whenever the layout below changes. */
export const LAYOUT_VERSION = 3;

// -- Control words (line 0: read-only after construction) --
export const C_MAGIC = 0;
export const C_VERSION = 1;
export const C_BUFFER_SIZE = 2;
export const C_BUFFER_COUNT = 3;
export const C_BATCH_SIZE = 4;
export const C_MAX_WORKERS = 5;
/** A random id, so a SendPacket from another pool is refused. */
export const C_POOL_ID = 6;
/** Send tickets per worker slot. */
export const C_MAX_IN_FLIGHT = 7;

// -- Line 1: the free stack of batches --
/** Index + 1 of the buffer heading the top batch; 0 when empty. */
export const C_FREE_TOP = LINE_WORDS;
/**
 * Shared pools only: bumped by every push, so a stale pop cannot succeed
 * (ABA). Together with C_FREE_TOP it forms one 8-byte-aligned 64-bit word.
 */
export const C_FREE_TAG = LINE_WORDS + 1;
/** Buffers on the free stack, updated once per batch. */
export const C_FREE_COUNT = LINE_WORDS + 2;
/** Byte offset of the 64-bit word that C_FREE_TOP and C_FREE_TAG form. */
export const FREE_TOP_BYTE = C_FREE_TOP * 4;

// -- Line 2: waiting for buffers --
/** A sequence word that waiters wait on and releasers bump. */
export const C_WAIT_SEQ = 2 * LINE_WORDS;
/** Workers with at least one waiter registered on C_WAIT_SEQ. */
export const C_WAITING = 2 * LINE_WORDS + 1;

/** Control lines in front of the worker slots. */
export const CONTROL_WORDS = 4 * LINE_WORDS;

// -- Per-worker slot: one line each, written mostly by its owner --
/** 0 when the slot is free, 1 while a worker is attached through it. */
export const S_STATE = 0;
/** Free buffers in the owner's cache, published for stats. */
export const S_CACHED = 1;
/** The last send stamp used through this slot, kept across owners. */
export const S_STAMP = 2;
/** Bumped to ask the owner to give its cached buffers back. */
export const S_TRIM = 3;
/** 1 while the owner counts itself in C_WAITING, so a reclaim can undo it. */
export const S_WAITING = 4;
/** Words per worker slot. */
export const SLOT_WORDS = LINE_WORDS;

// -- Send tickets: maxInFlight words per slot --
// A ticket holds the stamp of a SendPacket in flight and 0 once it was
// received, so a second receive of the same SendPacket is caught.

// -- Per-buffer header: one line each --
/** Next buffer in whatever chain holds this one (cache, batch, flush list). */
export const H_NEXT = 0;
/** On a batch head: index + 1 of the next batch's head. */
export const H_BATCH_NEXT = 1;
/** On a batch head: how many buffers the batch chain holds. */
export const H_BATCH_LEN = 2;
/** Shared count: workers holding the buffer plus packets in flight. */
export const H_SHARED_REFS = 3;
/**
 * Writers: the committed end a writer handed to its flusher (bits 0-29),
 * with {@link PUBLISH_DONE} and {@link PUBLISH_LISTED}. One word, so that a
 * writer's publish and the flusher's take are each a single atomic step.
 */
export const H_PUBLISH = 4;
/** The flusher's cursor: bytes already delivered; -1 until it claimed the buffer. */
export const H_FLUSHED = 5;
/** The id of the writer that filled the buffer. */
export const H_WRITER = 6;
/**
 * Shared pools: the worker slot number + 1 of the worker that has the
 * buffer to itself (in its cache, or held with no shared count); 0 while
 * the buffer is free on the stack or shared between workers.
 */
export const H_OWNER = 7;
/** Words per buffer header. */
export const HEADER_WORDS = LINE_WORDS;

/** In H_PUBLISH: the writer is done with the buffer; nothing more will be published. */
export const PUBLISH_DONE = 1 << 30;
/** In H_PUBLISH: the buffer is on the flusher's list (its H_NEXT is in use). */
export const PUBLISH_LISTED = 1 << 31;
/** In H_PUBLISH: the committed end. */
export const PUBLISH_END = PUBLISH_DONE - 1;

/** Largest buffer: frame and cursor words keep byte offsets in 30 bits. */
export const MAX_BUFFER_SIZE = 2 ** 30;
/** Most workers attached to one pool at once. */
export const MAX_WORKERS = 4096;
/** Most SendPackets one worker may have in flight. */
export const MAX_IN_FLIGHT = 2 ** 20;
/** Most buffers in one pool: header indices must stay Int32. */
export const MAX_BUFFER_COUNT = 2 ** 24;
/**
 * Largest block the pool will ask for. V8 on 64-bit hosts refuses single
 * buffers from a little under 32 GiB; 16 GiB leaves room for its sandbox.
 */
export const MAX_BLOCK_BYTES = 2 ** 34;

/** Offsets, in Int32 words or bytes, of each region of a block. */
export interface Layout {
  readonly bufferSize: number;
  readonly bufferCount: number;
  readonly batchSize: number;
  readonly maxWorkers: number;
  readonly maxInFlight: number;
  /** Bytes between the starts of two consecutive buffers. */
  readonly bufferStride: number;
  /** Int32 index of the first worker slot. */
  readonly slotsWord: number;
  /** Int32 index of slot 0's first send ticket. */
  readonly ticketsWord: number;
  /**
   * Int32 index of slot 0's holder bits: one bit per buffer, set while that
   * worker holds a share of the buffer's shared count.
   */
  readonly holdersWord: number;
  /** Int32 words of holder bits per slot. */
  readonly holderWords: number;
  /** Int32 index of buffer 0's header. */
  readonly headersWord: number;
  /** Byte offset of buffer 0's data. */
  readonly dataByte: number;
  /** Bytes in the whole block. */
  readonly blockBytes: number;
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Computes the layout; sizes are assumed to be validated already. */
export function computeLayout(
  bufferSize: number,
  bufferCount: number,
  batchSize: number,
  maxWorkers: number,
  maxInFlight: number,
): Layout {
  const bufferStride = alignUp(bufferSize, LINE_BYTES);
  const slotsWord = CONTROL_WORDS;
  const ticketsWord = slotsWord + maxWorkers * SLOT_WORDS;
  const holdersWord = alignUp(ticketsWord + maxWorkers * maxInFlight, LINE_WORDS);
  // Only shared pools (which have send tickets) need holder bits.
  const holderWords = maxInFlight > 0 ? alignUp(Math.ceil(bufferCount / 32), LINE_WORDS) : 0;
  const headersWord = holdersWord + maxWorkers * holderWords;
  const dataByte = (headersWord + bufferCount * HEADER_WORDS) * 4;
  return {
    bufferSize,
    bufferCount,
    batchSize,
    maxWorkers,
    maxInFlight,
    bufferStride,
    slotsWord,
    ticketsWord,
    holdersWord,
    holderWords,
    headersWord,
    dataByte,
    blockBytes: dataByte + bufferCount * bufferStride,
  };
}

// -- Addresses: every word and byte of the block is found through these --

/** Int32 words in front of the data: all a pool object's Int32Array covers. */
export function wordsBeforeData(layout: Layout): number {
  return layout.dataByte / 4;
}

/** Int32 index of buffer `index`'s header. */
export function headerWord(layout: Layout, index: number): number {
  return layout.headersWord + index * HEADER_WORDS;
}

/** Byte offset of buffer `index`'s data. */
export function dataByteOf(layout: Layout, index: number): number {
  return layout.dataByte + index * layout.bufferStride;
}

/** Int32 index of worker slot `worker` (0-based: a worker id). */
export function slotWord(layout: Layout, worker: number): number {
  return layout.slotsWord + worker * SLOT_WORDS;
}

/** The worker id (0-based) whose slot starts at Int32 index `slot`. */
export function workerOfSlot(layout: Layout, slot: number): number {
  return (slot - layout.slotsWord) / SLOT_WORDS;
}

/** Int32 index of send ticket `ticket`. */
export function ticketWord(layout: Layout, ticket: number): number {
  return layout.ticketsWord + ticket;
}

/** The first of worker `worker`'s `maxInFlight` send tickets. */
export function firstTicket(layout: Layout, worker: number): number {
  return worker * layout.maxInFlight;
}

/** Send tickets in the block: ticket numbers run from 0 to this, exclusive. */
export function ticketCount(layout: Layout): number {
  return layout.maxWorkers * layout.maxInFlight;
}

/** Int32 index of the word holding worker `worker`'s holder bit for buffer `index`. */
export function holderWord(layout: Layout, worker: number, index: number): number {
  return layout.holdersWord + worker * layout.holderWords + (index >>> 5);
}

/** Buffer `index`'s holder bit within its {@link holderWord}. */
export function holderBit(index: number): number {
  return 1 << (index & 31);
}

/**
 * A send batch's regions: one record of SEND_RECORD_WORDS Int32s per packet,
 * [buffer index, offset, length].
 */
export const SEND_RECORD_WORDS = 3;
/** In a send record: the buffer's index. */
export const R_INDEX = 0;
/** In a send record: the packet's offset in its buffer. */
export const R_OFFSET = 1;
/** In a send record: the packet's length. */
export const R_LENGTH = 2;

/** Int32 index of record `i` in a send batch's regions. */
export function sendRecordWord(i: number): number {
  return i * SEND_RECORD_WORDS;
}

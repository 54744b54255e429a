// The buffers a writer holds, oldest first, and how their committed bytes
// reach the flusher. A flush publishes each buffer's new committed end in
// its header, links the buffers not yet on the flusher's list into a chain
// and pushes the chain in one step: the writers' side of _flush_list.ts.
// A buffer's bytes go only once every older buffer of the writer went
// whole, and the writer lets go of a buffer once the flusher has all of it.

import type { BufferPool } from "./buffer_pool.ts";
import type { WriteFlusher } from "./write_flusher.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import { Chunk, type ClosedWriter } from "./_chunk.ts";
import {
  claimedByFlusher,
  ENDED,
  linkTo,
  publish,
  pushChain,
  ringBell,
  startBuffer,
} from "./_flush_list.ts";
import { PUBLISH_DONE } from "./_layout.ts";

/** What {@linkcode WriterBuffers.publish} did: the flusher has every committed byte. */
export const PUBLISHED = 0;
/** What {@linkcode WriterBuffers.publish} did: a newer buffer's bytes wait behind an open one. */
export const HELD_BACK = 1;
/** What {@linkcode WriterBuffers.publish} did: nothing, the flusher has ended. */
export const FLUSHER_ENDED = -1;

/** The buffers one writer fills and hands to its flusher. */
export class WriterBuffers {
  readonly #pool: BufferPool;
  readonly #words: Int32Array;
  readonly #control: Int32Array;
  /** The flusher when it lives in this worker, rung directly. */
  readonly #flusher: WriteFlusher | null;
  readonly #writerId: number;
  /** Every chunk whose buffer the writer still holds, oldest first. */
  readonly #chunks: Chunk[] = [];

  constructor(
    pool: BufferPool,
    control: Int32Array,
    flusher: WriteFlusher | null,
    writerId: number,
  ) {
    this.#pool = pool;
    this.#words = pool._words;
    this.#control = control;
    this.#flusher = flusher;
    this.#writerId = writerId;
  }

  /** Starts filling `buffer`: its header says nothing is committed yet, nor taken. */
  add(buffer: BufferRecord): Chunk {
    const header = this.#pool._headerOf(buffer.index);
    startBuffer(this.#words, header, this.#writerId);
    const chunk = new Chunk(buffer, header);
    this.#chunks.push(chunk);
    return chunk;
  }

  /**
   * Nothing more goes into `chunk`. One that holds nothing is let go of at
   * once; returns whether it holds bytes the flusher must get.
   */
  finish(chunk: Chunk): boolean {
    chunk.done = true;
    if (chunk.reserved !== 0) return true;
    const chunks = this.#chunks;
    chunks.splice(chunks.indexOf(chunk), 1);
    chunk.buffer.release();
    return false;
  }

  /**
   * Hands the flusher what was committed since the last call, oldest buffer
   * first, up to and including the first buffer still open, and lets go of
   * the buffers it now has whole.
   *
   * @returns {@linkcode PUBLISHED}, {@linkcode HELD_BACK} when newer buffers
   * hold bytes for a later call, or {@linkcode FLUSHER_ENDED}.
   */
  publish(): number {
    const words = this.#words;
    const chunks = this.#chunks;
    let state = PUBLISHED;
    let first: Chunk | null = null;
    let last: Chunk | null = null;
    let complete = 0;
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!;
      const done = chunk.done && chunk.open === 0;
      const value = chunk.committed | (done ? PUBLISH_DONE : 0);
      if (value !== chunk.published) {
        chunk.published = value;
        // Still listed: the flusher reads the new value where it already is.
        if (publish(words, chunk.header, value)) {
          if (!chunk.lent) {
            this.#pool._lend(chunk.buffer);
            chunk.lent = true;
          }
          // The chain runs newest first, as the flusher's list does.
          if (last === null) first = chunk;
          else linkTo(words, chunk.header, last.index);
          last = chunk;
        }
      }
      if (!done) {
        // What newer buffers hold goes with a later flush.
        if (i + 1 < chunks.length) state = HELD_BACK;
        break;
      }
      complete++;
    }
    if (first !== null) {
      const head = pushChain(this.#control, words, first.header, last!.index);
      if (head === ENDED) return FLUSHER_ENDED;
      if (head === 0) this.#ring();
    }
    // The flusher has the finished buffers now; the writer lets go of them.
    for (; complete > 0; complete--) chunks.shift()!.buffer.release();
    return state;
  }

  /** The writer closed: what is left in its buffers says why when used. */
  closedBy(writer: ClosedWriter): void {
    for (const chunk of this.#chunks) chunk.closedBy = writer;
  }

  /** The flusher has ended: lets go of every buffer, and of the tokens lent for them. */
  giveBack(writer: ClosedWriter): void {
    for (const chunk of this.#chunks.splice(0)) {
      chunk.closedBy = writer;
      if (chunk.lent && !claimedByFlusher(this.#words, chunk.header)) {
        // The token was lent but never reached the flusher: take it back.
        const buffer = this.#pool._claim(chunk.index);
        buffer.release();
      }
      chunk.buffer.release();
    }
  }

  /** Wakes the flusher: directly when it is in this worker, else through its bell. */
  #ring(): void {
    if (this.#flusher !== null) this.#flusher._ring();
    else ringBell(this.#control);
  }
}

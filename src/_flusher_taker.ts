// The flusher's side of the flush list, with what it keeps in its own
// worker: the token references its writers lent it, one per buffer it has
// claimed, and the regions it makes of each buffer's news. The shared
// words are read and written only through the steps of _flush_list.ts.

import type { BufferPool } from "./buffer_pool.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import { FlushRegion } from "./flush_region.ts";
import {
  claim,
  closeList,
  endList,
  flushedTo,
  handsBack,
  setFlushedTo,
  takeList,
  takePublished,
  unclaim,
  writerOf,
} from "./_flush_list.ts";
import { PUBLISH_DONE, PUBLISH_END } from "./_layout.ts";

/** Takes a flusher's list and turns what its writers published into regions. */
export class FlushListTaker {
  readonly #pool: BufferPool;
  readonly #control: Int32Array;
  readonly #words: Int32Array;
  /**
   * Buffers whose token this flusher holds, by index: the writer is not
   * done with them. An array the pool's size, not a Map: three lookups per
   * buffer flushed.
   */
  readonly #tokens: (BufferRecord | null)[];
  /** Buffer indices of the list taken last, oldest first. */
  readonly #taken: number[] = [];
  /** A buffer's header word, for the list's walk. */
  readonly #headerOf: (index: number) => number;
  #ended = false;

  /**
   * @param pool The pool whose buffers the writers fill.
   * @param control The flusher's words.
   */
  constructor(pool: BufferPool, control: Int32Array) {
    this.#pool = pool;
    this.#control = control;
    this.#words = pool._words;
    this.#tokens = new Array<BufferRecord | null>(pool.bufferCount).fill(null);
    this.#headerOf = (index) => pool._headerOf(index);
  }

  /** Whether the list has ended: nothing more will be taken. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Takes the whole list and turns each buffer's news into a region in
   * `batch`, oldest first; with a null batch, releases instead.
   */
  take(batch: FlushRegion[] | null): void {
    const taken = this.#taken;
    takeList(this.#control, this.#words, this.#headerOf, taken);
    for (let i = 0; i < taken.length; i++) this.#deliver(taken[i]!, batch);
    taken.length = 0;
  }

  /**
   * Ends the list so writers can push no more, delivering (or, with a null
   * batch, releasing) what is still on it, and drops every token.
   *
   * @returns Whether this call ended it: false if it had ended before.
   */
  end(batch: FlushRegion[] | null): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    const control = this.#control;
    closeList(control);
    // A shared writer's tokens go back before the list ends, so that a
    // writer that finds it ended finds them back too.
    do {
      this.take(batch);
      this.#handBack();
    } while (!endList(control));
    const tokens = this.#tokens;
    for (let i = 0; i < tokens.length; i++) {
      const buffer = tokens[i] ?? null;
      if (buffer === null) continue;
      tokens[i] = null;
      buffer.release();
    }
    return true;
  }

  /** Gives the tokens of shared writers' buffers back, lent and unclaimed (see handsBack). */
  #handBack(): void {
    const tokens = this.#tokens;
    const words = this.#words;
    for (let i = 0; i < tokens.length; i++) {
      const buffer = tokens[i] ?? null;
      if (buffer === null) continue;
      const header = this.#pool._headerOf(i);
      if (!handsBack(words, header)) continue;
      tokens[i] = null;
      this.#pool._lend(buffer);
      buffer.release();
      unclaim(words, header);
    }
  }

  /** Delivers one buffer's news to `batch`, or releases it when `batch` is null. */
  #deliver(index: number, batch: FlushRegion[] | null): void {
    const words = this.#words;
    const header = this.#pool._headerOf(index);
    let buffer = this.#tokens[index] ?? null;
    if (buffer === null) {
      buffer = this.#pool._claim(index);
      claim(words, header);
      this.#tokens[index] = buffer;
    }
    const value = takePublished(words, header);
    const end = value & PUBLISH_END;
    const done = (value & PUBLISH_DONE) !== 0;
    const from = flushedTo(words, header);
    if (end > from && batch !== null) {
      setFlushedTo(words, header, end);
      // The last region of a buffer takes over the token's reference.
      if (done) this.#tokens[index] = null;
      else buffer.retain();
      batch.push(new FlushRegion(buffer, from, end - from, writerOf(words, header)));
    } else if (done) {
      this.#tokens[index] = null;
      buffer.release();
    }
  }
}

// The pool's free stack: a stack of batches kept in the block. A batch is a
// chain of buffers linked through their headers' H_NEXT word; its head carries
// the chain's length and the link to the batch below it. A pop or push moves a
// whole batch with a constant number of word operations, whatever its size.

import { C_FREE_COUNT, C_FREE_TOP, H_BATCH_LEN, H_BATCH_NEXT, HEADER_WORDS } from "./_layout.ts";

/** The operations a pool needs from its free stack. */
export interface FreeStack {
  /** Pops the top batch: its head's index, or -1 when the stack is empty. */
  pop(): number;
  /** Length of the batch headed by `head`, valid right after {@link pop}. */
  batchLength(head: number): number;
  /** Pushes a chain of `length` buffers, linked through H_NEXT from `head`. */
  push(head: number, length: number): void;
  /** Buffers on the stack now. */
  count(): number;
}

/**
 * The free stack of a pool that only one worker uses: plain loads and stores,
 * because Atomics cost as much on an ArrayBuffer as on shared memory.
 */
export class LocalFreeStack implements FreeStack {
  readonly #words: Int32Array;
  readonly #headers: number;

  constructor(words: Int32Array, headersWord: number) {
    this.#words = words;
    this.#headers = headersWord;
  }

  pop(): number {
    const words = this.#words;
    const top = words[C_FREE_TOP]!;
    if (top === 0) return -1;
    const head = top - 1;
    const h = this.#headers + head * HEADER_WORDS;
    words[C_FREE_TOP] = words[h + H_BATCH_NEXT]!;
    words[C_FREE_COUNT] = words[C_FREE_COUNT]! - words[h + H_BATCH_LEN]!;
    return head;
  }

  batchLength(head: number): number {
    return this.#words[this.#headers + head * HEADER_WORDS + H_BATCH_LEN]!;
  }

  push(head: number, length: number): void {
    const words = this.#words;
    const h = this.#headers + head * HEADER_WORDS;
    words[h + H_BATCH_LEN] = length;
    words[h + H_BATCH_NEXT] = words[C_FREE_TOP]!;
    words[C_FREE_TOP] = head + 1;
    words[C_FREE_COUNT] = words[C_FREE_COUNT]! + length;
  }

  count(): number {
    return this.#words[C_FREE_COUNT]!;
  }
}

// The pool's free stack: a stack of batches kept in the block. A batch is a
// chain of buffers linked through their headers' H_NEXT word; its head carries
// the chain's length and the link to the batch below it. A pop or push moves a
// whole batch with a constant number of word operations, whatever its size.

import {
  C_FREE_COUNT,
  C_FREE_TOP,
  H_BATCH_LEN,
  H_BATCH_NEXT,
  headerWord,
  type Layout,
} from "./_layout.ts";

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
  readonly #layout: Layout;

  constructor(words: Int32Array, layout: Layout) {
    this.#words = words;
    this.#layout = layout;
  }

  pop(): number {
    const words = this.#words;
    const top = words[C_FREE_TOP]!;
    if (top === 0) return -1;
    const head = top - 1;
    const h = headerWord(this.#layout, head);
    words[C_FREE_TOP] = words[h + H_BATCH_NEXT]!;
    words[C_FREE_COUNT] = words[C_FREE_COUNT]! - words[h + H_BATCH_LEN]!;
    return head;
  }

  batchLength(head: number): number {
    return this.#words[headerWord(this.#layout, head) + H_BATCH_LEN]!;
  }

  push(head: number, length: number): void {
    const words = this.#words;
    const h = headerWord(this.#layout, head);
    words[h + H_BATCH_LEN] = length;
    words[h + H_BATCH_NEXT] = words[C_FREE_TOP]!;
    words[C_FREE_TOP] = head + 1;
    words[C_FREE_COUNT] = words[C_FREE_COUNT]! + length;
  }

  count(): number {
    return this.#words[C_FREE_COUNT]!;
  }
}

const LOW = 0xffffffffn;

/**
 * The free stack of a pool shared by workers: a lock-free (Treiber) stack of
 * batches. The top word pair (C_FREE_TOP, C_FREE_TAG) is swapped as one 64-bit value, the low half
 * holding the head and the high half a tag bumped by every push, so a pop
 * that read a head which was popped and pushed back meanwhile fails its CAS.
 * BigInt arithmetic allocates, but only once per batch, never per buffer.
 */
export class SharedFreeStack implements FreeStack {
  readonly #words: Int32Array;
  readonly #top: BigInt64Array;
  readonly #layout: Layout;

  constructor(words: Int32Array, layout: Layout) {
    this.#words = words;
    this.#top = new BigInt64Array(words.buffer, words.byteOffset + C_FREE_TOP * 4, 1);
    this.#layout = layout;
  }

  pop(): number {
    const words = this.#words;
    for (;;) {
      const old = Atomics.load(this.#top, 0);
      const top = Number(old & LOW);
      if (top === 0) return -1;
      const h = headerWord(this.#layout, top - 1);
      // Garbage if another worker popped this batch meanwhile; the CAS then fails.
      const next = Atomics.load(words, h + H_BATCH_NEXT);
      if (Atomics.compareExchange(this.#top, 0, old, (old & ~LOW) | BigInt(next)) === old) {
        Atomics.sub(words, C_FREE_COUNT, words[h + H_BATCH_LEN]!);
        return top - 1;
      }
    }
  }

  batchLength(head: number): number {
    return this.#words[headerWord(this.#layout, head) + H_BATCH_LEN]!;
  }

  push(head: number, length: number): void {
    const words = this.#words;
    const h = headerWord(this.#layout, head);
    words[h + H_BATCH_LEN] = length;
    // Counted before it is visible, so a racing pop never drives the count negative.
    Atomics.add(words, C_FREE_COUNT, length);
    for (;;) {
      const old = Atomics.load(this.#top, 0);
      Atomics.store(words, h + H_BATCH_NEXT, Number(old & LOW));
      const tagged = BigInt.asIntN(64, ((old >> 32n) + 1n) << 32n) | BigInt(head + 1);
      if (Atomics.compareExchange(this.#top, 0, old, tagged) === old) return;
    }
  }

  count(): number {
    return Atomics.load(this.#words, C_FREE_COUNT);
  }
}

// The pool's free stack: a stack of batches kept in the block. A batch is a
// chain of buffers linked through their headers' H_NEXT word; its head carries
// the chain's length and the link to the batch below it. A pop or push moves a
// whole batch with a constant number of word operations, whatever its size.
//
// A pool of one worker uses plain loads and stores (LocalFreeStack). A shared
// pool's stack is lock-free (SharedFreeStack): the top is one 64-bit word,
// swapped with a CAS, whose high half is a tag bumped by every push so that a
// pop which read a head that was popped and pushed back meanwhile fails (ABA).
//
// The shared stack's steps are exported, each one access to a word that
// other workers touch at the same time, so that
// tests/explorer/free_stack_model.ts runs these very functions one step at a
// time under many interleavings. SharedFreeStack fuses them into its loops.

import {
  C_FREE_COUNT,
  C_FREE_TOP,
  FREE_TOP_BYTE,
  H_BATCH_LEN,
  H_BATCH_NEXT,
  H_NEXT,
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

// -- Chains: how a batch's buffers are linked --

/** Links buffer `index` to `next` in the chain of a batch being built. */
export function linkNext(words: Int32Array, layout: Layout, index: number, next: number): void {
  words[headerWord(layout, index) + H_NEXT] = next;
}

/** The buffer after `index` in its batch's chain. */
export function nextInBatch(words: Int32Array, layout: Layout, index: number): number {
  return words[headerWord(layout, index) + H_NEXT]!;
}

/**
 * Pushes `indices` (free buffers, in no chain) as batches of at most the
 * layout's batch size, as a cache's spill would.
 */
export function pushAll(
  stack: FreeStack,
  words: Int32Array,
  layout: Layout,
  indices: readonly number[],
): void {
  const { batchSize } = layout;
  for (let at = 0; at < indices.length; at += batchSize) {
    const end = Math.min(at + batchSize, indices.length);
    for (let i = at; i < end - 1; i++) linkNext(words, layout, indices[i]!, indices[i + 1]!);
    stack.push(indices[at]!, end - at);
  }
}

/** Puts every buffer of a new pool on its stack, so that buffer 0 heads the top batch. */
export function fillFreeStack(stack: FreeStack, words: Int32Array, layout: Layout): void {
  const { bufferCount, batchSize } = layout;
  // Push the highest batch first.
  for (let b = Math.ceil(bufferCount / batchSize) - 1; b >= 0; b--) {
    const head = b * batchSize;
    const length = Math.min(batchSize, bufferCount - head);
    for (let i = head; i < head + length - 1; i++) linkNext(words, layout, i, i + 1);
    stack.push(head, length);
  }
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

// -- The shared stack's steps --

const LOW = 0xffffffffn;

/**
 * The 64-bit view of the top word pair (C_FREE_TOP low, C_FREE_TAG high),
 * which the stack reads and swaps as one value.
 */
export function topView(words: Int32Array): BigInt64Array {
  return new BigInt64Array(words.buffer, words.byteOffset + FREE_TOP_BYTE, 1);
}

/** Reads the top: the top batch's head + 1 in the low half (0: empty), the tag in the high half. */
export function loadTop(top: BigInt64Array): bigint {
  return Atomics.load(top, 0);
}

/** The head of the top batch in a top value, or -1 when the stack is empty. */
export function headOf(top: bigint): number {
  return Number(top & LOW) - 1;
}

/** A top value with its batch popped: `below` (what H_BATCH_NEXT holds) on top, the same tag. */
export function popped(top: bigint, below: number): bigint {
  return (top & ~LOW) | BigInt(below);
}

/** A top value with `head`'s batch pushed: a new tag, so a pop that read `top` fails. */
export function pushed(top: bigint, head: number): bigint {
  return BigInt.asIntN(64, ((top >> 32n) + 1n) << 32n) | BigInt(head + 1);
}

/** Swaps the top from `expected` to `value`; false if another worker changed it first. */
export function swapTop(top: BigInt64Array, expected: bigint, value: bigint): boolean {
  return Atomics.compareExchange(top, 0, expected, value) === expected;
}

/** Sets the length of the batch headed at `header`, which nobody else reads until it is pushed. */
export function setBatchLength(words: Int32Array, header: number, length: number): void {
  words[header + H_BATCH_LEN] = length;
}

/** The length of the batch headed at `header`, once it was popped. */
export function batchLengthAt(words: Int32Array, header: number): number {
  return words[header + H_BATCH_LEN]!;
}

/**
 * What H_BATCH_NEXT of the batch headed at `header` holds: the head + 1 of
 * the batch below it. Garbage if another worker popped the batch meanwhile;
 * the pop's swap then fails.
 */
export function batchBelow(words: Int32Array, header: number): number {
  return Atomics.load(words, header + H_BATCH_NEXT);
}

/** Links the batch headed at `header` above the batch whose head + 1 is `below`. */
export function setBatchBelow(words: Int32Array, header: number, below: number): void {
  Atomics.store(words, header + H_BATCH_NEXT, below);
}

/**
 * Counts `delta` buffers onto the stack (negative: off it). A push counts its
 * batch before the batch is visible, so a racing pop never drives it negative.
 */
export function addFreeCount(words: Int32Array, delta: number): void {
  Atomics.add(words, C_FREE_COUNT, delta);
}

/**
 * The free stack of a pool shared by workers: a lock-free (Treiber) stack of
 * batches over the steps above. BigInt arithmetic allocates, but only once per
 * batch, never per buffer.
 */
export class SharedFreeStack implements FreeStack {
  readonly #words: Int32Array;
  readonly #top: BigInt64Array;
  readonly #layout: Layout;

  constructor(words: Int32Array, layout: Layout) {
    this.#words = words;
    this.#top = topView(words);
    this.#layout = layout;
  }

  pop(): number {
    const words = this.#words;
    for (;;) {
      const old = loadTop(this.#top);
      const head = headOf(old);
      if (head < 0) return -1;
      const h = headerWord(this.#layout, head);
      if (swapTop(this.#top, old, popped(old, batchBelow(words, h)))) {
        addFreeCount(words, -batchLengthAt(words, h));
        return head;
      }
    }
  }

  batchLength(head: number): number {
    return batchLengthAt(this.#words, headerWord(this.#layout, head));
  }

  push(head: number, length: number): void {
    const words = this.#words;
    const h = headerWord(this.#layout, head);
    setBatchLength(words, h, length);
    addFreeCount(words, length);
    for (;;) {
      const old = loadTop(this.#top);
      setBatchBelow(words, h, headOf(old) + 1);
      if (swapTop(this.#top, old, pushed(old, head))) return;
    }
  }

  count(): number {
    return Atomics.load(this.#words, C_FREE_COUNT);
  }
}

/** The free stack over `words`: a lock-free one if the block is shared, plain otherwise. */
export function freeStackOf(words: Int32Array, layout: Layout, shared: boolean): FreeStack {
  return shared ? new SharedFreeStack(words, layout) : new LocalFreeStack(words, layout);
}

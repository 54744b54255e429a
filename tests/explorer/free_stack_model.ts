// The shared free stack (src/_free_stack.ts SharedFreeStack) and the
// cross-worker waiting built on it (src/buffer_pool.ts #refill, #pushTop,
// #wakeWaiters, #startWaiting, #pump, #stopWaiting), step by step.
// The 64-bit top (C_FREE_TOP low, C_FREE_TAG high) is read and swapped as
// one step, as Atomics on the BigInt64Array view do.

import { type Model, type Thread, Violation } from "./scheduler.ts";
import {
  C_FREE_COUNT,
  C_FREE_TAG,
  C_FREE_TOP,
  C_WAIT_SEQ,
  C_WAITING,
  CONTROL_WORDS,
  H_BATCH_LEN,
  H_BATCH_NEXT,
  H_NEXT,
  HEADER_WORDS,
} from "../../src/_layout.ts";

// The real words: a layout change that breaks the protocol fails the explorer.
// Headers follow the control block, as in the pool's block.
const HEADERS = CONTROL_WORDS;

/** Deliberate bugs the explorer must catch. */
export type StackBug = "none" | "untagged" | "seq-after-recheck";

const header = (index: number) => HEADERS + index * HEADER_WORDS;

/** Shared words and the free stack operations as step generators. */
class Memory {
  readonly words: Int32Array;
  readonly bufferCount: number;
  readonly bug: StackBug;
  /** Where each buffer is: "free" or a thread id. */
  readonly owner: (number | "free")[];

  constructor(bufferCount: number, batchSize: number, bug: StackBug) {
    this.bufferCount = bufferCount;
    this.bug = bug;
    this.words = new Int32Array(HEADERS + bufferCount * HEADER_WORDS);
    this.owner = new Array<number | "free">(bufferCount).fill("free");
    // BufferPool#buildFreeStack, with the same pushes done in one go.
    const words = this.words;
    for (let b = Math.ceil(bufferCount / batchSize) - 1; b >= 0; b--) {
      const head = b * batchSize;
      const length = Math.min(batchSize, bufferCount - head);
      for (let i = head; i < head + length - 1; i++) words[header(i) + H_NEXT] = i + 1;
      words[header(head) + H_BATCH_LEN] = length;
      words[header(head) + H_BATCH_NEXT] = words[C_FREE_TOP]!;
      words[C_FREE_TOP] = head + 1;
      words[C_FREE_TAG]!++;
      words[C_FREE_COUNT]! += length;
    }
  }

  /** SharedFreeStack.pop, then BufferPool#refill's walk of the batch: the indices taken. */
  *popBatch(thread: number): Generator<undefined, number[], void> {
    const words = this.words;
    for (;;) {
      yield;
      const oldTop = words[C_FREE_TOP]!;
      const oldTag = words[C_FREE_TAG]!;
      if (oldTop === 0) return [];
      const h = header(oldTop - 1);
      yield;
      const next = Atomics.load(words, h + H_BATCH_NEXT);
      yield;
      if (words[C_FREE_TOP] === oldTop && words[C_FREE_TAG] === oldTag) {
        words[C_FREE_TOP] = next; // the tag (high half) is kept
        yield;
        const length = words[h + H_BATCH_LEN]!;
        yield;
        Atomics.sub(words, C_FREE_COUNT, length);
        // #refill
        const taken: number[] = [];
        let index = oldTop - 1;
        for (let i = 0; i < length; i++) {
          taken.push(index);
          yield;
          index = words[header(index) + H_NEXT]!;
        }
        for (const i of taken) {
          if (this.owner[i] !== "free") {
            throw new Violation(
              `buffer ${i} popped by thread ${thread} while thread ${this.owner[i]} holds it`,
            );
          }
          this.owner[i] = thread;
        }
        return taken;
      }
    }
  }

  /** BufferPool#pushTop's links, then SharedFreeStack.push. */
  *pushBatch(thread: number, batch: readonly number[]): Thread {
    const words = this.words;
    for (const i of batch) {
      if (this.owner[i] !== thread) {
        throw new Violation(`thread ${thread} pushes buffer ${i} held by ${this.owner[i]}`);
      }
      this.owner[i] = "free";
    }
    for (let i = 0; i < batch.length - 1; i++) {
      yield;
      words[header(batch[i]!) + H_NEXT] = batch[i + 1]!;
    }
    const head = batch[0]!;
    const h = header(head);
    yield;
    words[h + H_BATCH_LEN] = batch.length;
    yield;
    Atomics.add(words, C_FREE_COUNT, batch.length);
    for (;;) {
      yield;
      const oldTop = words[C_FREE_TOP]!;
      const oldTag = words[C_FREE_TAG]!;
      yield;
      Atomics.store(words, h + H_BATCH_NEXT, oldTop);
      yield;
      if (words[C_FREE_TOP] === oldTop && words[C_FREE_TAG] === oldTag) {
        words[C_FREE_TOP] = head + 1;
        if (this.bug !== "untagged") words[C_FREE_TAG] = oldTag + 1;
        return;
      }
    }
  }

  /** BufferPool#wakeWaiters. */
  *wakeWaiters(): Thread {
    yield;
    if (Atomics.load(this.words, C_WAITING) !== 0) {
      yield;
      Atomics.add(this.words, C_WAIT_SEQ, 1);
    }
  }

  /** Walks the free stack at rest: every buffer once, and the count right. */
  checkAtRest(held: number): string | undefined {
    const words = this.words;
    const seen = new Set<number>();
    let free = 0;
    for (let top = words[C_FREE_TOP]!; top !== 0; top = words[header(top - 1) + H_BATCH_NEXT]!) {
      let index = top - 1;
      const length = words[header(index) + H_BATCH_LEN]!;
      for (let i = 0; i < length; i++) {
        if (seen.has(index)) return `buffer ${index} twice on the free stack`;
        if (this.owner[index] !== "free") return `buffer ${index} on the free stack and held`;
        seen.add(index);
        index = words[header(index) + H_NEXT]!;
      }
      free += length;
      if (free > this.bufferCount) return "the free stack has a cycle";
    }
    if (free !== words[C_FREE_COUNT]) {
      return `free count ${words[C_FREE_COUNT]}, stack holds ${free}`;
    }
    if (free + held !== this.bufferCount) {
      return `free ${free} + held ${held} != bufferCount ${this.bufferCount}`;
    }
    return undefined;
  }
}

/**
 * Threads popping and pushing batches. `scripts[t]` lists thread t's
 * operations: "pop" takes a batch, "push" gives back the batch it popped
 * most recently (a stack of its own), so the ABA pattern pop A, pop B,
 * push A arises whenever another thread sat between its read and its CAS.
 */
export function freeStackModel(
  bufferCount: number,
  batchSize: number,
  scripts: readonly (readonly ("pop" | "push")[])[],
  bug: StackBug = "none",
): Model {
  return () => {
    const memory = new Memory(bufferCount, batchSize, bug);
    const held: number[][][] = scripts.map(() => []);
    function* thread(t: number): Thread {
      for (const op of scripts[t]!) {
        if (op === "pop") {
          const batch = yield* memory.popBatch(t);
          if (batch.length !== 0) held[t]!.push(batch);
        } else {
          const batch = held[t]!.pop();
          if (batch !== undefined) yield* memory.pushBatch(t, batch);
        }
      }
    }
    return {
      threads: scripts.map((_, t) => thread(t)),
      finish: () => memory.checkAtRest(held.flat(2).length),
    };
  };
}

/**
 * Waiting for a buffer across workers: worker 0 holds every buffer and
 * releases them one at a time to the free stack (the hand-off path of
 * BufferPool#handOff: a push and #wakeWaiters); workers 1.. each want one
 * buffer, try the free stack and register to wait when it is empty
 * (#startWaiting, #pump, #stopWaiting). A waiter blocks until C_WAIT_SEQ
 * differs from what it read, as Atomics.waitAsync does. No lost wake-up:
 * every waiter ends served.
 */
export function waitingModel(bufferCount: number, waiters: number, bug: StackBug = "none"): Model {
  return () => {
    const memory = new Memory(bufferCount, 1, bug);
    const words = memory.words;
    const served: number[] = [];
    const releaser: number[] = [];

    function* release(): Thread {
      // Worker 0 starts with the whole pool.
      for (let n = 0; n < bufferCount; n++) releaser.push(...(yield* memory.popBatch(0)));
      while (releaser.length !== 0) {
        const index = releaser.pop()!;
        yield* memory.pushBatch(0, [index]);
        yield* memory.wakeWaiters();
      }
    }

    function* waiter(t: number): Thread {
      // acquire(): tryAcquire first.
      const first = yield* memory.popBatch(t);
      if (first.length !== 0) {
        served.push(t);
        return;
      }
      // #startWaiting
      yield;
      Atomics.add(words, C_WAITING, 1);
      // #pump
      for (;;) {
        let seq = 0;
        if (bug !== "seq-after-recheck") {
          yield;
          seq = Atomics.load(words, C_WAIT_SEQ);
        }
        const batch = yield* memory.popBatch(t);
        if (bug === "seq-after-recheck") {
          yield;
          seq = Atomics.load(words, C_WAIT_SEQ);
        }
        if (batch.length !== 0) {
          served.push(t);
          // #stopWaiting
          yield;
          Atomics.sub(words, C_WAITING, 1);
          return;
        }
        yield () => words[C_WAIT_SEQ] !== seq;
      }
    }

    const threads = [release()];
    for (let t = 1; t <= waiters; t++) threads.push(waiter(t));
    return {
      threads,
      finish() {
        if (served.length !== Math.min(waiters, bufferCount)) {
          return `served ${served.join(",")} of ${waiters} waiters`;
        }
        if (words[C_WAITING] !== 0) return `C_WAITING ${words[C_WAITING]} at rest`;
        return memory.checkAtRest(served.length);
      },
    };
  };
}

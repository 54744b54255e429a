// The shared free stack (src/_free_stack.ts SharedFreeStack, with the chain
// walks of src/_worker_cache.ts #refill and #pushTop) and the cross-worker
// waiting built on it (src/_cross_worker_wait.ts register, #pump, cancel and
// wakeWaiters), step by step, in a real block of the real layout. Each step
// calls the real step function from src/ that the code fuses, so that a
// protocol or layout change that breaks a step fails the explorer; the loops
// around the steps repeat the code's, in the same order. The 64-bit top
// (C_FREE_TOP low, C_FREE_TAG high) is read and swapped as one step, as the
// code does through its BigInt64Array view.

import { type Model, type Thread, Violation } from "./scheduler.ts";
import {
  anyoneWaiting,
  enterWaiting,
  leaveWaiting,
  ringWaiters,
  waitSeq,
} from "../../src/_cross_worker_wait.ts";
import {
  addFreeCount,
  batchBelow,
  batchLengthAt,
  fillFreeStack,
  headOf,
  linkNext,
  loadTop,
  nextInBatch,
  popped,
  pushed,
  setBatchBelow,
  setBatchLength,
  SharedFreeStack,
  swapTop,
  topView,
} from "../../src/_free_stack.ts";
import {
  C_FREE_COUNT,
  C_WAITING,
  computeLayout,
  headerWord,
  type Layout,
  slotWord,
  wordsBeforeData,
} from "../../src/_layout.ts";

/** Deliberate bugs the explorer must catch. */
export type StackBug = "none" | "untagged" | "seq-after-recheck";

/** A block's words and the free stack operations on them, as step generators. */
class Memory {
  readonly layout: Layout;
  readonly words: Int32Array;
  readonly top: BigInt64Array;
  readonly bug: StackBug;
  /** Where each buffer is: "free" or a thread id. */
  readonly owner: (number | "free")[];

  constructor(bufferCount: number, batchSize: number, workers: number, bug: StackBug) {
    this.layout = computeLayout(64, bufferCount, batchSize, workers, 1);
    this.bug = bug;
    this.words = new Int32Array(wordsBeforeData(this.layout));
    this.top = topView(this.words);
    this.owner = new Array<number | "free">(bufferCount).fill("free");
    // The pool's own first fill, before any other thread can see the block.
    fillFreeStack(new SharedFreeStack(this.words, this.layout), this.words, this.layout);
  }

  /** SharedFreeStack.pop, then WorkerCache#refill's walk of the batch: the indices taken. */
  *popBatch(thread: number): Generator<undefined, number[], void> {
    const { words, layout, top } = this;
    for (;;) {
      yield;
      const old = loadTop(top);
      const head = headOf(old);
      if (head < 0) return [];
      const h = headerWord(layout, head);
      yield;
      const below = batchBelow(words, h);
      yield;
      if (swapTop(top, old, popped(old, below))) {
        yield;
        const length = batchLengthAt(words, h);
        yield;
        addFreeCount(words, -length);
        // WorkerCache#refill
        const taken: number[] = [];
        let index = head;
        for (let i = 0; i < length; i++) {
          taken.push(index);
          yield;
          index = nextInBatch(words, layout, index);
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

  /** WorkerCache#pushTop's links, then SharedFreeStack.push. */
  *pushBatch(thread: number, batch: readonly number[]): Thread {
    const { words, layout, top } = this;
    for (const i of batch) {
      if (this.owner[i] !== thread) {
        throw new Violation(`thread ${thread} pushes buffer ${i} held by ${this.owner[i]}`);
      }
      this.owner[i] = "free";
    }
    for (let i = 0; i < batch.length - 1; i++) {
      yield;
      linkNext(words, layout, batch[i]!, batch[i + 1]!);
    }
    const head = batch[0]!;
    const h = headerWord(layout, head);
    yield;
    setBatchLength(words, h, batch.length);
    yield;
    addFreeCount(words, batch.length);
    for (;;) {
      yield;
      const old = loadTop(top);
      yield;
      setBatchBelow(words, h, headOf(old) + 1);
      yield;
      // The bug keeps the old tag, as a push that forgot it would.
      const value = this.bug === "untagged" ? popped(old, head + 1) : pushed(old, head);
      if (swapTop(top, old, value)) return;
    }
  }

  /** wakeWaiters. */
  *wakeWaiters(): Thread {
    yield;
    if (anyoneWaiting(this.words)) {
      yield;
      ringWaiters(this.words);
    }
  }

  /** Walks the free stack at rest: every buffer once, and the count right. */
  checkAtRest(held: number): string | undefined {
    const { words, layout } = this;
    const seen = new Set<number>();
    let free = 0;
    for (let head = headOf(loadTop(this.top)); head >= 0;) {
      const h = headerWord(layout, head);
      const length = batchLengthAt(words, h);
      let index = head;
      for (let i = 0; i < length; i++) {
        if (seen.has(index)) return `buffer ${index} twice on the free stack`;
        if (this.owner[index] !== "free") return `buffer ${index} on the free stack and held`;
        seen.add(index);
        index = nextInBatch(words, layout, index);
      }
      free += length;
      if (free > layout.bufferCount) return "the free stack has a cycle";
      head = batchBelow(words, h) - 1;
    }
    if (free !== words[C_FREE_COUNT]) {
      return `free count ${words[C_FREE_COUNT]}, stack holds ${free}`;
    }
    if (free + held !== layout.bufferCount) {
      return `free ${free} + held ${held} != bufferCount ${layout.bufferCount}`;
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
    const memory = new Memory(bufferCount, batchSize, scripts.length, bug);
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
 * WorkerCache#handOff: a push and wakeWaiters); workers 1.. each want one
 * buffer, try the free stack and register to wait when it is empty
 * (CrossWorkerWait.register, #pump, #unregister). A waiter blocks until
 * C_WAIT_SEQ differs from what it read, as Atomics.waitAsync does. No lost
 * wake-up: every waiter ends served.
 */
export function waitingModel(bufferCount: number, waiters: number, bug: StackBug = "none"): Model {
  return () => {
    const memory = new Memory(bufferCount, 1, waiters + 1, bug);
    const { words, layout } = memory;
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
      const slot = slotWord(layout, t);
      // acquire(): tryAcquire first.
      const first = yield* memory.popBatch(t);
      if (first.length !== 0) {
        served.push(t);
        return;
      }
      // CrossWorkerWait.register
      yield;
      enterWaiting(words, slot);
      // CrossWorkerWait#pump
      for (;;) {
        let seq = 0;
        if (bug !== "seq-after-recheck") {
          yield;
          seq = waitSeq(words);
        }
        const batch = yield* memory.popBatch(t);
        if (bug === "seq-after-recheck") {
          yield;
          seq = waitSeq(words);
        }
        if (batch.length !== 0) {
          served.push(t);
          // CrossWorkerWait#unregister
          yield;
          leaveWaiting(words, slot);
          return;
        }
        yield () => waitSeq(words) !== seq;
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

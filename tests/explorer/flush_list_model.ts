// The writer → flusher hand-off, step by step: writers publish committed
// ends into H_PUBLISH and push chains onto F_HEAD (src/writer.ts flush,
// src/_flush_list.ts pushChain, Writer#ring); one flusher takes the list
// (src/write_flusher.ts #pull, #sleep, #take, #deliver, #end) and a closer
// closes it (WriteFlusher.close). A buffer's references are one abstract
// atomic count here: the writer's own, the flusher's token and each region.

import { type Model, type Thread, Violation } from "./scheduler.ts";
import { ENDED, F_BELL, F_CLOSED, F_HEAD, F_WAITING, FLUSH_WORDS } from "../../src/_flush_list.ts";
import {
  H_FLUSHED,
  H_NEXT,
  H_PUBLISH,
  HEADER_WORDS,
  PUBLISH_DONE,
  PUBLISH_END,
  PUBLISH_LISTED,
} from "../../src/_layout.ts";

// The real words: a layout change that breaks the protocol fails the explorer.
// The model keeps the flusher's control words and the buffers' headers in
// one array, the headers after the control block.
const HEADERS = FLUSH_WORDS;

/** What a writer does, in order: commit bytes to its current buffer, finish it, or flush. */
export type WriterOp = { commit: number } | "finish" | "flush";

/** A writer's buffers (indices) and what it does with them. */
export interface WriterScript {
  readonly buffers: readonly number[];
  readonly ops: readonly WriterOp[];
}

/** Deliberate bugs the explorer must catch. */
export type FlushBug = "none" | "clear-listed-before-links";

interface Chunk {
  readonly index: number;
  readonly writer: number;
  committed: number;
  done: boolean;
  published: number;
  pending: boolean;
  lent: boolean;
}

const header = (index: number) => HEADERS + index * HEADER_WORDS;

/** The model: `scripts` writers, one flusher, one closer. */
export function flushListModel(scripts: readonly WriterScript[], bug: FlushBug = "none"): Model {
  return () => {
    const bufferCount = Math.max(...scripts.flatMap((s) => s.buffers)) + 1;
    const words = new Int32Array(HEADERS + bufferCount * HEADER_WORDS);
    for (let i = 0; i < bufferCount; i++) words[header(i) + H_FLUSHED] = -1;
    const refs = new Array<number>(bufferCount).fill(0);
    const freed = new Array<number>(bufferCount).fill(0);
    const expected: string[][] = scripts.map(() => []);
    const delivered: string[][] = scripts.map(() => []);
    const chunks: Chunk[] = [];
    let writersDone = 0;

    /** One reference dropped: a step on the shared count, freeing at zero. */
    function* drop(index: number): Thread {
      yield;
      if (refs[index]! <= 0) throw new Violation(`buffer ${index} released with no reference`);
      if (--refs[index]! === 0) {
        if (++freed[index]! !== 1) throw new Violation(`buffer ${index} freed twice`);
        const c = chunks[index];
        if (c !== undefined) {
          const got = delivered[c.writer]!.filter((b) => b.startsWith(`${index}:`)).length;
          if (got !== c.committed || !c.done) {
            throw new Violation(
              `buffer ${index} freed with ${got} of ${c.committed} bytes delivered (done ${c.done})`,
            );
          }
        }
      }
    }

    // -- Writer: src/writer.ts flush(), #ring(), #drop() --
    function* writer(w: number): Thread {
      const script = scripts[w]!;
      const pending: Chunk[] = [];
      let b = 0;
      let chunk: Chunk | null = null;
      const markPending = (c: Chunk) => {
        if (!c.pending) {
          c.pending = true;
          pending.push(c);
        }
      };
      for (const op of script.ops) {
        if (op === "flush") {
          yield* flush(pending);
          continue;
        }
        if (chunk === null) {
          const index = script.buffers[b++]!;
          // Acquired: the writer's own reference.
          refs[index] = 1;
          chunk = {
            index,
            writer: w,
            committed: 0,
            done: false,
            published: 0,
            pending: false,
            lent: false,
          };
          chunks[index] = chunk;
        }
        if (op === "finish") {
          chunk.done = true;
          markPending(chunk);
          chunk = null;
        } else {
          for (let i = 0; i < op.commit; i++) {
            expected[w]!.push(`${chunk.index}:${chunk.committed + i}`);
          }
          chunk.committed += op.commit;
          markPending(chunk);
        }
      }
      yield* flush(pending);
      if (chunk !== null || pending.length !== 0) {
        throw new Error("script must finish its last buffer and flush");
      }
      writersDone++;
    }

    function* flush(pending: Chunk[]): Thread {
      if (pending.length === 0) return;
      let first: Chunk | null = null;
      let last: Chunk | null = null;
      for (const chunk of pending) {
        chunk.pending = false;
        const value = chunk.committed | (chunk.done ? PUBLISH_DONE : 0);
        if (value === chunk.published) continue;
        chunk.published = value;
        yield;
        const old = Atomics.exchange(
          words,
          header(chunk.index) + H_PUBLISH,
          value | PUBLISH_LISTED,
        );
        if ((old & PUBLISH_LISTED) !== 0) continue;
        if (!chunk.lent) {
          // pool._lend: the flusher's token reference.
          yield;
          refs[chunk.index]!++;
          chunk.lent = true;
        }
        if (last === null) first = chunk;
        else {
          yield;
          words[header(chunk.index) + H_NEXT] = last.index + 1;
        }
        last = chunk;
      }
      if (first !== null) {
        // pushChain
        let head: number;
        for (;;) {
          yield;
          head = Atomics.load(words, F_HEAD);
          if (head === ENDED) throw new Violation("writer pushed after the flusher ended");
          yield;
          words[header(first.index) + H_NEXT] = head;
          yield;
          if (Atomics.compareExchange(words, F_HEAD, head, last!.index + 1) === head) break;
        }
        if (head === 0) yield* ring();
      }
      for (const chunk of pending) {
        if ((chunk.published & PUBLISH_DONE) !== 0) yield* drop(chunk.index);
      }
      pending.length = 0;
    }

    /** Writer#ring and WriteFlusher._ring across workers. */
    function* ring(): Thread {
      yield;
      if (Atomics.load(words, F_WAITING) !== 0) {
        yield;
        Atomics.add(words, F_BELL, 1);
      }
    }

    // -- Flusher: src/write_flusher.ts --
    const tokens = new Set<number>();

    function* deliver(index: number, out: boolean): Thread {
      if (freed[index]) throw new Violation(`flusher touched buffer ${index} after it was freed`);
      const h = header(index);
      if (!tokens.has(index)) {
        // pool._claim takes over the lent token.
        yield;
        words[h + H_FLUSHED] = 0;
        tokens.add(index);
      }
      yield;
      const value = Atomics.and(words, h + H_PUBLISH, ~PUBLISH_LISTED);
      const end = value & PUBLISH_END;
      const done = (value & PUBLISH_DONE) !== 0;
      yield;
      const from = words[h + H_FLUSHED]!;
      if (end > from && out) {
        yield;
        words[h + H_FLUSHED] = end;
        if (done) tokens.delete(index);
        else {
          yield;
          refs[index]!++;
        }
        const c = chunks[index]!;
        for (let i = from; i < end; i++) delivered[c.writer]!.push(`${index}:${i}`);
        // The region is written and released at once.
        yield* drop(index);
      } else if (done) {
        tokens.delete(index);
        yield* drop(index);
      }
    }

    function* take(out: boolean): Generator<undefined | (() => boolean), number, void> {
      const taken: number[] = [];
      yield;
      let head = Atomics.exchange(words, F_HEAD, 0);
      while (head > 0) {
        taken.push(head - 1);
        if (bug === "clear-listed-before-links") {
          yield;
          Atomics.and(words, header(head - 1) + H_PUBLISH, ~PUBLISH_LISTED);
        }
        yield;
        head = words[header(head - 1) + H_NEXT]!;
      }
      for (let i = taken.length - 1; i >= 0; i--) yield* deliver(taken[i]!, out);
      return taken.length;
    }

    function* end(): Thread {
      yield;
      Atomics.store(words, F_CLOSED, 1);
      for (;;) {
        yield;
        if (Atomics.compareExchange(words, F_HEAD, 0, ENDED) === 0) break;
        yield* take(true);
      }
      for (const index of [...tokens]) yield* drop(index);
      tokens.clear();
      yield* ring();
    }

    function* sleep(): Thread {
      yield;
      Atomics.store(words, F_WAITING, 1);
      yield;
      const bell = Atomics.load(words, F_BELL);
      yield;
      if (Atomics.load(words, F_HEAD) === 0) {
        yield;
        if (Atomics.load(words, F_CLOSED) === 0) {
          // Atomics.waitAsync(control, F_BELL, bell)
          yield () => words[F_BELL] !== bell;
        }
      }
      yield;
      Atomics.store(words, F_WAITING, 0);
    }

    function* flusher(): Thread {
      for (;;) {
        if ((yield* take(true)) !== 0) continue;
        yield;
        if (Atomics.load(words, F_CLOSED) !== 0) {
          yield* end();
          return;
        }
        yield* sleep();
      }
    }

    // -- WriteFlusher.close() once the writers are done (they flush on close) --
    function* closer(): Thread {
      yield () => writersDone === scripts.length;
      yield;
      if (Atomics.exchange(words, F_CLOSED, 1) !== 0) return;
      yield* ring();
    }

    return {
      threads: [...scripts.map((_, w) => writer(w)), flusher(), closer()],
      finish() {
        for (let w = 0; w < scripts.length; w++) {
          const want = expected[w]!.join(" ");
          const got = delivered[w]!.join(" ");
          if (want !== got) return `writer ${w}: delivered [${got}], committed [${want}]`;
        }
        for (let i = 0; i < bufferCount; i++) {
          if (chunks[i] !== undefined && freed[i] !== 1) {
            return `buffer ${i} freed ${freed[i]} times (refs ${refs[i]})`;
          }
        }
        if (words[F_HEAD] !== ENDED) return "the list did not end";
        return undefined;
      },
    };
  };
}

// The writer → flusher hand-off under many interleavings. Writers publish,
// link, push and ring; one flusher takes, claims, delivers, sleeps and ends
// the list; a closer, or a consumer that fails, stops it. Every access to
// the flusher's words or a buffer's header is a call to the real step of
// src/_flush_list.ts, on words made by its newFlushWords and headers placed
// by src/_layout.ts: the model adds the yields between steps, and repeats
// the order in which the real code calls them (the composites of
// _flush_list.ts, src/writer.ts's flush, close and #end, the flusher's
// take, deliver, end, sleep and fail). A buffer's references are one
// abstract atomic count: the writer's own, the flusher's token, each region.

import { type Model, type Step, type Thread, Violation } from "./scheduler.ts";
import {
  announceSleep,
  bellOf,
  bumpBell,
  claim,
  claimedByFlusher,
  closeList,
  ENDED,
  endList,
  endSleep,
  F_HEAD,
  flushedTo,
  flusherSleeps,
  linkTo,
  linkToHead,
  listClosed,
  listEmpty,
  listHead,
  newFlushWords,
  nextLink,
  publish,
  setFlushedTo,
  startBuffer,
  storeFailure,
  swapHead,
  takeHead,
  takePublished,
  writerOf,
} from "../../src/_flush_list.ts";
import { computeLayout, headerWord, PUBLISH_DONE, PUBLISH_END } from "../../src/_layout.ts";

/**
 * What a writer does, in order: place and commit bytes at once
 * (`tryWrite`), open a reservation, commit the open reservation at a
 * position (0 is the oldest still open), move on to its next buffer, or
 * flush. After its last op it closes, as `Writer.close()` does.
 */
export type WriterOp =
  | { write: number }
  | { reserve: number }
  | { commit: number }
  | "finish"
  | "flush";

/** A writer's buffers (indices, one per "finish" plus one) and what it does. */
export interface WriterScript {
  readonly buffers: readonly number[];
  readonly ops: readonly WriterOp[];
}

/**
 * How the flusher stops. "close": closed once every writer closed and every
 * byte arrived, which also proves no wake-up was lost. "close-early":
 * closed at any moment, writers still writing. "cancel": its consumer fails
 * whenever the flusher waits (on a sink or on its bell), else it is closed
 * once the writers closed.
 */
export type Ending = "close" | "close-early" | "cancel";

/** Deliberate bugs the explorer must catch. */
export type FlushBug =
  | "none"
  /** The flusher clears a buffer's listed bit while walking the links. */
  | "clear-listed-before-links"
  /** A push swaps the head in before linking the chain to the old head. */
  | "link-after-push"
  /** The flusher reads its bell after looking for news. */
  | "bell-after-look"
  /** A writer rings before it pushes rather than after. */
  | "ring-before-push"
  /** Taking swaps the head for 0 even once the list ended (pipeTo after the end did). */
  | "take-clears-end";

/** How the model runs. */
export interface FlushModelOptions {
  ending?: Ending;
  /** "close-early" and "cancel": how many bytes must have arrived before the flusher may stop. */
  after?: number;
  bug?: FlushBug;
}

/** A writer's record of one buffer, as src/_chunk.ts keeps it. */
interface Chunk {
  readonly index: number;
  readonly header: number;
  reserved: number;
  committed: number;
  open: number;
  done: boolean;
  lent: boolean;
  published: number;
}

/** An open reservation: where it is. */
interface Open {
  readonly chunk: Chunk;
  readonly start: number;
  readonly end: number;
}

/** Bytes in a buffer: the scripts place far fewer. */
const BUFFER_SIZE = 64;

/** A byte position as `index:offset`, for messages. */
function position(at: number): string {
  return `${Math.floor(at / BUFFER_SIZE)}:${at % BUFFER_SIZE}`;
}

/** Generator returning a value, yielding scheduler steps. */
type Steps<T> = Generator<Step, T, void>;

/** The model: `scripts` writers, one flusher, and what stops it. */
export function flushListModel(
  scripts: readonly WriterScript[],
  options: FlushModelOptions = {},
): Model {
  const ending = options.ending ?? "close";
  const bug = options.bug ?? "none";
  const after = options.after ?? 0;
  const bufferCount = Math.max(...scripts.flatMap((s) => s.buffers)) + 1;
  const layout = computeLayout(BUFFER_SIZE, bufferCount, 1, 1, 0);
  return () => {
    const control = newFlushWords(false, 1);
    const words = new Int32Array(layout.blockBytes / 4);
    const refs = new Array<number>(bufferCount).fill(0);
    const freed = new Array<number>(bufferCount).fill(0);
    const used = new Array<boolean>(bufferCount).fill(false);
    /** Byte positions (index * BUFFER_SIZE + offset) each writer placed, and each delivered, in order. */
    const expected: number[][] = scripts.map(() => []);
    const delivered: number[][] = scripts.map(() => []);
    /** Bytes placed in and delivered from each buffer, and delivered in all. */
    const placedIn = new Array<number>(bufferCount).fill(0);
    const deliveredIn = new Array<number>(bufferCount).fill(0);
    let placed = 0;
    let arrived = 0;
    let writersDone = 0;
    /** The flusher's state, which code in its worker sees between its awaits. */
    let ended = false;
    let idle = false;
    let cancelling = false;
    let flusherDone = false;

    /** One reference dropped: a step on the shared count, freeing at zero. */
    function* drop(index: number): Thread {
      yield;
      if (refs[index]! <= 0) throw new Violation(`buffer ${index} released with no reference`);
      if (--refs[index]! !== 0) return;
      if (++freed[index]! !== 1) throw new Violation(`buffer ${index} freed twice`);
      if (ending === "close" && deliveredIn[index] !== placedIn[index]) {
        throw new Violation(
          `buffer ${index} freed with ${deliveredIn[index]} of ${placedIn[index]} bytes delivered`,
        );
      }
    }

    /** WriteFlusher._ring and Writer#ring across workers: ringBell. */
    function* ring(): Thread {
      yield;
      if (flusherSleeps(control)) {
        yield;
        bumpBell(control);
      }
    }

    // -- A writer: src/writer.ts --

    function* writer(w: number): Thread {
      const script = scripts[w]!;
      /** Buffers the writer holds, oldest first. */
      const chunks: Chunk[] = [];
      /** Open reservations, oldest first. */
      const open: Open[] = [];
      let current: Chunk | null = null;
      let news = false;
      let taken = 0;
      let closed = false;

      /** #room and #install: the current buffer, or the next of the script's. */
      const room = (): Chunk => {
        if (current !== null) return current;
        const index = script.buffers[taken++];
        if (index === undefined) throw new Error(`writer ${w}'s script needs more buffers`);
        refs[index] = 1;
        used[index] = true;
        const header = headerWord(layout, index);
        startBuffer(words, header, w);
        current = {
          index,
          header,
          reserved: 0,
          committed: 0,
          open: 0,
          done: false,
          lent: false,
          published: 0,
        };
        chunks.push(current);
        return current;
      };
      const place = (length: number): Chunk => {
        const chunk = room();
        const at = chunk.index * BUFFER_SIZE + chunk.reserved;
        for (let i = 0; i < length; i++) expected[w]!.push(at + i);
        chunk.reserved += length;
        placedIn[chunk.index]! += length;
        placed += length;
        return chunk;
      };
      /** _commit: the open reservation at `at`. */
      const commit = (at: number) => {
        const r = open[at];
        if (r === undefined) throw new Error(`writer ${w} has no open reservation ${at}`);
        const chunk = r.chunk;
        const older = open[at - 1];
        const next = open[at + 1];
        open.splice(at, 1);
        chunk.open--;
        if (older === undefined || older.chunk !== chunk) {
          chunk.committed = next !== undefined && next.chunk === chunk
            ? next.start
            : chunk.reserved;
          news = true;
        }
      };
      /** _cancel of the newest open reservation: taken back if nothing follows it, else zeroed. */
      const cancelNewest = () => {
        const at = open.length - 1;
        const r = open[at]!;
        const chunk = r.chunk;
        if (chunk.reserved !== r.end) return commit(at);
        open.pop();
        chunk.open--;
        chunk.reserved = r.start;
        const older = open[at - 1];
        if (older === undefined || older.chunk !== chunk) {
          chunk.committed = chunk.reserved;
          news = true;
        }
      };
      /** #finishCurrent: no more goes into the current buffer; an empty one goes back. */
      function* finishCurrent(): Thread {
        const chunk = current;
        if (chunk === null) return;
        current = null;
        chunk.done = true;
        if (chunk.reserved !== 0) news = true;
        else {
          chunks.splice(chunks.indexOf(chunk), 1);
          yield* drop(chunk.index);
        }
      }

      /** pushChain, step by step. */
      function* pushChain(first: Chunk, last: Chunk): Steps<number> {
        for (;;) {
          yield;
          const head = listHead(control);
          if (head === ENDED) return ENDED;
          if (bug === "link-after-push") {
            yield;
            if (!swapHead(control, head, last.index)) continue;
            yield;
            linkToHead(words, first.header, head);
            return head;
          }
          yield;
          linkToHead(words, first.header, head);
          yield;
          if (swapHead(control, head, last.index)) return head;
        }
      }

      /** #end: the flusher is gone; take back lent tokens it never claimed, drop the rest. */
      function* endWriter(): Thread {
        closed = true;
        current = null;
        news = false;
        for (const chunk of chunks.splice(0)) {
          if (chunk.lent) {
            yield;
            if (!claimedByFlusher(words, chunk.header)) yield* drop(chunk.index);
          }
          yield* drop(chunk.index);
        }
      }

      /** flush(): oldest first, stopping after the first buffer still open. */
      function* flush(): Thread {
        if (!news) return;
        news = false;
        let first: Chunk | null = null;
        let last: Chunk | null = null;
        let complete = 0;
        for (let i = 0; i < chunks.length; i++) {
          const chunk = chunks[i]!;
          const done = chunk.done && chunk.open === 0;
          const value = chunk.committed | (done ? PUBLISH_DONE : 0);
          if (value !== chunk.published) {
            chunk.published = value;
            yield;
            if (publish(words, chunk.header, value)) {
              if (!chunk.lent) {
                // pool._lend: the flusher's token.
                yield;
                refs[chunk.index]!++;
                chunk.lent = true;
              }
              if (last === null) first = chunk;
              else {
                yield;
                linkTo(words, chunk.header, last.index);
              }
              last = chunk;
            }
          }
          if (!done) {
            if (i + 1 < chunks.length) news = true;
            break;
          }
          complete++;
        }
        if (first !== null) {
          if (bug === "ring-before-push") yield* ring();
          const head = yield* pushChain(first, last!);
          if (head === ENDED) return yield* endWriter();
          if (head === 0 && bug !== "ring-before-push") yield* ring();
        }
        for (; complete > 0; complete--) yield* drop(chunks.shift()!.index);
      }

      /** close(): cancel what is open, newest first, finish the buffer, flush. */
      function* close(): Thread {
        while (open.length !== 0) cancelNewest();
        yield* finishCurrent();
        yield* flush();
        closed = true;
      }

      for (const op of script.ops) {
        if (op === "flush") yield* flush();
        else if (op === "finish") yield* finishCurrent();
        else if ("commit" in op) commit(op.commit);
        else {
          // Placing a message first looks whether the flusher was closed.
          yield;
          if (listClosed(control)) yield* close();
          else if ("write" in op) {
            const chunk = place(op.write);
            if (chunk.open === 0) {
              chunk.committed = chunk.reserved;
              news = true;
            }
          } else {
            const chunk = place(op.reserve);
            chunk.open++;
            open.push({ chunk, start: chunk.reserved - op.reserve, end: chunk.reserved });
          }
        }
        if (closed) break;
      }
      if (!closed) yield* close();
      writersDone++;
    }

    // -- The flusher: src/write_flusher.ts --

    /** Buffers whose token the flusher holds. */
    const tokens = new Set<number>();

    /** #deliver: one taken buffer's news becomes a region, written and released at once. */
    function* deliver(index: number, out: boolean): Thread {
      if (freed[index]) throw new Violation(`flusher touched buffer ${index} after it was freed`);
      const header = headerWord(layout, index);
      if (!tokens.has(index)) {
        // pool._claim takes over the lent token.
        yield;
        claim(words, header);
        tokens.add(index);
      }
      yield;
      const value = takePublished(words, header);
      const end = value & PUBLISH_END;
      const done = (value & PUBLISH_DONE) !== 0;
      const from = flushedTo(words, header);
      if (end > from && out) {
        setFlushedTo(words, header, end);
        if (done) tokens.delete(index);
        else {
          yield;
          refs[index]!++;
        }
        const bytes = delivered[writerOf(words, header)]!;
        for (let i = from; i < end; i++) bytes.push(index * BUFFER_SIZE + i);
        deliveredIn[index]! += end - from;
        arrived += end - from;
        yield* drop(index);
      } else if (done) {
        tokens.delete(index);
        yield* drop(index);
      }
    }

    /** #take: takeList, step by step, then each buffer's news, oldest first. */
    function* take(out: boolean): Steps<number> {
      const taken: number[] = [];
      yield;
      let head = bug === "take-clears-end"
        ? Atomics.exchange(control, F_HEAD, 0)
        : takeHead(control);
      while (head > 0) {
        taken.push(head - 1);
        const header = headerWord(layout, head - 1);
        if (bug === "clear-listed-before-links") {
          yield;
          takePublished(words, header);
        }
        yield;
        head = nextLink(words, header);
      }
      for (let i = taken.length - 1; i >= 0; i--) yield* deliver(taken[i]!, out);
      return taken.length;
    }

    /** #end: end the list, delivering (or releasing) what is still on it; drop every token. */
    function* end(out: boolean): Thread {
      ended = true;
      yield;
      closeList(control);
      for (;;) {
        yield;
        if (endList(control)) break;
        yield* take(out);
      }
      for (const index of [...tokens]) {
        tokens.delete(index);
        yield* drop(index);
      }
      yield* ring();
    }

    /** #sleepShared: prepareSleep, waitOnBell, endSleep. */
    function* sleep(): Thread {
      yield;
      announceSleep(control);
      let bell: number;
      let wait: boolean;
      if (bug === "bell-after-look") {
        yield;
        wait = listEmpty(control);
        yield;
        wait &&= !listClosed(control);
        yield;
        bell = bellOf(control);
      } else {
        yield;
        bell = bellOf(control);
        yield;
        wait = listEmpty(control);
        if (wait) {
          yield;
          wait = !listClosed(control);
        }
      }
      if (wait) {
        idle = true;
        yield () => bellOf(control) !== bell && !cancelling;
        idle = false;
      }
      yield;
      endSleep(control);
    }

    /** pipeTo's loop: take; if nothing came, end once closed, else sleep. */
    function* flusher(): Thread {
      for (;;) {
        // Between batches the pump awaits its sink: other code may run here.
        idle = true;
        yield () => !cancelling;
        idle = false;
        const count = yield* take(true);
        if (count !== 0) continue;
        if (ended) break;
        yield;
        if (listClosed(control)) {
          yield* end(true);
          break;
        }
        yield* sleep();
      }
      flusherDone = true;
    }

    // -- What stops the flusher --

    /** WriteFlusher.close(): closeList, then ring. */
    function* closer(): Thread {
      if (ending === "close") yield () => writersDone === scripts.length && arrived === placed;
      else if (ending === "cancel") yield () => writersDone === scripts.length;
      else yield () => arrived >= after || writersDone === scripts.length;
      if (closeList(control)) yield* ring();
    }

    /** #fail, run as the readable's cancel while the flusher awaits. */
    function* canceller(): Thread {
      yield () => (idle && arrived >= after) || flusherDone;
      if (ended) return;
      cancelling = true;
      yield;
      storeFailure(control, new Error("the sink failed"));
      yield* end(false);
      cancelling = false;
    }

    const threads = [...scripts.map((_, w) => writer(w)), flusher(), closer()];
    if (ending === "cancel") threads.push(canceller());
    return {
      threads,
      finish() {
        for (let w = 0; w < scripts.length; w++) {
          const want = expected[w]!;
          const got = delivered[w]!;
          const whole = ending === "close" ? got.length === want.length : got.length <= want.length;
          if (!whole || got.some((at, i) => at !== want[i])) {
            return `writer ${w}: delivered [${got.map(position)}], placed [${want.map(position)}]`;
          }
        }
        for (let i = 0; i < bufferCount; i++) {
          if (used[i] && freed[i] !== 1) {
            return `buffer ${i} freed ${freed[i]} times (references left: ${refs[i]})`;
          }
        }
        if (listHead(control) !== ENDED) return "the list did not end";
        return undefined;
      },
    };
  };
}

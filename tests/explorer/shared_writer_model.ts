// The SharedWriter's protocol under many interleavings: claiming room in the
// current buffer, sealing it, switching to the next, counting commits, and
// publishing finished bytes under the lock that never blocks. The block is
// the real one (sharedWriterWords, initBlock, the SW_* / E_* words, the
// cursor's packing); a real function that makes one shared access is called
// as one step (markSealed, claimSwitch, dropSwitch, advance's store), and one
// that makes several is repeated here access by access, in the real order,
// with a yield before each (claim, seal, commit, nextSeq, cursorSeq, install,
// lockPublish, unlockPublish, collect). Each step names the real code it
// stands for, so a change there can be followed here.
//
// Writers run the calls of SharedWriterCore in src/_shared_writer_core.ts
// (#claim, #turnOver, #switchLater, #install, #bufferOf, #place, #settle,
// #waitTurn, close, #finish), of TurnWaiters in src/_shared_writer_waits.ts
// (wait, #watch) and of SharedPublisher in src/_shared_publisher.ts
// (publish). The flusher is an in-order queue of
// the publisher's deliver(index, value) calls (the flush list has its own
// model): it hands a buffer back to a model free list once it got
// PUBLISH_DONE for it. The pool's free list is one step per pop or push (it
// too has its own model). Not modelled: the records a reclaim reads
// (remember/forget/countHandle: only their owner writes them while it
// lives), a flusher that ends early, and one-worker pools.
//
// Ghost state, kept beside the words, knows which buffer each claim is in
// and whether it was committed, and checks: the flusher never gets a byte
// range holding a claim not yet committed; every claim arrives once, each
// writer's in the order it made them; no buffer goes back (or is taken)
// while a claim in it is open; at the end every buffer is back, every claim
// arrived, the writer is closed and its words at rest.

import { type Model, type Step, type Thread, Violation } from "./scheduler.ts";
import {
  advance,
  claimSwitch,
  dropSwitch,
  E_COMMITTED,
  E_INDEX,
  E_PUBLISHED,
  E_SEALED,
  E_SEQ,
  initBlock,
  markSealed,
  OFFSET_MASK,
  RING_SLOTS,
  ringWord,
  SEALED,
  sharedWriterWords,
  slotOf,
  SW_AGAIN,
  SW_CLOSED,
  SW_CURSOR,
  SW_DELIVER,
  SW_HANDLES,
  SW_ID,
  SW_LOCK,
  SW_SEQ,
  SW_SWITCHER,
} from "../../src/_shared_writer_block.ts";
import { startBuffer } from "../../src/_flush_list.ts";
import { computeLayout, headerWord, PUBLISH_DONE, PUBLISH_END } from "../../src/_layout.ts";

/**
 * What a writer does, in order (after its last op it closes its handle):
 * `write` claims room (waiting for the next buffer if need be) and commits
 * at once; `tryWrite` gives up if the next buffer is not there at once, as
 * an aborted wait does, while a switch it started goes on without it;
 * `reserve` leaves a claim open; `commit` commits the open claim at that
 * position (0 is the oldest); `flush` publishes.
 */
export type SharedWriterOp =
  | { write: number }
  | { tryWrite: number }
  | { reserve: number }
  | { commit: number }
  | "flush";

/** Deliberate bugs the explorer must catch. */
export type SharedWriterBug =
  | "none"
  /** collect offers an open buffer's committed sum without comparing it to the cursor's offset. */
  | "collect-no-offset-check"
  /** collect reads an open buffer's sum after the cursor's offset, not before. */
  | "collect-sum-after-offset"
  /** commit reads E_SEALED before it adds to E_COMMITTED. */
  | "commit-reads-sealed-first"
  /** unlockPublish lets the lock go without looking at SW_AGAIN. */
  | "unlock-ignores-again"
  /** lockPublish leaves its note but does not try the lock again. */
  | "lock-no-retry"
  /** install opens the cursor before it fills the ring slot's words. */
  | "install-cursor-first"
  /** #install does not look whether the writer closed while it switched. */
  | "install-ignores-closed";

/**
 * Moments a run passes, reported with the worker they happen in: a test
 * uses them to see that the explored schedules reach every branch, or to
 * steer a schedule.
 */
export type SharedWriterEvent =
  /** A claim was placed. */
  | "claim"
  /** This worker's seal() sealed the cursor. */
  | "seal"
  /** A commit found its buffer sealed, and publishes. */
  | "commit sees seal"
  /** A tryWrite gave up: the next buffer was not there at once. */
  | "give up"
  /** A switch waits for the pool to give a buffer back. */
  | "switch waits for a buffer"
  /** #switchLater's nextSeq() found the next ring slot still in use (-2): it waits for the delivery mark. */
  | "ring full"
  /** nextSeq() found the cursor open (-1): another switch finished first. */
  | "switch already done"
  /** A call waits on the cursor for another worker's switch. */
  | "wait for switch"
  /** #install found the writer closed, and seals the new buffer. */
  | "install after close"
  /** lockPublish() found the lock taken, and left a note. */
  | "lock taken"
  /** unlockPublish() found a note, and the publisher goes round again. */
  | "publish again"
  /** collect() offered an open buffer's committed bytes. */
  | "offer open buffer"
  /** collect() took a buffer's end from the sealed cursor, not yet marked in its slot. */
  | "seal seen in cursor"
  /** A worker closed its handle. */
  | "close";

/** How the model runs. */
export interface SharedWriterModelOptions {
  /** Buffers in the pool: 2 by default. */
  buffers?: number;
  /** Bytes per buffer: 8 by default, so that buffers fill and switch often. */
  bufferSize?: number;
  /**
   * "manual" (the default): a commit publishes only when its buffer is
   * sealed, and flushes are the scripts' "flush" ops. "microtask": a commit
   * also schedules a flush, run once the op returns.
   */
  cadence?: "manual" | "microtask";
  bug?: SharedWriterBug;
  /** Called at each event, with the worker it happens in. */
  onEvent?: (worker: number, event: SharedWriterEvent) => void;
}

/** One claim, as the ghost state knows it. */
interface Claim {
  readonly writer: number;
  /** The writer's claims before this one. */
  readonly n: number;
  readonly use: Use;
  /** The cursor value the claim swapped: its slot and offset. */
  readonly cursor: number;
  readonly start: number;
  readonly length: number;
  committed: boolean;
  delivered: boolean;
}

/** One buffer from its taking off the free list until it goes back. */
interface Use {
  readonly index: number;
  readonly seq: number;
  /** Its claims, in the order of their offsets. */
  readonly claims: Claim[];
  /** The offset its cursor was sealed at; -1 while open. */
  sealedAt: number;
  /** What the flusher got of it so far. */
  flushedTo: number;
}

/** Generator returning a value, yielding scheduler steps. */
type Steps<T> = Generator<Step, T, void>;

/** Cursor bits above the offset: the slot's place (GEN_SHIFT is the block's own). */
const SLOT_UNIT = OFFSET_MASK + 1;
const SLOT_MASK = RING_SLOTS - 1;

/** The model: one writer handle per script, each in its own worker, and a flusher. */
export function sharedWriterModel(
  scripts: readonly (readonly SharedWriterOp[])[],
  options: SharedWriterModelOptions = {},
): Model {
  const bufferCount = options.buffers ?? 2;
  const size = options.bufferSize ?? 8;
  const microtask = options.cadence === "microtask";
  const bug = options.bug ?? "none";
  const onEvent = options.onEvent ?? (() => {});
  const workers = scripts.length;
  const layout = computeLayout(size, bufferCount, 1, workers, 0);
  // A writer that may give up waiting needs a task that switches without it.
  const background = scripts.map((ops) =>
    ops.some((op) => typeof op === "object" && "tryWrite" in op)
  );

  return () => {
    const sw = new Int32Array(sharedWriterWords(workers));
    initBlock(sw, 1, 7, size, workers, 0);
    // Each handle's constructor counted itself before the workers start.
    sw[SW_HANDLES] = workers;
    const poolWords = new Int32Array(layout.blockBytes / 4);
    const free: number[] = [];
    for (let i = bufferCount - 1; i >= 0; i--) free.push(i);
    /** Buffers off the free list, by index. */
    const uses = new Map<number, Use>();
    /** The buffer the cursor opened on last (ghost: set by install's cursor store). */
    let current: Use | null = null;
    const claims: Claim[] = [];
    const made = new Array<number>(workers).fill(0);
    const arrived = new Array<number>(workers).fill(0);
    /** deliver(index, value) calls pushed to the flusher, in order. */
    const queue: [number, number][] = [];
    /** Atomics.notify calls on the cursor and on the delivery mark, for modelled waitAsync. */
    let cursorNotified = 0;
    let deliverNotified = 0;
    /** The publisher's lock as the ghost sees it: who holds it. */
    let holder = 0;
    /** Per worker: its #switching promise is pending. */
    const switching = new Array<boolean>(workers).fill(false);
    /** Per worker: a flush is scheduled (microtask cadence). */
    const scheduled = new Array<boolean>(workers).fill(false);
    const writerDone = new Array<boolean>(workers).fill(false);
    let running = workers + background.filter((b) => b).length;

    const fail = (message: string): never => {
      throw new Violation(message);
    };
    const name = (c: Claim): string =>
      `writer ${c.writer}'s claim ${c.n} [${c.start}, ${c.start + c.length})`;

    // -- Claiming room: claim() and seal() --

    /** claim(), shared: load, then compare-and-swap, until it fits or cannot. */
    function* claimRoom(w: number, frame: number): Steps<Claim | null> {
      for (;;) {
        yield;
        const v = Atomics.load(sw, SW_CURSOR);
        if (v < 0 || (v & OFFSET_MASK) + frame > size) return null;
        yield;
        if (Atomics.compareExchange(sw, SW_CURSOR, v, v + frame) === v) {
          const use = current ?? fail("a claim succeeded on a cursor no install opened");
          if (slotOf(v) !== (use.seq & SLOT_MASK)) {
            fail(
              `the cursor's slot ${slotOf(v)} is not that of buffer ${use.index} (seq ${use.seq})`,
            );
          }
          const claim: Claim = {
            writer: w,
            n: made[w]!++,
            use,
            cursor: v,
            start: v & OFFSET_MASK,
            length: frame,
            committed: false,
            delivered: false,
          };
          use.claims.push(claim);
          claims.push(claim);
          onEvent(w, "claim");
          return claim;
        }
      }
    }

    /** seal(), shared: load, the buffer's sequence number, compare-and-swap in the SEALED bit, markSealed. */
    function* seal(w: number): Steps<number> {
      for (;;) {
        yield;
        const v = Atomics.load(sw, SW_CURSOR);
        if (v < 0) return -1;
        yield;
        const seq = Atomics.load(sw, ringWord(slotOf(v)) + E_SEQ);
        yield;
        if (Atomics.compareExchange(sw, SW_CURSOR, v, v | SEALED) === v) {
          current!.sealedAt = v & OFFSET_MASK;
          onEvent(w, "seal");
          yield;
          markSealed(sw, v | SEALED, seq);
          return v | SEALED;
        }
      }
    }

    /** #bufferOf, then #place's remember(seqOf()): where the claim's bytes go. */
    function* locate(claim: Claim): Thread {
      const word = ringWord(slotOf(claim.cursor));
      yield;
      const index = sw[word + E_INDEX]!;
      if (index !== claim.use.index || uses.get(index) !== claim.use) {
        fail(`${name(claim)} is in buffer ${claim.use.index}, but its ring slot names ${index}`);
      }
      yield;
      const seq = sw[word + E_SEQ]!;
      if (seq !== claim.use.seq) {
        fail(`${name(claim)} is in sequence ${claim.use.seq}, but its ring slot says ${seq}`);
      }
    }

    // -- Committing: #settle() and commit() --

    function* settle(w: number, claim: Claim): Thread {
      const word = ringWord(slotOf(claim.cursor));
      const add = () => {
        if (uses.get(claim.use.index) !== claim.use) {
          fail(`${name(claim)} committed after its buffer went back`);
        }
        Atomics.add(sw, word + E_COMMITTED, claim.length);
        claim.committed = true;
      };
      let sealed: boolean;
      if (bug === "commit-reads-sealed-first") {
        yield;
        sealed = Atomics.load(sw, word + E_SEALED) > 0;
        yield;
        add();
      } else {
        yield;
        add();
        // Read after the add: the sealer stores E_SEALED before it reads the sum.
        yield;
        sealed = Atomics.load(sw, word + E_SEALED) > 0;
      }
      if (sealed) {
        onEvent(w, "commit sees seal");
        yield* publish(w + 1);
      } else if (microtask) scheduled[w] = true;
    }

    // -- Switching: nextSeq(), cursorSeq(), install() --

    function* cursorSeq(): Steps<number> {
      yield;
      const seq = Atomics.load(sw, SW_SEQ);
      yield;
      const slot = slotOf(Atomics.load(sw, SW_CURSOR));
      return seq + ((slot - seq) & SLOT_MASK);
    }

    function* nextSeq(): Steps<number> {
      yield;
      const cursor = Atomics.load(sw, SW_CURSOR);
      if (cursor >= 0) return -1;
      const seq = yield* cursorSeq();
      yield;
      markSealed(sw, cursor, seq);
      const next = seq + 1;
      yield;
      if (Atomics.load(sw, SW_DELIVER) <= next - RING_SLOTS) return -2;
      return next;
    }

    /** install(), step by step. */
    function* install(use: Use): Thread {
      const word = ringWord(use.seq & SLOT_MASK);
      const openCursor = () => {
        Atomics.store(sw, SW_CURSOR, (use.seq & SLOT_MASK) * SLOT_UNIT);
        current = use;
      };
      yield;
      startBuffer(poolWords, headerWord(layout, use.index), sw[SW_ID]!);
      if (bug === "install-cursor-first") {
        yield;
        openCursor();
      }
      yield;
      sw[word + E_INDEX] = use.index;
      yield;
      sw[word + E_COMMITTED] = 0;
      yield;
      sw[word + E_SEALED] = ~use.seq;
      yield;
      sw[word + E_PUBLISHED] = 0;
      yield;
      Atomics.store(sw, word + E_SEQ, use.seq);
      if (bug !== "install-cursor-first") {
        yield;
        openCursor();
      }
      yield;
      Atomics.store(sw, SW_SEQ, use.seq);
      yield;
      Atomics.store(sw, SW_SWITCHER, 0);
      yield;
      cursorNotified++;
    }

    /** #install: install(), then finish if the writer closed meanwhile, then publish. */
    function* installBuffer(w: number, index: number, seq: number): Thread {
      if (uses.has(index)) fail(`buffer ${index} taken off the free list while in use`);
      const use: Use = { index, seq, claims: [], sealedAt: -1, flushedTo: 0 };
      uses.set(index, use);
      yield* install(use);
      if (bug !== "install-ignores-closed") {
        yield;
        if (Atomics.load(sw, SW_CLOSED) !== 0) {
          onEvent(w, "install after close");
          yield* finish(w);
        }
      }
      yield* publish(w + 1);
    }

    /** dropSwitch(): one compare-and-swap, and a notify if it let go. */
    function* dropSwitchStep(w: number): Thread {
      yield;
      const held = sw[SW_SWITCHER] === w + 1;
      dropSwitch(sw, w + 1);
      if (held) cursorNotified++;
    }

    /** #switchLater: switches once the pool (or the ring) has room. */
    function* switchLater(w: number): Thread {
      for (;;) {
        yield;
        const seen = Atomics.load(sw, SW_DELIVER);
        const next = yield* nextSeq();
        if (next === -1) {
          onEvent(w, "switch already done");
          break;
        }
        if (next === -2) {
          onEvent(w, "ring full");
          // waitDelivered(seen)
          yield;
          if (sw[SW_DELIVER] === seen) {
            const notified = deliverNotified;
            yield () => deliverNotified !== notified;
          }
          continue;
        }
        // pool._acquireRecord(): waits while the free list is empty.
        if (free.length === 0) onEvent(w, "switch waits for a buffer");
        yield () => free.length !== 0;
        const index = free.pop()!;
        yield* installBuffer(w, index, next);
        return;
      }
      yield* dropSwitchStep(w);
    }

    /**
     * #turnOver: no room for `frame`. Seals the buffer if it is
     * still the full one, and switches if no other worker is at it. Whether
     * to claim again. A caller that waits runs the switch itself (it would
     * only wait for it); one that gives up leaves it to its worker's task.
     */
    function* turnOver(w: number, frame: number, wait: boolean): Steps<boolean> {
      // The flusher's F_CLOSED is not modelled: it never ends early here.
      yield;
      if (Atomics.load(sw, SW_CLOSED) !== 0) fail(`writer ${w} claims after the writer closed`);
      yield;
      const cursor = Atomics.load(sw, SW_CURSOR);
      if (cursor >= 0) {
        if ((cursor & OFFSET_MASK) + frame <= size) return true;
        if ((yield* seal(w)) !== -1) yield* publish(w + 1);
      }
      if (switching[w]) return false;
      yield;
      if (!claimSwitch(sw, w + 1)) return false;
      const next = yield* nextSeq();
      if (next === -1) {
        onEvent(w, "switch already done");
        yield* dropSwitchStep(w);
        return true;
      }
      let index: number | undefined;
      if (next !== -2) {
        // pool._tryAcquireRecord()
        yield;
        index = free.pop();
      }
      if (index !== undefined) {
        yield* installBuffer(w, index, next);
        return true;
      }
      if (wait) {
        yield* switchLater(w);
        return true;
      }
      switching[w] = true;
      return false;
    }

    /** #claim(): claims, turning the buffer over while that helps. */
    function* claimOrTurn(w: number, frame: number, wait: boolean): Steps<Claim | null> {
      for (;;) {
        const claim = yield* claimRoom(w, frame);
        if (claim !== null) return claim;
        if (!(yield* turnOver(w, frame, wait))) return null;
      }
    }

    /** #waitTurn() and TurnWaiters.wait(): on this worker's switch, or (#watch) a waitAsync on the cursor. */
    function* waitTurn(w: number): Thread {
      if (switching[w]) {
        yield () => !switching[w];
        return;
      }
      yield;
      const seen = Atomics.load(sw, SW_CURSOR);
      if (seen >= 0) return;
      // Atomics.waitAsync compares and starts waiting in one step.
      yield;
      if (sw[SW_CURSOR] !== seen) return;
      onEvent(w, "wait for switch");
      const notified = cursorNotified;
      yield () => cursorNotified !== notified;
    }

    /** reserve() and write() (`wait`), or tryReserve() and tryWrite(): a claim placed, or null. */
    function* place(w: number, frame: number, wait: boolean): Steps<Claim | null> {
      for (;;) {
        const claim = yield* claimOrTurn(w, frame, wait);
        if (claim !== null) {
          yield* locate(claim);
          return claim;
        }
        if (!wait) {
          onEvent(w, "give up");
          return null;
        }
        yield* waitTurn(w);
      }
    }

    // -- Closing: close() and #finish() --

    function* finish(w: number): Thread {
      yield;
      Atomics.store(sw, SW_CLOSED, 1);
      yield* seal(w);
    }

    // -- Publishing: SharedPublisher.publish(), lockPublish(), collect(), unlockPublish() --

    function* lockPublish(me: number): Steps<boolean> {
      yield;
      if (Atomics.compareExchange(sw, SW_LOCK, 0, me) === 0) return true;
      onEvent(me - 1, "lock taken");
      yield;
      Atomics.store(sw, SW_AGAIN, 1);
      if (bug === "lock-no-retry") return false;
      // The holder may have let go before it saw the note.
      yield;
      return Atomics.compareExchange(sw, SW_LOCK, 0, me) === 0;
    }

    function* unlockPublish(me: number): Steps<boolean> {
      yield;
      holder = 0;
      Atomics.store(sw, SW_LOCK, 0);
      if (bug === "unlock-ignores-again") return false;
      yield;
      if (Atomics.load(sw, SW_AGAIN) === 0) return false;
      yield;
      const again = Atomics.compareExchange(sw, SW_LOCK, 0, me) === 0;
      if (again) onEvent(me - 1, "publish again");
      return again;
    }

    /** offer(): hands a buffer's value on when it differs from what was published last. */
    function* offer(word: number, value: number, out: [number, number][]): Thread {
      yield;
      if (sw[word + E_PUBLISHED] === value) return;
      yield;
      sw[word + E_PUBLISHED] = value;
      yield;
      out.push([sw[word + E_INDEX]!, value]);
    }

    function* collect(me: number, out: [number, number][]): Steps<number> {
      yield;
      Atomics.store(sw, SW_AGAIN, 0);
      const last = yield* cursorSeq();
      yield;
      let seq = Atomics.load(sw, SW_DELIVER);
      for (; seq <= last; seq++) {
        const word = ringWord(seq & SLOT_MASK);
        yield;
        if (Atomics.load(sw, word + E_SEQ) !== seq) break;
        yield;
        let committed = Atomics.load(sw, word + E_COMMITTED);
        yield;
        let sealed = Atomics.load(sw, word + E_SEALED);
        if (sealed < 0) {
          yield;
          const cursor = Atomics.load(sw, SW_CURSOR);
          if (slotOf(cursor) === (seq & SLOT_MASK) && cursor < 0) {
            onEvent(me - 1, "seal seen in cursor");
            sealed = (cursor & OFFSET_MASK) + 1;
          } else if (slotOf(cursor) === (seq & SLOT_MASK)) {
            if (bug === "collect-sum-after-offset") {
              yield;
              committed = Atomics.load(sw, word + E_COMMITTED);
            }
            if (bug === "collect-no-offset-check" || (cursor & OFFSET_MASK) === committed) {
              onEvent(me - 1, "offer open buffer");
              yield* offer(word, committed, out);
            }
            break;
          } else {
            yield;
            sealed = Atomics.load(sw, word + E_SEALED);
            if (sealed < 0) break;
          }
        }
        if (committed !== sealed - 1) break;
        yield* offer(word, committed | PUBLISH_DONE, out);
      }
      return seq;
    }

    /** What the flusher may read once a value is pushed: every claim below its end committed. */
    function checkPushed(index: number, value: number): void {
      const use = uses.get(index) ?? fail(`published buffer ${index}, which is not in use`);
      const end = value & PUBLISH_END;
      for (const claim of use.claims) {
        if (claim.start >= end) break;
        if (!claim.committed) {
          fail(`hole: buffer ${index} published to ${end} over open ${name(claim)}`);
        }
        if (claim.start + claim.length > end) {
          fail(`buffer ${index} published to ${end}, cutting ${name(claim)}`);
        }
      }
      if ((value & PUBLISH_DONE) !== 0 && end !== use.sealedAt) {
        fail(
          `buffer ${index} published whole at ${end}, but its cursor was sealed at ${use.sealedAt}`,
        );
      }
    }

    /** SharedPublisher.publish(): under the lock, collect, push, advance; again if noted. */
    function* publish(me: number): Thread {
      if (!(yield* lockPublish(me))) return;
      do {
        if (holder !== 0) fail(`worker ${me - 1} publishes while worker ${holder - 1} does`);
        holder = me;
        // `before` (sw[SW_DELIVER]) only wakes one-worker pools' local waits: not modelled.
        const out: [number, number][] = [];
        const seq = yield* collect(me, out);
        // #push: the buffers' values go to the flusher as one chain.
        if (out.length !== 0) {
          yield;
          for (const [index, value] of out) checkPushed(index, value);
          queue.push(...out);
        }
        // advance(): its load, then the real function for the store and notify.
        yield;
        if (Atomics.load(sw, SW_DELIVER) !== seq) {
          yield;
          advance(sw, seq);
          deliverNotified++;
        }
      } while (yield* unlockPublish(me));
    }

    // -- The threads --

    function* writer(w: number): Thread {
      const open: Claim[] = [];
      const flushIfScheduled = function* (): Thread {
        if (!scheduled[w]) return;
        scheduled[w] = false;
        yield* publish(w + 1);
      };
      for (const op of scripts[w]!) {
        if (op === "flush") yield* publish(w + 1);
        else if ("commit" in op) {
          const claim = open.splice(op.commit, 1)[0];
          if (claim === undefined) throw new Error(`writer ${w} has no open claim ${op.commit}`);
          yield* settle(w, claim);
        } else if ("reserve" in op) open.push((yield* place(w, op.reserve, true))!);
        else if ("write" in op) yield* settle(w, (yield* place(w, op.write, true))!);
        else {
          const claim = yield* place(w, op.tryWrite, false);
          if (claim !== null) yield* settle(w, claim);
        }
        yield* flushIfScheduled();
      }
      // close(): cancel what is open (zeroed, then committed), newest first.
      while (open.length !== 0) yield* settle(w, open.pop()!);
      yield;
      onEvent(w, "close");
      if (Atomics.sub(sw, SW_HANDLES, 1) === 1) yield* finish(w);
      yield* publish(w + 1);
      yield* flushIfScheduled();
      writerDone[w] = true;
      running--;
    }

    /** A worker's #switching promise: a switch its caller gave up waiting for. */
    function* switchTask(w: number): Thread {
      for (;;) {
        yield () => switching[w]! || writerDone[w]!;
        if (!switching[w]) break;
        yield* switchLater(w);
        // .finally(): #switching = null, and the worker's waiting calls wake.
        switching[w] = false;
      }
      running--;
    }

    /** The flusher: takes what was pushed, in order; a buffer whole goes back to the pool. */
    function* flusher(): Thread {
      for (;;) {
        yield () => queue.length !== 0 || running === 0;
        const item = queue.shift();
        if (item === undefined) return;
        const [index, value] = item;
        const use = uses.get(index) ?? fail(`the flusher got buffer ${index}, which is not in use`);
        const end = value & PUBLISH_END;
        if (end < use.flushedTo) {
          fail(`buffer ${index}'s published end went back from ${use.flushedTo} to ${end}`);
        }
        for (const claim of use.claims) {
          if (claim.start < use.flushedTo || claim.start >= end) continue;
          if (claim.delivered) fail(`${name(claim)} delivered twice`);
          if (claim.n !== arrived[claim.writer]) {
            fail(`${name(claim)} arrived before its claim ${arrived[claim.writer]}`);
          }
          claim.delivered = true;
          arrived[claim.writer]!++;
        }
        use.flushedTo = end;
        if ((value & PUBLISH_DONE) !== 0) {
          const open = use.claims.find((claim) => !claim.delivered);
          if (open !== undefined) fail(`buffer ${index} goes back before ${name(open)} arrived`);
          // The flusher's token was the buffer's only hold: it goes back to the pool.
          yield;
          uses.delete(index);
          free.push(index);
        }
      }
    }

    const threads: Thread[] = scripts.map((_, w) => writer(w));
    for (let w = 0; w < workers; w++) if (background[w]) threads.push(switchTask(w));
    threads.push(flusher());

    return {
      threads,
      finish() {
        const lost = claims.find((claim) => !claim.delivered);
        if (lost !== undefined) return `${name(lost)} never arrived`;
        if (free.length !== bufferCount) {
          return `${bufferCount - free.length} buffer(s) never came back: ${
            [...uses.keys()].join(", ")
          }`;
        }
        if (sw[SW_CLOSED] !== 1 || sw[SW_HANDLES] !== 0) {
          return `closed ${sw[SW_CLOSED]}, handles ${sw[SW_HANDLES]} at the end`;
        }
        if (sw[SW_CURSOR]! >= 0) return "the cursor is open at the end";
        if (sw[SW_LOCK] !== 0 || sw[SW_SWITCHER] !== 0) {
          return `lock ${sw[SW_LOCK]}, switcher ${sw[SW_SWITCHER]} at the end`;
        }
        const seq = sw[SW_SEQ]!;
        if (sw[SW_DELIVER] !== seq + 1) {
          return `delivered up to ${sw[SW_DELIVER]}, last buffer ${seq}`;
        }
        return undefined;
      },
    };
  };
}

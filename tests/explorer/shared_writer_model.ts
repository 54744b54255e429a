// The SharedWriter's protocol under many interleavings: claiming room in the
// current buffer, sealing it, switching to the next, counting commits,
// publishing finished bytes under the lock that never blocks, waiting for a
// switch, closing, a flusher that ends early, and reclaiming a worker that
// died. The block is the real one (sharedWriterWords, initBlock, the SW_* /
// E_* words, the cursor's packing, the reservation records), and so are the
// buffer headers' publish words; a real function that makes one shared
// access is called as one step (markSealed, claimSwitch, dropSwitch's swap,
// remember, forget, countHandle, takeHandles, takeRecords' exchange, and the
// flush list's publish, claim and takePublished), and one that makes several
// is repeated here access by access, in the real order, with a yield before
// each (claim, seal, sealForGood, commit, nextSeq, cursorSeq,
// switchWaitValue, install, takeOverSwitch, lockPublish, unlockPublish,
// collect, advance). Each step names the real code it stands for, so a
// change there can be followed here.
//
// Writers run the calls of SharedWriterCore in src/_shared_writer_core.ts
// (#claim, #turnOver, #switchLater, #install, #bufferOf, #place, #settle,
// #waitTurn, close, #finish, reclaim, #settleDead), of TurnWaiters in
// src/_shared_writer_waits.ts (wait, #watch) and of SharedPublisher in
// src/_shared_publisher.ts (publish, #push, #drop). Each worker has two
// threads: its calls, and its #switching promise (a switch that goes on
// without the call that started it). The flusher takes what was pushed, in
// order, as FlushListTaker does (take, #deliver, end): it claims a buffer's
// token the first time it sees it, and gives it back once it delivered the
// buffer whole (the region's release is not modelled apart). The pool is a
// free list with, per buffer off it, the workers holding it, the tokens
// lent and whether the flusher holds one; the pool's own steps have their
// own models. Not modelled: the flush list's links (a FIFO of pushed
// buffers stands for it; it has its own model), the flusher's bell,
// signals (a call that gives up at once stands for an abort), codecs and
// one-worker pools.
//
// A worker may die (stop taking steps) from a given step on, inside or
// outside named windows; another worker then runs reclaim and the pool's
// reclaim of it, and closes its own handle.
//
// Ghost state, kept beside the words, knows which buffer each claim is in
// and whether it was committed, and checks: the flusher never reads a byte
// range holding a claim not yet committed; every claim arrives once, each
// writer's in the order it made them; no buffer goes back to the pool while
// the cursor is on it or a claim in it is open; nobody takes a token that
// was not lent; at the end every buffer is back, every claim arrived
// (unless the flusher ended), the writer is closed and its words at rest.

import { type Model, type Step, type Thread, Violation } from "./scheduler.ts";
import {
  claimSwitch,
  commitRowWord,
  dropSwitch,
  E_INDEX,
  E_PUBLISHED,
  E_SEALED,
  E_SEQ,
  initBlock,
  markSealed,
  MIN_RING_SLOTS,
  NOTE_OPEN,
  NOTE_WHOLE,
  openBitsWord,
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
  SW_ROWS,
  SW_SEQ,
  SW_SHIFT,
  SW_SWITCHER,
} from "../../src/_shared_writer_block.ts";
import { useRow } from "../../src/_shared_commit_counts.ts";
import {
  countHandle,
  forget,
  remember,
  takeHandles,
  takeRecords,
} from "../../src/_shared_reservations.ts";
import {
  claim as claimForFlusher,
  flushedTo,
  publish as publishValue,
  setFlushedTo,
  startBuffer,
  takePublished,
  unclaim,
} from "../../src/_flush_list.ts";
import { computeLayout, headerWord, PUBLISH_DONE, PUBLISH_END } from "../../src/_layout.ts";

/**
 * What a writer does, in order (after its last op, or once a call finds
 * the writer closed, it closes its handle): `write` claims room (waiting for
 * the next buffer if need be) and commits at once; `tryWrite` gives up if
 * the next buffer is not there at once, as an aborted wait does, while a
 * switch it started goes on without it; `reserve` leaves a claim open (a
 * reserve refused for waiting while one is open holds its place with
 * nothing); `commit` commits what the list of open claims holds at that
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
  /** commit reads E_SEALED before it stores its row's count. */
  | "commit-reads-sealed-first"
  /** install leaves the ring slot's counts of its last buffer in the rows. */
  | "install-keeps-counts"
  /** unlockPublish lets the lock go without looking at SW_AGAIN. */
  | "unlock-ignores-again"
  /** lockPublish leaves its note but does not try the lock again. */
  | "lock-no-retry"
  /** install opens the cursor before it fills the ring slot's words. */
  | "install-cursor-first"
  /** #install does not look whether the writer closed while it switched. */
  | "install-ignores-closed"
  /**
   * Waiters wait on the cursor (as they used to), which install notifies
   * as it opens it, instead of on SW_SWITCHER after its clearing.
   */
  | "wait-on-cursor"
  /** reclaim does not free a dead worker's publisher lock. */
  | "reclaim-keeps-lock"
  /** reclaim does not take over a dead worker's switch. */
  | "reclaim-keeps-switch";

/**
 * Stretches of a worker's steps in which dying loses something that
 * reclaim cannot find: the model names them so that a death can be placed
 * outside all of them, or inside one.
 */
export type SharedWriterWindow =
  /** From the claim's compare-and-swap until remember() records it. */
  | "claimed, not recorded"
  /** From forget() until commit's add. */
  | "forgotten, not committed"
  /** From pool._lend() until install() stores the ring slot's E_SEQ. */
  | "lent, not installed"
  /** From collect's first E_PUBLISHED store until pushChain (or until #push finds nothing to push). */
  | "offered, not pushed"
  /** From close's countHandle(-1) until its subtraction from SW_HANDLES. */
  | "counted out, not subtracted"
  /** From install's or dropSwitch's clearing of SW_SWITCHER until its notify. */
  | "switcher cleared, not notified"
  /** From advance's store to SW_DELIVER until its notify. */
  | "delivery moved, not notified";

/**
 * Moments a run passes, reported with the worker they happen in (-1: the
 * flusher): a test uses them to see that the explored schedules reach every
 * branch, or to steer a schedule.
 */
export type SharedWriterEvent =
  /** A claim was placed. */
  | "claim"
  /** This worker's seal() sealed the cursor. */
  | "seal"
  /** A switch found the ring full, and publishes before it waits. */
  | "ring full publishes"
  /** A commit found its buffer sealed, and publishes. */
  | "commit sees seal"
  /** A tryWrite gave up: the next buffer was not there at once. */
  | "give up"
  /** A call that would wait was refused: its handle holds an open reservation. */
  | "refused"
  /** A switch waits for the pool to give a buffer back. */
  | "switch waits for a buffer"
  /** #switchLater's nextSeq() found the next ring slot still in use (-2): it waits for the delivery mark. */
  | "ring full"
  /** nextSeq() found the cursor open (-1): another switch finished first. */
  | "switch already done"
  /** install() opened the cursor on a new buffer. */
  | "open cursor"
  /** A call waits (#watch's waitAsync) for another worker's switch. */
  | "wait for switch"
  /** #install found the writer closed, and seals the new buffer. */
  | "install after close"
  /** #install found every buffer before the new one delivered, and does not publish. */
  | "install skips the publish"
  /** sealForGood() marked a sealed buffer that its sealer had not marked yet. */
  | "seal for good marks"
  /** lockPublish() found the lock taken, and left a note. */
  | "lock taken"
  /** unlockPublish() found a note, and the publisher goes round again. */
  | "publish again"
  /** collect() offered an open buffer's committed bytes. */
  | "offer open buffer"
  /** collect() took a buffer's end from the sealed cursor, not yet marked in its slot. */
  | "seal seen in cursor"
  /** A worker closed its handle. */
  | "close"
  /** The flusher's consumer failed: the flusher ends. */
  | "flusher ends"
  /** #push found the flusher gone: #drop. */
  | "push finds the flusher gone"
  /** The worker stops taking steps. */
  | "die"
  /** reclaim zeroed and committed a dead worker's open claim. */
  | "reclaim settles a claim"
  /** reclaim freed the publisher's lock the dead worker held. */
  | "lock taken from the dead"
  /** takeOverSwitch opened the buffer the dead switcher had installed. */
  | "take over the switch: open"
  /** takeOverSwitch dropped the dead worker's switch. */
  | "take over the switch: drop";

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
  /**
   * Worker `victim` dies at the first step from step `at` on (counted over
   * all threads) at which it is outside every window, or inside window
   * `inside` when given (and not at all if it never is). A reclaiming
   * worker, whose handle counts from the start, then runs reclaim and the
   * pool's reclaim, and closes its handle.
   */
  death?: { victim: number; at: number; inside?: SharedWriterWindow | undefined };
  /** The flusher's consumer fails at the first step from this one on, and the flusher ends. */
  flusherEndsAt?: number;
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
  /** Its reservation record, once remembered. */
  record: number;
  committed: boolean;
  delivered: boolean;
}

/** One buffer from the opening of the cursor on it until it goes back to the pool. */
interface Use {
  readonly index: number;
  readonly seq: number;
  /** Its claims, in the order of their offsets. */
  readonly claims: Claim[];
  /** The offset its cursor was sealed at; -1 while open. */
  sealedAt: number;
  /** What the flusher delivered of it so far. */
  flushedTo: number;
}

/** Who holds a buffer off the free list. */
interface Holds {
  /** Workers holding it in their own records (from acquiring until they release it). */
  readonly workers: Set<number>;
  /** Tokens lent (pool._lend) and not taken yet (by the flusher, or back by the writer). */
  lent: number;
  /** The flusher holds a token it took. */
  token: boolean;
}

/** Generator returning a value, yielding scheduler steps. */
type Steps<T> = Generator<Step, T, void>;

/** What place() ends with when it places nothing. */
type NotPlaced = "gave up" | "refused" | "closed";

/** The model's ring: the fewest slots, as a pool of up to 32 buffers has. */
const RING = MIN_RING_SLOTS;
const SLOT_MASK = RING - 1;

/**
 * The model: one writer handle per script, each in its own worker, a
 * flusher, and with `death` a reclaiming worker.
 */
export function sharedWriterModel(
  scripts: readonly (readonly SharedWriterOp[])[],
  options: SharedWriterModelOptions = {},
): Model {
  const bufferCount = options.buffers ?? 2;
  const size = options.bufferSize ?? 8;
  const microtask = options.cadence === "microtask";
  const bug = options.bug ?? "none";
  const onEvent = options.onEvent ?? (() => {});
  const death = options.death;
  const endsAt = options.flusherEndsAt;
  const workers = scripts.length;
  /** The reclaiming worker's slot, after the writers'. */
  const reclaiming = workers;
  const slots = death === undefined ? workers : workers + 1;
  const layout = computeLayout(size, bufferCount, 1, slots, 0);

  return () => {
    const sw = new Int32Array(sharedWriterWords(slots, RING));
    initBlock(sw, 1, 7, size, slots, 0, RING);
    /** Cursor bits above the offset: the slot's place. */
    const SLOT_UNIT = 1 << sw[SW_SHIFT]!;
    const OFFSET_MASK = SLOT_UNIT - 1;
    // Each handle's constructor counted itself before the workers start.
    sw[SW_HANDLES] = slots;
    for (let w = 0; w < slots; w++) {
      countHandle(sw, w, 1);
      useRow(sw, w);
    }
    /** Int32 index of a row's count for ring slot `slot`. */
    const countWord = (row: number, slot: number) => commitRowWord(sw, row) + slot;
    const poolWords = new Int32Array(layout.blockBytes / 4);
    const free: number[] = [];
    for (let i = bufferCount - 1; i >= 0; i--) free.push(i);
    /** Buffers off the free list, by index. */
    const holds = new Map<number, Holds>();
    /** Buffers the cursor opened on and not back in the pool, by index. */
    const uses = new Map<number, Use>();
    /** The buffer the cursor opened on last (ghost: set by install's cursor store). */
    let current: Use | null = null;
    const claims: Claim[] = [];
    const made = new Array<number>(slots).fill(0);
    const arrived = new Array<number>(slots).fill(0);
    /** Buffers pushed to the flusher and not taken yet, oldest first (the flush list). */
    const queue: number[] = [];
    /** The flush list ended (ENDED): pushes fail. */
    let listEnded = false;
    /** The flusher's F_CLOSED word. */
    let flusherClosed = false;
    /** Atomics.notify calls on SW_SWITCHER, on the cursor (wait-on-cursor only) and on SW_DELIVER. */
    let switcherNotified = 0;
    let cursorNotified = 0;
    let deliverNotified = 0;
    /** The publisher's lock as the ghost sees it: who holds it. */
    let holder = 0;
    /** Per worker: its #switching promise is pending. */
    const switching = new Array<boolean>(slots).fill(false);
    /** Per worker: a flush is scheduled (microtask cadence). */
    const scheduled = new Array<boolean>(slots).fill(false);
    const writerDone = new Array<boolean>(slots).fill(false);
    const dead = new Array<boolean>(slots).fill(false);
    /** Per worker: the windows it is in now (see SharedWriterWindow). */
    const windows: SharedWriterWindow[][] = Array.from({ length: slots }, () => []);
    /** Threads of the writers, their switches and the reclaimer still running. */
    let running = 2 * workers + (death === undefined ? 0 : 1);
    /** Steps taken so far, over all threads. */
    let steps = 0;

    const fail = (message: string): never => {
      throw new Violation(message);
    };
    const name = (c: Claim): string =>
      `writer ${c.writer}'s claim ${c.n} [${c.start}, ${c.start + c.length})`;
    const enter = (w: number, window: SharedWriterWindow) => {
      windows[w]!.push(window);
    };
    const leave = (w: number, window: SharedWriterWindow) => {
      const at = windows[w]!.indexOf(window);
      if (at >= 0) windows[w]!.splice(at, 1);
    };

    // -- The pool: a free list, and who holds each buffer off it --

    /** Pops a free buffer for worker `w` (the caller yields first); undefined if none. */
    function acquire(w: number): number | undefined {
      const index = free.pop();
      if (index !== undefined) holds.set(index, { workers: new Set([w]), lent: 0, token: false });
      return index;
    }

    function holdsOf(index: number): Holds {
      return holds.get(index) ?? fail(`buffer ${index} is used while back in the pool`);
    }

    /** Takes a lent token: the flusher's first sight of a buffer, or the writer's #drop. */
    function takeToken(index: number, who: string): void {
      const h = holdsOf(index);
      if (h.lent === 0) fail(`${who} takes buffer ${index}'s token, which nobody lent`);
      h.lent--;
    }

    /** The buffer goes back to the pool once nobody holds it: it must be done with. */
    function maybeFree(index: number): void {
      const h = holdsOf(index);
      if (h.workers.size !== 0 || h.lent !== 0 || h.token) return;
      holds.delete(index);
      const use = uses.get(index);
      if (use !== undefined) {
        if (use.sealedAt < 0) {
          fail(`buffer ${index} went back to the pool with the cursor open on it`);
        }
        const open = use.claims.find((claim) => !claim.committed);
        if (open !== undefined) {
          fail(`buffer ${index} went back to the pool while ${name(open)} is open`);
        }
        uses.delete(index);
      }
      free.push(index);
    }

    // -- Claiming room: claim() and seal() --

    /**
     * claim(), shared: a plain read, then compare-and-swap, retrying with
     * what a failed swap returns, until it fits or cannot. (The model's
     * memory is sequentially consistent: the read is never stale here.)
     */
    function* claimRoom(w: number, frame: number): Steps<Claim | null> {
      yield;
      let v = sw[SW_CURSOR]!;
      for (;;) {
        if (v < 0 || (v & OFFSET_MASK) + frame > size) return null;
        yield;
        const seen = Atomics.compareExchange(sw, SW_CURSOR, v, v + frame);
        if (seen === v) {
          const use = current ?? fail("a claim succeeded on a cursor no install opened");
          if (slotOf(sw, v) !== (use.seq & SLOT_MASK)) {
            fail(
              `the cursor's slot ${
                slotOf(sw, v)
              } is not that of buffer ${use.index} (seq ${use.seq})`,
            );
          }
          const claim: Claim = {
            writer: w,
            n: made[w]!++,
            use,
            cursor: v,
            start: v & OFFSET_MASK,
            length: frame,
            record: -1,
            committed: false,
            delivered: false,
          };
          use.claims.push(claim);
          claims.push(claim);
          enter(w, "claimed, not recorded");
          onEvent(w, "claim");
          return claim;
        }
        v = seen;
      }
    }

    /** seal(), shared: load, the buffer's sequence number, compare-and-swap in the SEALED bit, markSealed. */
    function* seal(w: number): Steps<number> {
      for (;;) {
        yield;
        const v = Atomics.load(sw, SW_CURSOR);
        if (v < 0) return -1;
        yield;
        const seq = Atomics.load(sw, ringWord(slotOf(sw, v)) + E_SEQ);
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

    /** #bufferOf, then #place's remember(seqOf()): where the claim's bytes go, recorded for a reclaim. */
    function* locate(w: number, claim: Claim): Thread {
      const word = ringWord(slotOf(sw, claim.cursor));
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
      yield;
      claim.record = remember(sw, w, seq, claim.start, claim.length, claim.length);
      leave(w, "claimed, not recorded");
    }

    // -- Committing: #settle() and commit() --

    function* settle(w: number, claim: Claim): Thread {
      const word = ringWord(slotOf(sw, claim.cursor));
      const count = countWord(w, slotOf(sw, claim.cursor));
      yield;
      forget(sw, w, claim.record);
      enter(w, "forgotten, not committed");
      const add = () => {
        if (uses.get(claim.use.index) !== claim.use) {
          fail(`${name(claim)} committed after its buffer went back`);
        }
        // A store: only this worker writes its row.
        Atomics.store(sw, count, sw[count]! + claim.length);
        claim.committed = true;
        leave(w, "forgotten, not committed");
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
        // Read after the store: the sealer stores E_SEALED before it reads the counts.
        yield;
        sealed = Atomics.load(sw, word + E_SEALED) > 0;
      }
      if (sealed) {
        onEvent(w, "commit sees seal");
        // #publishSoon: at the end of the microtask, whole buffers only.
        yield* publish(w, false);
      } else if (microtask) scheduled[w] = true;
    }

    // -- Switching: nextSeq(), cursorSeq(), install(), dropSwitch() --

    function* cursorSeq(): Steps<number> {
      yield;
      const seq = Atomics.load(sw, SW_SEQ);
      yield;
      const slot = slotOf(sw, Atomics.load(sw, SW_CURSOR));
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
      if (Atomics.load(sw, SW_DELIVER) <= next - RING) return -2;
      return next;
    }

    /** install(), step by step, by worker `w` (the switcher, or a reclaim taking its switch over). */
    function* install(w: number, index: number, seq: number): Thread {
      const word = ringWord(seq & SLOT_MASK);
      const openCursor = () => {
        Atomics.store(sw, SW_CURSOR, (seq & SLOT_MASK) * SLOT_UNIT);
        if (uses.has(index)) fail(`buffer ${index} opened again while in use`);
        current = { index, seq, claims: [], sealedAt: -1, flushedTo: 0 };
        uses.set(index, current);
        onEvent(w, "open cursor");
        // The old way: waiters on the cursor were woken as it opened.
        if (bug === "wait-on-cursor") cursorNotified++;
      };
      yield;
      startBuffer(poolWords, headerWord(layout, index), sw[SW_ID]!);
      if (bug === "install-cursor-first") {
        yield;
        openCursor();
      }
      yield;
      sw[word + E_INDEX] = index;
      if (bug !== "install-keeps-counts") {
        const rows = Atomics.load(sw, SW_ROWS);
        for (let row = rows - 1; row >= 0; row--) {
          yield;
          const count = countWord(row, seq & SLOT_MASK);
          if (sw[count] !== 0) sw[count] = 0;
        }
      }
      yield;
      sw[word + E_SEALED] = ~seq;
      yield;
      sw[word + E_PUBLISHED] = 0;
      yield;
      Atomics.store(sw, word + E_SEQ, seq);
      leave(w, "lent, not installed");
      if (bug !== "install-cursor-first") {
        yield;
        openCursor();
      }
      yield;
      Atomics.store(sw, SW_SEQ, seq);
      yield;
      Atomics.store(sw, SW_SWITCHER, 0);
      enter(w, "switcher cleared, not notified");
      yield;
      switcherNotified++;
      leave(w, "switcher cleared, not notified");
    }

    /**
     * #install: the token lent, the worker's hold released, install();
     * finish if closed meanwhile; publish, unless the seal's publish
     * delivered every buffer before this one.
     */
    function* installBuffer(w: number, index: number, seq: number): Thread {
      yield;
      holdsOf(index).lent++;
      enter(w, "lent, not installed");
      yield;
      holdsOf(index).workers.delete(w);
      yield* install(w, index, seq);
      let closed = false;
      if (bug !== "install-ignores-closed") {
        yield;
        closed = Atomics.load(sw, SW_CLOSED) !== 0;
        if (closed) {
          onEvent(w, "install after close");
          yield* sealForGood(w);
        }
      }
      if (!closed) {
        yield;
        if (Atomics.load(sw, SW_DELIVER) === seq) {
          onEvent(w, "install skips the publish");
          return;
        }
      }
      // #publishSoon, unless closed.
      yield* publish(w, closed);
    }

    /** dropSwitch(sw, w + 1): one compare-and-swap, and a notify if it let go. */
    function* dropSwitchStep(w: number): Thread {
      yield;
      const held = sw[SW_SWITCHER] === w + 1;
      dropSwitch(sw, w + 1);
      if (held) {
        enter(w, "switcher cleared, not notified");
        yield;
        switcherNotified++;
        leave(w, "switcher cleared, not notified");
      }
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
        const index = acquire(w)!;
        yield* installBuffer(w, index, next);
        return;
      }
      yield* dropSwitchStep(w);
    }

    /**
     * #turnOver: no room for `frame`. Seals the buffer if it is still the
     * full one, and switches if no other worker is at it: at once if the
     * pool has a buffer, else in this worker's #switching task. Whether to
     * claim again, or "closed".
     */
    function* turnOver(w: number, frame: number): Steps<boolean | "closed"> {
      yield;
      if (Atomics.load(sw, SW_CLOSED) !== 0) {
        // Only the last close, a reclaim's or a push that found the flusher
        // gone closes the writer.
        if (endsAt === undefined) fail(`writer ${w} claims after the writer closed`);
        return "closed";
      }
      yield;
      if (flusherClosed) return "closed";
      yield;
      const cursor = Atomics.load(sw, SW_CURSOR);
      if (cursor >= 0) {
        if ((cursor & OFFSET_MASK) + frame <= size) return true;
        if ((yield* seal(w)) !== -1) yield* publish(w, false);
      }
      if (switching[w]) return false;
      yield;
      if (!claimSwitch(sw, w + 1)) {
        // The spin, as one look: another worker switches.
        yield;
        return Atomics.load(sw, SW_CURSOR) >= 0 || Atomics.load(sw, SW_SWITCHER) === 0;
      }
      let next = yield* nextSeq();
      if (next === -2) {
        onEvent(w, "ring full publishes");
        yield* publish(w);
        next = yield* nextSeq();
      }
      if (next === -1) {
        onEvent(w, "switch already done");
        yield* dropSwitchStep(w);
        return true;
      }
      let index: number | undefined;
      if (next !== -2) {
        // pool._tryAcquireRecord()
        yield;
        index = acquire(w);
      }
      if (index !== undefined) {
        yield* installBuffer(w, index, next);
        return true;
      }
      // The switch goes on without the caller.
      switching[w] = true;
      return false;
    }

    /** #claim(): claims, turning the buffer over while that helps. */
    function* claimOrTurn(w: number, frame: number): Steps<Claim | null | "closed"> {
      for (;;) {
        const claim = yield* claimRoom(w, frame);
        if (claim !== null) return claim;
        const turned = yield* turnOver(w, frame);
        if (turned !== true) return turned === false ? null : turned;
      }
    }

    /**
     * #waitTurn() and TurnWaiters.wait(): refused while the handle holds an
     * open reservation; on this worker's own switch; or (#watch) a waitAsync
     * on SW_SWITCHER while switchWaitValue() holds. Whether it waited.
     */
    function* waitTurn(w: number, open: readonly (Claim | null)[]): Steps<boolean> {
      if (open.some((claim) => claim !== null)) {
        onEvent(w, "refused");
        return false;
      }
      if (switching[w]) {
        yield () => !switching[w];
        return true;
      }
      if (bug === "wait-on-cursor") {
        yield;
        const seen = Atomics.load(sw, SW_CURSOR);
        if (seen >= 0) return true;
        yield;
        if (sw[SW_CURSOR] !== seen) return true;
        onEvent(w, "wait for switch");
        const notified = cursorNotified;
        yield () => cursorNotified !== notified;
        return true;
      }
      // switchWaitValue(): the cursor, then the switcher.
      yield;
      if (Atomics.load(sw, SW_CURSOR) >= 0) return true;
      yield;
      const switcher = Atomics.load(sw, SW_SWITCHER);
      if (switcher === 0) return true;
      // Atomics.waitAsync compares and starts waiting in one step.
      yield;
      if (sw[SW_SWITCHER] !== switcher) return true;
      onEvent(w, "wait for switch");
      const notified = switcherNotified;
      yield () => switcherNotified !== notified;
      return true;
    }

    /** reserve() and write() (`wait`), or tryReserve() and tryWrite(): a claim placed, or why not. */
    function* place(
      w: number,
      frame: number,
      wait: boolean,
      open: readonly (Claim | null)[],
    ): Steps<Claim | NotPlaced> {
      for (;;) {
        const claim = yield* claimOrTurn(w, frame);
        if (claim === "closed") return claim;
        if (claim !== null) {
          yield* locate(w, claim);
          return claim;
        }
        if (!wait) {
          onEvent(w, "give up");
          return "gave up";
        }
        if (!(yield* waitTurn(w, open))) return "refused";
      }
    }

    // -- Closing: close(), #finish() and sealForGood() --

    /** sealForGood(): SW_CLOSED, seal, and the cursor's buffer marked (its sealer may not have). */
    function* sealForGood(w: number): Thread {
      yield;
      Atomics.store(sw, SW_CLOSED, 1);
      yield* seal(w);
      yield;
      const cursor = Atomics.load(sw, SW_CURSOR);
      if (cursor < 0) {
        const seq = yield* cursorSeq();
        yield;
        if (sw[ringWord(slotOf(sw, cursor)) + E_SEALED] === ~seq) onEvent(w, "seal for good marks");
        markSealed(sw, cursor, seq);
      }
    }

    /** close(): cancels what is open (zeroed, then committed), newest first; the last handle finishes. */
    function* closeHandle(w: number, open: readonly (Claim | null)[]): Thread {
      for (let i = open.length - 1; i >= 0; i--) {
        const claim = open[i];
        if (claim) yield* settle(w, claim);
      }
      onEvent(w, "close");
      yield;
      countHandle(sw, w, -1);
      enter(w, "counted out, not subtracted");
      yield;
      leave(w, "counted out, not subtracted");
      if (Atomics.sub(sw, SW_HANDLES, 1) === 1) yield* sealForGood(w);
      yield* publish(w);
    }

    // -- Publishing: SharedPublisher.publish(), lockPublish(), collect(), #push, unlockPublish() --

    function* lockPublish(me: number, open: boolean): Steps<boolean> {
      yield;
      if (Atomics.compareExchange(sw, SW_LOCK, 0, me) === 0) return true;
      onEvent(me - 1, "lock taken");
      yield;
      Atomics.or(sw, SW_AGAIN, open ? NOTE_OPEN | NOTE_WHOLE : NOTE_WHOLE);
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
    function* offer(me: number, word: number, value: number, out: [number, number][]): Thread {
      yield;
      if (sw[word + E_PUBLISHED] === value) return;
      yield;
      sw[word + E_PUBLISHED] = value;
      if (!windows[me - 1]!.includes("offered, not pushed")) enter(me - 1, "offered, not pushed");
      yield;
      out.push([sw[word + E_INDEX]!, value]);
    }

    /** The rows' counts for ring slot `slot`, one load a step. */
    function* committedIn(slot: number): Steps<number> {
      yield;
      const rows = Atomics.load(sw, SW_ROWS);
      let sum = 0;
      for (let row = 0; row < rows; row++) {
        yield;
        sum += Atomics.load(sw, countWord(row, slot));
      }
      return sum;
    }

    function* collect(me: number, open: boolean, out: [number, number][]): Steps<number> {
      yield;
      if ((Atomics.exchange(sw, SW_AGAIN, 0) & NOTE_OPEN) !== 0) open = true;
      const last = yield* cursorSeq();
      yield;
      let seq = Atomics.load(sw, SW_DELIVER);
      for (; seq <= last; seq++) {
        const word = ringWord(seq & SLOT_MASK);
        yield;
        if (Atomics.load(sw, word + E_SEQ) !== seq) break;
        let committed = yield* committedIn(seq & SLOT_MASK);
        yield;
        let sealed = Atomics.load(sw, word + E_SEALED);
        if (sealed < 0) {
          yield;
          const cursor = Atomics.load(sw, SW_CURSOR);
          if (slotOf(sw, cursor) === (seq & SLOT_MASK) && cursor < 0) {
            onEvent(me - 1, "seal seen in cursor");
            sealed = (cursor & OFFSET_MASK) + 1;
          } else if (slotOf(sw, cursor) === (seq & SLOT_MASK)) {
            if (bug === "collect-sum-after-offset") committed = yield* committedIn(seq & SLOT_MASK);
            if (!open) break;
            if (bug === "collect-no-offset-check" || (cursor & OFFSET_MASK) === committed) {
              onEvent(me - 1, "offer open buffer");
              yield* offer(me, word, committed, out);
            }
            break;
          } else {
            yield;
            sealed = Atomics.load(sw, word + E_SEALED);
            if (sealed < 0) break;
          }
        }
        if (committed !== sealed - 1) break;
        yield* offer(me, word, committed | PUBLISH_DONE, out);
      }
      return seq;
    }

    /** What the flusher may read once a value is in a buffer's header: every claim below its end committed. */
    function checkPublished(index: number, value: number): void {
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

    /** #push: each value into its buffer's header (publish()), then pushChain; #drop if the flusher ended. */
    function* push(me: number, out: readonly [number, number][]): Thread {
      const chain: number[] = [];
      for (const [index, value] of out) {
        yield;
        checkPublished(index, value);
        if (publishValue(poolWords, headerWord(layout, index), value)) chain.push(index);
      }
      if (chain.length !== 0) {
        // pushChain(), one step here: the flush list has its own model.
        yield;
        if (listEnded) {
          leave(me - 1, "offered, not pushed");
          yield* drop(me, chain);
        } else queue.push(...chain);
      }
      leave(me - 1, "offered, not pushed");
    }

    /** #drop: the flusher ended; whole buffers give their token back, and the writer is sealed for good. */
    function* drop(me: number, chain: readonly number[]): Thread {
      onEvent(me - 1, "push finds the flusher gone");
      for (let i = chain.length - 1; i >= 0; i--) {
        const index = chain[i]!;
        yield;
        if ((takePublished(poolWords, headerWord(layout, index)) & PUBLISH_DONE) !== 0) {
          // pool._claim(index).release()
          yield;
          takeToken(index, `worker ${me - 1}'s #drop`);
          maybeFree(index);
        }
      }
      yield* sealForGood(me - 1);
      yield;
      Atomics.or(sw, SW_AGAIN, NOTE_WHOLE);
    }

    /**
     * SharedPublisher.publish(open) by worker `w`: under the lock, collect,
     * push, advance; again if noted. `open`: offer the open buffer too.
     */
    function* publish(w: number, open = true): Thread {
      const me = w + 1;
      if (!(yield* lockPublish(me, open))) return;
      do {
        if (holder !== 0) fail(`worker ${w} publishes while worker ${holder - 1} does`);
        holder = me;
        // `before` (sw[SW_DELIVER]) only wakes one-worker pools' local waits: not modelled.
        const out: [number, number][] = [];
        const seq = yield* collect(me, open, out);
        yield* push(me, out);
        // advance(): load, store, notify.
        yield;
        if (Atomics.load(sw, SW_DELIVER) !== seq) {
          yield;
          Atomics.store(sw, SW_DELIVER, seq);
          enter(w, "delivery moved, not notified");
          yield;
          deliverNotified++;
          leave(w, "delivery moved, not notified");
        }
      } while (yield* unlockPublish(me));
    }

    // -- Reclaiming a dead worker: SharedWriterCore.reclaim() and takeOverSwitch() --

    function* takeOverSwitch(w: number, dead: number): Thread {
      yield;
      if (Atomics.load(sw, SW_SWITCHER) !== dead) return;
      yield;
      if (Atomics.load(sw, SW_CURSOR) < 0) {
        const next = (yield* cursorSeq()) + 1;
        const word = ringWord(next & SLOT_MASK);
        yield;
        if (Atomics.load(sw, word + E_SEQ) === next) {
          yield;
          const index = sw[word + E_INDEX]!;
          onEvent(w, "take over the switch: open");
          yield* install(w, index, next);
          return;
        }
      }
      onEvent(w, "take over the switch: drop");
      yield* dropSwitchStep(dead - 1);
    }

    /** The reclaiming worker: once `victim` is dead, writer.reclaim(), pool.reclaim(), then close(). */
    function* reclaimer(
      victim: number,
      at: number,
      inside: SharedWriterWindow | undefined,
    ): Thread {
      const w = reclaiming;
      // Inside a window: that one alone, so that what goes wrong is its doing.
      const fits = () =>
        windows[victim]!.length === 0
          ? inside === undefined
          : windows[victim]!.every((window) => window === inside);
      yield () => (steps >= at || writerDone[victim]!) && (fits() || writerDone[victim]!);
      if (fits()) {
        dead[victim] = true;
        onEvent(victim, "die");
        // takeRecords(): one exchange of the dead worker's bits; its records are its own.
        yield;
        const records: [number, number, number][] = [];
        takeRecords(sw, victim, (seq, offset, frame) => records.push([seq, offset, frame]));
        for (const [seq, offset, frame] of records) {
          const claim = claims.find((c) =>
            c.writer === victim && c.use.seq === seq && c.start === offset && !c.committed
          ) ?? fail(`reclaim found a record (seq ${seq}, offset ${offset}) of no open claim`);
          // #settleDead: #bufferOf, zero, commit() (whose answer the publish below makes moot).
          const word = ringWord(seq & SLOT_MASK);
          yield;
          if (sw[word + E_INDEX] !== claim.use.index) {
            fail(`reclaim settles ${name(claim)} in buffer ${sw[word + E_INDEX]}`);
          }
          yield;
          if (uses.get(claim.use.index) !== claim.use) {
            fail(`reclaim commits ${name(claim)} after its buffer went back`);
          }
          // In the reclaiming worker's own row.
          const count = countWord(w, seq & SLOT_MASK);
          Atomics.store(sw, count, sw[count]! + frame);
          claim.committed = true;
          onEvent(w, "reclaim settles a claim");
          yield;
          Atomics.load(sw, word + E_SEALED);
        }
        const me = victim + 1;
        if (bug !== "reclaim-keeps-lock") {
          yield;
          if (Atomics.compareExchange(sw, SW_LOCK, me, 0) === me) {
            holder = 0;
            onEvent(w, "lock taken from the dead");
          }
        }
        if (bug !== "reclaim-keeps-switch") yield* takeOverSwitch(w, me);
        yield;
        const handles = takeHandles(sw, victim);
        if (handles > 0) {
          yield;
          if (Atomics.sub(sw, SW_HANDLES, handles) === handles) yield* sealForGood(w);
        }
        yield* publish(w);
        // notifyAll(): the dead worker may have died between a store and its notify.
        yield;
        switcherNotified++;
        yield;
        deliverNotified++;
        // pool.reclaim(victim): what it held in its own records goes back (one step: the pool has its own model).
        yield;
        for (const [index, h] of [...holds]) {
          if (h.workers.delete(victim)) maybeFree(index);
        }
      }
      yield* closeHandle(w, []);
      writerDone[w] = true;
    }

    // -- The threads --

    /** A worker's thread, which stops taking steps once the worker is dead. */
    function* mortal(w: number, thread: Thread): Thread {
      for (;;) {
        if (dead[w]) break;
        const result = thread.next();
        if (result.done) break;
        const step = result.value;
        if (step === undefined) yield;
        else yield () => dead[w]! || step();
      }
      running--;
    }

    function* writer(w: number): Thread {
      const open: (Claim | null)[] = [];
      const flushIfScheduled = function* (): Thread {
        if (!scheduled[w]) return;
        scheduled[w] = false;
        yield* publish(w);
      };
      for (const op of scripts[w]!) {
        if (op === "flush") yield* publish(w);
        else if ("commit" in op) {
          const claim = open.splice(op.commit, 1)[0];
          if (claim === undefined) throw new Error(`writer ${w} has no open claim ${op.commit}`);
          if (claim !== null) yield* settle(w, claim);
        } else {
          const wait = !("tryWrite" in op);
          const length = "reserve" in op ? op.reserve : "write" in op ? op.write : op.tryWrite;
          const placed = yield* place(w, length, wait, open);
          if (placed === "closed") break;
          if ("reserve" in op) open.push(typeof placed === "string" ? null : placed);
          else if (typeof placed !== "string") yield* settle(w, placed);
        }
        yield* flushIfScheduled();
      }
      yield* closeHandle(w, open);
      yield* flushIfScheduled();
      writerDone[w] = true;
    }

    /** A worker's #switching promise: a switch its caller does not wait for. */
    function* switchTask(w: number): Thread {
      for (;;) {
        yield () => switching[w]! || writerDone[w]!;
        if (!switching[w]) break;
        yield* switchLater(w);
        // .finally(): #switching = null, and the worker's waiting calls wake.
        switching[w] = false;
      }
    }

    /** FlushListTaker's #deliver: a region of the buffer's news (or, ending, nothing); the token goes once it is whole. */
    function* deliver(index: number, ending: boolean): Thread {
      const header = headerWord(layout, index);
      const h = holdsOf(index);
      if (!h.token) {
        // pool._claim(index), claim()
        yield;
        takeToken(index, "the flusher");
        h.token = true;
        claimForFlusher(poolWords, header);
      }
      yield;
      const value = takePublished(poolWords, header);
      const end = value & PUBLISH_END;
      const done = (value & PUBLISH_DONE) !== 0;
      const from = flushedTo(poolWords, header);
      if (end > from && !ending) {
        setFlushedTo(poolWords, header, end);
        const use = uses.get(index) ?? fail(`the flusher got buffer ${index}, which is not in use`);
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
        if (done) {
          const lost = use.claims.find((claim) => !claim.delivered);
          if (lost !== undefined) fail(`buffer ${index} delivered whole before ${name(lost)}`);
        }
      }
      if (done) {
        // The last region takes the token over, and is released.
        yield;
        h.token = false;
        maybeFree(index);
      }
    }

    /** FlushListTaker's #handBack: a shared writer's tokens go back to it, lent and unclaimed. */
    function* handBack(): Thread {
      for (const [index, h] of [...holds]) {
        if (!h.token) continue;
        yield;
        h.token = false;
        h.lent++;
        unclaim(poolWords, headerWord(layout, index));
      }
    }

    /** The flusher: takes what was pushed, in order; ends early when its consumer fails. */
    function* flusher(): Thread {
      const ending = () => endsAt !== undefined && steps >= endsAt;
      for (;;) {
        yield () => queue.length !== 0 || running === 0 || ending();
        if (ending()) break;
        if (queue.length === 0) return;
        // takeList(), one step here.
        yield;
        for (const index of queue.splice(0)) yield* deliver(index, false);
      }
      // #fail: storeFailure (F_CLOSED), then FlushListTaker.end(null).
      onEvent(-1, "flusher ends");
      yield;
      flusherClosed = true;
      for (;;) {
        yield;
        for (const index of queue.splice(0)) yield* deliver(index, true);
        yield* handBack();
        // endList(): from an empty head only.
        yield;
        if (queue.length === 0) break;
      }
      listEnded = true;
      for (const [index, h] of [...holds]) {
        if (!h.token) continue;
        yield;
        h.token = false;
        maybeFree(index);
      }
    }

    const threads: Thread[] = scripts.map((_, w) => mortal(w, writer(w)));
    threads.push(flusher());
    for (let w = 0; w < workers; w++) threads.push(mortal(w, switchTask(w)));
    if (death !== undefined) {
      threads.push(
        (function* (): Thread {
          yield* reclaimer(death.victim, death.at, death.inside);
          running--;
        })(),
      );
    }

    return {
      threads,
      check() {
        steps++;
        return undefined;
      },
      finish() {
        if (endsAt === undefined) {
          const lost = claims.find((claim) => !claim.delivered);
          if (lost !== undefined) return `${name(lost)} never arrived`;
        }
        if (free.length !== bufferCount) {
          return `${bufferCount - free.length} buffer(s) never came back: ${
            [...holds.keys()].join(", ")
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
        const last = seq + ((slotOf(sw, sw[SW_CURSOR]!) - seq) & SLOT_MASK);
        if (sw[SW_DELIVER] !== last + 1) {
          return `delivered up to ${sw[SW_DELIVER]}, last buffer ${last}`;
        }
        for (let w = 0; w < slots; w++) {
          const word = openBitsWord(sw, w);
          if (sw[word] !== 0 || sw[word + 1] !== 0) {
            return `worker ${w} still has records ${sw[word]} and handles ${sw[word + 1]}`;
          }
        }
        return undefined;
      },
    };
  };
}

// One of the two writers of the shared-writer litmus (../litmus_test.ts).
// Both attach to one SharedWriter and, in rounds the main thread starts,
// place numbered messages (../_litmus.ts) as fast as they can, while the
// main thread flushes and consumes. Each claim is checked to be all zeros
// (the consumer zeroes what it read), filled only after a random spin (or,
// now and then, a hold long enough for the consumer to read a batch), and
// checked again just before its commit: a region handed to the flusher
// before a message in it was committed shows up on one side or the other.
// "sharedWriterPairs" holds two reservations and commits the newer first.
import { BufferPool, type SharedReservation, SharedWriter } from "../../mod.ts";
import { prng } from "../_helpers.ts";
import {
  ABORT,
  CONSUMED,
  fillMessage,
  FINISHED,
  GEN,
  hex,
  isZero,
  type LitmusReply,
  type LitmusRequest,
  messageLength,
  PLACED,
  readMessage,
  ROUND,
  roundFlushes,
  SHARED_CODEC,
  waitAtLeast,
} from "../_litmus.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<LitmusRequest>) => void) | null;
  postMessage(message: LitmusReply): void;
};

/** How long one round may take in a worker before it counts as stuck. */
const STUCK_MS = 5_000;
/** Messages a worker places in a round: 1 to this many. */
const MAX_PER_ROUND = 24;
/** Spins between a claim and its filling: the window in which a hole shows as zeros. */
const HOLE_WINDOW = 256;
/**
 * One claim in this many is held open for up to HOLD_MS, or until the
 * consumer read two more batches: long enough for a region wrongly handed
 * over meanwhile to reach the consumer while the claim is still all zeros.
 */
const HOLD_ONE_IN = 48;
const HOLD_MS = 0.5;

class SharedLitmus {
  readonly pool: BufferPool;
  readonly writer: SharedWriter;
  readonly sync: Int32Array;
  readonly role: number;
  /** This worker's number in its messages. */
  readonly w: number;
  readonly maxPayload: number;
  readonly random: (n: number) => number;
  readonly scratch: Uint8Array;
  readonly counts = new Map<string, number>();
  round = 0;
  placed = 0;
  /** Whether the workers flush in this round. */
  flushes = false;

  constructor(request: LitmusRequest) {
    this.pool = BufferPool.attach(request.handle);
    this.writer = SharedWriter.attach(this.pool, request.writer!, {
      codec: SHARED_CODEC,
      flush: "manual",
    });
    this.sync = new Int32Array(request.sync);
    this.role = request.role;
    this.w = request.role + 1;
    this.maxPayload = request.maxPayload!;
    this.random = prng(request.seed);
    this.scratch = new Uint8Array(this.maxPayload);
  }

  count(what: string): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
  }

  jitter(max: number): void {
    const n = this.random(max);
    for (let i = 0; i < n; i++) Atomics.load(this.sync, ABORT);
  }

  what(seq: number): string {
    return `round ${this.round}, message ${seq}`;
  }

  /** Claims space now or, holding nothing open, waits for it. */
  async reserve(seq: number, signal: AbortSignal): Promise<SharedReservation> {
    const length = messageLength(this.w, seq, this.maxPayload);
    const reservation = this.writer.tryReserve(length);
    if (reservation !== null) return this.fresh(reservation, seq);
    this.count("waited for a buffer");
    return this.fresh(await this.writer.reserve(length, { signal }), seq);
  }

  /** Checks that a claim's space is all zeros: nobody else's message, nothing left over. */
  fresh(reservation: SharedReservation, seq: number): SharedReservation {
    if (!isZero(reservation.bytes)) {
      throw new Error(
        `${this.what(seq)}: its fresh reservation holds ${
          hex(reservation.bytes)
        }: its space overlaps another message's, or was reused before the consumer was done with it`,
      );
    }
    return reservation;
  }

  /** Fills an open reservation after a spin (or a hold), checks it is intact, and commits it. */
  fillAndCommit(reservation: SharedReservation, seq: number): void {
    const bytes = reservation.bytes;
    if (this.random(HOLD_ONE_IN) === 0) this.hold();
    else this.jitter(HOLE_WINDOW);
    fillMessage(bytes, this.w, seq);
    this.jitter(16);
    const { w, seq: found, exact } = readMessage(bytes);
    if (w !== this.w || found !== seq || !exact) {
      throw new Error(
        `${this.what(seq)}: changed to ${
          hex(bytes)
        } before its commit: the flusher had its region (a hole) and the consumer zeroed it`,
      );
    }
    reservation.commit();
  }

  /**
   * Holds a claim open while the other worker goes on, flushing now and
   * then in rounds where workers flush: the flusher gets nothing from this
   * claim on, so the consumer's count stays put unless a region went over
   * too early.
   */
  hold(): void {
    this.count("held a claim open");
    const sync = this.sync;
    const until = performance.now() + HOLD_MS;
    const enough = Atomics.load(sync, CONSUMED) + 2;
    for (let seen = 0; performance.now() < until;) {
      seen = Atomics.load(sync, CONSUMED);
      if (seen >= enough) break;
      Atomics.wait(sync, CONSUMED, seen, 0.02);
      if (this.flushes) this.writer.flush();
    }
  }

  /** Copies the message in with tryWrite, or write when there is no room now. */
  async write(seq: number, signal: AbortSignal): Promise<void> {
    const message = this.scratch.subarray(0, messageLength(this.w, seq, this.maxPayload));
    fillMessage(message, this.w, seq);
    if (this.writer.tryWrite(message)) return;
    this.count("waited for a buffer");
    await this.writer.write(message, { signal });
  }

  /** Tries to place `seq` while holding a reservation open, so without waiting. */
  tryPlaceWhileOpen(seq: number): SharedReservation | "written" | null {
    const length = messageLength(this.w, seq, this.maxPayload);
    if (this.random(3) === 0) {
      const message = this.scratch.subarray(0, length);
      fillMessage(message, this.w, seq);
      return this.writer.tryWrite(message) ? "written" : null;
    }
    const reservation = this.writer.tryReserve(length);
    return reservation === null ? null : this.fresh(reservation, seq);
  }
}

/** One round of in-order messages: reserve, fill, commit, or tryWrite. */
async function inOrder(t: SharedLitmus, count: number, flushes: boolean, signal: AbortSignal) {
  let untilFlush = 1 + t.random(8);
  for (let n = 0; n < count; n++) {
    const seq = t.placed++;
    if (t.random(3) === 0) await t.write(seq, signal);
    else t.fillAndCommit(await t.reserve(seq, signal), seq);
    if (flushes && --untilFlush === 0) {
      t.writer.flush();
      untilFlush = 1 + t.random(8);
    }
  }
}

/**
 * One round of pairs: a reservation held open while the next message is
 * placed with tryReserve or tryWrite (a handle holding an open reservation
 * may not wait), committed newest first, sometimes with a flush between.
 */
async function pairs(t: SharedLitmus, count: number, flushes: boolean, signal: AbortSignal) {
  for (let n = 0; n < count; n++) {
    const seq = t.placed++;
    const first = await t.reserve(seq, signal);
    if (n + 1 === count) {
      t.fillAndCommit(first, seq);
      break;
    }
    const second = t.tryPlaceWhileOpen(seq + 1);
    if (second === null) {
      t.count("second refused: no room without waiting");
      t.fillAndCommit(first, seq);
      continue;
    }
    t.placed++;
    n++;
    if (second === "written") t.count("second written with tryWrite, first still open");
    else {
      t.count("second reserved, committed before the first");
      t.fillAndCommit(second, seq + 1);
    }
    if (flushes && t.random(2) === 0) {
      t.count("flushed between the commits");
      t.writer.flush();
    }
    t.fillAndCommit(first, seq);
  }
}

async function run(request: LitmusRequest): Promise<LitmusReply> {
  const t = new SharedLitmus(request);
  const controller = new AbortController();
  const signal = controller.signal;
  let started = performance.now();
  // The watchdog is also the keepalive: a pending waitAsync alone keeps no worker alive.
  const watchdog = setInterval(() => {
    if (performance.now() - started > STUCK_MS) {
      controller.abort(
        new Error(
          `round ${t.round} stuck for ${STUCK_MS} ms: no buffer came back (one never went to the flusher, or a wake-up was lost)`,
        ),
      );
    }
  }, 100);
  const place = request.kind === "sharedWriterPairs" ? pairs : inOrder;
  try {
    for (let round = 1; round <= request.iterations; round++) {
      await waitAtLeast(t.sync, ROUND, round, signal);
      t.round = round;
      t.flushes = roundFlushes(round).workers;
      started = performance.now();
      await place(t, 1 + t.random(MAX_PER_ROUND), t.flushes, signal);
      Atomics.store(t.sync, PLACED + t.role, t.placed);
      Atomics.add(t.sync, FINISHED, 1);
      Atomics.notify(t.sync, FINISHED);
    }
  } finally {
    clearInterval(watchdog);
  }
  t.writer.close();
  t.pool.detach();
  // One macrotask: a switch this worker left waiting for a buffer sees the
  // detach and gives the switch up before the main thread terminates us.
  await new Promise((resolve) => setTimeout(resolve, 0));
  t.counts.set("messages", t.placed);
  return { ok: true, histogram: Object.fromEntries(t.counts) };
}

scope.onmessage = async (event) => {
  const request = event.data;
  const sync = new Int32Array(request.sync);
  try {
    scope.postMessage(await run(request));
  } catch (error) {
    // Let the main thread out of its wait instead of leaving it to time out.
    Atomics.store(sync, ABORT, 1);
    Atomics.add(sync, GEN, 1);
    Atomics.notify(sync, GEN);
    Atomics.notify(sync, FINISHED);
    scope.postMessage({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
};

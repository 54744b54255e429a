// Litmus tests over real workers: two workers race on one shared pool for
// LITMUS_ITERATIONS iterations each (10^5 by default; `deno task litmus` runs
// 10^6). Each test names its allowed outcomes, fails on any other, and prints
// how often each allowed interleaving happened. The loops run inside the
// workers, which meet at SharedArrayBuffer barriers (tests/_litmus.ts), so an
// iteration costs microseconds. The shared-writer litmus runs in rounds
// (LITMUS_ITERATIONS / 25) that the main thread starts, consumes and checks.
import assert from "node:assert/strict";
import { BufferPool, type FlushRegion, SharedWriter, WriteFlusher } from "../mod.ts";
import { cursorSeq, SW_CURSOR, SW_DELIVER } from "../src/_shared_writer_block.ts";
import {
  ABORT,
  CONSUMED,
  FINISHED,
  GEN,
  hex,
  isZero,
  type LitmusKind,
  type LitmusReply,
  makeSync,
  MAX_BUFFERS,
  messageLength,
  PLACED,
  readMessage,
  ROUND,
  roundFlushes,
  SHARED_CODEC,
  waitAtLeast,
} from "./_litmus.ts";

const ITERATIONS = Number(Deno.env.get("LITMUS_ITERATIONS") ?? 100_000);
/** A whole litmus run may take this long before the test fails instead of hanging. */
const RUN_TIMEOUT_MS = 60_000 + ITERATIONS / 10;

function sharedPool(bufferSize: number, bufferCount: number, batchSize: number): BufferPool {
  assert.ok(bufferCount <= MAX_BUFFERS);
  return new BufferPool({ bufferSize, bufferCount, batchSize, shared: true, maxWorkers: 4 });
}

/** Starts one litmus worker per role and resolves to their replies. */
async function runLitmus(
  kind: LitmusKind,
  pool: BufferPool,
  roles: number,
  extra: {
    flusher?: WriteFlusher;
    writer?: SharedWriter;
    maxPayload?: number;
    iterations?: number;
    during?: (sync: Int32Array) => Promise<void>;
  } = {},
): Promise<Record<string, number>[]> {
  const sync = makeSync(roles);
  const workers: Worker[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const script = extra.writer ? "./workers/shared_litmus_worker.ts" : "./workers/litmus_worker.ts";
  try {
    const replies = Array.from({ length: roles }, (_, role) => {
      const worker = new Worker(new URL(script, import.meta.url), {
        type: "module",
        name: `litmus ${kind} ${role}`,
      });
      workers.push(worker);
      return new Promise<LitmusReply>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<LitmusReply>) => resolve(event.data);
        worker.onerror = (event: ErrorEvent) => {
          event.preventDefault();
          reject(new Error(`litmus worker ${role} crashed: ${event.message}`));
        };
        worker.postMessage({
          kind,
          role,
          iterations: extra.iterations ?? ITERATIONS,
          seed: 0x5eed + role,
          handle: pool.handle,
          sync,
          ...(extra.flusher ? { flusher: extra.flusher.handle } : {}),
          ...(extra.writer ? { writer: extra.writer.handle, maxPayload: extra.maxPayload! } : {}),
        });
      });
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${kind}: no reply within ${RUN_TIMEOUT_MS} ms`)),
        RUN_TIMEOUT_MS,
      );
    });
    const during = extra.during?.(new Int32Array(sync));
    const all = Promise.all([...replies, ...(during ? [during] : [])]);
    const results = (await Promise.race([all, timeout])).slice(0, roles) as LitmusReply[];
    const failures = results.flatMap((reply, role) =>
      reply.ok ? [] : [`${kind}, worker ${role + 1}: ${reply.error}`]
    );
    // The first failure, not the other worker's echo of it.
    if (failures.length !== 0) {
      assert.fail(failures.find((f) => !f.endsWith("the other worker failed")) ?? failures[0]);
    }
    return results.map((reply) => reply.ok ? reply.histogram : {});
  } finally {
    clearTimeout(timer);
    for (const worker of workers) worker.terminate();
  }
}

/** Prints a histogram, most frequent first. */
function report(title: string, histogram: Record<string, number>): void {
  const rows = Object.entries(histogram).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, n]) => sum + n, 0);
  console.log(`  ${title}: ${rows.length} outcomes, ${total} observations`);
  for (const [outcome, n] of rows.slice(0, 12)) {
    console.log(`    ${String(n).padStart(8)}  ${outcome}`);
  }
  if (rows.length > 12) console.log(`    ... and ${rows.length - 12} rarer outcomes`);
}

function total(histogram: Record<string, number>): number {
  return Object.values(histogram).reduce((sum, n) => sum + n, 0);
}

function assertAllBack(pool: BufferPool): void {
  const stats = pool.stats();
  assert.equal(stats.inUse, 0, "buffers still in use");
  assert.equal(stats.free, stats.bufferCount);
  assert.equal(stats.workers, 1, "the workers detached");
}

// Allowed: any pair of disjoint sets (a tryAcquire may find the pool empty
// while the other worker holds or caches the rest), and at every sync point
// free + held == bufferCount. Forbidden: a buffer in both sets, or counted
// both free and held, or a stamp overwritten while held.
for (const [bufferCount, batchSize] of [[4, 1], [6, 2]] as const) {
  Deno.test(`litmus: acquire/release against refill/spill (${bufferCount} buffers, batchSize ${batchSize})`, async () => {
    const pool = sharedPool(16, bufferCount, batchSize);
    const [histogram] = await runLitmus("acquireRelease", pool, 2);
    report("held sets at the sync point (A = worker 1, B = worker 2)", histogram!);
    assert.equal(total(histogram!), ITERATIONS);
    assertAllBack(pool);
  });
}

// Worker A sends a packet and releases its clone while worker B receives the
// packet and releases it. Allowed: the three events in any order in which B
// receives before it drops; the buffer is freed exactly once: at the sync
// point free + held == bufferCount, and the fresh buffer each worker then
// acquires is nobody else's (owner table and stamped bytes).
Deno.test("litmus: send/receive against release", async () => {
  const pool = sharedPool(16, 4, 1);
  const [histogram] = await runLitmus("sendReceive", pool, 2);
  report("order of A's clone release, B's receive and B's drop", histogram!);
  assert.equal(total(histogram!), ITERATIONS);
  const allowed = new Set([
    "release < receive < drop",
    "receive < release < drop",
    "receive < drop < release",
  ]);
  for (const outcome of Object.keys(histogram!)) assert.ok(allowed.has(outcome), outcome);
  assertAllBack(pool);
});

// A writer in a worker commits numbered 8-byte messages (sometimes two
// reservations committed newest first) and flushes every 1-12 messages, while
// the flusher here takes and releases. Allowed: every message exactly once,
// in order, whatever the batches look like.
Deno.test("litmus: reserve/commit against flush", async () => {
  const pool = sharedPool(64, 4, 1);
  const flusher = new WriteFlusher(pool);
  const batches: Record<string, number> = {};
  let next = 0;
  const bucket = (n: number) =>
    n === 1 ? "1" : n < 8 ? "2-7" : n < 64 ? "8-63" : n < 512 ? "64-511" : "512+";
  const take = async () => {
    const reader = flusher.readable.getReader();
    try {
      while (next < ITERATIONS) {
        const { done, value } = await reader.read();
        if (done) break;
        let messages = 0;
        for (const region of value as FlushRegion[]) {
          const bytes = region.bytes;
          assert.equal(bytes.length % 8, 0, `a region of ${bytes.length} bytes`);
          for (let at = 0; at < bytes.length; at += 8) {
            const seq = (bytes[at]! | bytes[at + 1]! << 8 | bytes[at + 2]! << 16 |
              bytes[at + 3]! << 24) >>> 0;
            const check = (bytes[at + 4]! | bytes[at + 5]! << 8 | bytes[at + 6]! << 16 |
              bytes[at + 7]! << 24) >>> 0;
            if (seq !== next || ((seq ^ 0x5a5a5a5a) >>> 0) !== check) {
              assert.fail(`message ${next} expected, got ${seq} (check ${check})`);
            }
            next++;
            messages++;
          }
          region.release();
        }
        const key = `${value.length} region${value.length === 1 ? "" : "s"}, ${
          bucket(messages)
        } messages`;
        batches[key] = (batches[key] ?? 0) + 1;
      }
    } finally {
      reader.releaseLock();
    }
  };
  try {
    const [writerSide] = await runLitmus("reserveCommit", pool, 1, { flusher, during: take });
    assert.equal(next, ITERATIONS, "every message arrived");
    report("batches the flusher took", batches);
    console.log(`  writer waited for a buffer ${writerSide!["writer waited for a buffer"]} times`);
  } finally {
    await flusher.readable.cancel();
  }
  assertAllBack(pool);
});

// A pool of one buffer: the holder acquires it and releases it at once, after
// a microtask, after a spin, or after the waiter called acquire(); the waiter
// calls acquire(), which must always complete (2 s per iteration, or the
// worker fails the test with a lost wake-up). Roles swap every iteration.
Deno.test("litmus: waiting against notify", async () => {
  const pool = sharedPool(16, 1, 1);
  const histograms = await runLitmus("waitNotify", pool, 2);
  const merged: Record<string, number> = {};
  for (const histogram of histograms) {
    for (const [key, n] of Object.entries(histogram)) merged[key] = (merged[key] ?? 0) + n;
  }
  report("the holder's release against the waiter's acquire()", merged);
  assert.equal(total(merged), ITERATIONS, "every acquire() completed");
  assertAllBack(pool);
});

// -- The shared writer: two workers write, the main thread flushes and consumes --

/** Rounds of the shared-writer litmus: each places 1-24 messages per worker. */
const SHARED_ROUNDS = Math.max(100, Math.round(ITERATIONS / 25));
/** How long a round's messages may take to arrive after the round's last flush. */
const STUCK_MS = 5_000;

/**
 * Reads every batch of the flusher, checks each message (framing, worker,
 * order, bytes) and zeroes each region before it releases it, so that space
 * a writer claims later starts zeroed.
 */
class SharedLitmusConsumer {
  /** Per worker, the seq of the message due next. */
  readonly next = [0, 0];
  /** Whether the main thread flushes after each batch it read. */
  flushes = false;
  /** The round under way, for messages. */
  round = 0;
  /** The litmus's shared words, once the run started: batches read are counted there. */
  sync: Int32Array | null = null;
  /** The first violation the consumer found. */
  failure: Error | null = null;
  /** Rejects with {@linkcode SharedLitmusConsumer.failure}. */
  readonly failed: Promise<never>;
  readonly done: Promise<void>;
  readonly #writer: SharedWriter;
  readonly #maxPayload: number;
  #fail!: (error: Error) => void;
  #wake: (() => void) | null = null;

  constructor(flusher: WriteFlusher, writer: SharedWriter, maxPayload: number) {
    this.#writer = writer;
    this.#maxPayload = maxPayload;
    this.failed = new Promise<never>((_, reject) => this.#fail = reject);
    this.failed.catch(() => {});
    this.done = this.#read(flusher.readable.getReader());
  }

  /** Resolves once every message up to `placed` (per worker) arrived; rejects on a violation. */
  async caughtUp(placed: number[], round: number): Promise<void> {
    const deadline = performance.now() + STUCK_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (this.next[0]! < placed[0]! || this.next[1]! < placed[1]!) {
        const { promise, resolve } = Promise.withResolvers<void>();
        this.#wake = resolve;
        timer = setTimeout(resolve, deadline - performance.now());
        await Promise.race([promise, this.failed]);
        clearTimeout(timer);
        if (performance.now() >= deadline) {
          throw new Error(
            `round ${round}: after the last flush, worker 1's messages ${this.next[0]} to ${
              placed[0]! - 1
            } and worker 2's ${this.next[1]} to ${placed[1]! - 1} never arrived`,
          );
        }
      }
    } finally {
      this.#wake = null;
      clearTimeout(timer);
    }
  }

  async #read(reader: ReadableStreamDefaultReader<FlushRegion[]>): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        try {
          for (const region of value) this.#check(region);
        } finally {
          for (const region of value) if (!region.released) region.release();
        }
        if (this.flushes) this.#writer.flush();
        if (this.sync !== null) {
          Atomics.add(this.sync, CONSUMED, 1);
          Atomics.notify(this.sync, CONSUMED);
        }
        this.#wake?.();
      }
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.failure = new Error(`round ${this.round}: ${why}`, { cause: error });
      this.#fail(this.failure);
      await reader.cancel(error);
    } finally {
      reader.releaseLock();
    }
  }

  #check(region: FlushRegion): void {
    const bytes = region.bytes;
    assert.equal(region.writerId, this.#writer.id, "a region of another writer");
    for (let at = 0; at < bytes.length;) {
      const end = at + 1 + bytes[at]!;
      if (end > bytes.length) {
        assert.fail(
          `a region of ${bytes.length} bytes ends inside the frame at ${at}: ${hex(bytes)}`,
        );
      }
      const payload = bytes.subarray(at + 1, end);
      const { w, seq, exact } = readMessage(payload);
      if (w !== 1 && w !== 2) {
        assert.fail(
          `a hole: the frame at ${at} of a region of ${bytes.length} bytes holds ${
            isZero(payload) ? "only zeros" : hex(payload)
          }, not a message: the flusher had it before it was written`,
        );
      }
      const due = this.next[w - 1]!;
      if (seq !== due) {
        assert.fail(
          `worker ${w}'s message ${seq} arrived where ${due} was due (${
            seq < due ? "twice" : "out of order, or one was lost"
          })`,
        );
      }
      if (!exact || payload.length !== messageLength(w, seq, this.#maxPayload)) {
        assert.fail(`worker ${w}'s message ${seq} arrived as ${hex(payload)}`);
      }
      this.next[w - 1] = due + 1;
      at = end;
    }
    bytes.fill(0);
  }
}

/** The cursor's buffer (its sequence number) and whether it is sealed, read consistently. */
function cursorState(block: Int32Array): { seq: number; sealed: boolean } {
  for (;;) {
    const cursor = Atomics.load(block, SW_CURSOR);
    const seq = cursorSeq(block);
    if (Atomics.load(block, SW_CURSOR) === cursor) return { seq, sealed: cursor < 0 };
  }
}

/**
 * The main thread's rounds: starts one, waits until both workers placed
 * their messages, checks that every sealed buffer went to the flusher
 * without a flush (none was left behind by a commit racing its seal), then
 * flushes and waits until every message placed arrived.
 */
async function driveSharedLitmus(
  sync: Int32Array,
  writer: SharedWriter,
  consumer: SharedLitmusConsumer,
  histogram: Record<string, number>,
): Promise<void> {
  const block = new Int32Array(writer.handle.block);
  const never = new AbortController().signal;
  let before = cursorState(block).seq;
  consumer.sync = sync;
  try {
    for (let round = 1; round <= SHARED_ROUNDS; round++) {
      const flushes = roundFlushes(round);
      consumer.flushes = flushes.main;
      consumer.round = round;
      Atomics.store(sync, ROUND, round);
      Atomics.notify(sync, ROUND);
      try {
        await Promise.race([waitAtLeast(sync, FINISHED, 2 * round, never), consumer.failed]);
      } catch (error) {
        if (consumer.failure !== null) throw consumer.failure;
        // A worker failed: its reply says why.
        if (Atomics.load(sync, ABORT) !== 0) return;
        throw error;
      }
      // Nothing claims or commits now (a switch a worker left waiting for a
      // buffer may still finish, which only moves the mark further).
      const { seq, sealed } = cursorState(block);
      const delivered = Atomics.load(block, SW_DELIVER);
      if (delivered < seq + (sealed ? 1 : 0)) {
        assert.fail(
          `round ${round}: buffer ${delivered} was sealed and all its messages committed, but it never went to the flusher (the cursor is at buffer ${seq}, ${
            sealed ? "sealed" : "open"
          }): a lost publish`,
        );
      }
      writer.flush();
      await consumer.caughtUp([Atomics.load(sync, PLACED), Atomics.load(sync, PLACED + 1)], round);
      const who = flushes.main
        ? flushes.workers ? "all flush" : "main flushes"
        : flushes.workers
        ? "workers flush"
        : "no flushes";
      const buffers = seq - before;
      const key = `${who}, ${buffers < 4 ? buffers : buffers < 8 ? "4-7" : "8+"} buffers sealed, ${
        sealed ? "ends sealed" : "ends open"
      }`;
      histogram[key] = (histogram[key] ?? 0) + 1;
      before = seq;
    }
  } catch (error) {
    // Let the workers out of their waits.
    Atomics.store(sync, ABORT, 1);
    Atomics.add(sync, GEN, 1);
    Atomics.notify(sync, ROUND);
    throw error;
  } finally {
    consumer.flushes = false;
  }
}

// Two workers place numbered messages of 6 to 40 or 60 bytes into one
// SharedWriter, in rounds of 1-24 each, through tiny pools so that buffers
// seal and switch all the time, while the main thread consumes (and, every
// other round, flushes after each batch; the workers flush every 1-8
// messages in every other round). Allowed: every message exactly once, in
// its worker's order, byte-exact, in regions that end on a frame; no region
// holding a message not yet committed (claims start zeroed, are filled
// after a spin and checked again before commit); at the end of each round,
// before any flush, every sealed buffer already delivered; every buffer back
// after close.
for (
  const [kind, bufferSize, bufferCount, maxPayload] of [
    ["sharedWriter", 64, 3, 40],
    ["sharedWriterPairs", 256, 2, 60],
  ] as const
) {
  const how = kind === "sharedWriter"
    ? "reserve/commit and tryWrite"
    : "two reservations committed newest first";
  Deno.test(`litmus: shared writer, ${how} in two workers against flush (${bufferCount} buffers of ${bufferSize} bytes)`, async () => {
    const pool = sharedPool(bufferSize, bufferCount, 1);
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { codec: SHARED_CODEC, flush: "manual" });
    const consumer = new SharedLitmusConsumer(flusher, writer, maxPayload);
    const rounds: Record<string, number> = {};
    let placers: Record<string, number>[];
    try {
      placers = await runLitmus(kind, pool, 2, {
        writer,
        maxPayload,
        iterations: SHARED_ROUNDS,
        during: (sync) => driveSharedLitmus(sync, writer, consumer, rounds),
      });
    } finally {
      writer.close();
      flusher.close();
      await consumer.done;
    }
    report("rounds: who flushed, buffers sealed, the cursor at the end", rounds);
    assert.equal(total(rounds), SHARED_ROUNDS);
    placers.forEach((counts, role) => report(`worker ${role + 1}`, counts));
    assert.deepEqual(consumer.next, placers.map((counts) => counts["messages"]));
    assertAllBack(pool);
  });
}

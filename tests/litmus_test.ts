// Litmus tests over real workers: two workers race on one shared pool for
// LITMUS_ITERATIONS iterations each (10^5 by default; `deno task litmus` runs
// 10^6). Each test names its allowed outcomes, fails on any other, and prints
// how often each allowed interleaving happened. The loops run inside the
// workers, which meet at SharedArrayBuffer barriers (tests/_litmus.ts), so an
// iteration costs microseconds.
import assert from "node:assert/strict";
import { BufferPool, type FlushRegion, WriteFlusher } from "../mod.ts";
import { type LitmusKind, type LitmusReply, makeSync, MAX_BUFFERS } from "./_litmus.ts";

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
  extra: { flusher?: WriteFlusher; during?: () => Promise<void> } = {},
): Promise<Record<string, number>[]> {
  const sync = makeSync(roles);
  const workers: Worker[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const replies = Array.from({ length: roles }, (_, role) => {
      const worker = new Worker(new URL("./workers/litmus_worker.ts", import.meta.url), {
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
          iterations: ITERATIONS,
          seed: 0x5eed + role,
          handle: pool.handle,
          sync,
          ...(extra.flusher ? { flusher: extra.flusher.handle } : {}),
        });
      });
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${kind}: no reply within ${RUN_TIMEOUT_MS} ms`)),
        RUN_TIMEOUT_MS,
      );
    });
    const all = Promise.all([...replies, ...(extra.during ? [extra.during()] : [])]);
    const results = (await Promise.race([all, timeout])).slice(0, roles) as LitmusReply[];
    return results.map((reply, role) => {
      if (!reply.ok) assert.fail(`${kind}, worker ${role + 1}: ${reply.error}`);
      return reply.histogram;
    });
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

import assert from "node:assert/strict";
import { BufferPool, WriteFlusher } from "../mod.ts";
import { assertRangeError, take } from "./_helpers.ts";
import { readBytes } from "./_writer_helpers.ts";
import type { DoomedJob, DoomedReport } from "./workers/doomed_worker.ts";

Deno.test("BufferPool.reclaim() recovers what a terminated worker held and unblocks waiters", async () => {
  const bufferCount = 12;
  const pool = new BufferPool({ bufferSize: 64, bufferCount, batchSize: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const reader = flusher.readable.getReader();
  const shared = take(pool).intoPacket(0, 8);
  const mine = shared.clone();

  const worker = new Worker(new URL("./workers/doomed_worker.ts", import.meta.url), {
    type: "module",
  });
  let report: DoomedReport;
  try {
    report = await new Promise<DoomedReport>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<DoomedReport>) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
      worker.postMessage(
        { pool: pool.handle, flusher: flusher.handle, packet: shared.send() } satisfies DoomedJob,
      );
    });
  } finally {
    worker.terminate();
  }
  // The worker held 3 buffers alone, a share of ours, the one it sent back
  // and its writer's; it also cached some free ones.
  assert.equal(report.inUseSeen, 6);
  const back = pool.receive(report.sentBack);
  assert.deepEqual(
    await readBytes(reader, false),
    [1, 2, 3],
    "the dead writer's flushed bytes still arrive",
  );

  // Main wants every buffer but its own two: several are stuck in the dead worker.
  const wanted = bufferCount - 2;
  const signal = AbortSignal.timeout(5_000);
  const acquiring = Array.from({ length: wanted }, () => pool.acquire({ signal }));
  await Promise.resolve();
  assert.ok(pool.stats().waiters > 0, "main waits on buffers only the dead worker has");

  const freed = pool.reclaim(report.workerId);
  assert.ok(freed >= 3, `reclaimed ${freed}`);
  assert.equal(pool.stats().workers, 1, "the dead worker's slot is free again");
  const got = await Promise.all(acquiring.slice(0, wanted - 1));
  // The last buffer is the writer's: the flusher's token keeps it until the flusher ends.
  assert.equal(pool.stats().waiters, 1);
  flusher.close();
  assert.deepEqual(await readBytes(reader), [], "the open reservation was never committed");
  got.push(await acquiring[wanted - 1]!);

  assert.equal(new Set(got.map((b) => b.index)).size, wanted);
  for (const buffer of got) buffer.release();
  mine.release();
  back.release();
  const s = pool.stats();
  assert.equal(s.inUse, 0, "every buffer is back");
  assert.equal(s.waitingWorkers, 0);

  // The slot can be attached again and works.
  const next = BufferPool.attach(pool.handle);
  assert.equal(next.workerId, report.workerId);
  next.tryAcquire()!.release();
  next.detach();
  assert.equal(pool.stats().inUse, 0);
});

Deno.test("BufferPool.reclaim() refuses its own id, ids out of range, and pools that are not shared", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true, maxWorkers: 4 });
  assertRangeError(() => pool.reclaim(pool.workerId), /this pool object's own/);
  assertRangeError(() => pool.reclaim(4), /from 0 to maxWorkers - 1 \(3\)/);
  assertRangeError(() => pool.reclaim(-1), /from 0/);
  assert.equal(pool.reclaim(2), 0, "a slot nobody held gives nothing back");
  const local = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  assert.throws(() => local.reclaim(1), TypeError);
  assert.throws(() => local.workerId, TypeError);
});

Deno.test("A detached pool object's buffers are not taken by a reclaim of its slot's next owner", () => {
  const pool = new BufferPool({
    bufferSize: 16,
    bufferCount: 8,
    batchSize: 2,
    shared: true,
    maxWorkers: 2,
  });
  const first = BufferPool.attach(pool.handle);
  const kept = first.tryAcquire()!;
  const keptPacket = first.tryAcquire()!.intoPacket().send();
  const received = pool.receive(keptPacket);
  const clone = received.clone();
  first.detach();
  // It stands in for a worker that dies holding a buffer: its dropped handle is no leak here.
  const second = BufferPool.attach(pool.handle, { leakDetection: "off" });
  assert.equal(second.workerId, first.workerId, "the slot was reused");
  second.tryAcquire();
  assert.equal(pool.reclaim(second.workerId) >= 1, true);
  // What the detached object still holds stays in use until it releases it.
  assert.equal(pool.stats().inUse, 2);
  kept.bytes.fill(7);
  kept.release();
  received.release();
  clone.release();
  assert.equal(pool.stats().inUse, 0);
});

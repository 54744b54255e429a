import assert from "node:assert/strict";
import {
  BufferPool,
  type FlushRegion,
  type LeakKind,
  type LeakReport,
  type PooledBuffer,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import { assertRangeError } from "./_helpers.ts";
import { reportLeak } from "../src/_leak_detector.ts";

const gc = (globalThis as unknown as { gc?: () => void }).gc;

/** How long a test waits for a report before it fails instead of hanging. */
const REPORT_MS = 5_000;

/**
 * A pool whose reports can be awaited: `until(n)` collects garbage once and
 * resolves when the n-th report arrives (the registry's callbacks run as a
 * task after the collection that found the objects). `onLeak` also takes
 * the reports of other pool objects attached to it.
 */
function awaitable(
  mode: "sampled" | "paranoid",
  options?: { bufferCount?: number; shared?: boolean },
) {
  const leaks: LeakReport[] = [];
  let waiting: { count: number; resolve(): void } | null = null;
  const onLeak = (leak: LeakReport) => {
    leaks.push(leak);
    if (waiting !== null && leaks.length >= waiting.count) waiting.resolve();
  };
  const pool = new BufferPool({
    bufferSize: 64,
    bufferCount: options?.bufferCount ?? 8,
    shared: options?.shared ?? false,
    leakDetection: mode,
    onLeak,
  });
  async function until(count: number): Promise<LeakReport[]> {
    assert.ok(gc !== undefined, "run the tests with --v8-flags=--expose-gc");
    const { promise, resolve } = Promise.withResolvers<void>();
    waiting = { count, resolve };
    if (leaks.length >= count) resolve();
    gc();
    const deadline = AbortSignal.timeout(REPORT_MS);
    const timedOut = new Promise<never>((_, reject) => {
      deadline.onabort = () =>
        reject(new Error(`only ${leaks.length} of ${count} leak reports after ${REPORT_MS} ms`));
    });
    try {
      await Promise.race([promise, timedOut]);
    } finally {
      deadline.onabort = null;
      waiting = null;
    }
    return leaks;
  }
  /**
   * Drops one packet of `from` on purpose and waits for its report: every
   * object of `from` dropped before it was collected by then, so the other
   * reports are all there are.
   */
  async function othersThanSentinel(from: BufferPool = pool): Promise<LeakReport[]> {
    const sentinel = from.tryAcquire();
    assert.ok(sentinel !== null, "a buffer for the sentinel");
    const marker = sentinel.index;
    (() => sentinel.intoPacket(0, 1))();
    const isSentinel = (leak: LeakReport) =>
      leak.kind === "Packet" && leak.bufferIndex === marker && leak.length === 1;
    while (!leaks.some(isSentinel)) await until(leaks.length + 1);
    const others = leaks.filter((leak) => !isSentinel(leak));
    leaks.splice(0, leaks.length, ...others);
    return others;
  }
  return { pool, leaks, onLeak, until, othersThanSentinel };
}

Deno.test("Paranoid leak detection reports a packet dropped unreleased, with where it was made", async () => {
  const { pool, until } = awaitable("paranoid");
  (function dropAPacket() {
    pool.tryAcquire()!.intoPacket(8, 24);
  })();
  const [leak] = await until(1);
  assert.equal(leak!.kind, "Packet");
  assert.equal(leak!.offset, 8);
  assert.equal(leak!.length, 16);
  assert.match(leak!.stack!, /packet made here/);
  assert.match(leak!.stack!, /dropAPacket/);
  assert.equal(pool.stats().inUse, 1, "the leaked buffer stays in use: detection only reports");
});

Deno.test("Leak detection stays silent for packets released, disposed, sent or received", async () => {
  const { pool, onLeak, othersThanSentinel } = awaitable("paranoid", { shared: true });
  const other = BufferPool.attach(pool.handle, { leakDetection: "paranoid", onLeak });
  (() => {
    const packet = pool.tryAcquire()!.intoPacket();
    packet.clone().release();
    packet.subarray(1, 4).release();
    {
      using _disposed = packet.clone();
    }
    const sent = packet.send();
    const received = other.receive(sent);
    other.receiveBatch(other.sendBatch([received])).forEach((p) => p.release());
  })();
  assert.equal(pool.stats().inUse, 0);
  assert.deepEqual(await othersThanSentinel(pool), []);
  assert.deepEqual(await othersThanSentinel(other), []);
  other.detach();
});

Deno.test("Sampled leak detection watches about one packet in 64", async () => {
  const { pool, until } = awaitable("sampled");
  const buffer = pool.tryAcquire()!;
  (() => {
    for (let i = 0; i < 640; i++) buffer.toPacket(0, 1); // all dropped
  })();
  const leaks = (await until(10)).filter((leak) => leak.kind === "Packet");
  assert.equal(leaks.length, 10);
  assert.equal(leaks[0]!.stack, undefined, "no stack when sampling");
  buffer.release(); // the handle, watched too, is not the leak here
});

Deno.test("BufferPool refuses an unknown leakDetection mode with a RangeError", () => {
  assertRangeError(
    () => new BufferPool({ bufferSize: 8, bufferCount: 1, leakDetection: "always" as "off" }),
    /leakDetection must be "off", "sampled" or "paranoid", received always/,
  );
});

// -- Handles and flush regions (issue 11, defect 9) --

/** Writes `count` messages and delivers each in its own region; `keep` says what to do with it. */
async function regions(
  pool: BufferPool,
  count: number,
  keep: (region: FlushRegion) => void,
): Promise<void> {
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  const reader = flusher.readable.getReader();
  for (let i = 0; i < count; i++) {
    assert.ok(writer.tryWrite(new Uint8Array([i, i, i])));
    writer.flush();
    const { value } = await reader.read();
    assert.equal(value!.length, 1);
    keep(value![0]!);
  }
  writer.close();
  flusher.close();
  assert.equal((await reader.read()).done, true);
}

Deno.test("Paranoid leak detection reports a PooledBuffer dropped unreleased, with where it was acquired", async () => {
  const { pool, until } = awaitable("paranoid");
  (function dropAHandle() {
    pool.tryAcquire();
  })();
  const [leak] = await until(1);
  assert.equal(leak!.kind, "PooledBuffer");
  assert.equal(leak!.offset, 0);
  assert.equal(leak!.length, 64, "a handle holds the whole buffer");
  assert.ok(leak!.bufferIndex >= 0 && leak!.bufferIndex < 8);
  assert.match(leak!.stack!, /buffer acquired here/);
  assert.match(leak!.stack!, /dropAHandle/);
  assert.equal(pool.stats().inUse, 1, "the leaked buffer stays in use: detection only reports");
});

Deno.test("Paranoid leak detection reports PooledBuffers from acquire(), served at once or after a wait", async () => {
  const { pool, leaks, until } = awaitable("paranoid", { bufferCount: 1 });
  await (async function dropAnAcquired() {
    await pool.acquire();
  })();
  await until(1);
  // The only buffer is lost, so make a second pool for the waiting path.
  const second = awaitable("paranoid", { bufferCount: 1 });
  const first = second.pool.tryAcquire()!;
  const waited = (async function dropAfterWaiting() {
    await second.pool.acquire({ signal: AbortSignal.timeout(REPORT_MS) });
  })();
  first.release(); // straight to the waiter, who drops it
  await waited;
  const [late] = await second.until(1);
  assert.deepEqual(
    [leaks[0]!.kind, late!.kind],
    ["PooledBuffer", "PooledBuffer"],
  );
  assert.match(leaks[0]!.stack!, /buffer acquired here/);
  assert.match(late!.stack!, /buffer acquired here/);
  assert.equal(pool.stats().inUse, 1);
  assert.equal(second.pool.stats().inUse, 1);
});

Deno.test("Paranoid leak detection reports a FlushRegion dropped unreleased, with its range", async () => {
  const { pool, until } = awaitable("paranoid");
  let delivered = 0;
  await regions(pool, 2, (region) => {
    if (delivered++ === 0) region.release(); // the second is dropped
  });
  const [leak] = await until(1);
  assert.equal(leak!.kind, "FlushRegion");
  assert.equal(leak!.offset, 3, "the second message's region");
  assert.equal(leak!.length, 3);
  assert.match(leak!.stack!, /flush region made here/);
  assert.equal(pool.stats().inUse, 1, "the region's buffer stays in use");
});

Deno.test("Sampled leak detection watches one in 64 of each kind, even when kinds alternate", async () => {
  const { pool, until } = awaitable("sampled", { bufferCount: 640 });
  (() => {
    // A handle, then a packet of it, both dropped: a countdown shared by the
    // kinds would only ever land on one of them.
    for (let i = 0; i < 640; i++) pool.tryAcquire()!.toPacket(0, 1);
  })();
  const leaks = await until(20);
  const count = (kind: LeakKind) => leaks.filter((leak) => leak.kind === kind).length;
  assert.equal(count("PooledBuffer"), 10);
  assert.equal(count("Packet"), 10);
  assert.ok(leaks.every((leak) => leak.stack === undefined), "no stack when sampling");
});

Deno.test("Sampled leak detection watches one FlushRegion in 64", async () => {
  const { pool, until } = awaitable("sampled");
  await regions(pool, 128, () => {}); // every region dropped
  const leaks = await until(2);
  assert.deepEqual(leaks.map((leak) => leak.kind), ["FlushRegion", "FlushRegion"]);
  assert.deepEqual(leaks.map((leak) => leak.length), [3, 3]);
});

Deno.test("Leak detection stays silent for handles and regions released, disposed or turned into packets", async () => {
  const { pool, othersThanSentinel } = awaitable("paranoid");
  await (async () => {
    pool.tryAcquire()!.release();
    {
      using _disposed = pool.tryAcquire()!;
    }
    pool.tryAcquire()!.intoPacket(0, 4).release();
    const kept: PooledBuffer = pool.tryAcquire()!;
    kept.toPacket().release();
    kept.release();
    (await pool.acquire()).release();
    await regions(pool, 3, (region) => {
      region.toPacket(0, 1).release();
      if (region.bytes[0] === 1) {
        using _disposed = region;
      } else {
        region.release();
      }
    });
  })();
  assert.equal(pool.stats().inUse, 0);
  assert.deepEqual(await othersThanSentinel(), []);
});

Deno.test("The default leak report names the kind of object, its buffer and its bytes", () => {
  const lines: string[] = [];
  const original = console.error;
  console.error = (line: string) => lines.push(line);
  try {
    const report = { bufferIndex: 3, offset: 8, length: 16, stack: undefined };
    reportLeak({ kind: "PooledBuffer", ...report, offset: 0, length: 64 });
    reportLeak({ kind: "Packet", ...report });
    reportLeak({ kind: "FlushRegion", ...report, stack: "Error: flush region made here" });
  } finally {
    console.error = original;
  }
  assert.deepEqual(lines, [
    "bab: a PooledBuffer handle of buffer 3 was garbage-collected without release(); the buffer stays in use",
    "bab: a Packet of buffer 3 (bytes 8 to 24) was garbage-collected without release(); the buffer stays in use",
    "bab: a FlushRegion of buffer 3 (bytes 8 to 24) was garbage-collected without release(); the buffer stays in use\nError: flush region made here",
  ]);
});

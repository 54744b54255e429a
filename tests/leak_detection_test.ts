import assert from "node:assert/strict";
import { BufferPool, type LeakReport } from "../mod.ts";
import { assertRangeError } from "./_helpers.ts";

const gc = (globalThis as unknown as { gc?: () => void }).gc;

/** Collects garbage and lets the registry's callbacks run. */
async function collect(): Promise<void> {
  assert.ok(gc !== undefined, "run the tests with --v8-flags=--expose-gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

function watched(mode: "sampled" | "paranoid", shared = false) {
  const leaks: LeakReport[] = [];
  const pool = new BufferPool({
    bufferSize: 64,
    bufferCount: 8,
    shared,
    leakDetection: mode,
    onLeak: (leak) => leaks.push(leak),
  });
  return { pool, leaks };
}

Deno.test("Paranoid leak detection reports a packet dropped unreleased, with where it was made", async () => {
  const { pool, leaks } = watched("paranoid");
  (function dropAPacket() {
    pool.tryAcquire()!.intoPacket(8, 24);
  })();
  await collect();
  assert.equal(leaks.length, 1);
  const [leak] = leaks;
  assert.equal(leak!.offset, 8);
  assert.equal(leak!.length, 16);
  assert.match(leak!.stack!, /dropAPacket/);
  assert.equal(pool.stats().inUse, 1, "the leaked buffer stays in use: detection only reports");
});

Deno.test("Leak detection stays silent for packets released, disposed, sent or received", async () => {
  const { pool, leaks } = watched("paranoid", true);
  const other = BufferPool.attach(pool.handle, {
    leakDetection: "paranoid",
    onLeak: (l) => leaks.push(l),
  });
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
  await collect();
  assert.deepEqual(leaks, []);
  other.detach();
  assert.equal(pool.stats().inUse, 0);
});

Deno.test("Sampled leak detection watches about one packet in 64", async () => {
  const { pool, leaks } = watched("sampled");
  const buffer = pool.tryAcquire()!;
  (() => {
    for (let i = 0; i < 640; i++) buffer.toPacket(0, 1); // all dropped
  })();
  await collect();
  assert.equal(leaks.length, 10);
  assert.equal(leaks[0]!.stack, undefined, "no stack when sampling");
});

Deno.test("BufferPool refuses an unknown leakDetection mode with a RangeError", () => {
  assertRangeError(
    () => new BufferPool({ bufferSize: 8, bufferCount: 1, leakDetection: "always" as "off" }),
    /leakDetection must be "off", "sampled" or "paranoid", received always/,
  );
});

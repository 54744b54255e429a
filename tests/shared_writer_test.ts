// SharedWriter in one thread: packing, order, the hole rule, cancels,
// switches on tiny pools, aborts, close and every way the flusher ends.
import assert from "node:assert/strict";
import {
  BufferPool,
  ClosedError,
  delimiter,
  type FlushRegion,
  lengthPrefix,
  MAX_OPEN_SHARED_RESERVATIONS,
  ReleasedError,
  SharedWriter,
  WriteFlusher,
} from "../mod.ts";
import { assertAllFree, assertRangeError } from "./_helpers.ts";
import { parseFrames, readBytes } from "./_writer_helpers.ts";
import { sharedNumbered, sizeOf } from "./_shared_writer_helpers.ts";

function pools(bufferSize: number, bufferCount: number): BufferPool[] {
  return [
    new BufferPool({ bufferSize, bufferCount }),
    new BufferPool({ bufferSize, bufferCount, shared: true }),
  ];
}

/** Takes one batch now (it must be ready), returning its regions' bytes and releasing them. */
async function takeBatch(flusher: WriteFlusher): Promise<{ sizes: number[]; bytes: number[] }> {
  const reader = flusher.readable.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const sizes: number[] = [];
  const bytes: number[] = [];
  for (const region of value as FlushRegion[]) {
    sizes.push(region.length);
    for (const byte of region.bytes) bytes.push(byte);
    region.release();
  }
  return { sizes, bytes };
}

Deno.test("SharedWriter packs messages back to back and fills each buffer before the next", async () => {
  for (const pool of pools(16, 4)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { flush: "manual" });
    // 5-byte messages: three fill 15 of 16 bytes, the fourth starts buffer 2.
    for (let i = 0; i < 7; i++) assert.ok(writer.tryWrite(new Uint8Array(5).fill(i)));
    writer.close();
    flusher.close();
    const reader = flusher.readable.getReader();
    const bytes = await readBytes(reader);
    assert.deepEqual(bytes, [0, 1, 2, 3, 4, 5, 6].flatMap((i) => new Array(5).fill(i)));
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter sends a full buffer at once, and the open one only when flushed", async () => {
  for (const pool of pools(8, 4)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { flush: "manual" });
    writer.tryWrite(new Uint8Array([1, 2, 3, 4]));
    writer.tryWrite(new Uint8Array([5, 6, 7, 8]));
    // Seals the first buffer: it is whole, so it goes without a flush.
    writer.tryWrite(new Uint8Array([9]));
    assert.deepEqual(await takeBatch(flusher), { sizes: [8], bytes: [1, 2, 3, 4, 5, 6, 7, 8] });
    writer.flush();
    assert.deepEqual(await takeBatch(flusher), { sizes: [1], bytes: [9] });
    writer.close();
    flusher.close();
    assert.deepEqual(await readBytes(flusher.readable.getReader()), []);
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter reservations committed out of order reach the flusher only as a contiguous prefix", async () => {
  for (const pool of pools(64, 2)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { flush: "manual" });
    const a = writer.tryReserve(2)!;
    const b = writer.tryReserve(2)!;
    const c = writer.tryReserve(2)!;
    a.bytes.set([1, 1]);
    b.bytes.set([2, 2]);
    c.bytes.set([3, 3]);
    c.commit();
    b.commit();
    writer.flush();
    writer.tryWrite(new Uint8Array([4]));
    // Nothing is ready while `a` is open: taking a batch would hang.
    a.commit();
    writer.flush();
    assert.deepEqual(await takeBatch(flusher), { sizes: [7], bytes: [1, 1, 2, 2, 3, 3, 4] });
    writer.close();
    flusher.close();
    await readBytes(flusher.readable.getReader());
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter frames with every codec, and cancel() sends a zeroed payload in a valid frame", async () => {
  for (const codec of [lengthPrefix(1), lengthPrefix(4, { littleEndian: true }), delimiter("\n")]) {
    const pool = new BufferPool({ bufferSize: 64, bufferCount: 2, shared: true });
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { codec });
    writer.tryWriteString("ab");
    const cancelled = writer.tryReserve(3)!;
    cancelled.bytes.set([7, 7, 7]);
    const kept = writer.tryReserve(2)!;
    kept.bytes.set([0x63, 0x64]);
    cancelled.cancel();
    kept.commit();
    assert.throws(() => cancelled.commit(), ReleasedError);
    writer.close();
    flusher.close();
    const bytes = new Uint8Array(await readBytes(flusher.readable.getReader()));
    const frames = parseFrames(codec, bytes).map((frame) => [...frame]);
    assert.deepEqual(frames, [[0x61, 0x62], [0, 0, 0], [0x63, 0x64]], codec.name);
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter takes a message of exactly the buffer size and refuses one byte more", async () => {
  for (const pool of pools(32, 2)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(2) });
    assert.ok(writer.tryWrite(new Uint8Array(30)));
    assertRangeError(() => writer.tryWrite(new Uint8Array(31)), /33 bytes/, /hold 32/);
    assertRangeError(() => writer.tryReserve(-1), /-1/);
    assertRangeError(() => writer.tryReserve(1.5), /1\.5/);
    writer.close();
    flusher.close();
    assert.equal((await readBytes(flusher.readable.getReader())).length, 32);
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter on pools of 1 and 2 buffers waits for the flusher to give one back, in order", async () => {
  for (const count of [1, 2]) {
    for (const pool of pools(64, count)) {
      const flusher = new WriteFlusher(pool);
      const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(4) });
      const reading = readBytes(flusher.readable.getReader());
      await sharedNumbered(writer, 0, 300, "reserve");
      await sharedNumbered(writer, 1, 300, "write");
      // Two open at once need a second buffer when the second does not fit.
      if (count > 1) await sharedNumbered(writer, 2, 300, "pairs");
      writer.close();
      flusher.close();
      const frames = parseFrames(lengthPrefix(4), new Uint8Array(await reading));
      const next = [0, 0, 0];
      for (const frame of frames) {
        const view = new DataView(frame.buffer, frame.byteOffset);
        const w = view.getUint32(0);
        assert.equal(view.getUint32(4), next[w]);
        assert.equal(frame.length, sizeOf(w, next[w]!));
        next[w]!++;
      }
      assert.deepEqual(next, [300, 300, count > 1 ? 300 : 0]);
      assertAllFree(pool);
    }
  }
});

Deno.test("An aborted reserve rejects with its reason; the switch it started still finishes", async () => {
  for (const pool of pools(16, 1)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { flush: "manual" });
    assert.ok(writer.tryWrite(new Uint8Array(16)));
    const controller = new AbortController();
    const waiting = writer.reserve(8, { signal: controller.signal });
    controller.abort(new Error("gave up"));
    await assert.rejects(waiting, /gave up/);
    // The flusher frees the only buffer: the switch the aborted call began
    // takes it, and a new call gets space in it.
    const reader = flusher.readable.getReader();
    const first = await reader.read();
    for (const region of first.value!) region.release();
    const r = await writer.reserve(8, { signal: AbortSignal.timeout(5000) });
    r.bytes.fill(5);
    r.commit();
    writer.close();
    flusher.close();
    assert.deepEqual(await readBytes(reader), new Array(8).fill(5));
    assertAllFree(pool);
  }
});

Deno.test("Closing a SharedWriter rejects waiting and later calls with ClosedError", async () => {
  for (const pool of pools(16, 1)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(1) });
    assert.ok(writer.tryWrite(new Uint8Array(11)));
    // No room, and the only buffer is not back: it waits.
    const waiting = writer.reserve(4);
    writer.close();
    await assert.rejects(waiting, ClosedError);
    assert.throws(() => writer.tryWrite(new Uint8Array(1)), ClosedError);
    assert.equal(writer.closed, true);
    flusher.close();
    assert.equal((await readBytes(flusher.readable.getReader())).length, 12);
    assertAllFree(pool);
  }
});

Deno.test("Closing a SharedWriter sends its open reservations zeroed; settling one later says why", async () => {
  for (const pool of pools(16, 1)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(1) });
    const open = writer.tryReserve(3)!;
    open.bytes.set([9, 9, 9]);
    assert.ok(writer.tryWrite(new Uint8Array(11).fill(1)));
    writer.close();
    assert.throws(() => open.commit(), /Cannot commit a shared reservation: the writer was closed/);
    assert.equal(open.open, false);
    flusher.close();
    const bytes = new Uint8Array(await readBytes(flusher.readable.getReader()));
    const frames = parseFrames(lengthPrefix(1), bytes);
    assert.deepEqual(frames.map((f) => [...f]), [[0, 0, 0], new Array(11).fill(1)]);
    assertAllFree(pool);
  }
});

Deno.test("A SharedWriter whose flusher's consumer stops rejects its writers and gives every buffer back", async () => {
  for (const how of ["cancel", "failing sink", "close"] as const) {
    for (const pool of pools(16, 2)) {
      const flusher = new WriteFlusher(pool);
      const writer = new SharedWriter(pool, flusher);
      // Bytes the consumer gets (or fails on), then a reservation still open.
      writer.tryWrite(new Uint8Array(10));
      writer.flush();
      const held = writer.tryReserve(4)!;
      if (how === "cancel") await flusher.readable.cancel(new Error("consumer gone"));
      else if (how === "close") flusher.close();
      else {
        const sink = new WritableStream<Uint8Array>({
          write() {
            throw new Error("disk full");
          },
        });
        await assert.rejects(flusher.pipeTo(sink), /disk full/);
      }
      await assert.rejects(
        (async () => {
          for (;;) await writer.write(new Uint8Array(10));
        })(),
        ClosedError,
        how,
      );
      assert.throws(() => held.commit(), /shared reservation: .*sent zeroed/);
      writer.close();
      if (how === "close") await readBytes(flusher.readable.getReader());
      assertAllFree(pool);
    }
  }
});

Deno.test("commitToPacket() keeps the message as a packet after the flusher let its buffer go", async () => {
  for (const pool of pools(16, 2)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher);
    const r = writer.tryReserve(3)!;
    r.bytes.set([4, 5, 6]);
    const packet = r.commitToPacket();
    writer.close();
    flusher.close();
    assert.deepEqual(await readBytes(flusher.readable.getReader()), [4, 5, 6]);
    assert.equal(pool.stats().inUse, 1);
    assert.deepEqual([...packet.bytes], [4, 5, 6]);
    packet.release();
    assertAllFree(pool);
  }
});

Deno.test("A worker may hold at most MAX_OPEN_SHARED_RESERVATIONS open; the limit is in the error", async () => {
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const writer = new SharedWriter(pool, flusher);
  const open = [];
  for (let i = 0; i < MAX_OPEN_SHARED_RESERVATIONS; i++) open.push(writer.tryReserve(1)!);
  assertRangeError(() => writer.tryReserve(1), new RegExp(`${MAX_OPEN_SHARED_RESERVATIONS} open`));
  open.pop()!.commit();
  assert.ok(writer.tryReserve(1) !== null);
  writer.close();
  flusher.close();
  await readBytes(flusher.readable.getReader());
  assertAllFree(pool);
});

Deno.test("A reservation held open stops other claims only when the pool runs out", async () => {
  // 40 buffers: the ring has 64 slots, so the pool is what runs out.
  for (const pool of pools(8, 40)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { flush: "manual" });
    const held = writer.tryReserve(8)!;
    for (let i = 0; i < 39; i++) {
      assert.ok(writer.tryWrite(new Uint8Array(8).fill(i)), `buffer ${i + 2} of 40`);
    }
    assert.equal(writer.tryWrite(new Uint8Array(8)), false);
    const reading = readBytes(flusher.readable.getReader());
    held.bytes.fill(77);
    held.commit();
    await writer.write(new Uint8Array(8).fill(99));
    writer.close();
    flusher.close();
    const bytes = await reading;
    assert.equal(bytes.length, 41 * 8);
    assert.deepEqual(bytes.slice(0, 16), [77, 77, 77, 77, 77, 77, 77, 77, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(bytes.slice(-8), new Array(8).fill(99));
    assertAllFree(pool);
  }
});

Deno.test("A reservation held open stops other claims after MAX_RING_SLOTS - 1 newer buffers in a bigger pool", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1100 });
  const flusher = new WriteFlusher(pool);
  const writer = new SharedWriter(pool, flusher, { flush: "manual" });
  const held = writer.tryReserve(8)!;
  for (let i = 0; i < 1023; i++) assert.ok(writer.tryWrite(new Uint8Array(8)), `buffer ${i + 2}`);
  // The next buffer would take the held one's ring slot.
  assert.equal(writer.tryWrite(new Uint8Array(8)), false);
  assert.ok(pool.stats().free > 0);
  held.commit();
  await writer.write(new Uint8Array(8));
  writer.close();
  flusher.close();
  assert.equal((await readBytes(flusher.readable.getReader())).length, 1025 * 8);
  assertAllFree(pool);
});

Deno.test("SharedWriter refuses a foreign flusher, a bad handle, a codec mismatch and bad options", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2, shared: true });
  const other = new BufferPool({ bufferSize: 64, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  assert.throws(() => new SharedWriter(other, flusher), TypeError);
  assertRangeError(() => new SharedWriter(pool, flusher, { id: -1 }), /id -1/);
  assertRangeError(() => new SharedWriter(pool, flusher, { flushBytes: 0 }), /flushBytes 0/);
  const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(2) });
  assert.throws(
    () => SharedWriter.attach(pool, writer.handle, { codec: lengthPrefix(4) }),
    /codec differs/,
  );
  assert.throws(() => SharedWriter.attach(other, writer.handle), /another pool/);
  assert.throws(
    () =>
      SharedWriter.attach(pool, {
        block: new SharedArrayBuffer(8),
        control: new SharedArrayBuffer(8),
      }),
    TypeError,
  );
  const local = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  using localFlusher = new WriteFlusher(local);
  using localWriter = new SharedWriter(local, localFlusher);
  assert.throws(() => localWriter.handle, /one-worker pool/);
  writer.close();
  flusher.close();
  assertAllFree(pool);
});

Deno.test("Waiting for the next buffer while holding an open reservation is refused, not a hang", async () => {
  for (const pool of pools(16, 1)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher);
    const held = writer.tryReserve(10)!;
    // The next message does not fit: its buffer could only come after `held`'s.
    assert.equal(writer.tryReserve(10), null);
    await assert.rejects(writer.reserve(10), TypeError);
    await assert.rejects(writer.write(new Uint8Array(10)), /holds an open reservation/);
    held.commit();
    const reader = flusher.readable.getReader();
    const first = await reader.read();
    for (const region of first.value!) region.release();
    (await writer.reserve(10)).commit();
    writer.close();
    flusher.close();
    assert.equal((await readBytes(reader)).length, 10);
    assertAllFree(pool);
  }
});

Deno.test("A flusher that ends keeps the buffer another worker's handle still writes in", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const writer = new SharedWriter(pool, flusher, { codec: lengthPrefix(1) });
  // A handle the flusher does not close when it ends: another pool object, as in another worker.
  const there = BufferPool.attach(pool.handle);
  const other = SharedWriter.attach(there, writer.handle, { codec: lengthPrefix(1) });
  assert.ok(other.tryWrite(new Uint8Array(7).fill(1)));
  other.flush();
  const reader = flusher.readable.getReader();
  for (const region of (await reader.read()).value!) region.release();
  await reader.cancel(new Error("consumer gone"));
  // The open buffer is still the writer's: the pool must not hand it out.
  assert.equal(pool.stats().inUse, 1);
  // Its handle learns of the end at its next write, as a Writer's does.
  assert.throws(() => other.tryWrite(new Uint8Array(7).fill(2)), (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.equal(
      e.message,
      "Cannot write to the shared writer: the flusher's consumer failed: consumer gone",
    );
    return true;
  });
  other.close();
  there.detach();
  assertAllFree(pool);
});

Deno.test("SharedWriter: a loop that never yields writes through more buffers than the ring holds, and the flusher gets each whole buffer once", async () => {
  // The ring has 128 slots here; whole buffers wait for the end of
  // the microtask, but never so many that the ring fills with them.
  for (const pool of pools(16, 128)) {
    const flusher = new WriteFlusher(pool);
    const writer = new SharedWriter(pool, flusher, { flush: "manual" });
    const count = 100;
    for (let i = 0; i < count; i++) {
      assert.ok(writer.tryWrite(new Uint8Array(16).fill(i)), `write ${i} found no room`);
    }
    writer.close();
    flusher.close();
    const bytes = await readBytes(flusher.readable.getReader());
    assert.deepEqual(bytes, Array.from({ length: count }, (_, i) => new Array(16).fill(i)).flat());
    assertAllFree(pool);
  }
});

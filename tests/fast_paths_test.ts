// The whole bus's fast paths (issue 12): a writer and a frame cutter read
// and write a lengthPrefix() codec's prefix inline instead of calling the
// codec; a writer waits for its next buffer with one reused place in the
// pool's queue; a lone cutter starts its buffer over so reads stay large;
// pipeTo takes the flush list without the readable. Each must behave
// exactly as the general path does.
import assert from "node:assert/strict";
import {
  BufferPool,
  ClosedError,
  type FrameCodec,
  FrameCutter,
  FrameError,
  type FrameVisitor,
  lengthPrefix,
  type Packet,
  visitFrames,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import { assertAllFree, flush, prng, Tracked } from "./_helpers.ts";
import { readBytes } from "./_writer_helpers.ts";

const PREFIXES: { name: string; codec: FrameCodec | null; size: number }[] = [
  { name: "no codec", codec: null, size: 0 },
  { name: "lengthPrefix(1)", codec: lengthPrefix(1), size: 1 },
  { name: "lengthPrefix(2)", codec: lengthPrefix(2), size: 2 },
  { name: "lengthPrefix(2, le)", codec: lengthPrefix(2, { littleEndian: true }), size: 2 },
  { name: "lengthPrefix(4)", codec: lengthPrefix(4), size: 4 },
  { name: "lengthPrefix(4, le)", codec: lengthPrefix(4, { littleEndian: true }), size: 4 },
];

/** The bytes `codec` frames `payload` into: the reference the inline prefix must match. */
function encoded(codec: FrameCodec | null, payload: Uint8Array): number[] {
  return [...(codec === null ? payload : codec.encode(payload))];
}

Deno.test("Inline prefixes: every way to place a message frames exactly as the codec does, at every fill level", async () => {
  for (const { name, codec, size } of PREFIXES) {
    for (const seed of [1, 2, 3]) {
      const random = prng(seed);
      const bufferSize = 300;
      const pool = new BufferPool({ bufferSize, bufferCount: 64 });
      const flusher = new WriteFlusher(pool);
      const reader = flusher.readable.getReader();
      const writer = new Writer(pool, flusher, codec === null ? {} : { codec });
      // The largest payload one buffer takes; a u8 prefix stops at 255.
      const largest = Math.min(bufferSize - size, codec?.maxPayload ?? Infinity);
      const expected: number[] = [];
      for (let i = 0; i < 200; i++) {
        const length = random(4) === 0 ? largest - random(3) : random(40);
        const payload = new Uint8Array(length).map(() => random(256));
        const way = random(3);
        if (way === 0) {
          assert.ok(writer.tryWrite(payload), name);
        } else if (way === 1) {
          const claim = writer.tryClaim(length)!;
          claim.buffer.set(payload, claim.offset);
          claim.commit();
        } else {
          const reservation = writer.tryReserve(length)!;
          reservation.bytes.set(payload);
          reservation.commit();
        }
        expected.push(...encoded(codec, payload));
        if (random(8) === 0) {
          writer.flush();
          // Drain now and then so that a 64-buffer pool never runs dry.
          const got = await readBytes(reader, false);
          assert.deepEqual(got, expected.splice(0, got.length), `${name}, seed ${seed}`);
        }
      }
      writer.close();
      flusher.close();
      assert.deepEqual(await readBytes(reader), expected, `${name}, seed ${seed}`);
      assertAllFree(pool);
    }
  }
});

Deno.test("Inline prefixes: a payload over the prefix's range or the buffer is the codec's RangeError, before anything is placed", async () => {
  const pool = new BufferPool({ bufferSize: 1024, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const reader = flusher.readable.getReader();
  const u8 = new Writer(pool, flusher, { codec: lengthPrefix(1) });
  assert.ok(u8.tryWrite(new Uint8Array(255)));
  for (const attempt of [() => u8.tryClaim(256), () => u8.tryWrite(new Uint8Array(256))]) {
    assert.throws(attempt, {
      name: "RangeError",
      message: "Cannot reserve 256 bytes: the u8 length prefix codec can frame at most 255",
    });
  }
  const u32 = new Writer(pool, flusher, { codec: lengthPrefix(4) });
  assert.throws(() => u32.tryClaim(1021), {
    name: "RangeError",
    message: "Cannot reserve 1025 bytes: the pool's buffers hold 1024",
  });
  const claim = u32.tryClaim(1020)!;
  assert.equal(claim.offset, 4);
  claim.cancel();
  for (const length of [-1, 1.5, NaN]) {
    assert.throws(() => u32.tryClaim(length), RangeError);
  }
  u8.close();
  u32.close();
  flusher.close();
  assert.equal((await readBytes(reader)).length, 256);
  assertAllFree(pool);
});

Deno.test("Inline prefixes: the cutter cuts, visits and retains exactly what the codec's decode does, over any chunking", () => {
  for (const { name, codec } of PREFIXES) {
    if (codec === null) continue;
    const random = prng(7);
    const payloads = Array.from(
      { length: 300 },
      (_, i) => new Uint8Array(random(4) === 0 ? random(200) : random(20)).fill(i & 0xff),
    );
    const wire = new Uint8Array(payloads.flatMap((p) => encoded(codec, p)));
    // Small buffers, so that frames cross buffer ends and the cutter moves
    // them; enough of them for every packet the test keeps.
    const pool = new BufferPool({ bufferSize: 256, bufferCount: 256 });
    const visited: number[][] = [];
    const kept: Packet[] = [];
    const cut: Packet[] = [];
    const visitor = new FrameCutter(pool, { codec });
    const cutter = new FrameCutter(pool, { codec });
    for (let at = 0; at < wire.length;) {
      const n = 1 + random(120);
      const chunk = wire.subarray(at, at + n);
      const visit: FrameVisitor = (bytes, start, end, self) => {
        visited.push([...bytes.subarray(start, end)]);
        if (visited.length % 5 === 0) kept.push(self.retain());
      };
      assert.equal(visitor.push(chunk, visit), chunk.length, "the pool has room for it all");
      assert.equal(cutter.push(chunk, cut), chunk.length, "the pool has room for it all");
      at += n;
    }
    visitor.end(() => assert.fail("no frame is left at the end"));
    cutter.end(cut);
    assert.deepEqual(visited, payloads.map((p) => [...p]), name);
    assert.deepEqual(cut.map((p) => [...p.bytes]), payloads.map((p) => [...p]), name);
    kept.forEach((packet, i) => assert.deepEqual([...packet.bytes], [...payloads[i * 5 + 4]!]));
    for (const packet of [...kept, ...cut]) packet.release();
    assertAllFree(pool);
  }
});

Deno.test("Inline prefixes: a length over maxFrameLength is the codec's FrameError, after the frames before it", () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
  const codec = lengthPrefix(2);
  const cutter = new FrameCutter(pool, { codec, maxFrameLength: 10 });
  const seen: number[] = [];
  assert.throws(
    () =>
      cutter.push(
        new Uint8Array([0, 1, 7, 0, 2, 8, 8, 0, 11, 1, 2]),
        (bytes, start) => seen.push(bytes[start]!),
      ),
    (error: unknown) => {
      assert.ok(error instanceof FrameError);
      assert.equal(error.frameLength, 11);
      return true;
    },
  );
  assert.deepEqual(seen, [7, 8]);
  assert.ok(cutter.closed);
  assertAllFree(pool);
});

Deno.test("A writer waiting for a buffer holds one place in the pool's queue, given back when it closes", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const reader = flusher.readable.getReader();
  const writer = new Writer(pool, flusher);
  const held = pool.tryAcquire()!;
  const writes = [1, 2, 3].map((i) => new Tracked(writer.write(new Uint8Array([i]))));
  await flush();
  assert.equal(pool.stats().waiters, 1, "one place for the writer, not one per call");
  writer.close();
  await flush();
  assert.equal(pool.stats().waiters, 0);
  for (const write of writes) assert.ok(write.reason() instanceof ClosedError);
  held.release();
  flusher.close();
  assert.deepEqual(await readBytes(reader), []);
  assertAllFree(pool);
});

Deno.test("A buffer granted to a writer that closes before it takes it goes back to the pool", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const reader = flusher.readable.getReader();
  const writer = new Writer(pool, flusher);
  const held = pool.tryAcquire()!;
  const write = new Tracked(writer.write(new Uint8Array([1])));
  await flush();
  // The release hands the buffer to the writer at once; the close comes
  // before the writer could install it.
  held.release();
  assert.equal(pool.stats().waiters, 0);
  writer.close();
  await flush();
  assert.ok(write.reason() instanceof ClosedError);
  flusher.close();
  assert.deepEqual(await readBytes(reader), []);
  assertAllFree(pool);
});

Deno.test("A writer keeps writing across many waits on a one-buffer pool, in order, with no waiter left behind", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { codec: lengthPrefix(1) });
  const received: number[] = [];
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      received.push(...chunk);
    },
  });
  const piped = flusher.pipeTo(sink);
  const expected: number[] = [];
  for (let i = 0; i < 500; i++) {
    const message = new Uint8Array(1 + (i % 9)).fill(i & 0xff);
    await writer.write(message);
    expected.push(message.length, ...message);
  }
  writer.close();
  flusher.close();
  await piped;
  assert.deepEqual(received, expected);
  assertAllFree(pool);
});

Deno.test("A visiting reader alone in its buffer starts it over: every read gets at least half a buffer", async () => {
  const codec = lengthPrefix(2);
  const random = prng(11);
  const payloads = Array.from(
    { length: 2000 },
    (_, i) => new Uint8Array(1 + random(98)).fill(i & 0xff),
  );
  const wire = new Uint8Array(payloads.flatMap((p) => encoded(codec, p)));
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 2 });
  const reads: number[] = [];
  let at = 0;
  const source = {
    read(p: Uint8Array): Promise<number | null> {
      reads.push(p.length);
      if (at === wire.length) return Promise.resolve(null);
      const n = Math.min(p.length, 1 + random(1500), wire.length - at);
      p.set(wire.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  let count = 0;
  await visitFrames(source, pool, { codec }, (bytes, start, end) => {
    assert.deepEqual(bytes.subarray(start, end), payloads[count++]);
  });
  assert.equal(count, payloads.length);
  // Less than half a buffer plus the unfinished frame (at most 101 bytes) never.
  assert.ok(Math.min(...reads) >= 2048 - 101, `smallest read ${Math.min(...reads)}`);
  assertAllFree(pool);
});

Deno.test("After pipeTo ends the flusher, its readable is closed too: a later reader is done at once", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  const written: number[] = [];
  const piped = flusher.pipeTo({
    write(bytes) {
      written.push(...bytes);
      return Promise.resolve(bytes.length);
    },
  });
  writer.tryWrite(new Uint8Array([1, 2, 3]));
  flusher.close();
  await piped;
  assert.deepEqual(written, [1, 2, 3]);
  const reader = flusher.readable.getReader();
  assert.equal((await reader.read()).done, true);
  reader.releaseLock();
  // A second pipe finds nothing and ends.
  await flusher.pipeTo({ write: () => Promise.reject(new Error("nothing to write")) });
  assertAllFree(pool);
});

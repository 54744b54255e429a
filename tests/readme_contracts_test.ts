// README promises of the Writer, Framer, standard streams and workers
// sections that no other test checks directly, each on the unlucky user's
// case: pools of one to four buffers, consumers that stop mid-stream, and
// writers that wait for a buffer while that happens.
import assert from "node:assert/strict";
import {
  BatchFramer,
  BufferPool,
  ClosedError,
  delimiter,
  type FlushRegion,
  FrameError,
  Framer,
  FrameSink,
  largestPayload,
  lengthPrefix,
  type Packet,
  readFrames,
  visitFrames,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import { assertAllFree, chunkSource, flush, Tracked, withinDeadline } from "./_helpers.ts";
import { finish, readBytes } from "./_writer_helpers.ts";

const bytesOf = (...values: number[]) => new Uint8Array(values);

/** A pool of `bufferCount` buffers of `bufferSize` bytes, a flusher, one writer and a reader. */
function rig(bufferSize: number, bufferCount: number, flush: "manual" | "microtask" = "manual") {
  const pool = new BufferPool({ bufferSize, bufferCount });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush });
  return { pool, flusher, writer };
}

// -- Writer and WriteFlusher --

Deno.test("tryWriteString and tryReserve say false/null while an earlier writeString waits; the waiting calls keep call order", async () => {
  const { pool, flusher, writer } = rig(8, 1);
  const reader = flusher.readable.getReader();
  assert.ok(writer.tryWriteString("aaaaaaaa"));
  const first = new Tracked(writer.writeString("bb"));
  assert.equal(writer.tryWriteString("c"), false, "an earlier call waits");
  assert.equal(writer.tryReserve(1), null, "an earlier call waits");
  const second = new Tracked(writer.writeString("dd"));
  const third = new Tracked(writer.reserve(1));
  assert.deepEqual(await readBytes(reader, false), new Array(8).fill(97));
  await flush();
  assert.ok(!first.pending && !second.pending);
  const reservation = third.value();
  reservation.bytes[0] = 101;
  reservation.commit();
  assert.deepEqual(await finish(writer, flusher, reader), [98, 98, 100, 100, 101]);
  assertAllFree(pool);
});

Deno.test("writeString waits with { signal }: an abort while it waits rejects with the reason and never wedges the writer", async () => {
  const { pool, flusher, writer } = rig(4, 1);
  const reader = flusher.readable.getReader();
  assert.ok(writer.tryWriteString("aaaa"));
  const controller = new AbortController();
  const reason = new Error("gave up");
  const aborted = new Tracked(writer.writeString("bb", { signal: controller.signal }));
  const after = new Tracked(writer.writeString("cc"));
  controller.abort(reason);
  await flush();
  assert.equal(aborted.reason(), reason);
  assert.ok(after.pending, "still waits for the only buffer");
  assert.deepEqual(await readBytes(reader, false), [97, 97, 97, 97]);
  await flush();
  assert.ok(!after.pending);
  assert.deepEqual(await finish(writer, flusher, reader), [99, 99]);
  assertAllFree(pool);
});

Deno.test("A cancel never wedges the writer: the only buffer's open reservation cancelled while a write waits for a buffer", async () => {
  const { pool, flusher, writer } = rig(8, 1);
  const received = readBytes(flusher.readable.getReader()); // a consumer always reading, as a pipe is
  const open = writer.tryReserve(4)!;
  const writing = writer.write(new Uint8Array(8).fill(2));
  const waiting = new Tracked(writing);
  await flush();
  assert.ok(waiting.pending, "the only buffer is the writer's");
  open.cancel(); // nothing came after it: taken back, and the empty buffer goes back
  await withinDeadline(writing, "the writer is wedged");
  writer.close();
  flusher.close();
  assert.deepEqual(await received, new Array(8).fill(2));
  assertAllFree(pool);
});

Deno.test("A reservation disposed by `using` with bytes after it goes out as zeros, and a write waiting behind it goes on", async () => {
  const { pool, flusher, writer } = rig(8, 1);
  const reader = flusher.readable.getReader();
  const waiting = (() => {
    using open = writer.tryReserve(4)!;
    open.bytes.fill(9);
    assert.ok(writer.tryWrite(bytesOf(1, 1, 1, 1)));
    return new Tracked(writer.write(bytesOf(2, 2)));
  })();
  assert.deepEqual(await readBytes(reader, false), [0, 0, 0, 0, 1, 1, 1, 1]);
  await flush();
  assert.ok(!waiting.pending);
  assert.deepEqual(await finish(writer, flusher, reader), [2, 2]);
  assertAllFree(pool);
});

Deno.test("flusher.pipeTo(conn) writes each region whole, through a sink that takes 3 bytes a write, while a writer waits for the only buffer", async () => {
  const { pool, flusher, writer } = rig(8, 1, "microtask");
  const got: number[] = [];
  const piped = flusher.pipeTo({
    write(p: Uint8Array) {
      const n = Math.min(3, p.length);
      got.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  });
  for (let i = 0; i < 6; i++) await writer.write(new Uint8Array(5).fill(i));
  writer.close();
  flusher.close();
  await piped;
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5].flatMap((i) => new Array(5).fill(i)));
  assertAllFree(pool);
});

Deno.test("flusher.close() delivers what was flushed, even with a write waiting for the only buffer", async () => {
  const { pool, flusher, writer } = rig(4, 1);
  assert.ok(writer.tryWrite(bytesOf(1, 2, 3, 4)));
  const waiting = new Tracked(writer.write(bytesOf(5)));
  await flush();
  flusher.close();
  assert.deepEqual(await readBytes(flusher.readable.getReader()), [1, 2, 3, 4]);
  await flush();
  assert.ok(!waiting.pending, "the waiting write settled");
  assert.ok(waiting.state.kind === "fulfilled" || waiting.reason() instanceof ClosedError);
  assert.throws(() => writer.tryWrite(bytesOf(6)), ClosedError);
  assertAllFree(pool);
});

Deno.test("A pending claim() rejects with the ClosedError carrying the consumer's error when the sink fails", async () => {
  const { pool, flusher, writer } = rig(8, 1);
  assert.ok(writer.tryWrite(new Uint8Array(8)));
  writer.flush();
  const error = new Error("peer reset");
  const waiting = new Tracked(writer.claim(8));
  const later = new Tracked(writer.writeString("x"));
  await flush();
  assert.ok(waiting.pending);
  await assert.rejects(flusher.pipeTo({ write: () => Promise.reject(error) }), (e) => e === error);
  await flush();
  for (const call of [waiting, later]) {
    const reason = call.reason();
    assert.ok(reason instanceof ClosedError);
    assert.equal(reason.message, "Cannot write: the flusher's consumer failed: peer reset");
    assert.equal(reason.cause, error);
  }
  assertAllFree(pool);
});

Deno.test("Leaving a for await over flusher.readable while a claim() waits for the only buffer gives it back and rejects the claim", async () => {
  const { pool, flusher, writer } = rig(8, 1, "microtask");
  assert.ok(writer.tryWrite(new Uint8Array(8).fill(1)));
  const waiting = new Tracked(writer.claim(4));
  let kept: FlushRegion[] = [];
  for await (const batch of flusher.readable) {
    kept = batch; // read: the consumer's own, released after the loop
    break;
  }
  await flush();
  assert.equal(kept.length, 1);
  for (const region of kept) region.release();
  assertAllFree(pool);
  const reason = waiting.reason();
  assert.ok(reason instanceof ClosedError);
  assert.equal(reason.message, "Cannot write: the flusher's readable was cancelled");
});

Deno.test("flusher.bytes(): a for await loop that breaks while a writer waits for the only buffer gives every buffer back and tells the writer", async () => {
  const { pool, flusher, writer } = rig(4, 1, "microtask");
  assert.ok(writer.tryWrite(bytesOf(1, 2, 3, 4)));
  const waiting = new Tracked(writer.write(bytesOf(5)));
  for await (const chunk of flusher.bytes()) {
    assert.deepEqual([...chunk], [1, 2, 3, 4]);
    break;
  }
  await flush();
  assertAllFree(pool);
  assert.ok(!waiting.pending, "the waiting write settled");
  if (waiting.state.kind === "rejected") assert.ok(waiting.reason() instanceof ClosedError);
  assert.throws(() => writer.tryWrite(bytesOf(6)), ClosedError);
});

Deno.test("Piping flusher.readable into a byte sink fails with the TypeError and leaks nothing, with a write waiting for the only buffer", async () => {
  const { pool, flusher, writer } = rig(4, 1, "microtask");
  assert.ok(writer.tryWrite(bytesOf(1, 2, 3, 4)));
  const waiting = new Tracked(writer.write(bytesOf(5)));
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError("not bytes");
    },
  });
  await assert.rejects(
    flusher.readable.pipeTo(sink as unknown as WritableStream<FlushRegion[]>),
    (e) => e instanceof TypeError && /FlushRegion\[\] batches/.test(e.message),
  );
  await flush();
  assertAllFree(pool);
  assert.ok(waiting.reason() instanceof ClosedError);
});

// -- Framer --

Deno.test("maxFrameLength may not be set higher than largestPayload(codec, bufferSize), in every reader", async () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
  const codec = lengthPrefix(4);
  const maxFrameLength = largestPayload(codec, 256) + 1;
  assert.equal(maxFrameLength, 253);
  const options = { codec, maxFrameLength };
  assert.throws(() => new Framer(pool, options), RangeError);
  assert.throws(() => new BatchFramer(pool, options), RangeError);
  assert.throws(() => new FrameSink(pool, { ...options, visit: () => {} }), RangeError);
  await assert.rejects(readFrames(chunkSource([]), pool, options).next(), RangeError);
  await assert.rejects(visitFrames(chunkSource([]), pool, options, () => {}), RangeError);
  assertAllFree(pool);
});

Deno.test("An oversized length errors the stream from the header alone, before any of the payload arrives", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const codec = lengthPrefix(4);
  const header = bytesOf(0, 0, 0x03, 0xe8); // 1000, big-endian
  const isOversized = (e: unknown) =>
    e instanceof FrameError && e.frameLength === 1000 && e.maxFrameLength === 60;
  // readFrames: the read after the header would fail, so the error must come first.
  let reads = 0;
  const source = {
    read(view: Uint8Array) {
      if (reads++ > 0) return Promise.reject(new Error("read past the header"));
      view.set(header);
      return Promise.resolve(header.length);
    },
  };
  await assert.rejects(readFrames(source, pool, { codec }).next(), isOversized);
  assertAllFree(pool);
  // Framer: the input stays open, and the readable errors all the same.
  const framer = new Framer(pool, { codec });
  const writer = framer.writable.getWriter();
  writer.write(header).catch(() => {});
  await assert.rejects(framer.readable.getReader().read(), isOversized);
  assertAllFree(pool);
});

Deno.test("A delimiter that does not turn up within maxFrameLength bytes errors with a FrameError, the input still open", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
  const framer = new BatchFramer(pool, { codec: delimiter("\n"), maxFrameLength: 8 });
  const writer = framer.writable.getWriter();
  writer.write(new TextEncoder().encode("ok\n0123456789")).catch(() => {});
  const reader = framer.readable.getReader();
  const { value } = await reader.read();
  assert.deepEqual(value!.map((p) => p.text()), ["ok"]);
  for (const packet of value!) packet.release();
  await assert.rejects(
    reader.read(),
    (e) => e instanceof FrameError && e.maxFrameLength === 8 && e.frameLength > 8,
  );
  assertAllFree(pool);
});

/** One read of `kind` on a 1-buffer pool: a frame cut, then one crossing the buffer's end. */
const CROSSING = [
  ...lengthPrefix(1).encode(bytesOf(1, 1, 1, 1, 1)),
  ...lengthPrefix(1).encode(new Uint8Array(12).fill(2)),
];

for (const kind of ["Framer", "BatchFramer", "readFrames"] as const) {
  Deno.test(`${kind} on a one-buffer pool: releasing a kept packet wakes a read waiting for the buffer it pins`, async () => {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
    const codec = lengthPrefix(1);
    let next: () => Promise<Packet[] | undefined>;
    let stop: () => Promise<unknown>;
    if (kind === "readFrames") {
      const frames = readFrames(chunkSource([new Uint8Array(CROSSING)]), pool, { codec });
      next = async () => (await frames.next()).value ?? undefined;
      stop = () => frames.return(undefined);
    } else {
      const framer = kind === "Framer"
        ? new Framer(pool, { codec })
        : new BatchFramer(pool, { codec });
      const reader = (framer.readable as ReadableStream<Packet | Packet[]>).getReader();
      framer.writable.getWriter().write(new Uint8Array(CROSSING)).catch(() => {});
      next = async () => {
        const { done, value } = await reader.read();
        return done ? undefined : [value].flat();
      };
      stop = () => reader.cancel();
    }
    const kept = (await next())!;
    assert.deepEqual(kept.map((p) => [...p.bytes]), [[1, 1, 1, 1, 1]]);
    const reading = next();
    const waiting = new Tracked(reading);
    await flush();
    assert.ok(waiting.pending, "the kept packet pins the only buffer");
    for (const packet of kept) packet.release();
    const second = (await withinDeadline(reading, "the release did not wake the read"))!;
    assert.deepEqual(second.map((p) => [...p.bytes]), [new Array(12).fill(2)]);
    for (const packet of second) packet.release();
    await stop();
    assertAllFree(pool);
  });
}

// -- Workers --

Deno.test("reclaim(workerId) serves a waiter in another pool object at once and frees the dead one's slot", async () => {
  const pool = new BufferPool({
    bufferSize: 16,
    bufferCount: 4,
    batchSize: 1,
    shared: true,
    maxWorkers: 3,
  });
  // Stands in for a worker that dies holding every buffer: its handles are dropped, not leaked.
  const dead = BufferPool.attach(pool.handle, { leakDetection: "off" });
  const waiter = BufferPool.attach(pool.handle);
  for (let i = 0; i < 4; i++) assert.ok(dead.tryAcquire() !== null);
  const acquiring = waiter.acquire();
  const got = new Tracked(acquiring);
  await flush();
  assert.ok(got.pending, "every buffer is the dead one's");
  assert.equal(pool.reclaim(dead.workerId), 4);
  (await withinDeadline(acquiring, "the waiter was not served")).release();
  assert.equal(pool.stats().workers, 2, "the dead one's slot is free again");
  const next = BufferPool.attach(pool.handle);
  assert.equal(next.workerId, dead.workerId);
  next.detach();
  waiter.detach();
  assertAllFree(pool);
});

import assert from "node:assert/strict";
import {
  BufferPool,
  type BufferPoolOptions,
  ClosedError,
  type FlushRegion,
  lengthPrefix,
  ReleasedError,
  SharedWriter,
  varintPrefix,
  WriteFlusher,
  Writer,
  type WriterOptions,
} from "../mod.ts";
import { assertAllFree, assertRangeError, flush, Tracked } from "./_helpers.ts";
import {
  checkMessages,
  parseFrames,
  readAll,
  readBytes,
  writeNumbered,
  YIELD_TO_TASKS,
} from "./_writer_helpers.ts";
import type { WriterJob, WriterReport } from "./workers/writer_worker.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytesOf(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** Reads one batch, returning each region's bytes and writer; releases them. */
async function nextBatch(
  reader: ReadableStreamDefaultReader<FlushRegion[]>,
): Promise<{ bytes: number[]; writerId: number }[]> {
  const { done, value } = await reader.read();
  assert.equal(done, false, "expected a batch, the stream ended");
  return value!.map((region) => {
    const out = { bytes: [...region.bytes], writerId: region.writerId };
    region.release();
    return out;
  });
}

/** Closes `flusher` and returns everything still to come, as bytes; releases all. */
async function closeAndDrain(
  flusher: WriteFlusher,
  reader?: ReadableStreamDefaultReader<FlushRegion[]>,
): Promise<number[]> {
  flusher.close();
  return await readBytes(reader ?? flusher.readable.getReader());
}

/** A pool, a flusher, a writer to it, and (on first use) a reader of the flusher. */
function rig(poolOptions: BufferPoolOptions, writerOptions?: WriterOptions) {
  const pool = new BufferPool(poolOptions);
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, writerOptions);
  let reader: ReadableStreamDefaultReader<FlushRegion[]> | undefined;
  return {
    pool,
    flusher,
    writer,
    // Locks the readable only for the tests that read it this way.
    get reader() {
      return reader ??= flusher.readable.getReader();
    },
  };
}

// -- Packing and flushing --

Deno.test("Writer packs messages contiguously and flush() hands them over as one region per buffer", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 16, bufferCount: 4 }, {
    flush: "manual",
  });
  for (let i = 0; i < 5; i++) assert.ok(writer.tryWrite(bytesOf(i, i, i, i, i)));
  // 5-byte messages: three fit a 16-byte buffer, the fourth starts the next.
  assert.equal(pool.stats().inUse, 2);
  const pending = new Tracked(reader.read());
  await flush();
  assert.ok(pending.pending, "nothing reaches the flusher before flush()");
  writer.flush();
  await flush();
  const batch = (pending.value() as ReadableStreamReadResult<FlushRegion[]>).value!;
  assert.deepEqual(batch.map((r) => r.length), [15, 10]);
  assert.deepEqual([...batch[0]!.bytes], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
  assert.ok(batch.every((r) => r.writerId === writer.id));
  for (const region of batch) region.release();
  // The first buffer was finished: it is back once its region is released.
  assert.equal(pool.stats().inUse, 1);
  writer.close();
  assert.deepEqual(await closeAndDrain(flusher, reader), []);
  assertAllFree(pool);
});

Deno.test("Writer delivers later bytes of a buffer it already flushed as a new region", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, {
    flush: "manual",
  });
  writer.tryWrite(bytesOf(1, 2));
  writer.flush();
  assert.deepEqual(await nextBatch(reader), [{ bytes: [1, 2], writerId: writer.id }]);
  writer.tryWrite(bytesOf(3));
  writer.tryWrite(bytesOf(4));
  // Flushed twice before the reader looks: still one region, up to date.
  writer.flush();
  writer.tryWrite(bytesOf(5));
  writer.flush();
  assert.deepEqual(await nextBatch(reader), [{ bytes: [3, 4, 5], writerId: writer.id }]);
  assert.equal(pool.stats().inUse, 1, "the writer keeps its current buffer");
  writer.close();
  assert.deepEqual(await closeAndDrain(flusher, reader), []);
  assertAllFree(pool);
});

Deno.test("Writer flushes at the end of the microtask by default, coalescing one tick's writes", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 });
  writer.tryWrite(bytesOf(1));
  writer.tryWriteString("ab");
  await writer.write(bytesOf(2));
  assert.deepEqual(await nextBatch(reader), [{ bytes: [1, 97, 98, 2], writerId: writer.id }]);
  writer.close();
  await closeAndDrain(flusher, reader);
  assertAllFree(pool);
});

Deno.test("Writer with flushBytes flushes as soon as that many bytes were committed", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, {
    flush: "manual",
    flushBytes: 4,
  });
  writer.tryWrite(bytesOf(1, 2, 3));
  const next = new Tracked(reader.read());
  await flush();
  assert.ok(next.pending);
  writer.tryWrite(bytesOf(4));
  await flush();
  const batch = (next.value() as ReadableStreamReadResult<FlushRegion[]>).value!;
  assert.deepEqual([...batch[0]!.bytes], [1, 2, 3, 4]);
  batch[0]!.release();
  writer.close();
  await closeAndDrain(flusher, reader);
  assertAllFree(pool);
});

Deno.test("Writer hands thousands of messages over in one flush, in order, whatever the backlog", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 1000, bufferCount: 64 }, {
    flush: "manual",
    codec: lengthPrefix(2),
  });
  const count = 5000;
  const message = new Uint8Array(8);
  const view = new DataView(message.buffer);
  for (let i = 0; i < count; i++) {
    view.setUint32(0, i);
    assert.ok(writer.tryWrite(message));
  }
  writer.flush();
  const reader = flusher.readable.getReader();
  const { value: batch } = await reader.read();
  assert.equal(batch!.length, Math.ceil(count / Math.floor(1000 / 10)));
  const bytes: number[] = [];
  for (const region of batch!) {
    bytes.push(...region.bytes);
    region.release();
  }
  const seqs = parseFrames(lengthPrefix(2), new Uint8Array(bytes)).map((f) =>
    new DataView(f.buffer, f.byteOffset).getUint32(0)
  );
  assert.deepEqual(seqs, Array.from({ length: count }, (_, i) => i));
  writer.close();
  await closeAndDrain(flusher, reader);
  assertAllFree(pool);
});

// -- Sizes --

Deno.test("Writer takes a message of exactly the buffer size and refuses one byte more with a RangeError", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 32, bufferCount: 2 });
  const framed = new Writer(pool, flusher, { codec: lengthPrefix(4) });
  assert.ok(writer.tryWrite(new Uint8Array(32).fill(7)));
  assertRangeError(() => writer.tryWrite(new Uint8Array(33)), /Cannot reserve 33 bytes/, /hold 32/);
  assertRangeError(() => writer.tryReserve(33), /hold 32/);
  await assert.rejects(writer.reserve(33), RangeError);
  await assert.rejects(writer.write(new Uint8Array(33)), RangeError);
  // Under a codec the frame counts: 28 bytes of payload fill a 32-byte buffer.
  assertRangeError(() => framed.tryReserve(29), /Cannot reserve 33 bytes/);
  assertRangeError(() => framed.tryWriteString("x".repeat(29)), /does not fit in a buffer of 32/);
  for (const bad of [-1, 1.5, NaN]) {
    assertRangeError(() => writer.tryReserve(bad), /not an integer/);
  }
  assertRangeError(
    () => new Writer(pool, flusher, { codec: lengthPrefix(1) }).tryReserve(256),
    /at most 255/,
  );
  const r = framed.tryReserve(28)!;
  r.bytes.fill(1);
  r.commit();
  writer.close();
  framed.close();
  const bytes = await closeAndDrain(flusher);
  assert.deepEqual(bytes, [...new Array(32).fill(7), 0, 0, 0, 28, ...new Array(28).fill(1)]);
  assertAllFree(pool);
});

Deno.test("Writer keeps a large message in order with later small ones", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 16, bufferCount: 4 }, { flush: "manual" });
  writer.tryWrite(bytesOf(1, 1, 1));
  writer.tryWrite(new Uint8Array(14).fill(2)); // over half a buffer: starts the next one
  writer.tryWrite(bytesOf(3, 3));
  writer.close();
  const bytes = await closeAndDrain(flusher);
  assert.deepEqual(bytes, [1, 1, 1, ...new Array(14).fill(2), 3, 3]);
  assertAllFree(pool);
});

// -- Reservations --

Deno.test("Reservations committed out of order reach the flusher only as a contiguous prefix", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 32, bufferCount: 2 }, {
    flush: "manual",
  });
  const [a, b, c] = [writer.tryReserve(2)!, writer.tryReserve(2)!, writer.tryReserve(2)!];
  a.bytes.set([1, 1]);
  b.bytes.set([2, 2]);
  c.bytes.set([3, 3]);
  c.commit();
  writer.tryWrite(bytesOf(4)); // committed at once, but behind a and b
  b.commit();
  writer.flush();
  const next = new Tracked(reader.read());
  await flush();
  assert.ok(next.pending, "nothing is deliverable while the first reservation is open");
  a.commit();
  writer.flush();
  await flush();
  const batch = (next.value() as ReadableStreamReadResult<FlushRegion[]>).value!;
  assert.deepEqual([...batch[0]!.bytes], [1, 1, 2, 2, 3, 3, 4]);
  batch[0]!.release();
  assert.throws(() => a.commit(), ReleasedError);
  assert.throws(() => a.bytes, ReleasedError);
  assert.equal(a.open, false);
  writer.close();
  await closeAndDrain(flusher, reader);
  assertAllFree(pool);
});

Deno.test("Reservation.cancel() takes back the newest space and zeroes one in the middle", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 32, bufferCount: 2 }, {
    flush: "manual",
    codec: lengthPrefix(1),
  });
  const middle = writer.tryReserve(2)!;
  middle.bytes.set([9, 9]);
  writer.tryWrite(bytesOf(5));
  middle.cancel();
  {
    using last = writer.tryReserve(3)!;
    last.bytes.set([8, 8, 8]);
  } // disposed open: taken back, nothing sent
  writer.tryWrite(bytesOf(6));
  assert.throws(() => middle.cancel(), ReleasedError);
  writer.close();
  assert.deepEqual(await closeAndDrain(flusher), [2, 0, 0, 1, 5, 1, 6]);
  assertAllFree(pool);
});

Deno.test("An abandoned reservation holds back every later byte of its writer, in every buffer, until closed", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 8, bufferCount: 3 }, {
    flush: "manual",
  });
  const abandoned = writer.tryReserve(4)!;
  abandoned.bytes.fill(1);
  assert.ok(writer.tryWrite(bytesOf(2, 2, 2, 2)));
  assert.ok(writer.tryWrite(bytesOf(3, 3, 3)), "the writer goes on into the next buffer");
  writer.flush();
  const next = new Tracked(reader.read());
  await flush();
  assert.ok(next.pending, "nothing goes out past the open reservation");
  // Closing the writer cancels it: zeroed, since bytes follow it.
  writer.close();
  assert.equal(abandoned.open, false);
  await flush();
  const bytes = (next.value() as ReadableStreamReadResult<FlushRegion[]>).value!.flatMap((r) => {
    const out = [...r.bytes];
    r.release();
    return out;
  });
  assert.deepEqual(bytes, [0, 0, 0, 0, 2, 2, 2, 2, 3, 3, 3]);
  assert.deepEqual(await closeAndDrain(flusher, reader), []);
  assertAllFree(pool);
});

for (const method of ["commitToPacket", "toPacket"] as const) {
  Deno.test(`Reservation.${method}() commits and keeps the message as a packet on the same memory`, async () => {
    const { pool, flusher, writer } = rig({ bufferSize: 32, bufferCount: 2 }, {
      codec: varintPrefix(),
    });
    const r = writer.tryReserve(3)!;
    r.bytes.set([7, 8, 9]);
    const packet = r[method]();
    assert.deepEqual([...packet.bytes], [7, 8, 9]);
    assert.equal(r.open, false, "committed");
    assert.throws(() => r.commit(), ReleasedError);
    assert.throws(() => r[method](), ReleasedError);
    writer.close();
    assert.deepEqual(await closeAndDrain(flusher), [3, 7, 8, 9]);
    assert.equal(pool.stats().inUse, 1, "the packet still holds the buffer");
    packet.release();
    assertAllFree(pool);
  });
}

Deno.test("Writer.tryWriteString() encodes in place under each kind of codec", async () => {
  const pool = new BufferPool({ bufferSize: 300, bufferCount: 4 });
  const flusher = new WriteFlusher(pool);
  const varint = new Writer(pool, flusher, { codec: varintPrefix(), flush: "manual" });
  const plain = new Writer(pool, flusher, { flush: "manual" });
  // 2 characters may take up to 6 bytes, whose varint is as short as 2's.
  assert.ok(varint.tryWriteString("hé"));
  // 50 characters may take 150 bytes (a 2-byte varint); ASCII takes 50 (1 byte).
  const long = "x".repeat(50);
  assert.ok(varint.tryWriteString(long));
  assert.ok(plain.tryWriteString("€"));
  varint.close();
  plain.close();
  const bytes = new Uint8Array(await closeAndDrain(flusher));
  const frames = parseFrames(varintPrefix(), bytes.subarray(0, bytes.length - 3));
  assert.deepEqual(frames.map((f) => decoder.decode(f)), ["hé", long]);
  assert.deepEqual([...bytes.subarray(bytes.length - 3)], [...encoder.encode("€")]);
  assertAllFree(pool);
});

// -- Waiting for buffers --

Deno.test("Writer.reserve() waits for a buffer in call order, and tryWrite() cannot jump the queue", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 8, bufferCount: 2 }, {
    flush: "manual",
  });
  assert.ok(writer.tryWrite(new Uint8Array(8).fill(1)));
  assert.ok(writer.tryWrite(new Uint8Array(8).fill(2)));
  assert.equal(writer.tryReserve(1), null, "the pool is empty");
  const first = new Tracked(writer.write(new Uint8Array(4).fill(3)));
  const second = new Tracked(writer.reserve(4));
  assert.equal(writer.tryWrite(bytesOf(9)), false, "earlier calls wait: order is kept");
  await flush();
  assert.ok(first.pending && second.pending);
  // Waiting flushed the full buffers: consuming them frees one.
  const batch = await nextBatch(reader);
  assert.deepEqual(batch.map((r) => r.bytes[0]), [1, 2]);
  await flush();
  assert.ok(!first.pending);
  const r = second.value();
  r.bytes.fill(4);
  r.commit();
  writer.close();
  assert.deepEqual(await closeAndDrain(flusher, reader), [3, 3, 3, 3, 4, 4, 4, 4]);
  assertAllFree(pool);
});

Deno.test("An aborted reserve rejects with the reason and never wedges the writer", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 8, bufferCount: 1 }, {
    flush: "manual",
  });
  assert.ok(writer.tryWrite(new Uint8Array(6).fill(1)));
  const controller = new AbortController();
  const aborted = new Tracked(writer.reserve(4, { signal: controller.signal }));
  const after = new Tracked(writer.write(bytesOf(2, 2, 2, 2)));
  await flush();
  controller.abort(new Error("gave up"));
  await flush();
  assert.equal((aborted.reason() as Error).message, "gave up");
  await assert.rejects(writer.reserve(1, { signal: AbortSignal.abort(new Error("no")) }), /no/);
  assert.ok(after.pending);
  // The buffer switch goes on for the calls behind it.
  assert.deepEqual(await nextBatch(reader), [{ bytes: [1, 1, 1, 1, 1, 1], writerId: writer.id }]);
  await flush();
  assert.ok(!after.pending);
  writer.close();
  assert.deepEqual(await closeAndDrain(flusher, reader), [2, 2, 2, 2]);
  assertAllFree(pool);
});

Deno.test("A slow reader makes writers wait on the pool: memory never grows past it", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 64, bufferCount: 4 });
  const count = 200;
  const writing = (async () => {
    for (let i = 0; i < count; i++) await writer.write(new Uint8Array(16).fill(i & 0xff));
    writer.close();
    flusher.close();
  })();
  const reader = flusher.readable.getReader();
  const got: number[] = [];
  let mostInUse = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    mostInUse = Math.max(mostInUse, pool.stats().inUse);
    // Slow: each region waits a few turns before it is released.
    for (const region of value) {
      for (let i = 0; i < region.length; i += 16) got.push(region.bytes[i]!);
      await flush();
      region.release();
    }
  }
  await writing;
  assert.deepEqual(got, Array.from({ length: count }, (_, i) => i & 0xff));
  assert.ok(mostInUse <= 4);
  assertAllFree(pool);
});

// -- Closing --

Deno.test("WriteFlusher.close() delivers what was committed, then later writes throw ClosedError", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 16, bufferCount: 1 }, { flush: "manual" });
  writer.tryWrite(bytesOf(1, 2, 3));
  const open = writer.tryReserve(2)!;
  const waiting = new Tracked(writer.reserve(16));
  flusher.close();
  assert.ok(writer.closed && flusher.closed);
  await flush();
  assert.ok(waiting.reason() instanceof ClosedError);
  assert.equal(open.open, false, "closing cancels open reservations");
  assert.throws(() => writer.tryWrite(bytesOf(1)), ClosedError);
  assert.throws(() => writer.tryReserve(1), ClosedError);
  await assert.rejects(writer.write(bytesOf(1)), ClosedError);
  assert.deepEqual(await closeAndDrain(flusher), [1, 2, 3]);
  flusher.close();
  assertAllFree(pool);
});

Deno.test("Cancelling the readable releases every buffer and closes the writers", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 16, bufferCount: 4 }, { flush: "manual" });
  writer.tryWrite(new Uint8Array(12));
  writer.tryWrite(new Uint8Array(12));
  writer.flush();
  writer.tryWrite(new Uint8Array(3));
  await flusher.readable.cancel(new Error("consumer gone"));
  assert.ok(writer.closed);
  assert.throws(() => writer.tryWrite(bytesOf(1)), ClosedError);
  assertAllFree(pool);
});

Deno.test("A writer with only the flusher's handle learns of the end when it flushes, and gives its buffers back", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4, shared: true });
  const flusher = new WriteFlusher(pool);
  // As a writer in another worker would: through the handle, not registered.
  const writer = new Writer(pool, flusher.handle, { flush: "manual" });
  writer.tryWrite(bytesOf(1, 1));
  writer.flush();
  writer.tryWrite(bytesOf(2, 2));
  assert.deepEqual(await closeAndDrain(flusher), [1, 1]);
  assert.equal(writer.closed, false, "it has not looked yet");
  assert.throws(() => writer.flush(), ClosedError);
  assert.ok(writer.closed);
  assertAllFree(pool);

  const late = new Writer(pool, flusher.handle);
  assert.throws(() => late.tryWrite(bytesOf(1)), ClosedError);
  assertAllFree(pool);
});

Deno.test("Writer and WriteFlusher refuse a wrong pool, a foreign handle and bad options", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const other = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  assert.throws(() => new Writer(other, flusher), /another pool/);
  assert.throws(() => flusher.handle, TypeError);
  const bogus = { control: new SharedArrayBuffer(4) };
  assert.throws(() => new Writer(pool, bogus), TypeError);
  assertRangeError(() => new Writer(pool, flusher, { id: -1 }), /id -1/);
  assertRangeError(() => new Writer(pool, flusher, { flushBytes: 0 }), /flushBytes/);
  const a = new Writer(pool, flusher);
  const b = new Writer(pool, flusher, { id: 77 });
  assert.notEqual(a.id, new Writer(pool, flusher).id);
  assert.equal(b.id, 77);
  flusher.close();
  assertAllFree(pool);
});

Deno.test("WriteFlusher.pipeTo() writes into a WritableStream, releasing each region after its write", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const chunks: number[][] = [];
  const inUseSeen: number[] = [];
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push([...chunk]);
      inUseSeen.push(pool.stats().inUse);
    },
  });
  const piped = flusher.pipeTo(sink);
  const writer = new Writer(pool, flusher);
  for (let i = 0; i < 10; i++) await writer.write(new Uint8Array(4).fill(i));
  writer.close();
  flusher.close();
  await piped;
  assert.deepEqual(chunks.flat(), Array.from({ length: 40 }, (_, i) => i >> 2));
  assert.ok(inUseSeen.every((n) => n >= 1), "a region is held while it is written");
  assertAllFree(pool);
});

Deno.test("WriteFlusher.pipeTo() that fails releases everything and closes the writers", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 8, bufferCount: 4 });
  const sink = {
    write(): Promise<number> {
      return Promise.reject(new Error("broken pipe"));
    },
  };
  writer.tryWrite(new Uint8Array(8));
  writer.tryWrite(new Uint8Array(8));
  await assert.rejects(flusher.pipeTo(sink), /broken pipe/);
  assert.ok(writer.closed);
  assertAllFree(pool);
});

Deno.test("WriteFlusher.pipeTo() stops when its signal aborts", async () => {
  const { pool, flusher, writer } = rig({ bufferSize: 8, bufferCount: 4 });
  const controller = new AbortController();
  const written: number[] = [];
  const firstWrite = Promise.withResolvers<void>();
  const piped = flusher.pipeTo({
    write(bytes) {
      written.push(...bytes);
      firstWrite.resolve();
      return Promise.resolve(bytes.length);
    },
  }, { signal: controller.signal });
  await writer.write(bytesOf(1));
  await firstWrite.promise;
  controller.abort(new Error("stop"));
  await assert.rejects(piped, /stop/);
  assert.ok(writer.closed);
  assert.deepEqual(written, [1]);
  assertAllFree(pool);
});

// -- Over TCP, one worker --

Deno.test("Several writers round-trip numbered messages over loopback TCP", async () => {
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 16 });
  const codec = lengthPrefix(4);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = (async () => {
    const conn = await listener.accept();
    const bytes = await readAll(conn);
    listener.close();
    return bytes;
  })();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const flusher = new WriteFlusher(pool);
  const piped = flusher.pipeTo(conn);
  const writers = [0, 1, 2].map(() => new Writer(pool, flusher, { codec }));
  const perWriter = 3000;
  await Promise.all(writers.map(async (writer, w) => {
    await writeNumbered(writer, w, perWriter, { every: 100, pause: () => Promise.resolve() });
    writer.close();
  }));
  flusher.close();
  await piped;
  conn.close();

  checkMessages(parseFrames(codec, await received), 3, perWriter);
  assertAllFree(pool);
});

Deno.test("Writers in two workers and the main thread round-trip over loopback TCP through one flusher", async () => {
  // Few buffers, so that writers wait on the pool while the socket drains.
  const pool = new BufferPool({ bufferSize: 2048, bufferCount: 12, batchSize: 2, shared: true });
  const codec = lengthPrefix(4);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = (async () => {
    const conn = await listener.accept();
    const bytes = await readAll(conn);
    listener.close();
    return bytes;
  })();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const flusher = new WriteFlusher(pool);
  const piped = flusher.pipeTo(conn);
  const perWriter = 4000;

  const workers = [1, 2].map(() =>
    new Worker(new URL("./workers/writer_worker.ts", import.meta.url), { type: "module" })
  );
  try {
    const reports = workers.map((worker, i) =>
      new Promise<WriterReport>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<WriterReport>) => resolve(event.data);
        worker.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message));
        };
        worker.postMessage(
          {
            pool: pool.handle,
            flusher: flusher.handle,
            writer: i + 1,
            count: perWriter,
          } satisfies WriterJob,
        );
      })
    );
    const local = new Writer(pool, flusher, { codec });
    await writeNumbered(local, 0, perWriter, YIELD_TO_TASKS);
    local.close();
    for (const report of await Promise.all(reports)) assert.ok(report.ok, JSON.stringify(report));
  } finally {
    for (const worker of workers) worker.terminate();
  }
  flusher.close();
  await piped;
  conn.close();
  checkMessages(parseFrames(codec, await received), 3, perWriter);
  assertAllFree(pool);
  assert.equal(pool.stats().workers, 1, "the workers detached");
});

Deno.test("Writer.codec and SharedWriter.codec are the codec they were made with, or null", () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 4, shared: true });
  const flusher = new WriteFlusher(pool);
  const codec = lengthPrefix(2);
  const shared = new SharedWriter(pool, flusher, { codec });
  const writers = [
    new Writer(pool, flusher),
    new Writer(pool, flusher, { codec }),
    new SharedWriter(pool, flusher),
    shared,
  ];
  assert.deepEqual(writers.map((w) => w.codec), [null, codec, null, codec]);
  const attached = SharedWriter.attach(pool, shared.handle, { codec });
  assert.equal(attached.codec, codec);
  attached.close();
  for (const writer of writers) writer.close();
  flusher.close();
  assertAllFree(pool);
});

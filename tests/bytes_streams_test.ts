// Pool memory meeting the standard byte streams (issue 13): packets copied
// out as plain bytes (PacketBytesStream, Framer's `output: "bytes"`), the
// flusher as a byte stream (`bytes()`), its batch readable piped by mistake
// to a byte sink, and `using` a flusher. Every way out (cancel, abort, a
// failed pipe, a frame error) must leave the pool full. Pools of 1-4 buffers.
import assert from "node:assert/strict";
import {
  BufferPool,
  ClosedError,
  delimiter,
  type FlushRegion,
  FrameError,
  Framer,
  lengthPrefix,
  type Packet,
  PacketBytesStream,
  ReleasedError,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import { assertAllFree, take } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A packet holding `text`, on a buffer of its own. */
function packetOf(pool: BufferPool, text: string): Packet {
  const buffer = take(pool);
  const { written } = encoder.encodeInto(text, buffer.bytes);
  return buffer.intoPacket(0, written);
}

/** A byte stream whose chunks the test pushes, and which it can end or fail. */
function controlledSource(): {
  readable: ReadableStream<Uint8Array>;
  push(text: string): void;
  close(): void;
  cancelled: Promise<unknown>;
} {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const cancelled = Promise.withResolvers<unknown>();
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel(reason) {
      cancelled.resolve(reason);
    },
  });
  return {
    readable,
    push: (text) => controller.enqueue(encoder.encode(text)),
    close: () => controller.close(),
    cancelled: cancelled.promise,
  };
}

/** Asserts `promise` rejects with exactly `reason`. */
async function assertRejectsWith(promise: Promise<unknown>, reason: unknown): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal(error, reason);
    return true;
  });
}

// -- PacketBytesStream --

Deno.test("PacketBytesStream: frames reach a TextDecoderStream as text and every packet is released", async () => {
  // One 16-byte buffer for 40 bytes of lines: the framer only gets on if
  // each packet is released as its bytes are copied.
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const lines = Array.from({ length: 8 }, (_, i) => `line ${i}`);
  const input = ReadableStream.from([encoder.encode(lines.join("\n") + "\n")]);
  const text = input
    .pipeThrough(new Framer(pool, { codec: delimiter("\n") }))
    .pipeThrough(new PacketBytesStream())
    .pipeThrough(new TextDecoderStream());
  assert.deepEqual(await Array.fromAsync(text), lines);
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: each chunk is a copy on its own ArrayBuffer, even from a shared pool", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 2, shared: true });
  const stream = new PacketBytesStream();
  const writer = stream.writable.getWriter();
  const packet = packetOf(pool, "héllo");
  const written = writer.write(packet);
  const { value } = await stream.readable.getReader().read();
  await written;
  assert.ok(packet.released);
  assert.ok(value instanceof Uint8Array);
  assert.ok(value.buffer instanceof ArrayBuffer);
  assert.equal(value.byteLength, value.buffer.byteLength, "a whole buffer of its own");
  assert.equal(decoder.decode(value), "héllo");
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: cancelling the readable releases the packets queued on the writable side", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  const stream = new PacketBytesStream();
  const writer = stream.writable.getWriter();
  // Written past backpressure: the writable side queues them; nobody reads.
  const packets = ["a", "b", "c", "d"].map((text) => packetOf(pool, text));
  const writes = packets.map((packet) => writer.write(packet).catch((error: unknown) => error));
  assert.equal(pool.stats().inUse, 4);
  const reason = new Error("downstream is done");
  await stream.readable.cancel(reason);
  for (const result of await Promise.all(writes)) assert.equal(result, reason);
  assert.ok(packets.every((packet) => packet.released));
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: aborting the writable releases the queued packets", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 3 });
  const stream = new PacketBytesStream();
  const writer = stream.writable.getWriter();
  const writes = ["a", "b", "c"].map((text) => writer.write(packetOf(pool, text)).catch(() => {}));
  await writer.abort(new Error("upstream gave up"));
  await Promise.all(writes);
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: a downstream cancel mid-pipe releases everything, packets in the framer too", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const source = controlledSource();
  const text = source.readable
    .pipeThrough(new Framer(pool, { codec: delimiter("\n") }))
    .pipeThrough(new PacketBytesStream())
    .pipeThrough(new TextDecoderStream());
  source.push("one\ntwo\nthree\nfour\n");
  const reader = text.getReader();
  assert.deepEqual(await reader.read(), { done: false, value: "one" });
  assert.ok(pool.stats().inUse > 0, "frames wait in the framer");
  const reason = new Error("seen enough");
  await reader.cancel(reason);
  assert.equal(await source.cancelled, reason);
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: a FrameError upstream comes through after the good frames, with nothing leaked", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const codec = lengthPrefix(1);
  const good = [codec.encode(encoder.encode("ok")), codec.encode(encoder.encode("fine"))];
  const bad = new Uint8Array([200]); // announces 200 bytes, over the limit of 16
  const input = ReadableStream.from([new Uint8Array([...good[0]!, ...good[1]!, ...bad])]);
  const reader = input
    .pipeThrough(new Framer(pool, { codec, maxFrameLength: 16 }))
    .pipeThrough(new PacketBytesStream())
    .getReader();
  assert.equal(decoder.decode((await reader.read()).value), "ok");
  assert.equal(decoder.decode((await reader.read()).value), "fine");
  await assert.rejects(reader.read(), FrameError);
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: the framer's signal aborting mid-stream releases everything", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const source = controlledSource();
  const abort = new AbortController();
  const reader = source.readable
    .pipeThrough(new Framer(pool, { codec: delimiter("\n"), signal: abort.signal }))
    .pipeThrough(new PacketBytesStream())
    .getReader();
  source.push("a\nb\nc\n");
  assert.equal(decoder.decode((await reader.read()).value), "a");
  const reason = new Error("shutting down");
  abort.abort(reason);
  await assertRejectsWith(reader.read(), reason);
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: pipeThrough's own signal aborting releases everything", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const source = controlledSource();
  const abort = new AbortController();
  const reader = source.readable
    .pipeThrough(new Framer(pool, { codec: delimiter("\n") }))
    .pipeThrough(new PacketBytesStream(), { signal: abort.signal })
    .getReader();
  source.push("a\nb\nc\n");
  assert.equal(decoder.decode((await reader.read()).value), "a");
  const reason = new Error("stop the pipe");
  abort.abort(reason);
  await assertRejectsWith(reader.read(), reason);
  assert.equal(await source.cancelled, reason);
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: a chunk that is not a packet errors the stream and releases the queued packets", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const stream = new PacketBytesStream();
  const read = stream.readable.getReader().read(); // lifts the backpressure
  const writer = stream.writable.getWriter();
  const bad = writer.write(new Uint8Array([1]) as unknown as Packet);
  const queued = writer.write(packetOf(pool, "x")).catch(() => {});
  await assert.rejects(bad, (error: unknown) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /PacketBytesStream takes Packets, got Uint8Array/);
    return true;
  });
  await queued;
  await assert.rejects(read, TypeError);
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: a released packet errors the stream with ReleasedError and releases the rest", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const stream = new PacketBytesStream();
  const read = stream.readable.getReader().read();
  const writer = stream.writable.getWriter();
  const released = packetOf(pool, "gone");
  released.release();
  const bad = writer.write(released);
  const queued = writer.write(packetOf(pool, "x")).catch(() => {});
  await assert.rejects(bad, ReleasedError);
  await assert.rejects(read, ReleasedError);
  await queued;
  assertAllFree(pool);
});

Deno.test("PacketBytesStream: a write after the stream ended is refused and leaves the packet with the caller", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const stream = new PacketBytesStream();
  const writer = stream.writable.getWriter();
  await stream.readable.cancel();
  const packet = packetOf(pool, "late");
  await assert.rejects(writer.write(packet));
  assert.equal(packet.released, false);
  packet.release();
  assertAllFree(pool);
});

// -- Framer with output: "bytes" --

Deno.test('Framer output "bytes": copies on their own ArrayBuffers, kept past the pool\'s size', async () => {
  // One 16-byte buffer, 12 frames kept by the reader: only copies allow that.
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1, shared: true });
  const words = Array.from({ length: 12 }, (_, i) => `word${i}`);
  const input = ReadableStream.from([encoder.encode(words.join(" ") + " ")]);
  const chunks = await Array.fromAsync(
    input.pipeThrough(new Framer(pool, { codec: delimiter(" "), output: "bytes" })),
  );
  assert.ok(chunks.every((chunk) => chunk.buffer instanceof ArrayBuffer));
  assert.deepEqual(chunks.map((chunk) => decoder.decode(chunk)), words);
  assertAllFree(pool);
});

Deno.test('Framer output "bytes": pipes straight into a TextDecoderStream', async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const text = ReadableStream.from([encoder.encode("alpha\nbeta\n")])
    .pipeThrough(new Framer(pool, { codec: delimiter("\n"), output: "bytes" }))
    .pipeThrough(new TextDecoderStream());
  assert.deepEqual(await Array.fromAsync(text), ["alpha", "beta"]);
  assertAllFree(pool);
});

Deno.test('Framer output "bytes": a downstream cancel releases the packets not yet read', async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const source = controlledSource();
  const reader = source.readable
    .pipeThrough(new Framer(pool, { codec: delimiter("\n"), output: "bytes" }))
    .getReader();
  source.push("1\n2\n3\n");
  assert.equal(decoder.decode((await reader.read()).value), "1");
  assert.ok(pool.stats().inUse > 0);
  await reader.cancel(new Error("done"));
  assertAllFree(pool);
});

Deno.test('Framer output "bytes": a FrameError comes after the good frames; the signal releases everything', async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const codec = lengthPrefix(1);
  const input = ReadableStream.from([
    new Uint8Array([...codec.encode(new Uint8Array([7])), 99]), // then a 99-byte frame, over 8
  ]);
  const reader = input
    .pipeThrough(new Framer(pool, { codec, maxFrameLength: 8, output: "bytes" }))
    .getReader();
  assert.deepEqual([...(await reader.read()).value!], [7]);
  await assert.rejects(reader.read(), FrameError);
  assertAllFree(pool);

  const source = controlledSource();
  const abort = new AbortController();
  const aborted = source.readable
    .pipeThrough(
      new Framer(pool, { codec: delimiter("\n"), output: "bytes", signal: abort.signal }),
    )
    .getReader();
  source.push("x\ny\n");
  assert.equal(decoder.decode((await aborted.read()).value), "x");
  const reason = new Error("abort");
  abort.abort(reason);
  await assertRejectsWith(aborted.read(), reason);
  assertAllFree(pool);
});

Deno.test("Framer: an unknown output is a RangeError naming the choices", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  assert.throws(
    () => new Framer(pool, { codec: delimiter("\n"), output: "text" as "bytes" }),
    (error: unknown) => {
      assert.ok(error instanceof RangeError);
      assert.match(error.message, /output "text" must be "packets" or "bytes"/);
      return true;
    },
  );
  assertAllFree(pool);
});

// -- WriteFlusher.bytes() --

Deno.test("WriteFlusher.bytes(): writers' text through a TextDecoderStream, on a one-buffer pool", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const text = flusher.bytes().pipeThrough(new TextDecoderStream());
  const collected = Array.fromAsync(text);
  const writer = new Writer(pool, flusher);
  const words = Array.from({ length: 20 }, (_, i) => `w${i} `);
  // 60-odd bytes through one 16-byte buffer: each write waits for the last
  // copy to release its region.
  for (const word of words) await writer.writeString(word);
  writer.close();
  flusher.close();
  assert.equal((await collected).join(""), words.join(""));
  assertAllFree(pool);
});

Deno.test("WriteFlusher.bytes(): chunks are copies on their own ArrayBuffers, even from a shared pool", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const reader = flusher.bytes().getReader();
  const writer = new Writer(pool, flusher);
  writer.tryWriteString("abc");
  const { value } = await reader.read();
  assert.ok(value!.buffer instanceof ArrayBuffer);
  assert.equal(decoder.decode(value), "abc");
  writer.close();
  flusher.close();
  assert.equal((await reader.read()).done, true);
  assertAllFree(pool);
});

Deno.test("WriteFlusher.bytes(): cancelling ends the flusher, releases what was flushed, and tells the writers why", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const bytes = flusher.bytes();
  const writer = new Writer(pool, flusher, { flush: "manual" });
  writer.tryWriteString("pending");
  writer.flush();
  assert.equal(pool.stats().inUse, 1);
  const reason = new Error("not interested");
  await bytes.cancel(reason);
  assertAllFree(pool);
  assert.equal(flusher.closed, true);
  assert.throws(() => writer.tryWriteString("more"), (error: unknown) => {
    assert.ok(error instanceof ClosedError);
    assert.equal(error.cause, reason);
    return true;
  });
});

Deno.test("WriteFlusher.bytes(): a cancel while a read waits for writers settles it and leaks nothing", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const reader = flusher.bytes().getReader();
  const read = reader.read();
  await reader.cancel(new Error("bye"));
  assert.deepEqual(await read, { done: true, value: undefined });
  assertAllFree(pool);
});

Deno.test("WriteFlusher.bytes(): a failing sink and an aborted pipe both leave the pool full", async () => {
  for (const way of ["sink fails", "signal aborts"] as const) {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
    const flusher = new WriteFlusher(pool);
    const writer = new Writer(pool, flusher);
    const abort = new AbortController();
    const reason = new Error(way);
    const firstWrite = Promise.withResolvers<void>();
    const sink = new WritableStream<Uint8Array>({
      write() {
        firstWrite.resolve();
        if (way === "sink fails") throw reason;
        // Busy until the abort: a pipe lets a write in flight finish first.
        return new Promise<void>((resolve) =>
          abort.signal.addEventListener("abort", () => resolve())
        );
      },
    });
    const piped = flusher.bytes().pipeTo(sink, { signal: abort.signal });
    writer.tryWriteString("first");
    await firstWrite.promise;
    writer.tryWriteString("second"); // flushed, waiting on the list
    if (way === "signal aborts") abort.abort(reason);
    await assertRejectsWith(piped, reason);
    writer.close();
    assertAllFree(pool);
  }
});

Deno.test("WriteFlusher.bytes(): refused while the readable is locked", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  flusher.bytes();
  assert.throws(() => flusher.bytes(), (error: unknown) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /Cannot read the flusher as bytes: its readable is locked/);
    return true;
  });
  flusher.close();
});

// -- flusher.readable piped to a byte sink by mistake --

/** A flusher with one writer that has flushed "hello". */
function flushedHello(): { pool: BufferPool; flusher: WriteFlusher; writer: Writer } {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  writer.tryWriteString("hello");
  writer.flush();
  return { pool, flusher, writer };
}

/** Asserts `error` is the flusher's byte-sink TypeError, caused by a TypeError. */
function assertByteSinkError(error: unknown): void {
  assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
  assert.match(
    error.message,
    /flusher\.readable to a byte sink: it yields FlushRegion\[\] batches/,
  );
  assert.match(error.message, /flusher\.pipeTo\(sink\).*flusher\.bytes\(\)/);
  assert.ok(error.cause instanceof TypeError);
}

Deno.test("flusher.readable piped to a TextDecoderStream: a clear TypeError, for the pipe and the writers, and no leak", async () => {
  const { pool, flusher, writer } = flushedHello();
  const decoding = new TextDecoderStream();
  const text = Array.fromAsync(decoding.readable).catch((error: unknown) => error);
  let caught: unknown;
  await flusher.readable
    .pipeTo(decoding.writable as unknown as WritableStream<FlushRegion[]>)
    .catch((error: unknown) => caught = error);
  assertByteSinkError(caught);
  assert.ok(await text instanceof TypeError);
  assertAllFree(pool);
  assert.throws(() => writer.tryWriteString("more"), (error: unknown) => {
    assert.ok(error instanceof ClosedError);
    assert.match(error.message, /batches, not bytes/);
    assert.equal(error.cause, caught);
    return true;
  });
});

Deno.test("flusher.readable.pipeThrough(new TextDecoderStream()): the writers get the clear error, nothing leaks", async () => {
  const { pool, flusher, writer } = flushedHello();
  const text = flusher.readable.pipeThrough(
    new TextDecoderStream() as unknown as TransformStream<FlushRegion[], string>,
  );
  await assert.rejects(Array.fromAsync(text), TypeError);
  assertAllFree(pool);
  assert.equal(flusher.closed, true);
  assert.throws(() => writer.tryWriteString("more"), (error: unknown) => {
    assert.ok(error instanceof ClosedError);
    assertByteSinkError(error.cause);
    return true;
  });
});

Deno.test("flusher.readable piped to a TCP connection's writable: the clear error, no leak", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  const { pool, flusher, writer } = flushedHello();
  let caught: unknown;
  await flusher.readable
    .pipeTo(conn.writable as unknown as WritableStream<FlushRegion[]>)
    .catch((error: unknown) => caught = error);
  assertByteSinkError(caught);
  assertAllFree(pool);
  assert.throws(() => writer.tryWriteString("more"), ClosedError);
  server.close();
  listener.close();
  try {
    conn.close(); // the failed pipe may have closed it already
  } catch (error) {
    assert.ok(error instanceof Deno.errors.BadResource);
  }
});

Deno.test("A mistaken pipe with preventCancel: the clear error, the batch reclaimed, the flusher still readable", async () => {
  const { pool, flusher, writer } = flushedHello();
  const decoding = new TextDecoderStream();
  const text = Array.fromAsync(decoding.readable).catch((error: unknown) => error);
  let caught: unknown;
  await flusher.readable
    .pipeTo(decoding.writable as unknown as WritableStream<FlushRegion[]>, { preventCancel: true })
    .catch((error: unknown) => caught = error);
  assertByteSinkError(caught);
  assert.ok(await text instanceof TypeError);
  assert.equal(pool.stats().inUse, 1, "only the writer's own buffer");
  // Not cancelled: the flusher goes on, and a reader now gets what follows.
  assert.equal(flusher.closed, false);
  writer.tryWriteString("next");
  writer.flush();
  const reader = flusher.readable.getReader();
  const { value: batch } = await reader.read();
  assert.equal(decoder.decode(batch![0]!.bytes), "next");
  for (const region of batch!) region.release();
  writer.close();
  flusher.close();
  assert.equal((await reader.read()).done, true);
  assertAllFree(pool);
});

// -- flusher.readable piped to destinations that take batches --

Deno.test("flusher.readable piped to a WritableStream of batches: delivered, released by the sink, nothing reclaimed twice", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const received: string[] = [];
  const piped = flusher.readable.pipeTo(
    new WritableStream<FlushRegion[]>({
      write(batch) {
        for (const region of batch) {
          received.push(decoder.decode(region.bytes));
          region.release();
        }
      },
    }),
  );
  const writer = new Writer(pool, flusher);
  for (let i = 0; i < 10; i++) await writer.writeString(`m${i};`);
  writer.close();
  flusher.close();
  await piped;
  assert.equal(received.join(""), Array.from({ length: 10 }, (_, i) => `m${i};`).join(""));
  assertAllFree(pool);
});

Deno.test("A batch sink that fails after taking a batch: its error is kept, and the batch queued behind is reclaimed", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  const reason = new TypeError("sink broke");
  const inWrite = Promise.withResolvers<void>();
  const fail = Promise.withResolvers<void>();
  const secondQueued = Promise.withResolvers<void>();
  let queued = 0;
  const piped = flusher.readable.pipeTo(
    new WritableStream<FlushRegion[]>({
      async write(batch) {
        for (const region of batch) region.release(); // touched: the sink takes batches
        inWrite.resolve();
        await fail.promise;
        throw reason;
      },
    }, {
      highWaterMark: 4,
      size() {
        if (++queued === 2) secondQueued.resolve();
        return 1;
      },
    }),
  );
  writer.tryWriteString("first");
  writer.flush();
  await inWrite.promise;
  writer.tryWriteString("second");
  writer.flush();
  await secondQueued.promise; // the pipe read it into the sink's queue
  assert.equal(pool.stats().inUse, 1);
  fail.resolve();
  await assertRejectsWith(piped, reason); // a TypeError, but not rephrased: the sink took a batch
  assertAllFree(pool);
  assert.throws(() => writer.tryWriteString("x"), (error: unknown) => {
    assert.ok(error instanceof ClosedError);
    assert.equal(error.cause, reason);
    return true;
  });
});

Deno.test("A batch sink that keeps batches untouched past its failed pipe finds them reclaimed (the documented rule)", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  const kept: FlushRegion[][] = [];
  const reason = new Error("sink gave up");
  let sinkController!: WritableStreamDefaultController;
  const stashed = Promise.withResolvers<void>();
  const piped = flusher.readable.pipeTo(
    new WritableStream<FlushRegion[]>({
      start(controller) {
        sinkController = controller;
      },
      write(batch) {
        kept.push(batch); // for later: not touched
        stashed.resolve();
      },
    }),
  );
  writer.tryWriteString("later");
  writer.flush();
  await stashed.promise;
  sinkController.error(reason);
  await assertRejectsWith(piped, reason); // not a TypeError: not rephrased
  assertAllFree(pool);
  assert.equal(kept[0]![0]!.released, true);
  assert.throws(() => kept[0]![0]!.bytes, ReleasedError);
});

Deno.test("A reader's batches stay its own when it cancels, touched or not", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  writer.tryWriteString("held");
  writer.flush();
  const kept: FlushRegion[][] = [];
  for await (const batch of flusher.readable) {
    kept.push(batch); // untouched, then the loop's exit cancels
    break;
  }
  assert.equal(flusher.closed, true);
  const region = kept[0]![0]!;
  assert.equal(region.released, false);
  assert.equal(decoder.decode(region.bytes), "held");
  assert.equal(pool.stats().inUse, 1);
  region.release();
  assertAllFree(pool);
});

// -- using a flusher --

Deno.test("WriteFlusher[Symbol.dispose]: leaving a using scope closes the flusher and its writers", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  let reader: ReadableStreamDefaultReader<FlushRegion[]>;
  let writer: Writer;
  {
    using flusher = new WriteFlusher(pool);
    reader = flusher.readable.getReader();
    writer = new Writer(pool, flusher, { flush: "manual" });
    writer.tryWriteString("last words");
    assert.equal(flusher.closed, false);
  }
  assert.equal(writer.closed, true);
  assert.throws(() => writer.tryWriteString("more"), ClosedError);
  const { value: batch } = await reader.read(); // what was committed still arrives
  assert.equal(decoder.decode(batch![0]!.bytes), "last words");
  for (const region of batch!) region.release();
  assert.equal((await reader.read()).done, true);
  assertAllFree(pool);
});

Deno.test("WriteFlusher[Symbol.dispose] after close() does nothing more", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  flusher.close();
  flusher[Symbol.dispose]();
  assert.equal(flusher.closed, true);
  assertAllFree(pool);
});

// -- Packet.text() and Packet.json() --

Deno.test("Packet.text() decodes UTF-8, replacing malformed bytes; from a shared pool too", () => {
  for (const shared of [false, true]) {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared });
    using packet = packetOf(pool, "héllo ✓");
    assert.equal(packet.text(), "héllo ✓");
    using head = packet.subarray(0, 2); // "h" and half of "é"
    assert.equal(head.text(), "h\uFFFD");
  }
});

Deno.test("Packet.json() parses; bad JSON passes its SyntaxError through", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
  using good = packetOf(pool, '{"a":[1,"two"]}');
  assert.deepEqual(good.json(), { a: [1, "two"] });
  using bad = packetOf(pool, "{nope");
  assert.throws(() => bad.json(), SyntaxError);
});

Deno.test("Packet.text() and json() on a released packet throw ReleasedError", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const packet = packetOf(pool, "1");
  packet.release();
  assert.throws(() => packet.text(), (error: unknown) => {
    assert.ok(error instanceof ReleasedError);
    assert.match(error.message, /Cannot read the text of a packet: it was already released/);
    return true;
  });
  assert.throws(() => packet.json(), (error: unknown) => {
    assert.ok(error instanceof ReleasedError);
    assert.match(error.message, /Cannot parse the JSON of a packet/);
    return true;
  });
  assertAllFree(pool);
});

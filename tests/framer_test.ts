import assert from "node:assert/strict";
import {
  BatchFramer,
  BufferPool,
  type BufferPoolOptions,
  ClosedError,
  delimiter,
  fixedSize,
  type FrameCodec,
  FrameCutter,
  type FrameCutterOptions,
  FrameError,
  Framer,
  lengthPrefix,
  type Packet,
  readFrames,
  TruncatedError,
  varintPrefix,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import { assertAllFree, assertRangeError, flush, prng, Tracked } from "./_helpers.ts";

// -- Helpers --

/** Copies each packet's payload out, then releases it. */
function takeAll(packets: Packet[]): number[][] {
  const out = packets.map((p) => [...p.bytes]);
  for (const packet of packets) packet.release();
  packets.length = 0;
  return out;
}

/** Cuts `chunks` with a fresh FrameCutter; returns the payloads. The pool must not run dry. */
function cutSync(pool: BufferPool, options: FrameCutterOptions, chunks: Uint8Array[]): number[][] {
  const cutter = new FrameCutter(pool, options);
  const packets: Packet[] = [];
  const out: number[][] = [];
  for (const chunk of chunks) {
    assert.equal(cutter.push(chunk, packets), chunk.length, "the pool ran dry");
    out.push(...takeAll(packets));
  }
  cutter.end(packets);
  out.push(...takeAll(packets));
  return out;
}

/** Pipes `chunks` through a BatchFramer; returns the payloads and the batch sizes. */
async function cutBatched(
  pool: BufferPool,
  options: FrameCutterOptions,
  chunks: Uint8Array[],
): Promise<{ payloads: number[][]; batches: number[] }> {
  const payloads: number[][] = [];
  const batches: number[] = [];
  for await (
    const batch of ReadableStream.from(chunks).pipeThrough(new BatchFramer(pool, options))
  ) {
    batches.push(batch.length);
    payloads.push(...takeAll(batch));
  }
  return { payloads, batches };
}

/** Pipes `chunks` through a per-packet Framer; returns the payloads. */
async function cutEach(
  pool: BufferPool,
  options: FrameCutterOptions,
  chunks: Uint8Array[],
): Promise<number[][]> {
  const payloads: number[][] = [];
  for await (const packet of ReadableStream.from(chunks).pipeThrough(new Framer(pool, options))) {
    payloads.push([...packet.bytes]);
    packet.release();
  }
  return payloads;
}

/** `bytes` cut at each offset in `cuts` (ascending). */
function splitAt(bytes: Uint8Array, ...cuts: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.slice(at, cut));
    at = cut;
  }
  return chunks;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Asserts that `error` is a FrameError with these lengths. */
function isFrameError(frameLength: number, maxFrameLength: number) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof FrameError, `expected a FrameError, got ${String(error)}`);
    assert.equal(error.frameLength, frameLength);
    assert.equal(error.maxFrameLength, maxFrameLength);
    return true;
  };
}

/** Reads a stream to its end or error; releases every packet read. */
async function drainStream(readable: ReadableStream<Packet | Packet[]>): Promise<unknown> {
  try {
    for await (const item of readable) {
      for (const packet of Array.isArray(item) ? item : [item]) packet.release();
    }
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Payloads each codec can frame: lengths 0 to 300, bytes that never hold `avoid`. */
function payloadsFor(codec: FrameCodec, avoid: number[]): Uint8Array[] {
  const random = prng(7);
  const lengths = codec.name.startsWith("fixed")
    ? [5, 5, 5, 5]
    : [0, 1, 2, 5, 31, 127, 128, 200, 255, 0, 3];
  if (codec.maxPayload >= 300) lengths.push(300, 1000);
  return lengths.map((n) => {
    const payload = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      let b = random(256);
      while (avoid.includes(b)) b = random(256);
      payload[i] = b;
    }
    return payload;
  });
}

const CODECS: { codec: FrameCodec; avoid: number[] }[] = [
  { codec: lengthPrefix(1), avoid: [] },
  { codec: lengthPrefix(2), avoid: [] },
  { codec: lengthPrefix(2, { littleEndian: true }), avoid: [] },
  { codec: lengthPrefix(4), avoid: [] },
  { codec: lengthPrefix(4, { littleEndian: true }), avoid: [] },
  { codec: varintPrefix(), avoid: [] },
  { codec: delimiter("\n"), avoid: [10] },
  { codec: delimiter("\r\n"), avoid: [13] },
  { codec: delimiter(new Uint8Array([0, 0xff, 0])), avoid: [0] },
  { codec: fixedSize(5), avoid: [] },
];

/** Writes `payloads` with a real Writer under `codec`; returns the flushed bytes. */
async function writeWithWriter(codec: FrameCodec, payloads: Uint8Array[]): Promise<Uint8Array> {
  const pool = new BufferPool({ bufferSize: 2048, bufferCount: 16 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { codec, flush: "manual" });
  for (const payload of payloads) assert.ok(writer.tryWrite(payload));
  writer.close();
  flusher.close();
  const parts: Uint8Array[] = [];
  for await (const batch of flusher.readable) {
    for (const region of batch) {
      parts.push(region.bytes.slice());
      region.release();
    }
  }
  assertAllFree(pool);
  return concat(parts);
}

// -- Round trips with the Writer's encoder --

for (const { codec, avoid } of CODECS) {
  Deno.test(`Framer round-trips ${codec.name} frames written by a Writer, in every form`, async () => {
    const payloads = payloadsFor(codec, avoid);
    const expected = payloads.map((p) => [...p]);
    const bytes = await writeWithWriter(codec, payloads);
    // Buffers of 1.5 KiB: the 1000-byte payload straddles one at least once.
    const pool = new BufferPool({ bufferSize: 1536, bufferCount: 8 });
    const options = { codec, maxFrameLength: 1024 };
    assert.deepEqual(cutSync(pool, options, [bytes]), expected);
    assertAllFree(pool);
    const chunks = splitAt(bytes, 7, 100, 101, 1400, 1401, 1402);
    assert.deepEqual(cutSync(pool, options, chunks), expected);
    assert.deepEqual((await cutBatched(pool, options, chunks)).payloads, expected);
    assert.deepEqual(await cutEach(pool, options, chunks), expected);
    assertAllFree(pool);
  });
}

// -- Every chunking gives the same frames --

Deno.test("FrameCutter gives the same frames for a split at every byte offset, 1-byte chunks and one chunk", () => {
  for (const { codec, avoid } of CODECS) {
    const payloads = payloadsFor(codec, avoid).filter((p) => p.length <= 40);
    const expected = payloads.map((p) => [...p]);
    const bytes = concat(payloads.map((p) => codec.encode(p)));
    // 64-byte buffers: frames straddle buffer ends at many offsets.
    const pool = new BufferPool({ bufferSize: 64, bufferCount: 8 });
    const options = { codec, maxFrameLength: 48 };
    assert.deepEqual(cutSync(pool, options, [bytes]), expected, codec.name);
    for (let cut = 0; cut <= bytes.length; cut++) {
      assert.deepEqual(
        cutSync(pool, options, splitAt(bytes, cut)),
        expected,
        `${codec.name} @${cut}`,
      );
    }
    const ones = Array.from(bytes, (b) => new Uint8Array([b]));
    assert.deepEqual(cutSync(pool, options, ones), expected, `${codec.name} 1-byte chunks`);
    const random = prng(11);
    for (let round = 0; round < 20; round++) {
      const cuts: number[] = [];
      for (let at = random(30); at < bytes.length; at += 1 + random(30)) cuts.push(at);
      assert.deepEqual(cutSync(pool, options, splitAt(bytes, ...cuts)), expected, codec.name);
    }
    assertAllFree(pool);
  }
});

Deno.test("BatchFramer and Framer give the same frames for 1-byte chunks and one chunk", async () => {
  const codec = varintPrefix();
  const payloads = payloadsFor(codec, []).filter((p) => p.length <= 200);
  const expected = payloads.map((p) => [...p]);
  const bytes = concat(payloads.map((p) => codec.encode(p)));
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 8 });
  const options = { codec, maxFrameLength: 200 };
  const ones = Array.from(bytes, (b) => new Uint8Array([b]));
  for (const chunks of [ones, [bytes]]) {
    assert.deepEqual((await cutBatched(pool, options, chunks)).payloads, expected);
    assert.deepEqual(await cutEach(pool, options, chunks), expected);
  }
  assertAllFree(pool);
});

Deno.test("BatchFramer enqueues one array per chunk that completes frames, none for one that does not", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const codec = lengthPrefix(1);
  const chunks = [[1, 9, 2, 8], [7, 0], [1], [6]].map((bytes) => new Uint8Array(bytes));
  const { payloads, batches } = await cutBatched(pool, { codec }, chunks);
  assert.deepEqual(payloads, [[9], [8, 7], [], [6]]);
  assert.deepEqual(batches, [1, 2, 1]);
  assertAllFree(pool);
});

// -- Zero copy --

Deno.test("FrameCutter cuts packets on its staging buffer and moves a straddling frame once", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  const codec = lengthPrefix(1);
  const cutter = new FrameCutter(pool, { codec });
  const packets: Packet[] = [];
  // Frames of 6 bytes: two fill [0, 12); the third starts at 12 and cannot end by 16.
  const frame = (b: number) => [5, b, b, b, b, b];
  cutter.push(new Uint8Array([...frame(1), ...frame(2), 5, 3]), packets);
  assert.equal(packets.length, 2);
  const [first, second] = packets as [Packet, Packet];
  // Views of the staging buffer where the frames landed, 6 bytes apart: no copy.
  assert.equal(second.bytes.byteOffset - first.bytes.byteOffset, 6);
  // Its header is known and it would end at 18: it moves before more bytes come.
  assert.equal(cutter.needsBuffer, true);
  assert.equal(cutter.buffered, 2);
  assert.equal(pool.stats().inUse, 1); // the packets hold the first buffer
  cutter.push(new Uint8Array([3, 3, 3, 3]), packets);
  assert.equal(pool.stats().inUse, 2);
  assert.deepEqual(takeAll(packets), [[1, 1, 1, 1, 1], [2, 2, 2, 2, 2], [3, 3, 3, 3, 3]]);
  assert.equal(pool.stats().inUse, 1); // only the staging buffer
  cutter.end(packets);
  assertAllFree(pool);
});

Deno.test("FrameCutter gives a full buffer back as soon as its last frame is cut", () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 2 });
  const cutter = new FrameCutter(pool, { codec: fixedSize(4) });
  const packets: Packet[] = [];
  cutter.push(new Uint8Array(8), packets);
  assert.equal(cutter.needsBuffer, true);
  assert.equal(pool.stats().inUse, 1);
  takeAll(packets);
  assertAllFree(pool);
  cutter.end(packets);
});

Deno.test("FrameCutter.writable and commit fill staging memory in place", () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 2 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const packets: Packet[] = [];
  let view = cutter.writable()!;
  assert.equal(view.length, 8);
  view.set([2, 1, 2, 5, 7]);
  cutter.commit(5, packets);
  assert.deepEqual(takeAll(packets), [[1, 2]]);
  // The next frame would end at 9: [5, 7] moves to a fresh buffer at once.
  assert.equal(cutter.needsBuffer, true);
  view = cutter.writable()!;
  assert.equal(view.length, 6);
  view.set([7, 7, 7, 7]);
  cutter.commit(4, packets);
  assert.deepEqual(takeAll(packets), [[7, 7, 7, 7, 7]]);
  assertRangeError(() => cutter.commit(100, packets), /Cannot commit 100 bytes/, /has 2 free/);
  cutter.commit(0, packets);
  cutter.end(packets);
  assert.throws(() => cutter.writable(), ClosedError);
  assertAllFree(pool);
});

// -- maxFrameLength --

Deno.test("FrameCutter accepts a frame of exactly maxFrameLength and rejects one over from its header", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const codec = lengthPrefix(2);
  assert.deepEqual(
    cutSync(pool, { codec, maxFrameLength: 10 }, [codec.encode(new Uint8Array(10))]),
    [Array(10).fill(0)],
  );
  const cutter = new FrameCutter(pool, { codec, maxFrameLength: 10 });
  const packets: Packet[] = [];
  cutter.push(codec.encode(new Uint8Array(3)), packets);
  // Only the header of the oversized frame: it fails before any payload comes.
  assert.throws(() => cutter.push(new Uint8Array([0, 11]), packets), isFrameError(11, 10));
  assert.equal(cutter.closed, true);
  assert.throws(() => cutter.push(new Uint8Array(1), packets), ClosedError);
  takeAll(packets);
  assertAllFree(pool);
});

Deno.test("FrameCutter finds a delimiter at maxFrameLength and fails one byte past it", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const codec = delimiter("\r\n");
  const encoder = new TextEncoder();
  const options = { codec, maxFrameLength: 4 };
  assert.deepEqual(cutSync(pool, options, [encoder.encode("abcd\r\n")]), [[97, 98, 99, 100]]);
  const cutter = new FrameCutter(pool, options);
  const packets: Packet[] = [];
  // 5 bytes and no CRLF: a delimiter starting at byte 4 could still come.
  cutter.push(encoder.encode("abcde"), packets);
  assert.throws(() => cutter.push(encoder.encode("\r"), packets), isFrameError(6, 4));
  assertAllFree(pool);
});

Deno.test("FrameCutter cuts zero-length frames", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  assert.deepEqual(cutSync(pool, { codec: lengthPrefix(4) }, [new Uint8Array(12)]), [[], [], []]);
  assert.deepEqual(
    cutSync(pool, { codec: delimiter("\n") }, [new Uint8Array([10, 10]), new Uint8Array([10])]),
    [[], [], []],
  );
  assert.deepEqual(cutSync(pool, { codec: varintPrefix() }, [new Uint8Array(20)]).length, 20);
  assertAllFree(pool);
});

Deno.test("FrameCutter checks maxFrameLength against the pool's buffers when made", () => {
  const pool = new BufferPool({ bufferSize: 1024, bufferCount: 2 });
  assertRangeError(
    () => new FrameCutter(pool, { codec: lengthPrefix(4), maxFrameLength: 1021 }),
    /maxFrameLength must be an integer from 0 to 1020/,
    /1024-byte buffers less 4 bytes of u32be length prefix framing/,
    /received 1021/,
  );
  assertRangeError(
    () => new FrameCutter(pool, { codec: varintPrefix(), maxFrameLength: 1020 }),
    /from 0 to 1019/, // a varint header may take 5 bytes
  );
  assertRangeError(
    () => new FrameCutter(pool, { codec: delimiter("\r\n"), maxFrameLength: 1.5 }),
    /from 0 to 1022/,
  );
  assertRangeError(() => new FrameCutter(pool, { codec: lengthPrefix(1), maxFrameLength: -1 }));
  assertRangeError(
    () => new FrameCutter(pool, { codec: fixedSize(2000) }),
    /fixed 2000 frames carry 2000-byte payloads, over the maxFrameLength of 1024/,
  );
  // Defaults: 1 MiB, lowered to what the buffers and the codec allow.
  assert.equal(new FrameCutter(pool, { codec: lengthPrefix(4) }).maxFrameLength, 1020);
  assert.equal(new FrameCutter(pool, { codec: lengthPrefix(1) }).maxFrameLength, 255);
  const big = new BufferPool({ bufferSize: 4 * 1024 * 1024, bufferCount: 1 });
  assert.equal(new FrameCutter(big, { codec: lengthPrefix(4) }).maxFrameLength, 1024 * 1024);
  assertAllFree(pool);
});

// -- Malformed input --

Deno.test("FrameCutter rejects malformed and overflowing prefixes with a FrameError", () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 4 });
  const cases: [FrameCodec, number[], number][] = [
    [varintPrefix(), [0x80, 0x80, 0x80, 0x80, 0x10], NaN], // bits past the 32nd
    [varintPrefix(), [0xff, 0xff, 0xff, 0xff, 0x8f], NaN], // would need a 6th byte
    [varintPrefix(), [0xff, 0xff, 0xff, 0xff, 0x0f], 0xffffffff],
    [lengthPrefix(4), [0xff, 0xff, 0xff, 0xff], 0xffffffff], // "negative" as int32
    [lengthPrefix(4), [0x80, 0, 0, 0], 0x80000000],
    [lengthPrefix(2, { littleEndian: true }), [0, 1], 256],
  ];
  for (const [codec, header, length] of cases) {
    const cutter = new FrameCutter(pool, { codec, maxFrameLength: 200 });
    assert.throws(() => cutter.push(new Uint8Array(header), []), isFrameError(length, 200));
    assert.equal(cutter.closed, true);
    assertAllFree(pool);
  }
});

Deno.test("Framer and BatchFramer error with a FrameError and release everything", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const codec = lengthPrefix(1);
  // Two good frames, then one announcing 100 bytes over a limit of 50.
  const chunks = [new Uint8Array([1, 1, 1, 2]), new Uint8Array([100, 0, 0])];
  for (
    const framer of [
      new Framer(pool, { codec, maxFrameLength: 50 }),
      new BatchFramer(pool, { codec, maxFrameLength: 50 }),
    ]
  ) {
    const error = await drainStream(
      ReadableStream.from(chunks).pipeThrough<Packet | Packet[]>(framer),
    );
    isFrameError(100, 50)(error);
    assertAllFree(pool);
  }
});

// -- Truncated input --

Deno.test("FrameCutter.end throws a TruncatedError for a stream that stops inside a frame", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const cases: [FrameCodec, number[], number, number][] = [
    [lengthPrefix(4), [0, 0], 2, NaN], // inside the header
    [lengthPrefix(4), [0, 0, 0, 9, 1], 5, 13],
    [delimiter("\n"), [1, 2, 3], 3, NaN],
    [fixedSize(4), [1], 1, 4],
  ];
  for (const [codec, bytes, received, expected] of cases) {
    const cutter = new FrameCutter(pool, { codec });
    cutter.push(new Uint8Array(bytes), []);
    assert.throws(() => cutter.end([]), (error: unknown) => {
      assert.ok(error instanceof TruncatedError);
      assert.equal(error.received, received);
      assert.equal(error.expected, expected);
      assert.match(error.message, /allowPartial/);
      return true;
    });
    assert.throws(() => cutter.end([]), ClosedError);
    assertAllFree(pool);
  }
});

Deno.test("allowPartial turns an unfinished last frame into a packet of its raw bytes", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const chunks = [new TextEncoder().encode("one\ntw"), new TextEncoder().encode("o")];
  const options = { codec: delimiter("\n"), allowPartial: true };
  const expected = [[111, 110, 101], [116, 119, 111]];
  assert.deepEqual(cutSync(pool, options, chunks), expected);
  assert.deepEqual((await cutBatched(pool, options, chunks)).payloads, expected);
  assert.deepEqual(
    cutSync(pool, { codec: lengthPrefix(2), allowPartial: true }, [new Uint8Array([0, 3, 1])]),
    [[0, 3, 1]],
  );
  assertAllFree(pool);
});

Deno.test("Framer, BatchFramer and readFrames error with a TruncatedError at a mid-frame end", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const codec = lengthPrefix(1);
  const chunks = [new Uint8Array([1, 7, 5, 1, 2])];
  for (const framer of [new Framer(pool, { codec }), new BatchFramer(pool, { codec })]) {
    const error = await drainStream(
      ReadableStream.from(chunks).pipeThrough<Packet | Packet[]>(framer),
    );
    assert.ok(error instanceof TruncatedError);
    assert.equal(error.expected, 6);
    assertAllFree(pool);
  }
  const source = ReadableStream.from(chunks).getReader();
  const reader = {
    async read(p: Uint8Array): Promise<number | null> {
      const { done, value } = await source.read();
      if (done) return null;
      p.set(value);
      return value.length;
    },
  };
  await assert.rejects(async () => {
    for await (const batch of readFrames(reader, pool, { codec })) takeAll(batch);
  }, TruncatedError);
  assertAllFree(pool);
});

// -- Cancel and abort --

Deno.test("Cancelling a Framer's readable mid-frame releases the queued packets and the staging buffer", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const framer = new Framer(pool, { codec: lengthPrefix(1) });
  const writer = framer.writable.getWriter();
  const reader = framer.readable.getReader();
  // Three frames and half of a fourth: the write waits until all are read.
  const written = new Tracked(writer.write(new Uint8Array([1, 1, 1, 2, 1, 3, 4, 0])));
  const first = await reader.read();
  assert.deepEqual([...first.value!.bytes], [1]);
  first.value!.release();
  await flush();
  assert.equal(written.pending, true);
  assert.equal(pool.stats().inUse, 1);
  await reader.cancel(new Error("done here"));
  await flush();
  assert.match(String(written.reason()), /done here/);
  assertAllFree(pool);
  await assert.rejects(writer.write(new Uint8Array([1])), /done here/);
  assertAllFree(pool);
});

Deno.test("Cancelling a BatchFramer's readable releases whole batches not yet read", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 8 });
  const framer = new BatchFramer(pool, { codec: fixedSize(2) });
  const writer = framer.writable.getWriter();
  const reader = framer.readable.getReader();
  const written = writer.write(new Uint8Array(21)); // 10 frames and a byte, over 3 buffers
  const first = await reader.read();
  assert.equal(first.value!.length, 10); // one batch for the whole chunk
  takeAll(first.value!);
  await written;
  const second = new Tracked(writer.write(new Uint8Array(5))); // 3 more frames, not read
  await flush();
  assert.equal(pool.stats().inUse, 2);
  await reader.cancel(new Error("stop"));
  assert.match(String((await flush(), second.reason())), /stop/);
  assertAllFree(pool);
});

Deno.test("Aborting a Framer's writable while a write waits for the reader releases everything", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const framer = new Framer(pool, { codec: lengthPrefix(1) });
  const writer = framer.writable.getWriter();
  const reader = framer.readable.getReader();
  const written = new Tracked(writer.write(new Uint8Array([1, 1, 1, 2, 3])));
  await flush();
  assert.equal(written.pending, true); // nobody read yet
  assert.equal(pool.stats().inUse, 1);
  await writer.abort(new Error("upstream failed"));
  await assert.rejects(reader.read(), /upstream failed/);
  assert.equal(written.pending, false);
  assertAllFree(pool);
});

Deno.test("A pipe's abort signal stops a Framer mid-frame and releases everything", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const controller = new AbortController();
  let pulls = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (++pulls === 1) c.enqueue(new Uint8Array([1, 5, 3, 1]));
      // Then nothing: the pipe waits mid-frame.
    },
  });
  const framer = new BatchFramer(pool, { codec: lengthPrefix(1) });
  const piped = new Tracked(source.pipeTo(framer.writable, { signal: controller.signal }));
  const reader = framer.readable.getReader();
  const { value } = await reader.read();
  assert.deepEqual(takeAll(value!), [[5]]);
  assert.equal(pool.stats().inUse, 1); // the staging buffer with [3, 1]
  controller.abort(new Error("shutting down"));
  await assert.rejects(reader.read(), /shutting down/);
  await flush();
  assert.equal(piped.pending, false);
  assertAllFree(pool);
});

Deno.test("Leaving a readFrames loop early releases the staging buffer", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  let reads = 0;
  let at = 0;
  const frame = [2, 9, 9];
  const source = {
    // Frames [2, 9, 9] forever, 2 bytes a read: most reads end mid-frame.
    read(p: Uint8Array): Promise<number | null> {
      reads++;
      const n = Math.min(2, p.length);
      for (let k = 0; k < n; k++) p[k] = frame[at++ % 3]!;
      return Promise.resolve(n);
    },
  };
  for await (const batch of readFrames(source, pool, { codec: lengthPrefix(1) })) {
    takeAll(batch);
    if (reads === 3) break;
  }
  assertAllFree(pool);
  const controller = new AbortController();
  controller.abort(new Error("cancelled"));
  await assert.rejects(async () => {
    for await (
      const batch of readFrames(source, pool, { codec: lengthPrefix(1), signal: controller.signal })
    ) {
      takeAll(batch);
    }
  }, /cancelled/);
  assertAllFree(pool);
});

// -- An empty pool: waiting, not growing --

Deno.test("FrameCutter stops when the pool is empty and resumes after waitForBuffer", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 2 });
  const codec = lengthPrefix(1);
  const cutter = new FrameCutter(pool, { codec });
  const packets: Packet[] = [];
  const chunk = new Uint8Array([3, 1, 1, 1, 3, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 3, 5, 5, 5]);
  const taken = cutter.push(chunk, packets);
  assert.equal(taken, 16); // two buffers, both pinned by packets
  assert.equal(cutter.needsBuffer, true);
  assert.equal(packets.length, 4);
  const waiting = new Tracked(cutter.waitForBuffer());
  await flush();
  assert.equal(waiting.pending, true);
  packets.shift()!.release();
  packets.shift()!.release(); // the first buffer is free again
  await flush();
  assert.equal(waiting.pending, false);
  assert.equal(cutter.push(chunk.subarray(taken), packets), 4);
  assert.deepEqual(takeAll(packets), [[3, 3, 3], [4, 4, 4], [5, 5, 5]]);
  cutter.end(packets);
  assertAllFree(pool);
});

Deno.test("FrameCutter.waitForBuffer gives up on abort and when the cutter closes", async () => {
  const pool = new BufferPool({ bufferSize: 4, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: fixedSize(4) });
  const packets: Packet[] = [];
  assert.equal(cutter.push(new Uint8Array(6), packets), 4);
  const controller = new AbortController();
  const aborted = cutter.waitForBuffer({ signal: controller.signal });
  controller.abort(new Error("no more waiting"));
  await assert.rejects(aborted, /no more waiting/);
  const closed = cutter.waitForBuffer();
  cutter.close();
  takeAll(packets); // the buffer goes to the waiter, which gives it back
  await assert.rejects(closed, ClosedError);
  assertAllFree(pool);
});

Deno.test("BatchFramer waits for the reader to free buffers instead of growing", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 2 });
  const codec = fixedSize(4);
  const framer = new BatchFramer(pool, { codec });
  const writer = framer.writable.getWriter();
  const reader = framer.readable.getReader();
  // 24 bytes need three buffers; the pool has two.
  const written = new Tracked(writer.write(new Uint8Array(24).map((_, i) => i)));
  const held: Packet[] = [];
  const first = await reader.read();
  held.push(...first.value!);
  assert.equal(held.length, 4); // two full buffers' worth, handed out before waiting
  await flush();
  assert.equal(written.pending, true);
  assert.equal(pool.stats().inUse, 2);
  takeAll(held);
  const second = await reader.read();
  assert.deepEqual(takeAll(second.value!), [[16, 17, 18, 19], [20, 21, 22, 23]]);
  await flush();
  assert.equal(written.pending, false);
  await writer.close();
  assert.equal((await reader.read()).done, true);
  assertAllFree(pool);
});

Deno.test("Cancelling a Framer while its write waits for a pool buffer gives up the wait", async () => {
  const pool = new BufferPool({ bufferSize: 4, bufferCount: 1 });
  const framer = new Framer(pool, { codec: fixedSize(4) });
  const writer = framer.writable.getWriter();
  const reader = framer.readable.getReader();
  const written = new Tracked(writer.write(new Uint8Array(12)));
  const first = await reader.read(); // holds the only buffer
  await flush();
  assert.equal(pool.stats().waiters, 1);
  await reader.cancel(new Error("bye"));
  await flush();
  assert.match(String(written.reason()), /bye/);
  assert.equal(pool.stats().waiters, 0);
  first.value!.release();
  assertAllFree(pool);
});

Deno.test("Framer closes its readable after an empty input", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  assert.deepEqual(await cutEach(pool, { codec: lengthPrefix(1) }, []), []);
  assert.deepEqual(await cutEach(pool, { codec: lengthPrefix(1) }, [new Uint8Array(0)]), []);
  assertAllFree(pool);
});

// -- Loopback TCP --

/** A connected pair over 127.0.0.1 and a port the system picked. */
async function tcpPair(): Promise<{ client: Deno.TcpConn; server: Deno.TcpConn }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return { client, server };
}

/** Sends `count` frames of varied lengths over `conn` in odd-sized writes, then closes it. */
async function sendFrames(conn: Deno.Conn, codec: FrameCodec, count: number): Promise<number[]> {
  const lengths: number[] = [];
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const n = (i * 37) % 1500;
    lengths.push(n);
    frames.push(codec.encode(new Uint8Array(n).fill(i & 0xff)));
  }
  const bytes = concat(frames);
  for (let at = 0; at < bytes.length; at += 7001) {
    const part = bytes.subarray(at, at + 7001);
    for (let done = 0; done < part.length;) done += await conn.write(part.subarray(done));
  }
  conn.close();
  return lengths;
}

/** Checks frames in order: frame i is (i * 37) % 1500 bytes of i & 0xff. */
function checkFrame(packet: Packet, i: number): void {
  const bytes = packet.bytes;
  assert.equal(bytes.length, (i * 37) % 1500);
  if (bytes.length > 0) {
    assert.equal(bytes[0], i & 0xff);
    assert.equal(bytes[bytes.length - 1], i & 0xff);
  }
  packet.release();
}

for (const shared of [false, true]) {
  const poolOptions: BufferPoolOptions = { bufferSize: 16 * 1024, bufferCount: 8, shared };
  const kind = shared ? "a shared pool" : "a local pool";

  Deno.test(`BatchFramer cuts frames from a loopback TCP connection's readable (${kind})`, async () => {
    const pool = new BufferPool(poolOptions);
    const codec = lengthPrefix(2);
    const { client, server } = await tcpPair();
    const sent = sendFrames(client, codec, 3000);
    let i = 0;
    const framer = new BatchFramer(pool, { codec, maxFrameLength: 2000 });
    for await (const batch of server.readable.pipeThrough(framer)) {
      for (const packet of batch) checkFrame(packet, i++);
    }
    assert.equal(i, (await sent).length);
    assertAllFree(pool);
  });

  Deno.test(`Framer cuts frames from a loopback TCP connection's readable (${kind})`, async () => {
    const pool = new BufferPool(poolOptions);
    const codec = varintPrefix();
    const { client, server } = await tcpPair();
    const sent = sendFrames(client, codec, 2000);
    let i = 0;
    for await (const packet of server.readable.pipeThrough(new Framer(pool, { codec }))) {
      checkFrame(packet, i++);
    }
    assert.equal(i, (await sent).length);
    assertAllFree(pool);
  });

  Deno.test(`readFrames reads a loopback TCP connection straight into the pool (${kind})`, async () => {
    const pool = new BufferPool(poolOptions);
    const codec = lengthPrefix(4, { littleEndian: true });
    const { client, server } = await tcpPair();
    const sent = sendFrames(client, codec, 3000);
    let i = 0;
    for await (const batch of readFrames(server, pool, { codec, maxFrameLength: 4096 })) {
      for (const packet of batch) checkFrame(packet, i++);
    }
    server.close();
    assert.equal(i, (await sent).length);
    assertAllFree(pool);
  });
}

Deno.test("readFrames over TCP holds no more than the pool while the consumer keeps packets", async () => {
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
  const codec = lengthPrefix(2);
  const { client, server } = await tcpPair();
  const sent = sendFrames(client, codec, 400);
  const held: Packet[] = [];
  let i = 0;
  const frames = readFrames(server, pool, { codec });
  // Keep everything until the pool is exhausted, then release and go on.
  for await (const batch of frames) {
    held.push(...batch);
    // Release when the cutter could not move a frame once more without them.
    if (pool.stats().free <= 1) {
      for (const packet of held.splice(0)) checkFrame(packet, i++);
    }
  }
  for (const packet of held.splice(0)) checkFrame(packet, i++);
  server.close();
  assert.equal(i, (await sent).length);
  assertAllFree(pool);
});

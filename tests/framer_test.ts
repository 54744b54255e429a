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
  largestPayload,
  lengthPrefix,
  type Packet,
  readFrames,
  TruncatedError,
  varintPrefix,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import {
  assertAllFree,
  assertRangeError,
  chunkSource,
  concat,
  flush,
  prng,
  Tracked,
  withinDeadline,
} from "./_helpers.ts";
import { readBytes } from "./_writer_helpers.ts";

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
  const sent = new Uint8Array(await readBytes(flusher.readable.getReader()));
  assertAllFree(pool);
  return sent;
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
    () => new FrameCutter(pool, { codec: varintPrefix(), maxFrameLength: 1023 }),
    /from 0 to 1022/, // a writer frames 1022 bytes behind a 2-byte varint
    /less 2 bytes of varint prefix framing/,
  );
  assertRangeError(
    () => new FrameCutter(pool, { codec: delimiter("\r\n"), maxFrameLength: 1.5 }),
    /from 0 to 1022/,
  );
  assertRangeError(
    () => new FrameCutter(pool, { codec: lengthPrefix(1), maxFrameLength: -1 }),
    /must be an integer from 0 up, received -1/,
  );
  // Past a codec's own limit a larger maxFrameLength is harmless.
  assert.equal(
    new FrameCutter(pool, { codec: lengthPrefix(1), maxFrameLength: 1000 }).maxFrameLength,
    1000,
  );
  assert.equal(
    new FrameCutter(pool, { codec: fixedSize(10), maxFrameLength: 1000 }).maxFrameLength,
    1000,
  );
  assertRangeError(
    () => new FrameCutter(pool, { codec: fixedSize(2000) }),
    /not one fixed 2000 frame fits the pool's 1024-byte buffers/,
  );
  assertRangeError(
    () => new FrameCutter(pool, { codec: fixedSize(20), maxFrameLength: 10 }),
    /fixed 20 frames carry 20-byte payloads, over the maxFrameLength of 10/,
  );
  assertRangeError(
    () =>
      new FrameCutter(new BufferPool({ bufferSize: 3, bufferCount: 1 }), {
        codec: lengthPrefix(4),
      }),
    /not one u32be length prefix frame fits the pool's 3-byte buffers/,
  );
  // Defaults: the largest payload a Writer on the pool sends (largestPayload).
  assert.equal(new FrameCutter(pool, { codec: lengthPrefix(4) }).maxFrameLength, 1020);
  assert.equal(new FrameCutter(pool, { codec: varintPrefix() }).maxFrameLength, 1022);
  assert.equal(new FrameCutter(pool, { codec: lengthPrefix(1) }).maxFrameLength, 255);
  assert.equal(new FrameCutter(pool, { codec: fixedSize(10) }).maxFrameLength, 10);
  const big = new BufferPool({ bufferSize: 4 * 1024 * 1024, bufferCount: 1 });
  assert.equal(
    new FrameCutter(big, { codec: lengthPrefix(4) }).maxFrameLength,
    4 * 1024 * 1024 - 4,
  );
  assert.equal(new FrameCutter(big, { codec: varintPrefix() }).maxFrameLength, 4 * 1024 * 1024 - 4);
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

// =============================================================================
// Issue 11: every reader, small pools, errors and the largest message
// =============================================================================

type ReaderKind = "FrameCutter" | "Framer" | "BatchFramer" | "readFrames";
const READERS: readonly ReaderKind[] = ["FrameCutter", "Framer", "BatchFramer", "readFrames"];

interface ReadPlan {
  /**
   * Keep each batch until the next one arrives (a consumer that holds its
   * packets across a read); by default each is released before the next read.
   */
  hold?: boolean;
  /** Given to every wait: readFrames', the framers' and waitForBuffer's signal. */
  signal?: AbortSignal;
}

interface ReadResult {
  payloads: number[][];
  error: unknown;
}

/**
 * Reads `chunks` with one reader the way an application would, copying each
 * payload out. Returns the payloads read before the end or an error, and the
 * error. Whatever the consumer still holds is released before returning.
 */
async function readWith(
  kind: ReaderKind,
  pool: BufferPool,
  options: FrameCutterOptions,
  chunks: readonly Uint8Array[],
  plan: ReadPlan = {},
): Promise<ReadResult> {
  const payloads: number[][] = [];
  let held: Packet[] = [];
  /** The consumer's step: take a batch's payloads; release the last batch, or this one. */
  const consume = (batch: Packet[]): void => {
    if (batch.length === 0) return;
    for (const packet of batch) payloads.push([...packet.bytes]);
    for (const packet of held) packet.release();
    held = plan.hold ? [...batch] : [];
    if (!plan.hold) { for (const packet of batch) packet.release(); }
  };
  const signal = plan.signal;
  let error: unknown;
  try {
    if (kind === "FrameCutter") {
      const cutter = new FrameCutter(pool, options);
      const batch: Packet[] = [];
      try {
        for (const chunk of chunks) {
          let taken = 0;
          for (;;) {
            taken += cutter.push(chunk.subarray(taken), batch);
            consume(batch);
            batch.length = 0;
            if (taken === chunk.length) break;
            await cutter.waitForBuffer(signal === undefined ? {} : { signal });
          }
        }
        cutter.end(batch);
        consume(batch);
      } catch (e) {
        consume(batch); // a push that throws leaves the frames before the bad one
        throw e;
      } finally {
        cutter.close();
      }
    } else if (kind === "readFrames") {
      const all = { ...options, ...(signal === undefined ? {} : { signal }) };
      for await (const batch of readFrames(chunkSource(chunks), pool, all)) consume(batch);
    } else {
      // The framer's own signal: a pipe's cannot stop a write in progress.
      const all = { ...options, ...(signal === undefined ? {} : { signal }) };
      const framer = kind === "Framer" ? new Framer(pool, all) : new BatchFramer(pool, all);
      const readable = ReadableStream.from(chunks).pipeThrough<Packet | Packet[]>(framer);
      for await (const item of readable) consume(Array.isArray(item) ? item : [item]);
    }
  } catch (e) {
    error = e;
  }
  for (const packet of held) packet.release();
  return { payloads, error };
}

/** Random payloads of 0 to `most` bytes that `codec` can frame, framed one after another. */
function framedRun(
  codec: FrameCodec,
  avoid: number[],
  count: number,
  most: number,
  seed: number,
): { payloads: number[][]; bytes: Uint8Array } {
  const random = prng(seed);
  const fixed = codec.name.startsWith("fixed") ? codec.maxPayload : -1;
  const payloads: number[][] = [];
  for (let f = 0; f < count; f++) {
    const n = fixed >= 0 ? fixed : random(most + 1);
    const payload: number[] = [];
    for (let i = 0; i < n; i++) {
      let b = random(256);
      while (avoid.includes(b)) b = random(256);
      payload.push(b);
    }
    payloads.push(payload);
  }
  return { payloads, bytes: concat(payloads.map((p) => codec.encode(new Uint8Array(p)))) };
}

/** `bytes` in chunks of 1 to `most` bytes, from a seeded PRNG. */
function randomChunks(bytes: Uint8Array, most: number, seed: number): Uint8Array[] {
  const random = prng(seed);
  const cuts: number[] = [];
  for (let at = 1 + random(most); at < bytes.length; at += 1 + random(most)) cuts.push(at);
  return splitAt(bytes, ...cuts);
}

// -- Defect 3: the frames before an error are delivered, then the error; nothing stays in use --

/** Good frames, then bytes that break `codec`'s framing; null for a codec that cannot break. */
function goodThenBad(codec: FrameCodec, avoid: number[], max: number): Uint8Array | null {
  const good = framedRun(codec, avoid, 3, 6, 5).bytes;
  let bad: number[];
  if (codec.name.startsWith("fixed")) return null;
  if (codec.name === "varint prefix") {
    bad = [0x80, 0x80, 0x80, 0x80, 0x10]; // malformed: bits past the 32nd
  } else if (codec.name.startsWith("delimiter")) {
    const filler = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].find((b) => !avoid.includes(b))!;
    bad = new Array(max + codec.trailerLength).fill(filler); // no delimiter in reach
  } else {
    bad = [...codec.encode(new Uint8Array(0))].fill(0xff); // an all-ones length, over max
  }
  return concat([good, new Uint8Array(bad)]);
}

for (const kind of READERS) {
  Deno.test(`${kind} delivers the frames cut before a FrameError in the same chunk, then the error, for every codec`, async () => {
    for (const { codec, avoid } of CODECS) {
      const max = 40;
      const bytes = goodThenBad(codec, avoid, max);
      if (bytes === null) continue; // fixedSize frames cannot break the framing
      const expected = framedRun(codec, avoid, 3, 6, 5).payloads;
      for (const bufferCount of [1, 2, 4]) {
        // Room for the whole input: no frame crosses a buffer's end here.
        const pool = new BufferPool({ bufferSize: 128, bufferCount });
        const where = `${kind} ${codec.name} bufferCount=${bufferCount}`;
        const { payloads, error }: ReadResult = await withinDeadline(
          readWith(kind, pool, { codec, maxFrameLength: max }, [bytes]),
          where,
          5000,
        );
        assert.ok(error instanceof FrameError, `${where}: expected a FrameError, got ${error}`);
        assert.deepEqual(payloads, expected, where);
        assertAllFree(pool);
      }
    }
  });
}

Deno.test("readFrames releases the frames of a failing read when the consumer stops at them", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const codec = lengthPrefix(1);
  const bytes = new Uint8Array([1, 7, 2, 8, 9, 200]); // two frames, then 200 over a max of 50
  const frames = readFrames(chunkSource([bytes]), pool, { codec, maxFrameLength: 50 });
  const first = await frames.next();
  assert.deepEqual(takeAll(first.value as Packet[]), [[7], [8, 9]]);
  assert.equal(pool.stats().inUse, 0);
  await frames.return();
  assertAllFree(pool);
});

// -- Defect 3, the other ways a reader stops: nothing in use afterwards --

Deno.test("Every reader releases its staged partial frame and unread packets on every way of stopping", async () => {
  const codec = lengthPrefix(1);
  // Two frames and a partial third, then nothing more: the reader waits mid-frame.
  const head = new Uint8Array([1, 1, 2, 2, 2, 5, 3, 3]);
  for (const bufferCount of [1, 2, 4]) {
    // Cancel the readable side: before reading anything, and after one packet.
    for (const kind of ["Framer", "BatchFramer"] as const) {
      for (const readFirst of [false, true]) {
        const pool = new BufferPool({ bufferSize: 16, bufferCount });
        const framer = kind === "Framer"
          ? new Framer(pool, { codec })
          : new BatchFramer(pool, { codec });
        const writer = framer.writable.getWriter();
        const reader = (framer.readable as ReadableStream<Packet | Packet[]>).getReader();
        const written = new Tracked(writer.write(head));
        if (readFirst) {
          const { value } = await reader.read();
          for (const p of Array.isArray(value) ? value : [value!]) p.release();
        }
        await reader.cancel(new Error("cancelled"));
        await flush();
        // A batch read whole let the write finish; otherwise the cancel fails it.
        if (written.state.kind === "rejected") assert.match(String(written.reason()), /cancelled/);
        assert.equal(written.pending, false);
        assertAllFree(pool);
      }
      // Abort the writable side, with packets unread.
      {
        const pool = new BufferPool({ bufferSize: 16, bufferCount });
        const framer = kind === "Framer"
          ? new Framer(pool, { codec })
          : new BatchFramer(pool, { codec });
        const writer = framer.writable.getWriter();
        const reader = (framer.readable as ReadableStream<Packet | Packet[]>).getReader();
        const written = new Tracked(writer.write(head));
        await flush();
        await writer.abort(new Error("aborted"));
        await assert.rejects(reader.read(), /aborted/);
        await flush();
        assert.equal(written.pending, false);
        assertAllFree(pool);
      }
      // Break out of for await after the first item.
      {
        const pool = new BufferPool({ bufferSize: 16, bufferCount });
        let pulls = 0;
        const source = new ReadableStream<Uint8Array>({
          pull(c) {
            if (++pulls === 1) c.enqueue(head.slice());
          },
        });
        const framer = kind === "Framer"
          ? new Framer(pool, { codec })
          : new BatchFramer(pool, { codec });
        for await (const item of source.pipeThrough<Packet | Packet[]>(framer)) {
          for (const p of Array.isArray(item) ? item : [item]) p.release();
          break;
        }
        await flush();
        assertAllFree(pool);
      }
      // A source that errors mid-frame.
      {
        const pool = new BufferPool({ bufferSize: 16, bufferCount });
        let pulls = 0;
        const source = new ReadableStream<Uint8Array>({
          pull(c) {
            if (++pulls === 1) c.enqueue(head.slice());
            else c.error(new Error("source failed"));
          },
        });
        const framer = kind === "Framer"
          ? new Framer(pool, { codec })
          : new BatchFramer(pool, { codec });
        const got = await drainStream(source.pipeThrough<Packet | Packet[]>(framer));
        assert.match(String(got), /source failed/);
        assertAllFree(pool);
      }
    }
    // readFrames: break, a source that errors, an abort while reading.
    {
      const pool = new BufferPool({ bufferSize: 16, bufferCount });
      for await (const batch of readFrames(chunkSource([head, head]), pool, { codec })) {
        takeAll(batch);
        break;
      }
      assertAllFree(pool);
      let reads = 0;
      const failing = {
        read(p: Uint8Array): Promise<number | null> {
          if (reads++ > 0) return Promise.reject(new Error("source failed"));
          p.set(head);
          return Promise.resolve(head.length);
        },
      };
      await assert.rejects(async () => {
        for await (const batch of readFrames(failing, pool, { codec })) takeAll(batch);
      }, /source failed/);
      assertAllFree(pool);
      const controller = new AbortController();
      await assert.rejects(async () => {
        for await (
          const batch of readFrames(chunkSource([head, head]), pool, {
            codec,
            signal: controller.signal,
          })
        ) {
          takeAll(batch);
          controller.abort(new Error("stop reading"));
        }
      }, /stop reading/);
      assertAllFree(pool);
    }
    // FrameCutter: an error in a chunk leaves the earlier frames with the caller,
    // and close() drops the staged part.
    {
      const pool = new BufferPool({ bufferSize: 16, bufferCount });
      const cutter = new FrameCutter(pool, { codec, maxFrameLength: 10 });
      const packets: Packet[] = [];
      assert.throws(
        () => cutter.push(new Uint8Array([1, 1, 2, 2, 2, 11]), packets),
        isFrameError(11, 10),
      );
      assert.deepEqual(takeAll(packets), [[1], [2, 2]]);
      assertAllFree(pool);
      const staged = new FrameCutter(pool, { codec });
      staged.push(head, packets);
      takeAll(packets);
      staged.close();
      assertAllFree(pool);
    }
  }
});

// -- Defect 4: a frame across a buffer's end on a pool with no buffer to spare --

/** The chunkings a crossing test feeds: whole, random pieces, single bytes. */
function chunkings(bytes: Uint8Array, seed: number): [string, Uint8Array[]][] {
  return [
    ["one chunk", [bytes]],
    ["random chunks", randomChunks(bytes, 11, seed)],
    ["1-byte chunks", Array.from(bytes, (b) => new Uint8Array([b]))],
  ];
}

for (const kind of READERS) {
  Deno.test(`${kind} cuts frames across buffer ends on 1- and 2-buffer pools when the consumer releases before reading on`, async () => {
    for (const { codec, avoid } of CODECS) {
      const run = framedRun(codec, avoid, 30, 12, 21);
      for (const bufferCount of [1, 2]) {
        const pool = new BufferPool({ bufferSize: 32, bufferCount });
        for (const [how, chunks] of chunkings(run.bytes, 3)) {
          const where = `${kind} ${codec.name} bufferCount=${bufferCount} ${how}`;
          const { payloads, error }: ReadResult = await withinDeadline(
            readWith(kind, pool, { codec }, chunks),
            where,
            5000,
          );
          assert.equal(error, undefined, `${where}: ${error}`);
          assert.deepEqual(payloads, run.payloads, where);
          assertAllFree(pool);
        }
      }
    }
  });

  Deno.test(`${kind} with a consumer holding packets across reads finishes or gives up on its signal, never hangs`, async () => {
    for (const { codec, avoid } of CODECS) {
      const run = framedRun(codec, avoid, 30, 12, 22);
      for (const bufferCount of [1, 2, 3]) {
        const pool = new BufferPool({ bufferSize: 32, bufferCount });
        for (const [how, chunks] of chunkings(run.bytes, 4)) {
          const where = `${kind} ${codec.name} bufferCount=${bufferCount} ${how}`;
          const signal = AbortSignal.timeout(40);
          const { payloads, error }: ReadResult = await withinDeadline(
            readWith(kind, pool, { codec }, chunks, { hold: true, signal }),
            where,
            5000,
          );
          // Whatever happened, the frames read are the first ones, in order.
          assert.deepEqual(payloads, run.payloads.slice(0, payloads.length), where);
          if (error !== undefined) {
            // Only the caller's signal may end it early.
            assert.equal(error, signal.reason, `${where}: ${error}`);
          }
          if (bufferCount === 1) {
            // The held packets pin the only buffer: waiting is all that is left.
            assert.equal(error, signal.reason, `${where}: expected to wait for the signal`);
          }
          if (kind === "readFrames" && bufferCount >= 2) {
            // A read fills one buffer at most, so a held batch pins one.
            assert.equal(error, undefined, `${where}: ${error}`);
          }
          assertAllFree(pool);
        }
      }
    }
  });

  Deno.test(`Two ${kind}s sharing a 2-buffer pool both finish with frames across buffer ends`, async () => {
    for (const { codec, avoid } of CODECS) {
      const a = framedRun(codec, avoid, 25, 12, 31);
      const b = framedRun(codec, avoid, 25, 12, 32);
      const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
      const where = `two ${kind}s ${codec.name}`;
      const [ra, rb]: ReadResult[] = await withinDeadline(
        Promise.all([
          readWith(kind, pool, { codec }, randomChunks(a.bytes, 9, 1)),
          readWith(kind, pool, { codec }, randomChunks(b.bytes, 9, 2)),
        ]),
        where,
        5000,
      );
      assert.equal(ra!.error, undefined, `${where}: ${ra!.error}`);
      assert.equal(rb!.error, undefined, `${where}: ${rb!.error}`);
      assert.deepEqual(ra!.payloads, a.payloads, where);
      assert.deepEqual(rb!.payloads, b.payloads, where);
      assertAllFree(pool);
    }
  });
}

Deno.test("FrameCutter moves an unfinished frame to the start of its own buffer once nothing else holds it", () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const packets: Packet[] = [];
  // Two 3-byte frames, then a 4-byte one that cannot end by byte 8.
  const chunk = new Uint8Array([2, 1, 1, 2, 2, 2, 3, 3, 3, 3]);
  assert.equal(cutter.push(chunk, packets), 8);
  assert.equal(cutter.needsBuffer, true); // the packets still pin the only buffer
  const moved = packets[0]!.bytes.byteOffset;
  assert.deepEqual(takeAll(packets), [[1, 1], [2, 2]]);
  assert.equal(cutter.needsBuffer, true);
  assert.equal(cutter.push(chunk.subarray(8), packets), 2); // moves [3, 3] within the buffer
  assert.equal(packets[0]!.bytes.byteOffset, moved); // the same memory, from its start
  assert.deepEqual(takeAll(packets), [[3, 3, 3]]);
  cutter.end(packets);
  assertAllFree(pool);
});

Deno.test("FrameCutter.waitForBuffer returns at once when the cutter's buffer became its alone", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const packets: Packet[] = [];
  cutter.push(new Uint8Array([2, 1, 1, 2, 2, 2, 3, 3]), packets);
  takeAll(packets);
  await cutter.waitForBuffer({ signal: AbortSignal.abort(new Error("must not wait")) });
  assert.equal(cutter.needsBuffer, false);
  assert.equal(cutter.buffered, 2);
  cutter.close();
  assertAllFree(pool);
});

Deno.test("FrameCutter.waitForBuffer wakes when held packets are released later, on a 1-buffer pool", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const packets: Packet[] = [];
  assert.equal(cutter.push(new Uint8Array([2, 1, 1, 2, 2, 2, 3, 3, 3, 3]), packets), 8);
  const wait = cutter.waitForBuffer();
  const waiting = new Tracked(wait);
  await flush();
  assert.equal(waiting.pending, true); // the packets still pin the only buffer
  assert.deepEqual(takeAll(packets), [[1, 1], [2, 2]]); // released later, by someone else
  await withinDeadline(wait, "waitForBuffer", 5000);
  assert.equal(cutter.push(new Uint8Array([3, 3]), packets), 2);
  assert.deepEqual(takeAll(packets), [[3, 3, 3]]);
  cutter.end(packets);
  assertAllFree(pool);
});

// -- Defect 6: what a Writer on a pool sends, a reader on such a pool accepts --

/** The bytes a Writer on `bufferSize`-byte buffers sends for `payload`, or the error it throws. */
async function sendOne(
  codec: FrameCodec,
  bufferSize: number,
  payload: Uint8Array,
): Promise<Uint8Array | RangeError> {
  const pool = new BufferPool({ bufferSize, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { codec, flush: "manual" });
  let refused: RangeError | null = null;
  try {
    assert.ok(writer.tryWrite(payload), "a free pool has room");
  } catch (error) {
    assert.ok(error instanceof RangeError, `expected a RangeError, got ${error}`);
    refused = error;
  }
  writer.close();
  flusher.close();
  const sent = new Uint8Array(await readBytes(flusher.readable.getReader()));
  assertAllFree(pool);
  return refused ?? sent;
}

Deno.test("Every reader accepts by default the largest message a Writer on the same pool sends, and no more, for every codec", async () => {
  const sizes: number[] = [];
  for (let size = 16; size <= 300; size++) sizes.push(size);
  sizes.push(1024, 16386, 65536, 65539, (2 << 20) + 5);
  for (const { codec } of CODECS) {
    for (const bufferSize of sizes) {
      const largest = largestPayload(codec, bufferSize);
      const where = `${codec.name} bufferSize=${bufferSize} largest=${largest}`;
      // 0x41 is none of the test delimiters' bytes.
      const payload = new Uint8Array(largest).fill(0x41);
      const sent = await sendOne(codec, bufferSize, payload);
      assert.ok(
        sent instanceof Uint8Array,
        `${where}: the writer refused ${largest} bytes: ${sent}`,
      );
      assert.equal(sent.length <= bufferSize, true, where);
      const over = await sendOne(codec, bufferSize, new Uint8Array(largest + 1).fill(0x41));
      assert.ok(over instanceof RangeError, `${where}: the writer accepted ${largest + 1} bytes`);
      // A frame one byte longer, where the codec can express one.
      let tooLong: Uint8Array | null = null;
      if (largest + 1 <= codec.maxPayload && !codec.name.startsWith("fixed")) {
        tooLong = codec.encode(new Uint8Array(largest + 1).fill(0x41));
      }
      const pool = new BufferPool({ bufferSize, bufferCount: 1 });
      for (const kind of READERS) {
        // Only the small sizes go through every reader; the large ones through two.
        if (bufferSize > 300 && (kind === "Framer" || kind === "BatchFramer")) continue;
        const ok = await readWith(kind, pool, { codec }, [sent]);
        assert.equal(ok.error, undefined, `${where} ${kind}: ${ok.error}`);
        assert.equal(ok.payloads.length, 1, `${where} ${kind}`);
        assert.equal(ok.payloads[0]!.length, largest, `${where} ${kind}`);
        if (tooLong !== null) {
          const bad = await readWith(kind, pool, { codec }, [tooLong]);
          assert.ok(bad.error instanceof FrameError, `${where} ${kind}: ${bad.error}`);
          assert.equal(bad.error.maxFrameLength, largest, `${where} ${kind}`);
          assert.deepEqual(bad.payloads, [], `${where} ${kind}`);
        }
        assertAllFree(pool);
      }
    }
  }
});

// -- The README's promises on the receive side --

Deno.test("readFrames hands out packets on the very memory the source read into: no copy", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const codec = lengthPrefix(1);
  const views: Uint8Array[] = [];
  const inner = chunkSource([new Uint8Array([2, 7, 7, 3, 8, 8, 8])]);
  const source = {
    read(p: Uint8Array): Promise<number | null> {
      views.push(p);
      return inner.read(p);
    },
  };
  for await (const batch of readFrames(source, pool, { codec })) {
    for (const packet of batch) {
      const view = views[views.length - 1]!;
      assert.equal(packet.bytes.buffer, view.buffer);
      const at = packet.bytes.byteOffset - view.byteOffset;
      assert.ok(at >= 0 && at + packet.length <= view.length, "a view of the read's memory");
    }
    assert.deepEqual(takeAll(batch), [[7, 7], [8, 8, 8]]);
  }
  assertAllFree(pool);
});

Deno.test("A Framer made with an aborted signal errors both sides at once and holds nothing", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  for (const make of [Framer, BatchFramer]) {
    const reason = new Error("already stopped");
    const framer = new make(pool, { codec: lengthPrefix(1), signal: AbortSignal.abort(reason) });
    await assert.rejects(
      framer.writable.getWriter().write(new Uint8Array([1, 1])),
      /already stopped/,
    );
    await assert.rejects(framer.readable.getReader().read(), /already stopped/);
    assertAllFree(pool);
  }
});

Deno.test("A Framer's signal stops a write waiting for a buffer, which a pipe's signal cannot reach", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const stop = new AbortController();
  const framer = new Framer(pool, { codec: lengthPrefix(1), signal: stop.signal });
  const writer = framer.writable.getWriter();
  const reader = framer.readable.getReader();
  // Two frames, then one across the end of the only buffer.
  const written = new Tracked(writer.write(new Uint8Array([2, 1, 1, 2, 2, 2, 3, 3, 3, 3])));
  const kept = (await reader.read()).value!; // kept: it pins the buffer
  const second = (await reader.read()).value!;
  second.release();
  await flush();
  assert.equal(written.pending, true);
  assert.equal(pool.stats().waiters, 1); // the framer waits for a buffer
  stop.abort(new Error("giving up"));
  await assert.rejects(reader.read(), /giving up/);
  await flush();
  assert.match(String(written.reason()), /giving up/);
  assert.equal(pool.stats().waiters, 0);
  kept.release();
  assertAllFree(pool);
});

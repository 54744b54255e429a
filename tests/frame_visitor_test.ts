// The frame visitor: FrameCutter with a FrameVisitor sink, visitFrames and
// FrameSink. Each visiting form must see exactly the frames the packet form
// cuts from the same input, then the same error, and leave every buffer in
// the pool on every way out.
import assert from "node:assert/strict";
import {
  BufferPool,
  type BufferPoolOptions,
  type ByteSource,
  ClosedError,
  delimiter,
  fixedSize,
  type FrameCodec,
  FrameCutter,
  type FrameCutterOptions,
  FrameError,
  FrameSink,
  type FrameVisitor,
  largestPayload,
  lengthPrefix,
  type Packet,
  ReleasedError,
  TruncatedError,
  varintPrefix,
  visitFrames,
} from "../mod.ts";
import { assertAllFree, chunkSource, flush, prng, Tracked } from "./_helpers.ts";

// -- Inputs --

const CODECS: readonly FrameCodec[] = [
  lengthPrefix(1),
  lengthPrefix(2),
  lengthPrefix(4, { littleEndian: true }),
  varintPrefix(),
  delimiter("\r\n"),
  fixedSize(5),
];

const SMALL_POOLS: readonly BufferPoolOptions[] = [
  { bufferSize: 16, bufferCount: 1 },
  { bufferSize: 24, bufferCount: 2 },
  { bufferSize: 64, bufferCount: 1 },
  { bufferSize: 64, bufferCount: 4 },
];
const BIG_POOL: BufferPoolOptions = { bufferSize: 64 * 1024, bufferCount: 4 };

/** `count` frames of random payloads that fit `bufferSize`, concatenated. */
function stream(codec: FrameCodec, bufferSize: number, count: number, seed: number): Uint8Array {
  const r = prng(seed);
  const max = Math.min(largestPayload(codec, bufferSize), 300);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const n = codec.name.startsWith("fixed") ? codec.maxPayload : r(max + 1);
    // Printable bytes: never the "\r\n" delimiter.
    const payload = Uint8Array.from({ length: n }, () => 0x20 + r(95));
    const frame = codec.encode(payload);
    parts.push(frame);
    total += frame.length;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

type Chunking = "1 byte" | "random" | "whole";
const CHUNKINGS: readonly Chunking[] = ["1 byte", "random", "whole"];

function chunked(bytes: Uint8Array, how: Chunking, seed: number): Uint8Array[] {
  if (how === "whole") return [bytes];
  const r = prng(seed);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = how === "1 byte" ? 1 : 1 + r(100);
    chunks.push(bytes.slice(at, at + n));
    at += n;
  }
  return chunks;
}

/** What a reader saw: the payloads, then how it ended. */
interface Outcome {
  frames: number[][];
  error: string | null;
}

function errorKind(error: unknown): string {
  if (error instanceof FrameError) return `FrameError ${error.frameLength}`;
  if (error instanceof TruncatedError) return `TruncatedError ${error.received}`;
  throw error;
}

/**
 * The packet form, releasing the packets whenever a push stops for want of a
 * buffer (the frame then moves within the cutter's own): the reference.
 */
function cutPackets(pool: BufferPool, options: FrameCutterOptions, chunks: Uint8Array[]): Outcome {
  const cutter = new FrameCutter(pool, options);
  const packets: Packet[] = [];
  const frames: number[][] = [];
  const take = () => {
    for (const packet of packets) {
      frames.push([...packet.bytes]);
      packet.release();
    }
    packets.length = 0;
  };
  try {
    for (const chunk of chunks) {
      let taken = 0;
      while (taken < chunk.length) {
        const n = cutter.push(chunk.subarray(taken), packets);
        assert.ok(n > 0 || packets.length > 0, "the pool ran dry");
        taken += n;
        take();
      }
    }
    cutter.end(packets);
    take();
    return { frames, error: null };
  } catch (error) {
    take();
    return { frames, error: errorKind(error) };
  }
}

/** A visitor copying each payload out, checking it is given the whole staging buffer. */
function recorder(pool: BufferPool, frames: number[][]): FrameVisitor {
  return (bytes, start, end) => {
    assert.equal(bytes.length, pool.bufferSize, "the visitor sees the staging buffer");
    assert.ok(0 <= start && start <= end && end <= bytes.length);
    frames.push([...bytes.subarray(start, end)]);
  };
}

function cutVisiting(pool: BufferPool, options: FrameCutterOptions, chunks: Uint8Array[]): Outcome {
  const cutter = new FrameCutter(pool, options);
  const frames: number[][] = [];
  const visit = recorder(pool, frames);
  try {
    for (const chunk of chunks) {
      assert.equal(cutter.push(chunk, visit), chunk.length, "the pool ran dry");
    }
    cutter.end(visit);
    return { frames, error: null };
  } catch (error) {
    return { frames, error: errorKind(error) };
  } finally {
    assert.equal(cutter.closed, true);
  }
}

async function visitSource(
  pool: BufferPool,
  options: FrameCutterOptions,
  chunks: Uint8Array[],
): Promise<Outcome> {
  const frames: number[][] = [];
  try {
    await visitFrames(chunkSource(chunks), pool, options, recorder(pool, frames));
    return { frames, error: null };
  } catch (error) {
    return { frames, error: errorKind(error) };
  }
}

async function pipeToSink(
  pool: BufferPool,
  options: FrameCutterOptions,
  chunks: Uint8Array[],
): Promise<Outcome> {
  const frames: number[][] = [];
  try {
    const sink = new FrameSink(pool, { ...options, visit: recorder(pool, frames) });
    await ReadableStream.from(chunks).pipeTo(sink);
    return { frames, error: null };
  } catch (error) {
    return { frames, error: errorKind(error) };
  }
}

/** How a reference run ended: no error, or the error's class. */
function ending(outcome: Outcome): string {
  return outcome.error?.split(" ")[0] ?? "end";
}

/** Every way of ending, which each comparison must have met. */
const ENDINGS = ["FrameError", "TruncatedError", "end"];

/** Inputs that end well, end inside a frame, or break the framing midway. */
function inputs(codec: FrameCodec, bufferSize: number, seed: number): Uint8Array[] {
  const good = stream(codec, bufferSize, 40, seed);
  const tail = stream(codec, bufferSize, 1, seed + 1);
  const truncated = new Uint8Array(good.length + tail.length - 1);
  truncated.set(good);
  truncated.set(tail.subarray(0, tail.length - 1), good.length);
  const out = [good, truncated];
  // A header announcing more than maxFrameLength, after some good frames.
  const bad = codec.name.startsWith("u8") || codec.name === "varint prefix"
    ? [0x7f]
    : codec.name.startsWith("u16")
    ? [0xff, 0xff]
    : codec.name.startsWith("u32")
    ? [0xff, 0xff, 0xff, 0x7f]
    : codec.name.startsWith("delimiter")
    ? new Array<number>(bufferSize).fill(0x41)
    : null;
  if (bad !== null) {
    const broken = new Uint8Array(good.length + bad.length + 8);
    broken.set(good);
    broken.set(bad, good.length);
    out.push(broken);
  }
  return out;
}

// -- FrameCutter with a visitor --

Deno.test("A visiting FrameCutter sees exactly the packet form's frames and errors: every codec, chunking and pool", () => {
  let seed = 1;
  const endings = new Set<string>();
  for (const poolOptions of [...SMALL_POOLS, BIG_POOL]) {
    const pool = new BufferPool(poolOptions);
    for (const codec of CODECS) {
      for (const allowPartial of [false, true]) {
        const options: FrameCutterOptions = {
          codec,
          allowPartial,
          maxFrameLength: Math.min(largestPayload(codec, pool.bufferSize), 300),
        };
        for (const bytes of inputs(codec, pool.bufferSize, seed++)) {
          for (const how of CHUNKINGS) {
            const chunks = chunked(bytes, how, seed++);
            const reference = cutPackets(pool, options, chunks);
            endings.add(ending(reference));
            assertAllFree(pool);
            const where = `${codec.name}, ${how}, ${JSON.stringify(poolOptions)}`;
            assert.deepEqual(cutVisiting(pool, options, chunks), reference, where);
            assertAllFree(pool);
          }
        }
      }
    }
  }
  assert.deepEqual([...endings].sort(), ENDINGS, "every way of ending was met");
});

Deno.test("The visitor gets one view per staging buffer, not one per frame", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const codec = lengthPrefix(1);
  const cutter = new FrameCutter(pool, { codec });
  const views = new Set<Uint8Array>();
  let frames = 0;
  const three = [...codec.encode(new Uint8Array(9)), ...codec.encode(new Uint8Array(9))];
  cutter.push(new Uint8Array([...three, ...three, ...three]), (bytes) => {
    views.add(bytes);
    frames++;
  });
  assert.equal(frames, 6);
  assert.equal(views.size, 1);
  cutter.close();
  assertAllFree(pool);
});

Deno.test("retain() keeps a frame valid across later pushes and buffer moves; its release returns the buffer", () => {
  // 6-byte frames in 16-byte buffers: every third frame crosses a buffer's end.
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const codec = lengthPrefix(1);
  const cutter = new FrameCutter(pool, { codec });
  const payload = (i: number) => [i, i + 1, i + 2, i + 3, i + 4];
  let kept: Packet | null = null;
  let seen = 0;
  const visit: FrameVisitor = (bytes, start, end, cutter) => {
    assert.deepEqual([...bytes.subarray(start, end)], payload(seen));
    if (seen === 1) kept = cutter.retain();
    seen++;
  };
  for (let i = 0; i < 30; i++) {
    assert.equal(cutter.push(new Uint8Array([5, ...payload(i)]), visit), 6);
    // The retained frame pins its buffer; the cutter stages in the other.
    if (i >= 1) assert.deepEqual([...kept!.bytes], payload(1));
  }
  assert.equal(seen, 30);
  cutter.end(visit);
  assert.equal(pool.stats().inUse, 1);
  kept!.release();
  assertAllFree(pool);
});

Deno.test("retain() on every frame makes packets equal to the packet form's", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 64 });
  for (const codec of CODECS) {
    const chunks = chunked(stream(codec, 64, 30, 5), "random", 6);
    const reference = cutPackets(pool, { codec }, chunks);
    const cutter = new FrameCutter(pool, { codec });
    const kept: Packet[] = [];
    const visit: FrameVisitor = (_bytes, _start, _end, cutter) => {
      kept.push(cutter.retain());
    };
    for (const chunk of chunks) assert.equal(cutter.push(chunk, visit), chunk.length);
    cutter.end(visit);
    assert.deepEqual(kept.map((p) => [...p.bytes]), reference.frames, codec.name);
    for (const packet of kept) packet.release();
    assertAllFree(pool);
  }
});

Deno.test("Retained frames stay intact across later pushes and buffer moves: every codec, chunking and small pool", () => {
  let seed = 500;
  for (const poolOptions of SMALL_POOLS) {
    const pool = new BufferPool(poolOptions);
    for (const codec of CODECS) {
      for (const how of CHUNKINGS) {
        const chunks = chunked(stream(codec, pool.bufferSize, 60, seed++), how, seed++);
        const reference = cutPackets(pool, { codec }, chunks).frames;
        const r = prng(seed++);
        const cutter = new FrameCutter(pool, { codec });
        // Retained frames, oldest first, with their index in the stream.
        const kept: { packet: Packet; index: number }[] = [];
        let index = 0;
        let checked = 0;
        const releaseOldest = () => {
          const { packet, index } = kept.shift()!;
          assert.deepEqual([...packet.bytes], reference[index], `frame ${index}, ${codec.name}`);
          packet.release();
          checked++;
        };
        const visit: FrameVisitor = (_bytes, _start, _end, c) => {
          if (r(3) === 0) kept.push({ packet: c.retain(), index });
          index++;
        };
        for (const chunk of chunks) {
          let taken = 0;
          while (taken < chunk.length) {
            taken += cutter.push(chunk.subarray(taken), visit);
            // Out of buffers: the retained frames pin them all. Let one go.
            if (taken < chunk.length) releaseOldest();
          }
        }
        cutter.end(visit);
        assert.equal(index, reference.length);
        while (kept.length > 0) releaseOldest();
        assert.ok(checked > 5);
        assertAllFree(pool);
      }
    }
  }
});

Deno.test("retain() outside a visit throws a ReleasedError", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  assert.throws(() => cutter.retain(), ReleasedError);
  let visited: FrameCutter | null = null;
  cutter.push(new Uint8Array([1, 7, 2, 8]), (_bytes, _start, _end, c) => {
    visited = c;
  });
  assert.equal(visited, cutter);
  assert.throws(() => cutter.retain(), ReleasedError); // after the visit: too late
  // The packet form is no visit either.
  const packets: Packet[] = [];
  cutter.push(new Uint8Array([9]), packets);
  assert.throws(() => cutter.retain(), ReleasedError);
  for (const packet of packets) packet.release();
  cutter.close();
  assertAllFree(pool);
});

Deno.test("A visitor that throws: the error propagates, the cutter closes, retained packets stay the caller's", () => {
  for (const form of ["push", "commit", "end"] as const) {
    const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
    const cutter = new FrameCutter(pool, { codec: lengthPrefix(1), allowPartial: true });
    const oops = new Error("visitor failed");
    const kept: Packet[] = [];
    const visit: FrameVisitor = (bytes, _start, end, cutter) => {
      kept.push(cutter.retain());
      if (bytes[end - 1] === 2) throw oops;
    };
    const input = form === "end" ? [1, 1, 1, 1, 3, 2] : [1, 1, 1, 2, 1, 3];
    if (form === "commit") {
      const view = cutter.writable()!;
      view.set(input);
      assert.throws(() => cutter.commit(input.length, visit), oops);
    } else if (form === "push") {
      assert.throws(() => cutter.push(new Uint8Array(input), visit), oops);
    } else {
      cutter.push(new Uint8Array(input), visit);
      assert.throws(() => cutter.end(visit), oops);
    }
    assert.equal(cutter.closed, true, form);
    assert.throws(() => cutter.push(new Uint8Array([1]), visit), ClosedError);
    assert.deepEqual(kept.map((p) => p.length), form === "end" ? [1, 1, 2] : [1, 1], form);
    assert.equal(pool.stats().inUse, 1, form);
    for (const packet of kept) packet.release();
    assertAllFree(pool);
  }
});

Deno.test("A visitor that closes the cutter stops the visiting; the buffer goes back once it returns", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const seen: number[] = [];
  let kept: Packet | null = null;
  const taken = cutter.push(new Uint8Array([1, 1, 1, 2, 1, 3, 1, 4]), (bytes, start, _end, c) => {
    seen.push(bytes[start]!);
    if (bytes[start] === 2) {
      c.close();
      assert.equal(pool.stats().inUse, 1, "the bytes stay valid until the visitor returns");
      assert.equal(bytes[start], 2);
      kept = c.retain(); // still during the visit
    }
  });
  assert.equal(taken, 8);
  assert.deepEqual(seen, [1, 2]);
  assert.equal(cutter.closed, true);
  assert.deepEqual([...kept!.bytes], [2]);
  kept!.release();
  assertAllFree(pool);
});

Deno.test("A visitor closing the cutter mid-chunk stops push from staging the rest", () => {
  // The chunk fills the 8-byte buffer twice over; the visitor closes in the first.
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  let visits = 0;
  const taken = cutter.push(new Uint8Array(16).fill(0), (_b, _s, _e, c) => {
    if (++visits === 1) c.close();
  });
  assert.equal(visits, 1);
  assert.equal(taken, 8);
  assertAllFree(pool);
});

Deno.test("During a visit the cutter refuses push, commit, end, writable and waitForBuffer with a TypeError", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const errors: unknown[] = [];
  let waiting: Promise<void> | null = null;
  cutter.push(new Uint8Array([1, 5, 1, 6]), (_bytes, _start, _end, c) => {
    for (
      const call of [
        () => c.push(new Uint8Array([1]), []),
        () => c.commit(1, []),
        () => c.end([]),
        () => c.writable(),
      ]
    ) {
      try {
        call();
      } catch (error) {
        errors.push(error);
      }
    }
    waiting ??= c.waitForBuffer();
  });
  assert.equal(errors.length, 8);
  for (const error of errors) {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /during a visit/);
  }
  await assert.rejects(waiting!, TypeError);
  // The refused calls changed nothing: the cutter goes on.
  const frames: number[][] = [];
  cutter.push(new Uint8Array([1, 7]), recorder(pool, frames));
  cutter.end([]);
  assert.deepEqual(frames, [[7]]);
  assertAllFree(pool);
});

Deno.test("A FrameError: the frames before the bad one are visited, then it throws and everything is released", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1), maxFrameLength: 4 });
  const frames: number[][] = [];
  assert.throws(
    () => cutter.push(new Uint8Array([1, 1, 2, 2, 2, 9, 0, 0]), recorder(pool, frames)),
    FrameError,
  );
  assert.deepEqual(frames, [[1], [2, 2]]);
  assert.equal(cutter.closed, true);
  assertAllFree(pool);
});

Deno.test("end() with a visitor: TruncatedError by default, the raw bytes visited (and retainable) with allowPartial", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const strict = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const frames: number[][] = [];
  strict.push(new Uint8Array([1, 4, 3, 5]), recorder(pool, frames));
  assert.throws(() => strict.end(recorder(pool, frames)), TruncatedError);
  assert.deepEqual(frames, [[4]]);
  assertAllFree(pool);

  const lenient = new FrameCutter(pool, { codec: lengthPrefix(1), allowPartial: true });
  let kept: Packet | null = null;
  lenient.push(new Uint8Array([1, 4, 3, 5]), () => {});
  lenient.end((bytes, start, end, c) => {
    assert.deepEqual([...bytes.subarray(start, end)], [3, 5]);
    kept = c.retain();
  });
  assert.equal(lenient.closed, true);
  assert.deepEqual([...kept!.bytes], [3, 5]);
  kept!.release();
  assertAllFree(pool);
});

Deno.test("Retained packets pin the only buffer: push stops, a signal bounds the wait, a release resumes it", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const kept: Packet[] = [];
  const visit: FrameVisitor = (_b, _s, _e, c) => {
    kept.push(c.retain());
  };
  const chunk = new Uint8Array([2, 1, 1, 2, 2, 2, 3, 3, 3, 3]);
  let taken = cutter.push(chunk, visit);
  assert.equal(taken, 8);
  assert.equal(cutter.needsBuffer, true);
  const reason = new Error("gave up");
  const controller = new AbortController();
  const gaveUp = new Tracked(cutter.waitForBuffer({ signal: controller.signal }));
  await flush();
  assert.equal(pool.stats().waiters, 1);
  controller.abort(reason);
  await flush();
  assert.equal(gaveUp.reason(), reason);
  const waiting = cutter.waitForBuffer({ signal: AbortSignal.timeout(5000) });
  for (const packet of kept.splice(0)) packet.release();
  await waiting;
  taken += cutter.push(chunk.subarray(taken), visit);
  assert.equal(taken, chunk.length);
  assert.deepEqual(kept.map((p) => [...p.bytes]), [[3, 3, 3]]);
  kept[0]!.release();
  cutter.end(visit);
  assertAllFree(pool);
});

Deno.test("close() ends a waitForBuffer at once with a ClosedError, instead of leaving it waiting for a release", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const cutter = new FrameCutter(pool, { codec: lengthPrefix(1) });
  const kept: Packet[] = [];
  cutter.push(new Uint8Array([2, 1, 1, 2, 2, 2, 3, 3, 3, 3]), (_b, _s, _e, c) => {
    kept.push(c.retain());
  });
  assert.equal(cutter.needsBuffer, true);
  // With and without a signal of the caller's own.
  const plain = new Tracked(cutter.waitForBuffer());
  await flush();
  assert.equal(pool.stats().waiters, 1);
  cutter.close();
  await flush();
  assert.ok(plain.reason() instanceof ClosedError, String(plain.reason()));
  assert.equal(pool.stats().waiters, 0);
  for (const packet of kept.splice(0)) packet.release();
  assertAllFree(pool);

  const second = new FrameCutter(pool, { codec: lengthPrefix(1) });
  second.push(new Uint8Array([2, 1, 1, 2, 2, 2, 3]), (_b, _s, _e, c) => {
    kept.push(c.retain());
  });
  // Two waits at once: close() ends both.
  const signalled = new Tracked(second.waitForBuffer({ signal: new AbortController().signal }));
  const other = new Tracked(second.waitForBuffer());
  await flush();
  second.close();
  await flush();
  assert.ok(signalled.reason() instanceof ClosedError, String(signalled.reason()));
  assert.ok(other.reason() instanceof ClosedError, String(other.reason()));
  for (const packet of kept.splice(0)) packet.release();
  assertAllFree(pool);
});

/**
 * Runs `read` over every codec, chunking and pool (seeded from `seed`) and
 * checks it against the packet form: the same frames, the same ending, and
 * every way of ending met.
 */
async function matchesPacketForm(
  seed: number,
  read: (pool: BufferPool, options: FrameCutterOptions, chunks: Uint8Array[]) => Promise<unknown>,
): Promise<void> {
  const endings = new Set<string>();
  for (const poolOptions of [...SMALL_POOLS, BIG_POOL]) {
    const pool = new BufferPool(poolOptions);
    for (const codec of CODECS) {
      const options: FrameCutterOptions = {
        codec,
        allowPartial: seed % 2 === 0,
        maxFrameLength: Math.min(largestPayload(codec, pool.bufferSize), 300),
      };
      for (const bytes of inputs(codec, pool.bufferSize, seed++)) {
        for (const how of CHUNKINGS) {
          const chunks = chunked(bytes, how, seed++);
          const reference = cutPackets(pool, options, chunks);
          endings.add(ending(reference));
          const where = `${codec.name}, ${how}, ${JSON.stringify(poolOptions)}`;
          assert.deepEqual(await read(pool, options, chunks), reference, where);
          assertAllFree(pool);
        }
      }
    }
  }
  assert.deepEqual([...endings].sort(), ENDINGS, "every way of ending was met");
}

// -- visitFrames --

Deno.test("visitFrames sees exactly the packet form's frames and errors: every codec, chunking and pool", async () => {
  await matchesPacketForm(1000, visitSource);
});

Deno.test("visitFrames: a visitor closing the cutter resolves it and stops reading", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const chunks = chunked(stream(codec, 16, 50, 3), "random", 4);
  let reads = 0;
  const inner = chunkSource(chunks);
  const source: ByteSource = {
    read(p) {
      reads++;
      return inner.read(p);
    },
  };
  let visits = 0;
  await visitFrames(source, pool, { codec }, (_b, _s, _e, c) => {
    if (++visits === 3) c.close();
  });
  assert.equal(visits, 3);
  const readsAtStop = reads;
  assert.ok(readsAtStop < chunks.length);
  assertAllFree(pool);
});

Deno.test("visitFrames rejects with what the visitor or the source throws, releasing everything", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const chunks = chunked(stream(codec, 16, 20, 7), "random", 8);
  const oops = new Error("visitor failed");
  let visits = 0;
  await assert.rejects(
    visitFrames(chunkSource(chunks), pool, { codec }, () => {
      if (++visits === 5) throw oops;
    }),
    oops,
  );
  assertAllFree(pool);

  const broken = new Error("connection reset");
  let reads = 0;
  const inner = chunkSource(chunks);
  const source: ByteSource = {
    read(p) {
      if (++reads === 3) return Promise.reject(broken);
      return inner.read(p);
    },
  };
  await assert.rejects(visitFrames(source, pool, { codec }, () => {}), broken);
  assertAllFree(pool);
});

Deno.test("visitFrames with a signal: aborted before, and while waiting for a buffer that retained packets pin", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const reason = new Error("stop");
  await assert.rejects(
    visitFrames(chunkSource([new Uint8Array([1, 1])]), pool, {
      codec,
      signal: AbortSignal.abort(reason),
    }, () => {}),
    reason,
  );
  assertAllFree(pool);

  // Every frame retained: the only buffer is pinned after the first read.
  const controller = new AbortController();
  const kept: Packet[] = [];
  const done = new Tracked(
    visitFrames(
      chunkSource([new Uint8Array([3, 1, 1, 1, 3, 2, 2, 2, 3, 3, 3, 3])]),
      pool,
      { codec, signal: controller.signal },
      (_b, _s, _e, c) => {
        kept.push(c.retain());
      },
    ),
  );
  for (let i = 0; i < 100 && pool.stats().waiters === 0; i++) await flush();
  assert.equal(pool.stats().waiters, 1, "the reader waits for a buffer");
  assert.equal(done.pending, true);
  controller.abort(reason);
  await flush();
  assert.equal(done.reason(), reason);
  assert.deepEqual(kept.map((p) => [...p.bytes]), [[1, 1, 1], [2, 2, 2]]);
  for (const packet of kept) packet.release();
  assertAllFree(pool);
});

Deno.test("visitFrames on a 1-buffer pool resumes when retained packets are released", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const kept: Packet[] = [];
  const frames: number[][] = [];
  const done = visitFrames(
    chunkSource([new Uint8Array([3, 1, 1, 1, 3, 2, 2, 2, 3, 3, 3, 3])]),
    pool,
    { codec, signal: AbortSignal.timeout(5000) },
    (bytes, start, end, c) => {
      frames.push([...bytes.subarray(start, end)]);
      if (frames.length === 1) kept.push(c.retain());
    },
  );
  for (let i = 0; i < 100 && pool.stats().waiters === 0; i++) await flush();
  assert.equal(pool.stats().waiters, 1, "the retained frame pins the only buffer");
  kept[0]!.release();
  await done;
  assert.deepEqual(frames, [[1, 1, 1], [2, 2, 2], [3, 3, 3]]);
  assertAllFree(pool);
});

// -- FrameSink --

Deno.test("FrameSink (pipeTo) sees exactly the packet form's frames and errors: every codec, chunking and pool", async () => {
  await matchesPacketForm(2001, pipeToSink);
});

Deno.test("FrameSink from a loopback TCP connection", async () => {
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 2 });
  const codec = varintPrefix();
  const bytes = stream(codec, 4096, 2000, 11);
  const reference = cutPackets(pool, { codec }, [bytes]);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const sending = (async () => {
    for (let at = 0; at < bytes.length; at += 1000) {
      await client.write(bytes.subarray(at, at + 1000));
    }
    client.close();
  })();
  const frames: number[][] = [];
  await server.readable.pipeTo(new FrameSink(pool, { codec, visit: recorder(pool, frames) }));
  await sending;
  listener.close();
  assert.deepEqual(frames, reference.frames);
  assertAllFree(pool);
});

Deno.test("FrameSink: a visitor that throws, or closes the cutter, errors the pipe and releases everything", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const chunks = chunked(stream(codec, 16, 30, 13), "random", 14);
  const oops = new Error("visitor failed");
  let visits = 0;
  await assert.rejects(
    ReadableStream.from(chunks).pipeTo(
      new FrameSink(pool, {
        codec,
        visit() {
          if (++visits === 4) throw oops;
        },
      }),
    ),
    oops,
  );
  assertAllFree(pool);

  await assert.rejects(
    ReadableStream.from(chunks).pipeTo(
      new FrameSink(pool, { codec, visit: (_b, _s, _e, c) => c.close() }),
    ),
    ClosedError,
  );
  assertAllFree(pool);
});

Deno.test("FrameSink: a source that errors aborts it and releases everything", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const broken = new Error("connection reset");
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([1, 1, 3, 2])); // a frame, and half of one
    },
    pull(controller) {
      controller.error(broken);
    },
  });
  const frames: number[][] = [];
  await assert.rejects(
    source.pipeTo(new FrameSink(pool, { codec, visit: recorder(pool, frames) })),
    broken,
  );
  assert.deepEqual(frames, [[1]]);
  assertAllFree(pool);
});

Deno.test("FrameSink: its signal stops a write waiting for a buffer that retained packets pin", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const controller = new AbortController();
  const kept: Packet[] = [];
  const sink = new FrameSink(pool, {
    codec,
    signal: controller.signal,
    visit: (_b, _s, _e, c) => {
      kept.push(c.retain());
    },
  });
  const writer = sink.getWriter();
  const write = new Tracked(writer.write(new Uint8Array([3, 1, 1, 1, 3, 2, 2, 2, 3, 3])));
  for (let i = 0; i < 100 && pool.stats().waiters === 0; i++) await flush();
  assert.equal(pool.stats().waiters, 1, "the write waits for a buffer");
  const reason = new Error("stop");
  controller.abort(reason);
  await flush();
  assert.equal(write.reason(), reason);
  await assert.rejects(writer.closed, (error) => error === reason);
  assert.equal(pool.stats().waiters, 0);
  for (const packet of kept) packet.release();
  assertAllFree(pool);
});

Deno.test("FrameSink: writer.abort() while a write waits for a buffer releases everything", async () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const kept: Packet[] = [];
  const sink = new FrameSink(pool, {
    codec,
    visit: (_b, _s, _e, c) => {
      kept.push(c.retain());
    },
  });
  const writer = sink.getWriter();
  const write = new Tracked(writer.write(new Uint8Array([3, 1, 1, 1, 3, 2, 2, 2, 3, 3])));
  for (let i = 0; i < 100 && pool.stats().waiters === 0; i++) await flush();
  assert.equal(pool.stats().waiters, 1);
  const reason = new Error("abort");
  await writer.abort(reason);
  assert.equal(write.pending, false);
  assert.equal(pool.stats().waiters, 0);
  for (const packet of kept) packet.release();
  assertAllFree(pool);
});

Deno.test("FrameSink: a pipe's signal aborts it between writes and releases the staging buffer", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const codec = lengthPrefix(1);
  let source!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({
    start(c) {
      source = c;
    },
  });
  const frames: number[][] = [];
  const controller = new AbortController();
  const piping = new Tracked(
    input.pipeTo(new FrameSink(pool, { codec, visit: recorder(pool, frames) }), {
      signal: controller.signal,
    }),
  );
  source.enqueue(new Uint8Array([1, 1, 2, 2])); // a frame and a half: the buffer is held
  for (let i = 0; i < 100 && frames.length === 0; i++) await flush();
  assert.deepEqual(frames, [[1]]);
  assert.equal(pool.stats().inUse, 1);
  const reason = new Error("stop");
  controller.abort(reason);
  for (let i = 0; i < 100 && piping.pending; i++) await flush();
  assert.equal(piping.reason(), reason);
  assertAllFree(pool);
});

Deno.test("FrameSink: the input closing inside a frame is a TruncatedError; with allowPartial the rest is visited", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const codec = lengthPrefix(1);
  const frames: number[][] = [];
  await assert.rejects(
    ReadableStream.from([new Uint8Array([1, 4, 3, 5])]).pipeTo(
      new FrameSink(pool, { codec, visit: recorder(pool, frames) }),
    ),
    TruncatedError,
  );
  assert.deepEqual(frames, [[4]]);
  assertAllFree(pool);
  frames.length = 0;
  await ReadableStream.from([new Uint8Array([1, 4, 3, 5])]).pipeTo(
    new FrameSink(pool, { codec, allowPartial: true, visit: recorder(pool, frames) }),
  );
  assert.deepEqual(frames, [[4], [3, 5]]);
  assertAllFree(pool);
});

// The receive side: FrameCutter, BatchFramer and Framer, and the visiting
// forms (FrameCutter with a FrameVisitor, visitFrames, FrameSink), against
// what users do without them. Run: deno bench -A bench/framer_bench.ts
//
// Every case in a group cuts the same input per iteration, so the times
// `deno bench` prints compare directly: frames/s = frames per iteration /
// time per iteration. The input is built once, outside the timed part, as
// 64 KiB chunks cut at fixed offsets with no regard for frame boundaries, as
// a socket delivers them.
//
// Consumers look at each frame's length only, on both sides: a bab Packet
// makes its `bytes` view on first use (~25 ns), a peer's frame is a view
// already, a visitor gets offsets. bab consumers release every packet as it
// comes, so the pool is reused; pool leaks are checked after every
// iteration, outside the timed section (b.end() before the check).
import assert from "node:assert/strict";
import * as lp from "npm:it-length-prefixed@11.0.1";
import type { Uint8ArrayList } from "npm:uint8arraylist@3.0.2";
import {
  BatchFramer,
  BufferPool,
  type BufferPoolOptions,
  type ByteSource,
  delimiter,
  type FrameCodec,
  FrameCutter,
  Framer,
  FrameSink,
  lengthPrefix,
  type Packet,
  visitFrames,
} from "../mod.ts";

const CHUNK = 64 * 1024;
/**
 * What the consumers add up. Every case zeroes it before its timed part:
 * grown past 2^30 over a run, it would no longer be a small integer, and
 * every `+=` would allocate a heap number, charging the cases that run late
 * for an allocation per frame in the consumer.
 */
let sink = 0;

/** `frames` payloads of `size` bytes, framed by `codec`, as 64 KiB chunks. */
function input(codec: FrameCodec, frames: number, size: number, fill = 0x61): Uint8Array[] {
  const payload = new Uint8Array(size).fill(fill);
  const one = codec.encode(payload);
  const all = new Uint8Array(one.length * frames);
  for (let i = 0; i < frames; i++) all.set(one, i * one.length);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < all.length; at += CHUNK) chunks.push(all.slice(at, at + CHUNK));
  return chunks;
}

const packets: Packet[] = [];

/** Feeds every chunk to a new FrameCutter and releases each packet; returns the frame count. */
function cutAll(pool: BufferPool, codec: FrameCodec, chunks: Uint8Array[]): number {
  const cutter = new FrameCutter(pool, { codec });
  let frames = 0;
  for (const chunk of chunks) {
    const taken = cutter.push(chunk, packets);
    if (taken !== chunk.length) throw new Error("the pool ran dry");
    for (let i = 0; i < packets.length; i++) {
      const packet = packets[i]!;
      sink += packet.length;
      packet.release();
    }
    frames += packets.length;
    packets.length = 0;
  }
  cutter.end(packets);
  return frames;
}

/** Frames seen by {@linkcode countFrame}. */
let visited = 0;

/** The one visitor of every visiting case: looks at the frame's length only. */
function countFrame(_bytes: Uint8Array, start: number, end: number): void {
  sink += end - start;
  visited++;
}

/** Feeds every chunk to a new FrameCutter visiting each frame in place; returns the frame count. */
function visitAll(pool: BufferPool, codec: FrameCodec, chunks: Uint8Array[]): number {
  const cutter = new FrameCutter(pool, { codec });
  visited = 0;
  for (const chunk of chunks) {
    if (cutter.push(chunk, countFrame) !== chunk.length) throw new Error("the pool ran dry");
  }
  cutter.end(countFrame);
  return visited;
}

/** A ByteSource handing out the chunks as a connection would: copied into the reader's memory. */
function chunkReader(chunks: Uint8Array[]): ByteSource {
  let i = 0;
  let at = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      if (i === chunks.length) return Promise.resolve(null);
      const chunk = chunks[i]!;
      const n = Math.min(p.length, chunk.length - at);
      p.set(at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n));
      at += n;
      if (at === chunk.length) {
        i++;
        at = 0;
      }
      return Promise.resolve(n);
    },
  };
}

/** Reads the chunks with visitFrames; returns the frame count. */
async function visitSource(pool: BufferPool, codec: FrameCodec, chunks: Uint8Array[]) {
  visited = 0;
  await visitFrames(chunkReader(chunks), pool, { codec }, countFrame);
  return visited;
}

/** Pipes the chunks into a FrameSink; returns the frame count. */
async function frameSinkAll(pool: BufferPool, codec: FrameCodec, chunks: Uint8Array[]) {
  visited = 0;
  await ReadableStream.from(chunks).pipeTo(new FrameSink(pool, { codec, visit: countFrame }));
  return visited;
}

/** Pipes the chunks through a BatchFramer and releases each packet; returns the frame count. */
async function batchAll(pool: BufferPool, codec: FrameCodec, chunks: Uint8Array[]) {
  let frames = 0;
  const framer = new BatchFramer(pool, { codec });
  for await (const batch of ReadableStream.from(chunks).pipeThrough(framer)) {
    for (let i = 0; i < batch.length; i++) {
      const packet = batch[i]!;
      sink += packet.length;
      packet.release();
    }
    frames += batch.length;
  }
  return frames;
}

/** Pipes the chunks through a per-packet Framer and releases each packet. */
async function eachAll(pool: BufferPool, codec: FrameCodec, chunks: Uint8Array[]) {
  let frames = 0;
  for await (const packet of ReadableStream.from(chunks).pipeThrough(new Framer(pool, { codec }))) {
    sink += packet.length;
    packet.release();
    frames++;
  }
  return frames;
}

/** Registers a group's baseline: a peer's sync iterable of frames, consumed like ours. */
function benchBaseline(
  name: string,
  group: string,
  frames: () => Iterable<{ byteLength: number }>,
  expected: number,
): void {
  Deno.bench({
    name,
    group,
    baseline: true,
    fn(b) {
      let count = 0;
      sink = 0;
      b.start();
      for (const frame of frames()) {
        sink += frame.byteLength;
        count++;
      }
      b.end();
      assert.equal(count, expected);
    },
  });
}

/** Registers a bab case: `run` cuts the chunks on one pool and returns the frame count. */
function benchBab(
  name: string,
  group: string,
  run: (pool: BufferPool, codec: FrameCodec, chunks: Uint8Array[]) => number | Promise<number>,
  codec: FrameCodec,
  chunks: Uint8Array[],
  frames: number,
  poolOptions: BufferPoolOptions,
): void {
  const pool = new BufferPool(poolOptions);
  Deno.bench({
    name,
    group,
    async fn(b) {
      sink = 0;
      b.start();
      const cut = await run(pool, codec, chunks);
      b.end();
      assert.equal(cut, frames);
      assert.equal(pool.stats().inUse, 0);
    },
  });
}

// =============================================================================
// decode-32B: 1M 32-byte payloads behind a 4-byte big-endian length
// =============================================================================

const SMALL_N = 1_000_000;
const u32be = lengthPrefix(4);
const small = input(u32be, SMALL_N, 32);
/** Staging pool: 64 KiB buffers, as many as a slow consumer could pin. */
const SMALL_POOL: BufferPoolOptions = { bufferSize: 64 * 1024, bufferCount: 64 };

/** it-length-prefixed's length decoder for a u32be prefix; throws RangeError when short, as it expects. */
function u32beLength(list: Uint8ArrayList): number {
  if (list.byteLength < 4) throw new RangeError("need 4 bytes");
  return list.getUint32(0);
}
u32beLength.bytes = 4;

benchBaseline(
  "it-length-prefixed decode (sync iterable)",
  "decode-32B",
  () => lp.decode(small, { lengthDecoder: u32beLength }),
  SMALL_N,
);

benchBab(
  "bab FrameCutter.push (sync core)",
  "decode-32B",
  cutAll,
  u32be,
  small,
  SMALL_N,
  SMALL_POOL,
);
benchBab(
  "bab FrameCutter.push visiting (no packet)",
  "decode-32B",
  visitAll,
  u32be,
  small,
  SMALL_N,
  SMALL_POOL,
);
benchBab(
  "bab visitFrames from a ByteSource",
  "decode-32B",
  visitSource,
  u32be,
  small,
  SMALL_N,
  SMALL_POOL,
);
benchBab(
  "bab FrameSink (pipeTo)",
  "decode-32B",
  frameSinkAll,
  u32be,
  small,
  SMALL_N,
  SMALL_POOL,
);
benchBab(
  "bab BatchFramer (TransformStream, one array per chunk)",
  "decode-32B",
  batchAll,
  u32be,
  small,
  SMALL_N,
  SMALL_POOL,
);
benchBab(
  "bab Framer (TransformStream, one read per packet)",
  "decode-32B",
  eachAll,
  u32be,
  small,
  SMALL_N,
  SMALL_POOL,
);

// =============================================================================
// decode-64KiB: 64 MiB as 1024 payloads of 64 KiB; bytes/s against memcpy
// =============================================================================

const LARGE_N = 1024;
const LARGE = 64 * 1024;
const large = input(u32be, LARGE_N, LARGE);
/** 1 MiB staging buffers: 15 whole frames each, one frame moved per buffer. */
const LARGE_POOL: BufferPoolOptions = { bufferSize: 1024 * 1024, bufferCount: 8 };

{
  const target = new Uint8Array(LARGE_POOL.bufferSize);
  Deno.bench({
    name: "Uint8Array.prototype.set of every chunk (memory bandwidth)",
    group: "decode-64KiB",
    baseline: true,
    fn(b) {
      let at = 0;
      sink = 0;
      b.start();
      for (const chunk of large) {
        if (at + chunk.length > target.length) at = 0;
        target.set(chunk, at);
        at += chunk.length;
      }
      b.end();
      sink += target[at - 1]!;
    },
  });
}

benchBab(
  "bab FrameCutter.push (sync core)",
  "decode-64KiB",
  cutAll,
  u32be,
  large,
  LARGE_N,
  LARGE_POOL,
);
benchBab(
  "bab FrameCutter.push visiting (no packet)",
  "decode-64KiB",
  visitAll,
  u32be,
  large,
  LARGE_N,
  LARGE_POOL,
);
benchBab(
  "bab visitFrames from a ByteSource",
  "decode-64KiB",
  visitSource,
  u32be,
  large,
  LARGE_N,
  LARGE_POOL,
);
benchBab(
  "bab FrameSink (pipeTo)",
  "decode-64KiB",
  frameSinkAll,
  u32be,
  large,
  LARGE_N,
  LARGE_POOL,
);
benchBab(
  "bab BatchFramer (TransformStream)",
  "decode-64KiB",
  batchAll,
  u32be,
  large,
  LARGE_N,
  LARGE_POOL,
);

// =============================================================================
// delimiter-32B: 1M 32-byte lines ending in "\n"
// =============================================================================

const newline = delimiter("\n");
const lines = input(newline, SMALL_N, 32);

/**
 * The usual hand-written splitter: `indexOf` for each newline, a `subarray`
 * view per line, and a concatenation when a line spans two chunks.
 */
function* splitLines(chunks: Iterable<Uint8Array>): Generator<Uint8Array> {
  let carry: Uint8Array | null = null;
  for (let chunk of chunks) {
    if (carry !== null) {
      const joined = new Uint8Array(carry.length + chunk.length);
      joined.set(carry);
      joined.set(chunk, carry.length);
      chunk = joined;
      carry = null;
    }
    let start = 0;
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, start)) {
      yield chunk.subarray(start, i);
      start = i + 1;
    }
    if (start < chunk.length) carry = chunk.subarray(start);
  }
  if (carry !== null) throw new Error("truncated line");
}

benchBaseline(
  "indexOf + subarray splitter (sync generator)",
  "delimiter-32B",
  () => splitLines(lines),
  SMALL_N,
);

benchBab(
  "bab FrameCutter.push (sync core)",
  "delimiter-32B",
  cutAll,
  newline,
  lines,
  SMALL_N,
  SMALL_POOL,
);
benchBab(
  "bab BatchFramer (TransformStream)",
  "delimiter-32B",
  batchAll,
  newline,
  lines,
  SMALL_N,
  SMALL_POOL,
);

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink); // keeps `sink` observable
});

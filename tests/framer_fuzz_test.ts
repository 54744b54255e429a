// Framer fuzzing: random and mutated byte streams (corrupted prefixes, huge
// lengths, stray delimiters, random chunking) for every codec, cut by
// FrameCutter (push and writable/commit) and, for a fraction of the cases,
// by Framer, BatchFramer and readFrames, some cancelled or aborted
// mid-stream, some read by a consumer that keeps each batch until the next.
// Half the cases run on small pools (1 to 4 buffers of 16 to 64 bytes),
// where frames cross buffer ends all the time and no buffer is spare.
//
// Each case is checked against a reference decoder written here, as plainly
// as possible, over the whole input at once: the frames must be the same,
// and so must the error (FrameError or TruncatedError, with the same fields)
// or its absence. Nothing else may be thrown, the cutter must never stall
// while the pool has a buffer for it or its own buffer could take the
// frame, no reader may hang, and every buffer is back after each case.
//
// FUZZ_CASES (default 100000) sets the number of cases, FUZZ_SEED (default
// 0xbab) the seed; FUZZ_CASE=i runs case i alone, as printed by a failure.
// `deno task fuzz` runs 2M.

import assert from "node:assert/strict";
import {
  BatchFramer,
  BufferPool,
  delimiter,
  fixedSize,
  type FrameCodec,
  FrameCutter,
  FrameError,
  Framer,
  lengthPrefix,
  type Packet,
  readFrames,
  TruncatedError,
  varintPrefix,
} from "../mod.ts";
import { chunkSource, flush, prng, withinDeadline } from "./_helpers.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 0xbab) >>> 0;
const CASES = Number(Deno.env.get("FUZZ_CASES") ?? 100_000);
const ONLY = Deno.env.get("FUZZ_CASE");
/** One case in this many goes through the Web Streams forms. */
const STREAM_EVERY = 100;

// -- What a case frames with --

type Spec =
  | { kind: "length"; size: 1 | 2 | 4; littleEndian: boolean }
  | { kind: "varint" }
  | { kind: "delimiter"; bytes: Uint8Array }
  | { kind: "fixed"; size: number };

function codecOf(spec: Spec): FrameCodec {
  switch (spec.kind) {
    case "length":
      return lengthPrefix(spec.size, { littleEndian: spec.littleEndian });
    case "varint":
      return varintPrefix();
    case "delimiter":
      return delimiter(spec.bytes);
    case "fixed":
      return fixedSize(spec.size);
  }
}

/** The bytes a writer puts around an `n`-byte payload: the shortest header and the trailer. */
function framing(spec: Spec, n: number): number {
  switch (spec.kind) {
    case "length":
      return spec.size;
    case "varint": {
      let bytes = 1;
      while (n >= 2 ** (7 * bytes)) bytes++;
      return bytes;
    }
    case "delimiter":
      return spec.bytes.length;
    case "fixed":
      return 0;
  }
}

/** The largest payload a writer frames within `bufferSize` bytes: a reader's default maxFrameLength. */
function largestFitting(spec: Spec, bufferSize: number): number {
  if (spec.kind === "fixed") return spec.size <= bufferSize ? spec.size : -1;
  const codecMax = spec.kind === "length" ? 2 ** (8 * spec.size) - 1 : Infinity;
  for (let n = Math.min(bufferSize, codecMax); n >= 0; n--) {
    if (framing(spec, n) + n <= bufferSize) return n;
  }
  return -1;
}

// -- The reference decoder --

type Outcome =
  | { kind: "ok" }
  | { kind: "frame"; frameLength: number }
  | { kind: "truncated"; received: number; expected: number };

interface Decoded {
  frames: Uint8Array[];
  outcome: Outcome;
}

/**
 * Cuts all of `bytes` the slow, obvious way. An unfinished last frame is a
 * truncation, or with `allowPartial` one more frame of its raw bytes. A
 * frame longer than `bufferSize` (a padded header on a payload near the
 * limit) cannot be staged and is a FrameError as soon as its header is in.
 */
function referenceDecode(
  spec: Spec,
  bytes: Uint8Array,
  max: number,
  allowPartial: boolean,
  bufferSize = Infinity,
): Decoded {
  const frames: Uint8Array[] = [];
  let at = 0;
  const truncated = (expected: number): Decoded => {
    if (allowPartial) {
      frames.push(bytes.slice(at));
      return { frames, outcome: { kind: "ok" } };
    }
    return { frames, outcome: { kind: "truncated", received: bytes.length - at, expected } };
  };
  while (at < bytes.length) {
    const rest = bytes.length - at;
    let header: number;
    let length: number;
    switch (spec.kind) {
      case "length": {
        if (rest < spec.size) return truncated(NaN);
        length = 0;
        for (let i = 0; i < spec.size; i++) {
          const b = bytes[at + (spec.littleEndian ? spec.size - 1 - i : i)]!;
          length = length * 256 + b;
        }
        header = spec.size;
        break;
      }
      case "varint": {
        length = 0;
        header = 0;
        for (let i = 0;; i++) {
          if (i >= rest) return truncated(NaN);
          const b = bytes[at + i]!;
          if (i === 4 && b > 0x0f) {
            return { frames, outcome: { kind: "frame", frameLength: NaN } };
          }
          length += (b & 0x7f) * 2 ** (7 * i);
          if (b < 0x80) {
            header = i + 1;
            break;
          }
        }
        break;
      }
      case "delimiter": {
        const d = spec.bytes;
        let found = -1;
        for (let p = at; p + d.length <= bytes.length && p - at <= max; p++) {
          let k = 0;
          while (k < d.length && bytes[p + k] === d[k]) k++;
          if (k === d.length) {
            found = p;
            break;
          }
        }
        if (found >= 0) {
          frames.push(bytes.slice(at, found));
          at = found + d.length;
          continue;
        }
        if (rest >= max + d.length) {
          return { frames, outcome: { kind: "frame", frameLength: max + d.length } };
        }
        return truncated(NaN);
      }
      case "fixed":
        header = 0;
        length = spec.size;
    }
    if (length > max || header + length > bufferSize) {
      return { frames, outcome: { kind: "frame", frameLength: length } };
    }
    if (rest < header + length) return truncated(header + length);
    frames.push(bytes.slice(at + header, at + header + length));
    at += header + length;
  }
  return { frames, outcome: { kind: "ok" } };
}

// -- Making a case --

interface Case {
  index: number;
  spec: Spec;
  bufferSize: number;
  bufferCount: number;
  /** Passed to the cutter; undefined means its default. */
  maxOption: number | undefined;
  allowPartial: boolean;
  bytes: Uint8Array;
  chunks: Uint8Array[];
  /** Feed through writable()/commit instead of push. */
  commit: boolean;
  /** Keep packets until the cutter stalls, to run the pool dry. */
  hold: boolean;
}

function describe(c: Case, max: number): string {
  const spec = c.spec.kind === "delimiter"
    ? `delimiter ${[...c.spec.bytes].join(",")}`
    : JSON.stringify(c.spec);
  const bytes = c.bytes.length <= 64 ? ` bytes=[${c.bytes.join(",")}]` : "";
  return `FUZZ_SEED=${SEED} FUZZ_CASE=${c.index} (${spec}, bufferSize=${c.bufferSize}, ` +
    `bufferCount=${c.bufferCount}, max=${max}, allowPartial=${c.allowPartial}, ` +
    `commit=${c.commit}, hold=${c.hold}, ${c.bytes.length} bytes in ${c.chunks.length} chunks)` +
    bytes;
}

function caseRandom(index: number): (n: number) => number {
  return prng((SEED ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0);
}

function pickSpec(r: (n: number) => number, bufferSize: number): Spec {
  switch (r(9)) {
    case 0:
      return { kind: "length", size: 1, littleEndian: false };
    case 1:
      return { kind: "length", size: 2, littleEndian: false };
    case 2:
      return { kind: "length", size: 2, littleEndian: true };
    case 3:
      return { kind: "length", size: 4, littleEndian: false };
    case 4:
      return { kind: "length", size: 4, littleEndian: true };
    case 5:
      return { kind: "varint" };
    case 6:
      return { kind: "delimiter", bytes: new Uint8Array([r(3) === 0 ? 10 : r(256)]) };
    case 7: {
      // Self-overlapping delimiters ("aa", "aba") are the tricky ones.
      const shapes = [[13, 10], [97, 97], [97, 98, 97], [0, 0, 0, 1], [1, 2, 3]];
      const shape = shapes[r(shapes.length)]!;
      return { kind: "delimiter", bytes: new Uint8Array(r(4) === 0 ? [r(4), r(4)] : shape) };
    }
    default:
      return { kind: "fixed", size: 1 + r(r(2) === 0 ? 8 : bufferSize) };
  }
}

/** A header for a payload of `n` bytes, `n` not necessarily in range. */
function header(spec: Spec, n: number, r: (n: number) => number): number[] {
  switch (spec.kind) {
    case "length": {
      const out: number[] = [];
      for (let i = spec.size - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
      return spec.littleEndian ? out.reverse() : out;
    }
    case "varint": {
      const out: number[] = [];
      let v = n % 2 ** 32;
      while (v >= 0x80) {
        out.push(v % 0x80 | 0x80);
        v = Math.floor(v / 0x80);
      }
      out.push(v);
      // Sometimes padded with 0x80 bytes, which decoders must accept up to 5.
      while (out.length < 5 && r(8) === 0) {
        out[out.length - 1]! |= 0x80;
        out.push(0);
      }
      return out;
    }
    default:
      return [];
  }
}

function payloadBytes(spec: Spec, n: number, r: (n: number) => number): number[] {
  const out: number[] = new Array(n);
  // A delimiter stream draws from a small alphabet around the delimiter's
  // bytes, so that partial and overlapping matches are common.
  const alphabet = spec.kind === "delimiter" ? [...spec.bytes, 0, 97, 98, 255] : null;
  for (let i = 0; i < n; i++) out[i] = alphabet ? alphabet[r(alphabet.length)]! : r(256);
  return out;
}

function payloadLength(r: (n: number) => number, max: number, spec: Spec): number {
  if (spec.kind === "fixed") return r(8) === 0 ? Math.max(0, spec.size + r(3) - 1) : spec.size;
  switch (r(6)) {
    case 0:
      return 0;
    case 1:
      return r(8);
    case 2:
      return Math.max(0, max - 3 + r(r(4) === 0 ? 5 : 4)); // around the limit
    case 3:
      return r(max + 1);
    default:
      return r(Math.min(max, 32) + 1);
  }
}

/** Writes a huge or corrupt header over `at`. */
function corruptPrefix(bytes: number[], at: number, r: (n: number) => number): void {
  const patterns = [
    [0xff, 0xff, 0xff, 0xff, 0xff],
    [0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    [0xff, 0xff, 0xff, 0xff, 0x0f],
    [0x80, 0x80, 0x80, 0x80, 0x10],
    [0x00, 0x01, 0x00, 0x00],
    [0x7f, 0xff, 0xff, 0xff],
  ];
  const p = patterns[r(patterns.length)]!;
  for (let i = 0; i < p.length && at + i < bytes.length; i++) bytes[at + i] = p[i]!;
}

function mutate(bytes: number[], r: (n: number) => number, spec: Spec): void {
  const at = () => r(bytes.length + 1);
  switch (r(8)) {
    case 0: // flip a byte
      if (bytes.length > 0) bytes[r(bytes.length)] = r(256);
      break;
    case 1: // corrupt a prefix, often the first
      if (bytes.length > 0) corruptPrefix(bytes, r(2) === 0 ? 0 : r(bytes.length), r);
      break;
    case 2: { // insert bytes
      const extra = payloadBytes(spec, 1 + r(6), r);
      bytes.splice(at(), 0, ...extra);
      break;
    }
    case 3: // delete a range
      bytes.splice(at(), 1 + r(8));
      break;
    case 4: // truncate
      bytes.length = at();
      break;
    case 5: { // duplicate a slice
      const from = at();
      bytes.splice(at(), 0, ...bytes.slice(from, from + 1 + r(16)));
      break;
    }
    case 6: // a stray delimiter (or its first byte)
      if (spec.kind === "delimiter") {
        bytes.splice(at(), 0, ...spec.bytes.subarray(0, 1 + r(spec.bytes.length)));
      } else {
        bytes.splice(at(), 0, r(256));
      }
      break;
    default: // garbage at the end
      bytes.push(...payloadBytes({ kind: "varint" }, 1 + r(16), r));
  }
}

function chunk(bytes: Uint8Array, r: (n: number) => number, bufferSize: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const mode = r(5);
  let at = 0;
  while (at < bytes.length) {
    const n = mode === 0
      ? bytes.length
      : mode === 1
      ? 1
      : mode === 2
      ? 1 + r(8)
      : mode === 3
      ? Math.max(1, bufferSize - 2 + r(5))
      : 1 + r(3 * bufferSize);
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  // Empty chunks now and then: they must be harmless.
  if (r(16) === 0) chunks.splice(r(chunks.length + 1), 0, new Uint8Array(0));
  return chunks;
}

function makeCase(index: number): Case {
  const r = caseRandom(index);
  // Half on small pools: no buffer to spare, frames across every end.
  const small = r(2) === 0;
  const bufferSize = small ? 16 + r(49) : [8, 16, 33, 64, 100, 256, 1024][r(7)]!;
  const bufferCount = small ? 1 + r(4) : 1 + r(5);
  const spec = pickSpec(r, bufferSize);
  const limit = largestFitting(spec, bufferSize);
  let maxOption: number | undefined;
  if (spec.kind === "fixed") {
    maxOption = r(3) === 0 ? undefined : spec.size + r(limit - spec.size + 1);
  } else {
    const m = r(4);
    maxOption = m === 0
      ? undefined
      : m === 1
      ? limit
      : m === 2
      ? r(Math.min(limit, 16) + 1)
      : r(limit + 1);
  }
  const max = maxOption ?? limit;

  let bytes: number[];
  if (r(10) === 0) {
    bytes = payloadBytes(spec, r(4 * bufferSize), r); // pure noise
  } else {
    bytes = [];
    const frames = r(r(4) === 0 ? 40 : 8);
    for (let f = 0; f < frames; f++) {
      let n = payloadLength(r, max, spec);
      if (r(8 * frames) === 0) n = [max + 1, 2 ** 31, 2 ** 32 - 1, 255, 256, 65535, 65536][r(7)]!;
      const payload = payloadBytes(spec, Math.min(n, 4 * bufferSize), r);
      if (spec.kind === "delimiter") {
        bytes.push(...payload, ...spec.bytes);
      } else {
        bytes.push(...header(spec, n, r), ...payload);
      }
    }
    const mutations = r(2) === 0 ? 0 : 1 + r(r(2) === 0 ? 1 : 3);
    for (let m = 0; m < mutations; m++) mutate(bytes, r, spec);
  }
  const data = new Uint8Array(bytes);
  return {
    index,
    spec,
    bufferSize,
    bufferCount,
    maxOption,
    allowPartial: r(5) === 0,
    bytes: data,
    chunks: chunk(data, r, bufferSize),
    commit: r(4) === 0,
    hold: r(3) === 0,
  };
}

// -- Running a case --

const pools = new Map<string, BufferPool>();

function poolFor(c: Case): BufferPool {
  const key = `${c.bufferSize}x${c.bufferCount}`;
  let pool = pools.get(key);
  if (pool === undefined) {
    // Sampled, not the suite's paranoid leak detection: a stack per packet
    // costs ~25x here, and `inUse === 0` after every case already proves
    // each packet was released.
    pool = new BufferPool({
      bufferSize: c.bufferSize,
      bufferCount: c.bufferCount,
      leakDetection: "sampled",
    });
    pools.set(key, pool);
  }
  return pool;
}

function checkAllFree(pool: BufferPool, where: string): void {
  const s = pool.stats();
  if (s.inUse !== 0 || s.free !== s.bufferCount || s.waiters !== 0) {
    assert.fail(
      `${where}: buffers not all back: inUse=${s.inUse} free=${s.free} cached=${s.cached} waiters=${s.waiters}`,
    );
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function outcomeOf(error: unknown, max: number, where: string): Outcome {
  if (error === undefined) return { kind: "ok" };
  if (error instanceof FrameError) {
    assert.equal(error.maxFrameLength, max, `${where}: FrameError.maxFrameLength`);
    return { kind: "frame", frameLength: error.frameLength };
  }
  if (error instanceof TruncatedError) {
    return { kind: "truncated", received: error.received, expected: error.expected };
  }
  assert.fail(`${where}: untyped error: ${error instanceof Error ? error.stack : String(error)}`);
}

/**
 * Checks what came out against the reference. With `prefixOnly` (a reader
 * stopped early), the frames need only be the reference's first ones, and
 * no error is fine too when `errorOptional`. Otherwise every frame before an
 * error must have been delivered, by every reader.
 */
function checkResult(
  where: string,
  want: Decoded,
  frames: Uint8Array[],
  error: unknown,
  max: number,
  prefixOnly: boolean,
  errorOptional = false,
): void {
  const got = outcomeOf(error, max, where);
  const show = (fs: Uint8Array[]) => fs.map((f) => `[${f.join(",")}]`).join(" ");
  const framesOk = prefixOnly
    ? frames.length <= want.frames.length && frames.every((f, i) => sameBytes(f, want.frames[i]!))
    : frames.length === want.frames.length && frames.every((f, i) => sameBytes(f, want.frames[i]!));
  if (!framesOk) {
    assert.fail(
      `${where}: frames differ from the reference decoder\n  got:  ${show(frames)}\n  want: ${
        show(want.frames)
      }\n  error: ${String(error)}`,
    );
  }
  if (!errorOptional || error !== undefined) {
    assert.deepEqual(got, want.outcome, `${where}: outcome differs (error: ${String(error)})`);
  }
}

function takeAll(packets: Packet[], into: Uint8Array[]): void {
  for (const packet of packets) {
    into.push(packet.bytes.slice());
    packet.release();
  }
  packets.length = 0;
}

function runSync(c: Case): Outcome["kind"] {
  const pool = poolFor(c);
  const options = {
    codec: codecOf(c.spec),
    allowPartial: c.allowPartial,
    ...(c.maxOption === undefined ? {} : { maxFrameLength: c.maxOption }),
  };
  const cutter = new FrameCutter(pool, options);
  const max = cutter.maxFrameLength;
  const where = describe(c, max);
  // The default is what a writer on the pool sends: no more, no less.
  assert.equal(
    max,
    c.maxOption ?? largestFitting(c.spec, c.bufferSize),
    `${where}: maxFrameLength`,
  );
  const want = referenceDecode(c.spec, c.bytes, max, c.allowPartial, c.bufferSize);
  const frames: Uint8Array[] = [];
  const packets: Packet[] = [];
  let error: unknown;
  try {
    for (const chunk of c.chunks) {
      let at = 0;
      while (at < chunk.length) {
        let taken: number;
        let stalled: boolean;
        if (c.commit) {
          const view = cutter.writable();
          stalled = view === null;
          if (view === null) {
            taken = 0;
          } else {
            assert.ok(view.length > 0, `${where}: writable() gave an empty view`);
            taken = Math.min(view.length, chunk.length - at);
            view.set(chunk.subarray(at, at + taken));
            cutter.commit(taken, packets);
          }
        } else {
          taken = cutter.push(at === 0 ? chunk : chunk.subarray(at), packets);
          stalled = at + taken < chunk.length;
        }
        at += taken;
        if (stalled) {
          // Stopped early: only allowed when the pool has nothing to give.
          const s = pool.stats();
          if (s.free !== 0) {
            assert.fail(`${where}: the cutter stalled with ${s.free} buffers free`);
          }
          if (packets.length === 0) {
            assert.fail(`${where}: the cutter stalled holding every buffer itself: a hang`);
          }
          takeAll(packets, frames);
        } else if (!c.hold) {
          takeAll(packets, frames);
        }
        assert.ok(pool.stats().inUse <= c.bufferCount);
      }
    }
    cutter.end(packets);
  } catch (e) {
    error = e;
  }
  takeAll(packets, frames);
  if (!(error instanceof FrameError || error instanceof TruncatedError)) cutter.close();
  outcomeOf(error, max, where); // fails first on an untyped error, with its stack
  if (!cutter.closed) assert.fail(`${where}: the cutter is still open after end() or an error`);
  checkAllFree(pool, where);
  checkResult(where, want, frames, error, max, false);
  return want.outcome.kind;
}

/** Writes `chunks` to a framer and closes it; settles once every write has. */
async function feed(writable: WritableStream<Uint8Array>, chunks: Uint8Array[]): Promise<void> {
  const writer = writable.getWriter();
  try {
    for (const chunk of chunks) await writer.write(chunk.slice());
    await writer.close();
  } catch {
    // The framer failed, was cancelled or aborted: the reader sees why.
  }
}

type StreamKind = "Framer" | "BatchFramer" | "readFrames";

async function runStream(c: Case): Promise<void> {
  const r = caseRandom(c.index ^ 0x5a5a5a5a);
  const pool = poolFor(c);
  const kind = (["Framer", "BatchFramer", "readFrames"] as const)[r(3)] as StreamKind;
  // Keeping each batch until the next pins its buffers while the reader
  // waits for more. A readFrames batch or a Framer packet pins one, so two
  // buffers always suffice; a BatchFramer batch pins every buffer its chunk
  // reached, which may be all of them: that wait is the caller's to bound
  // (framer_test checks that it ends on the signal).
  const hold = kind !== "BatchFramer" && c.bufferCount >= 2 && r(2) === 0;
  const stop = new AbortController();
  const options = {
    codec: codecOf(c.spec),
    allowPartial: c.allowPartial,
    signal: stop.signal,
    ...(c.maxOption === undefined ? {} : { maxFrameLength: c.maxOption }),
  };
  const max = new FrameCutter(pool, options).maxFrameLength;
  const want = referenceDecode(c.spec, c.bytes, max, c.allowPartial, c.bufferSize);
  const stopAfter = r(3) === 0 ? r(want.frames.length + 1) : -1;
  // "fail": the readable is piped into a destination that fails on the
  // batch it is handed at the stop, unused (framers only).
  const ways = kind === "readFrames" ? 2 : 3;
  const how = stopAfter < 0 ? "none" : (["cancel", "abort", "fail"] as const)[r(ways)]!;
  const late = r(2) === 0;
  const where = `${describe(c, max)} ${kind} hold=${hold} stop=${how}@${stopAfter}`;
  const frames: Uint8Array[] = [];
  let held: Packet[] = [];
  const consume = (items: Packet[]): void => {
    if (items.length === 0) assert.fail(`${where}: an empty batch`);
    for (const packet of items) frames.push(packet.bytes.slice());
    for (const packet of held) packet.release();
    held = [];
    if (hold) held = items;
    else for (const packet of items) packet.release();
  };
  const stopping = new Error("fuzz stop");
  let error: unknown;
  let stopped = false;
  /** Stops the reader if it is time; returns whether it did by cancelling. */
  const maybeStop = (): boolean => {
    if (stopped || stopAfter < 0 || frames.length < stopAfter) return false;
    stopped = true;
    if (how === "abort") stop.abort(stopping);
    return how === "cancel";
  };
  await withinDeadline(
    (async () => {
      if (kind === "readFrames") {
        try {
          if (!maybeStop()) {
            for await (const batch of readFrames(chunkSource(c.chunks), pool, options)) {
              consume(batch);
              if (maybeStop()) break;
            }
          }
        } catch (e) {
          error = e;
        }
      } else {
        const framer = kind === "Framer"
          ? new Framer(pool, options)
          : new BatchFramer(pool, options);
        const fed = feed(framer.writable, c.chunks);
        const readable = framer.readable as ReadableStream<Packet | Packet[]>;
        if (how === "fail") {
          // Sometimes piped late: the readable has started, a packet may be ready.
          if (late) await flush();
          const destination = new WritableStream<Packet | Packet[]>({
            write(value) {
              if (!stopped && frames.length >= stopAfter) {
                stopped = true;
                throw stopping;
              }
              consume(Array.isArray(value) ? value : [value]);
            },
          }, { highWaterMark: 1 + r(3) });
          try {
            await readable.pipeTo(destination);
          } catch (e) {
            error = e;
          }
          await fed;
          for (const packet of held) packet.release();
          return;
        }
        const reader = readable.getReader();
        try {
          while (true) {
            if (maybeStop()) {
              await reader.cancel(stopping);
              break;
            }
            const { done, value } = await reader.read();
            if (done) break;
            consume(Array.isArray(value) ? value : [value]);
          }
        } catch (e) {
          error = e;
        }
        await fed; // every write settled: nothing of the framer's is still in flight
      }
      for (const packet of held) packet.release();
    })(),
    where,
    5000,
  );
  checkAllFree(pool, where);
  if (error === stopping) error = undefined; // the abort's own reason: not the stream's outcome
  checkResult(where, want, frames, error, max, stopped, stopped);
}

// -- The tests --

function* indices(count: number, stream: boolean): Generator<number> {
  if (ONLY !== undefined) {
    const i = Number(ONLY);
    if ((i % STREAM_EVERY === 0) === stream) yield i;
    return;
  }
  for (let i = 0; i < count; i++) if ((i % STREAM_EVERY === 0) === stream) yield i;
}

const streamCases = ONLY !== undefined
  ? Number(Number(ONLY) % STREAM_EVERY === 0)
  : Math.ceil(CASES / STREAM_EVERY);
const syncCases = ONLY !== undefined ? 1 - streamCases : CASES - streamCases;

Deno.test("The reference decoder agrees with the codecs on well-formed streams", () => {
  const cases: [Spec, number[][]][] = [
    [{ kind: "length", size: 2, littleEndian: true }, [[1, 2], [], [3]]],
    [{ kind: "length", size: 4, littleEndian: false }, [[9], [8, 7]]],
    [{ kind: "varint" }, [new Array(200).fill(1), [2]]],
    [{ kind: "delimiter", bytes: new Uint8Array([13, 10]) }, [[1, 13], [10], []]],
    [{ kind: "fixed", size: 3 }, [[1, 2, 3], [4, 5, 6]]],
  ];
  for (const [spec, payloads] of cases) {
    const codec = codecOf(spec);
    const parts = payloads.map((p) => codec.encode(new Uint8Array(p)));
    const bytes = new Uint8Array(parts.flatMap((p) => [...p]));
    const got = referenceDecode(spec, bytes, 1000, false);
    assert.deepEqual(got.frames.map((f) => [...f]), payloads, codec.name);
    assert.deepEqual(got.outcome, { kind: "ok" });
  }
});

Deno.test(`FrameCutter matches the reference decoder on ${syncCases} fuzzed streams (FUZZ_SEED=${SEED})`, () => {
  let count = 0;
  const outcomes = { ok: 0, frame: 0, truncated: 0 };
  for (const i of indices(CASES, false)) {
    outcomes[runSync(makeCase(i))]++;
    count++;
  }
  assert.equal(count, syncCases);
  console.log(`fuzz: ${count} FrameCutter cases, outcomes ${JSON.stringify(outcomes)}`);
  for (const pool of pools.values()) checkAllFree(pool, "after all cases");
});

Deno.test(`Framer, BatchFramer and readFrames match the reference decoder on ${streamCases} fuzzed streams, some stopped (FUZZ_SEED=${SEED})`, async () => {
  let count = 0;
  for (const i of indices(CASES, true)) {
    await runStream(makeCase(i));
    count++;
  }
  assert.equal(count, streamCases);
  console.log(`fuzz: ${count} Framer/BatchFramer/readFrames cases`);
});

// The send side at its edges (issue 11): per-writer order across buffers,
// every way a flusher's consumer can stop, strings at every remaining-space
// value under every codec, and a broken pipe's cause reaching the writers.
// Small pools throughout: 1-4 buffers of 16-64 bytes.
import assert from "node:assert/strict";
import {
  BufferPool,
  ClosedError,
  delimiter,
  fixedSize,
  type FlushRegion,
  type FrameCodec,
  lengthPrefix,
  ReleasedError,
  type Reservation,
  varintPrefix,
  WriteFlusher,
  Writer,
  type WriterOptions,
} from "../mod.ts";
import { assertAllFree, flush, prng, Tracked } from "./_helpers.ts";
import { parseFrames, readBytes } from "./_writer_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function filled(length: number, value: number): number[] {
  return new Array<number>(length).fill(value);
}

// -- Defect 1: per-writer order across buffers --

Deno.test("A newer buffer's committed bytes wait for an open reservation in an older buffer (microtask flush)", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  const a = await writer.reserve(10);
  const b = await writer.reserve(10); // starts a second buffer
  a.bytes.fill(1);
  b.bytes.fill(2);
  b.commit();
  await flush(); // the microtask flush runs with `a` still open
  a.commit();
  writer.close();
  flusher.close();
  assert.deepEqual(await readBytes(flusher.readable.getReader()), [
    ...filled(10, 1),
    ...filled(10, 2),
  ]);
  assertAllFree(pool);
});

Deno.test("A buffer's remainder after a partial flush still comes before the next buffer (manual flush)", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  const reader = flusher.readable.getReader();
  assert.ok(writer.tryWrite(new Uint8Array([9, 9])));
  const a = writer.tryReserve(10)!; // same buffer, after [9, 9]
  writer.flush(); // publishes [9, 9]; `a` holds the rest back
  assert.deepEqual(await readBytes(reader, false), [9, 9]);
  const b = writer.tryReserve(10)!; // a second buffer
  b.bytes.fill(2);
  b.commit();
  assert.ok(writer.tryWrite(new Uint8Array([3])));
  writer.flush();
  const next = new Tracked(reader.read());
  await flush();
  assert.ok(next.pending, "nothing of the second buffer goes out while `a` is open");
  a.bytes.fill(1);
  a.commit();
  writer.flush();
  await flush();
  const bytes: number[] = [];
  const first = next.value();
  assert.equal(first.done, false);
  for (const region of first.value!) {
    bytes.push(...region.bytes);
    region.release();
  }
  writer.close();
  flusher.close();
  bytes.push(...await readBytes(reader));
  assert.deepEqual(bytes, [...filled(10, 1), ...filled(10, 2), 3]);
  assertAllFree(pool);
});

Deno.test("flushBytes never lets a newer buffer overtake an open reservation", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 3 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual", flushBytes: 1 });
  const reader = flusher.readable.getReader();
  const a = writer.tryReserve(12)!;
  assert.ok(writer.tryWrite(new Uint8Array(12).fill(2))); // second buffer, flushed at once
  const next = new Tracked(reader.read());
  await flush();
  assert.ok(next.pending);
  a.bytes.fill(1);
  a.commit(); // flushes both, in order
  await flush();
  const batch = next.value().value!;
  const bytes = batch.flatMap((region) => {
    const out = [...region.bytes];
    region.release();
    return out;
  });
  assert.deepEqual(bytes, [...filled(12, 1), ...filled(12, 2)]);
  writer.close();
  flusher.close();
  assert.deepEqual(await readBytes(reader), []);
  assertAllFree(pool);
});

Deno.test("flushBytes still flushes bytes a commit held back, once the commit that freed them is small", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 3 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual", flushBytes: 8 });
  const reader = flusher.readable.getReader();
  const a = writer.tryReserve(2)!;
  assert.ok(writer.tryWrite(new Uint8Array(15).fill(2))); // a second buffer: 15 >= 8, held back
  const next = new Tracked(reader.read());
  await flush();
  assert.ok(next.pending);
  a.bytes.fill(1);
  a.commit(); // 2 bytes, under flushBytes, but the 15 behind it were due
  await flush();
  const bytes = next.value().value!.flatMap((region) => {
    const out = [...region.bytes];
    region.release();
    return out;
  });
  assert.deepEqual(bytes, [1, 1, ...filled(15, 2)]);
  writer.close();
  flusher.close();
  assert.deepEqual(await readBytes(reader), []);
  assertAllFree(pool);
});

for (const call of ["tryReserve", "tryWrite", "tryWriteString"] as const) {
  Deno.test(`The flush inside ${call}() on a full pool keeps order behind an open reservation (manual flush)`, async () => {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
    const flusher = new WriteFlusher(pool);
    const writer = new Writer(pool, flusher, { flush: "manual" });
    const reader = flusher.readable.getReader();
    const a = writer.tryReserve(10)!;
    const b = writer.tryReserve(10)!; // the second and last buffer
    b.bytes.fill(2);
    b.commit();
    // The pool is empty: the call flushes and says no.
    if (call === "tryReserve") assert.equal(writer.tryReserve(10), null);
    if (call === "tryWrite") assert.equal(writer.tryWrite(new Uint8Array(10)), false);
    if (call === "tryWriteString") assert.equal(writer.tryWriteString("x".repeat(10)), false);
    const next = new Tracked(reader.read());
    await flush();
    assert.ok(next.pending, "the second buffer waits for `a`");
    a.bytes.fill(1);
    a.commit();
    writer.close();
    flusher.close();
    await flush();
    const bytes: number[] = [];
    for (const region of next.value().value!) {
      bytes.push(...region.bytes);
      region.release();
    }
    bytes.push(...await readBytes(reader));
    assert.deepEqual(bytes, [...filled(10, 1), ...filled(10, 2)]);
    assertAllFree(pool);
  });
}

Deno.test("A waiting reserve() flushes nothing past an open reservation, and the commit that frees the way flushes (manual flush)", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  const reader = flusher.readable.getReader();
  const a = writer.tryReserve(10)!;
  assert.ok(writer.tryWrite(new Uint8Array(10).fill(2))); // the second buffer
  const waiting = new Tracked(writer.reserve(10));
  const next = new Tracked(reader.read());
  await flush();
  assert.ok(waiting.pending && next.pending, "the second buffer waits for `a`");
  a.bytes.fill(1);
  a.commit(); // a writer with calls waiting for a buffer flushes without being asked
  await flush();
  const bytes: number[] = [];
  for (const region of next.value().value!) {
    bytes.push(...region.bytes);
    region.release();
  }
  assert.deepEqual(bytes, [...filled(10, 1), ...filled(10, 2)]);
  await flush();
  const c = waiting.value();
  c.bytes.fill(3);
  c.commit();
  writer.close();
  flusher.close();
  assert.deepEqual(await readBytes(reader), filled(10, 3));
  assertAllFree(pool);
});

Deno.test("Cancelling the newest reservation of an older buffer lets the newer buffers go (microtask flush)", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 3 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  const reader = flusher.readable.getReader();
  assert.ok(writer.tryWrite(new Uint8Array([7])));
  const a = writer.tryReserve(10)!;
  assert.ok(writer.tryWrite(new Uint8Array(10).fill(2))); // the second buffer
  assert.deepEqual(await readBytes(reader, false), [7]);
  a.cancel(); // taken back: the first buffer is complete, and nothing else will flush it
  assert.deepEqual(await readBytes(reader, false), filled(10, 2));
  writer.close();
  flusher.close();
  assert.deepEqual(await readBytes(reader), []);
  assertAllFree(pool);
});

/**
 * Writers reserve, write, commit in random order, cancel and flush at random
 * on a small pool while a reader drains: each writer's messages must arrive
 * once, in reservation order, byte-exact (a cancelled one as zeros or not at
 * all), and every buffer must come back.
 */
Deno.test("Random reserves, commits, cancels and flushes keep each writer's order on small pools", async () => {
  const runs = 500;
  for (let seed = 1; seed <= runs; seed++) {
    try {
      await randomRun(seed);
    } catch (error) {
      throw new Error(`seed ${seed} failed: ${(error as Error).message}`, { cause: error });
    }
  }
});

async function randomRun(seed: number): Promise<void> {
  const random = prng(seed);
  const bufferSize = 16 + 8 * random(7); // 16..64
  const pool = new BufferPool({ bufferSize, bufferCount: 1 + random(4) });
  const flusher = new WriteFlusher(pool);
  const codec = lengthPrefix(1);
  const writerCount = 1 + random(2);
  const writers: Writer[] = [];
  for (let w = 0; w < writerCount; w++) {
    const cadence: WriterOptions = random(2) === 0 ? { flush: "manual" } : {};
    if (random(3) === 0) cadence.flushBytes = 1 + random(bufferSize);
    writers.push(new Writer(pool, flusher, { ...cadence, codec }));
  }
  // What each writer reserved, in order, and whether it was cancelled.
  const expected = writers.map(() => [] as { payload: number[]; cancelled: boolean }[]);
  const reader = flusher.readable.getReader();
  const got = new Map<number, number[]>();
  const draining = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      for (const region of value) {
        let bytes = got.get(region.writerId);
        if (bytes === undefined) got.set(region.writerId, bytes = []);
        bytes.push(...region.bytes);
        region.release();
      }
    }
  })();
  const open = writers.map(() => [] as { r: Reservation; i: number }[]);
  /** Each writer's calls still waiting for a buffer. */
  const waits = writers.map(() => 0);
  for (let step = 0; step < 40; step++) {
    const w = random(writerCount);
    const writer = writers[w]!;
    const mine = open[w]!;
    const op = random(8);
    // Never empty and never zero, so that only a cancelled message reads as zeros.
    const length = 1 + random(Math.min(bufferSize - 2, 20));
    const payload = Array.from({ length }, (_, k) => 1 + ((step * 31 + k) % 250));
    if (op === 0 || op === 1) {
      const r = writer.tryReserve(length);
      if (r !== null) {
        r.bytes.set(payload);
        expected[w]!.push({ payload, cancelled: false });
        mine.push({ r, i: expected[w]!.length - 1 });
      }
    } else if (op === 2 && mine.length !== 0) {
      const { r } = mine.splice(random(mine.length), 1)[0]!;
      r.commit();
    } else if (op === 3 && mine.length !== 0) {
      const { r, i } = mine.splice(random(mine.length), 1)[0]!;
      r.cancel();
      expected[w]![i]!.cancelled = true;
    } else if (op === 4) {
      if (writer.tryWrite(new Uint8Array(payload))) {
        expected[w]!.push({ payload, cancelled: false });
      }
    } else if (op === 5) {
      // Not awaited: it may wait on buffers that only a later commit frees.
      expected[w]!.push({ payload, cancelled: false });
      const i = expected[w]!.length - 1;
      waits[w]!++;
      writer.reserve(length).then((r) => {
        waits[w]!--;
        r.bytes.set(payload);
        mine.push({ r, i });
      });
    } else if (op === 6) {
      expected[w]!.push({ payload, cancelled: false });
      waits[w]!++;
      writer.write(new Uint8Array(payload)).then(() => waits[w]!--);
    } else {
      writer.flush();
      await flush();
    }
  }
  // Commit what is open, and close each writer once nothing of it waits
  // (a writer keeps its current buffer until then, which another may need).
  const closed = writers.map(() => false);
  for (let spin = 0; closed.includes(false); spin++) {
    assert.ok(spin < 1000, `calls still wait after every commit: a hang (${waits})`);
    for (let w = 0; w < writerCount; w++) {
      for (const { r } of open[w]!.splice(0)) r.commit();
      if (waits[w] === 0 && !closed[w]) {
        writers[w]!.close();
        closed[w] = true;
      }
    }
    await flush();
  }
  flusher.close();
  await draining;
  for (let w = 0; w < writerCount; w++) {
    const frames = parseFrames(codec, new Uint8Array(got.get(writers[w]!.id) ?? []));
    const want = expected[w]!;
    let f = 0;
    for (const [i, { payload, cancelled }] of want.entries()) {
      const frame = frames[f];
      if (cancelled) {
        // Taken back, or zeros in its place.
        if (frame?.length === payload.length && frame.every((b) => b === 0)) f++;
        continue;
      }
      assert.ok(frame !== undefined, `writer ${w}: message ${i} missing`);
      assert.deepEqual([...frame], payload, `writer ${w}: message ${i} out of order`);
      f++;
    }
    assert.equal(f, frames.length, `writer ${w}: extra frames`);
  }
  assertAllFree(pool);
}

// -- Defect 5: strings at every remaining-space value, under every codec --

const stringCodecs: [string, () => FrameCodec | undefined][] = [
  ["no codec", () => undefined],
  ["lengthPrefix(1)", () => lengthPrefix(1)],
  ["lengthPrefix(2)", () => lengthPrefix(2)],
  ["lengthPrefix(4)", () => lengthPrefix(4)],
  ["varintPrefix()", () => varintPrefix()],
  ['delimiter("\\n")', () => delimiter("\n")],
  ['delimiter("\\r\\n")', () => delimiter("\r\n")],
  ['delimiter("<end>")', () => delimiter("<end>")],
];
const texts = ["", "a", "héllo", "€uro", "😀 ok", "a\ud800b", "x".repeat(130)];

/** The frame a codec makes of `payload`, as a writer lays it out. */
function frameLength(codec: FrameCodec | undefined, payload: number): number {
  return codec === undefined
    ? payload
    : codec.headerLength(payload) + payload + codec.trailerLength;
}

/**
 * Fills a fresh buffer so that exactly `room` bytes remain, then writes
 * `text`: it must go in, moving on to a new buffer when it does not fit, and
 * read back as the filler's frame and the text's, nothing else.
 */
async function stringAfter(
  name: string,
  makeCodec: () => FrameCodec | undefined,
  text: string,
  room: number,
  mode: "try" | "wait",
): Promise<void> {
  const codec = makeCodec();
  const length = encoder.encode(text).length;
  const frame = frameLength(codec, length);
  // The filler has the same frame length as the text, so one buffer of
  // frame + room bytes leaves exactly `room` after it.
  const pool = new BufferPool({ bufferSize: frame + room, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, codec === undefined ? {} : { codec });
  const filler = new Uint8Array(length).fill(0x41);
  assert.ok(writer.tryWrite(filler));
  const what = `${name}, ${JSON.stringify(text)}, ${room} bytes left`;
  if (mode === "try") assert.ok(writer.tryWriteString(text), what);
  else await writer.writeString(text);
  writer.close();
  flusher.close();
  const bytes = new Uint8Array(await readBytes(flusher.readable.getReader()));
  if (codec === undefined) {
    assert.deepEqual(bytes, new Uint8Array([...filler, ...encoder.encode(text)]), what);
  } else {
    const frames = parseFrames(codec, bytes).map((f) => decoder.decode(f));
    assert.deepEqual(frames, ["A".repeat(length), text.replace("\ud800", "\ufffd")], what);
  }
  assertAllFree(pool);
}

for (const [name, makeCodec] of stringCodecs) {
  Deno.test(`tryWriteString()/writeString() under ${name} move on to the next buffer at every remaining space`, async () => {
    for (const text of texts) {
      const frame = frameLength(makeCodec(), encoder.encode(text).length);
      for (let room = frame === 0 ? 1 : 0; room <= frame + 1; room++) {
        await stringAfter(name, makeCodec, text, room, "try");
        await stringAfter(name, makeCodec, text, room, "wait");
      }
    }
  });
}

Deno.test("tryWriteString()/writeString() under fixedSize(n) at every remaining space", async () => {
  for (const text of ["abcd", "éé", "😀"]) {
    const codec = fixedSize(4);
    for (let room = 0; room <= 5; room++) {
      const pool = new BufferPool({ bufferSize: 4 + room, bufferCount: 3 });
      const flusher = new WriteFlusher(pool);
      const writer = new Writer(pool, flusher, { codec });
      assert.ok(writer.tryWrite(encoder.encode("wxyz")));
      assert.ok(writer.tryWriteString(text), `${JSON.stringify(text)}, ${room} bytes left`);
      await writer.writeString(text);
      writer.close();
      flusher.close();
      const bytes = new Uint8Array(await readBytes(flusher.readable.getReader()));
      assert.deepEqual(parseFrames(codec, bytes).map((f) => decoder.decode(f)), [
        "wxyz",
        text,
        text,
      ]);
      assertAllFree(pool);
    }
  }
});

Deno.test("tryWriteString() refuses what no buffer or codec can take with a RangeError, touching nothing", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const lines = new Writer(pool, flusher, { codec: delimiter("\r\n"), flush: "manual" });
  assert.ok(lines.tryWriteString("0123456789"));
  // 14 UTF-8 bytes + 2 of delimiter fit a buffer; 15 do not.
  assert.throws(
    () => lines.tryWriteString("€".repeat(5)),
    /Cannot write a string of 5 characters: its UTF-8 frame of 17 bytes does not fit in a buffer of 16 bytes/,
  );
  await assert.rejects(lines.writeString("€".repeat(5)), RangeError);
  const tiny = new Writer(pool, flusher, { codec: lengthPrefix(1), flush: "manual" });
  assert.throws(
    () => tiny.tryWriteString("é".repeat(128)),
    /its UTF-8 takes 256 bytes, more than the u8 length prefix codec can frame \(255\)/,
  );
  const fixed = new Writer(pool, flusher, { codec: fixedSize(4), flush: "manual" });
  assert.throws(() => fixed.tryWriteString("abc"), /every payload must be exactly 4 bytes/);
  // The one buffer is busy: no room now, false and nothing written.
  assert.equal(lines.tryWriteString("0123456789"), false);
  lines.close();
  tiny.close();
  fixed.close();
  flusher.close();
  assert.deepEqual(
    decoder.decode(new Uint8Array(await readBytes(flusher.readable.getReader()))),
    "0123456789\r\n",
  );
  assertAllFree(pool);
});

Deno.test("writeString() on a one-buffer pool waits for the buffer, then writes at its start", async () => {
  for (const codec of [delimiter("\r\n"), lengthPrefix(2), varintPrefix()]) {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
    const flusher = new WriteFlusher(pool);
    const writer = new Writer(pool, flusher, { codec });
    const reader = flusher.readable.getReader();
    assert.ok(writer.tryWriteString("0123456789"));
    const text = "é".repeat(5); // 10 bytes: only a new buffer has room
    assert.equal(writer.tryWriteString(text), false);
    const waiting = new Tracked(writer.writeString(text));
    const first = parseFrames(codec, new Uint8Array(await readBytes(reader, false)));
    assert.deepEqual(first.map((f) => decoder.decode(f)), ["0123456789"]);
    await flush();
    assert.equal(waiting.state.kind, "fulfilled");
    writer.close();
    flusher.close();
    const rest = parseFrames(codec, new Uint8Array(await readBytes(reader)));
    assert.deepEqual(rest.map((f) => decoder.decode(f)), [text]);
    assertAllFree(pool);
  }
});

Deno.test("Empty messages at a buffer's start never release the buffer twice", async () => {
  for (const codec of [undefined, lengthPrefix(1), delimiter("\n")]) {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
    const flusher = new WriteFlusher(pool);
    const writer = new Writer(pool, flusher, codec === undefined ? {} : { codec });
    assert.ok(writer.tryWrite(new Uint8Array(0)));
    writer.tryReserve(0)!.commit();
    assert.ok(writer.tryWriteString(""));
    await flush();
    writer.close();
    flusher.close();
    const bytes = new Uint8Array(await readBytes(flusher.readable.getReader()));
    if (codec !== undefined) assert.deepEqual(parseFrames(codec, bytes).length, 3);
    else assert.equal(bytes.length, 0);
    assertAllFree(pool);
  }
});

// -- Defects 2 and 8: every way a consumer stops; nothing stranded, the cause told --

/** A way for the flusher's consumer to stop; `reason` is what the writers must carry as cause. */
interface Stop {
  name: string;
  reason: unknown;
  run(flusher: WriteFlusher, reason: unknown): Promise<void>;
}

const consumerFailed = /^Cannot write: the flusher's consumer failed: /;

const stops: Stop[] = [
  {
    name: "readable.cancel(reason)",
    reason: new Error("gone"),
    run: (flusher, reason) => flusher.readable.cancel(reason),
  },
  {
    name: "reader.cancel(reason) after a read",
    reason: new Error("gone"),
    async run(flusher, reason) {
      const reader = flusher.readable.getReader();
      await readBytes(reader, false);
      await flush(); // the waiting write got a buffer and flushed: a stream that reads ahead took it
      await reader.cancel(reason);
    },
  },
  {
    name: "a for await loop that breaks",
    reason: undefined,
    async run(flusher) {
      for await (const batch of flusher.readable) {
        for (const region of batch) region.release();
        await flush();
        break;
      }
    },
  },
  {
    name: "a for await loop that throws",
    reason: undefined,
    async run(flusher) {
      await assert.rejects(async () => {
        for await (const batch of flusher.readable) {
          for (const region of batch) region.release();
          await flush();
          throw new Error("consumer bug");
        }
      }, /consumer bug/);
    },
  },
  {
    name: "pipeTo() a ByteSink whose write rejects",
    reason: new Error("broken pipe"),
    async run(flusher, reason) {
      const sink = { write: () => Promise.reject(reason) };
      await assert.rejects(flusher.pipeTo(sink), (e) => e === reason);
    },
  },
  {
    name: "pipeTo() a ByteSink whose write throws",
    reason: new TypeError("not writable"),
    async run(flusher, reason) {
      const sink = {
        write(): Promise<number> {
          throw reason;
        },
      };
      await assert.rejects(flusher.pipeTo(sink), (e) => e === reason);
    },
  },
  {
    name: "pipeTo() a ByteSink that fails on its second write",
    reason: new Error("reset"),
    async run(flusher, reason) {
      let writes = 0;
      const sink = {
        write: (bytes: Uint8Array) =>
          ++writes === 2 ? Promise.reject(reason) : Promise.resolve(bytes.length),
      };
      await assert.rejects(flusher.pipeTo(sink), (e) => e === reason);
    },
  },
  {
    name: "pipeTo() a WritableStream whose write throws",
    reason: new Error("disk full"),
    async run(flusher, reason) {
      const sink = new WritableStream<Uint8Array>({
        write() {
          throw reason;
        },
      });
      await assert.rejects(flusher.pipeTo(sink), (e) => e === reason);
    },
  },
  {
    name: "pipeTo() a WritableStream that errors itself",
    reason: new Error("sink aborted"),
    async run(flusher, reason) {
      const sink = new WritableStream<Uint8Array>({
        write(_chunk, controller) {
          controller.error(reason);
        },
      });
      await assert.rejects(flusher.pipeTo(sink), (e) => e === reason);
    },
  },
  {
    name: "pipeTo() aborted by its signal",
    reason: new Error("timeout"),
    async run(flusher, reason) {
      const controller = new AbortController();
      const sink = {
        write(bytes: Uint8Array) {
          controller.abort(reason);
          return Promise.resolve(bytes.length);
        },
      };
      await assert.rejects(
        flusher.pipeTo(sink, { signal: controller.signal }),
        (e) => e === reason,
      );
    },
  },
  {
    name: "readable.pipeTo() a WritableStream of batches that fails",
    reason: new Error("sink failed"),
    async run(flusher, reason) {
      const sink = new WritableStream<FlushRegion[]>({
        write(batch) {
          for (const region of batch) region.release();
          throw reason;
        },
      });
      await assert.rejects(flusher.readable.pipeTo(sink), (e) => e === reason);
    },
  },
  {
    name: "readable.pipeTo() aborted by its signal",
    reason: new Error("stop"),
    async run(flusher, reason) {
      const controller = new AbortController();
      const sink = new WritableStream<FlushRegion[]>({
        write(batch) {
          for (const region of batch) region.release();
          controller.abort(reason);
        },
      });
      await assert.rejects(
        flusher.readable.pipeTo(sink, { signal: controller.signal }),
        (e) => e === reason,
      );
    },
  },
];

/** Checks a ClosedError from a writer whose flusher's consumer stopped with `reason`. */
function assertConsumerError(error: unknown, reason: unknown): void {
  assert.ok(error instanceof ClosedError, `expected a ClosedError, got ${String(error)}`);
  if (reason === undefined) {
    assert.equal(error.message, "Cannot write: the flusher's readable was cancelled");
    assert.equal(error.cause, undefined);
  } else {
    assert.match(error.message, consumerFailed);
    assert.ok(error.message.endsWith((reason as Error).message), error.message);
    assert.equal(error.cause, reason);
  }
}

for (const highWaterMark of [0, 1, 4, 16]) {
  Deno.test(`Every way the consumer stops releases every buffer and tells the writers why (highWaterMark ${highWaterMark})`, async (t) => {
    for (const stop of stops) {
      await t.step(stop.name, async () => {
        const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
        const flusher = new WriteFlusher(pool, { highWaterMark });
        const writer = new Writer(pool, flusher);
        // Four buffers, each flushed in its own turn: a stream that reads
        // ahead would hold several batches by now.
        for (let k = 0; k < 4; k++) {
          assert.ok(writer.tryWrite(new Uint8Array(16).fill(k + 1)));
          await flush();
        }
        const waiting = new Tracked(writer.write(new Uint8Array(16)));
        await flush();
        assert.ok(waiting.pending, "the pool is empty");
        await stop.run(flusher, stop.reason);
        await flush();
        assertAllFree(pool);
        // Served before the consumer stopped, or told why it never will be.
        if (!waiting.pending && waiting.state.kind === "rejected") {
          assertConsumerError(waiting.reason(), stop.reason);
        }
        assert.ok(!waiting.pending, "the waiting write settled");
        assert.throws(
          () => writer.tryWrite(new Uint8Array(1)),
          (e) => (assertConsumerError(e, stop.reason), true),
        );
        await assert.rejects(
          writer.reserve(1),
          (e) => (assertConsumerError(e, stop.reason), true),
        );
      });
    }
  });
}

Deno.test("A failing sink rejects waiting and later calls with a ClosedError carrying its error, here and through a handle", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const local = new Writer(pool, flusher, { flush: "manual" });
  // As a writer in another worker is: through the handle, not closed by the flusher.
  const remote = new Writer(pool, flusher.handle, { flush: "manual" });
  assert.ok(local.tryWrite(new Uint8Array(16).fill(1)));
  assert.ok(remote.tryWrite(new Uint8Array(16).fill(2)));
  local.flush();
  remote.flush();
  const error = new Error("broken pipe");
  const firstWrite = Promise.withResolvers<number>();
  const writing = Promise.withResolvers<void>();
  const piped = flusher.pipeTo({
    write() {
      writing.resolve();
      return firstWrite.promise;
    },
  });
  await writing.promise;
  const localCalls: Promise<unknown>[] = [local.write(new Uint8Array(4)), local.reserve(4)];
  const remoteCalls: Promise<unknown>[] = [remote.write(new Uint8Array(4)), remote.reserve(4)];
  const waiting = [...localCalls, ...remoteCalls].map((call) => new Tracked(call));
  await flush();
  assert.ok(waiting.every((call) => call.pending), "the pool is empty: every call waits");
  firstWrite.reject(error);
  await assert.rejects(piped, (e) => e === error);
  for (const result of await Promise.allSettled(localCalls)) {
    assert.equal(result.status, "rejected");
    assertConsumerError((result as PromiseRejectedResult).reason, error);
  }
  assert.throws(
    () => local.tryWrite(new Uint8Array(1)),
    (e) => (assertConsumerError(e, error), true),
  );
  // The error object stays in the flusher's worker; its message crosses.
  const remoteError = (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.equal(e.message, "Cannot write: the flusher's consumer failed: broken pipe");
    return true;
  };
  for (const result of await Promise.allSettled(remoteCalls)) {
    assert.equal(result.status, "rejected");
    remoteError((result as PromiseRejectedResult).reason);
  }
  assert.throws(() => remote.tryWrite(new Uint8Array(1)), remoteError);
  assert.throws(() => new Writer(pool, flusher.handle).tryWrite(new Uint8Array(1)), remoteError);
  assertAllFree(pool);
});

Deno.test("A long reason is cut to fit the flusher's words, on a character boundary", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const remote = new Writer(pool, flusher.handle);
  const reason = new RangeError("é".repeat(1000));
  flusher.readable.cancel(reason);
  assert.throws(() => remote.tryWrite(new Uint8Array(1)), (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.match(e.message, /^Cannot write: the flusher's consumer failed: RangeError: (é)+…$/);
    assert.ok(e.message.length < 300);
    return true;
  });
  assertAllFree(pool);
});

Deno.test("A TCP peer that hangs up ends the flusher: every buffer back, writers told the socket's error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  (await accepted).close();
  listener.close();
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  const piped = flusher.pipeTo(conn).then(() => undefined, (e: unknown) => e);
  let failure: unknown;
  // The first writes may still be accepted by the kernel; the peer's reset ends it.
  for (let i = 0; i < 100_000 && failure === undefined; i++) {
    await writer.write(new Uint8Array(64).fill(i)).catch((e: unknown) => failure = e);
  }
  const socketError = await piped;
  assert.ok(socketError instanceof Error, `pipeTo rejects with the socket's error: ${socketError}`);
  assertConsumerError(failure, socketError);
  assert.throws(() => writer.tryWrite(new Uint8Array(1)), ClosedError);
  conn.close();
  assertAllFree(pool);
});

Deno.test("pipeTo() aborted while the sink never finishes a write rejects at once; the region goes back when the write ends", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 3 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  assert.ok(writer.tryWrite(new Uint8Array(16).fill(1)));
  assert.ok(writer.tryWrite(new Uint8Array(16).fill(2)));
  writer.flush();
  const stuck = Promise.withResolvers<number>();
  const writing = Promise.withResolvers<void>();
  const controller = new AbortController();
  const piped = flusher.pipeTo({
    write() {
      writing.resolve();
      return stuck.promise;
    },
  }, { signal: controller.signal });
  await writing.promise;
  const reason = new Error("timeout");
  controller.abort(reason);
  await assert.rejects(piped, (e) => e === reason);
  assert.ok(writer.closed);
  assert.equal(pool.stats().inUse, 1, "only the region the sink still reads is held");
  stuck.resolve(16);
  await flush();
  assertAllFree(pool);
});

Deno.test("A reader released while its read waits strands nothing: the next reader gets the batch, a cancel releases it", async () => {
  for (const end of ["read", "cancel"] as const) {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
    const flusher = new WriteFlusher(pool);
    const writer = new Writer(pool, flusher);
    const first = flusher.readable.getReader();
    const abandoned = first.read();
    await flush(); // its pull waits on the empty list
    first.releaseLock();
    await assert.rejects(abandoned, TypeError);
    assert.ok(writer.tryWrite(new Uint8Array([1, 2, 3])));
    await flush(); // the writer flushed; the pull that was waiting wakes to nobody
    const second = flusher.readable.getReader();
    if (end === "read") {
      assert.deepEqual(await readBytes(second, false), [1, 2, 3]);
      writer.close();
      flusher.close();
      assert.deepEqual(await readBytes(second), []);
    } else {
      await second.cancel(new Error("done"));
    }
    assertAllFree(pool);
  }
});

// Piped late, the pump takes both buffers in one batch (or a stream pipe
// hands the second to a destination that drops it), and a failure releases
// the second at once: the worker granted it must still be told why.
for (const mode of ["pipeTo", "pipeTo, late", "readable.pipeTo(WritableStream), late"] as const) {
  const pipeLate = mode !== "pipeTo";
  Deno.test(
    `A writer in another worker waiting for a buffer is told the flusher's consumer failed (${mode})`,
    async () => {
      const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true });
      const flusher = new WriteFlusher(pool);
      const error = new Error("broken pipe");
      const firstWrite = Promise.withResolvers<number>();
      const writing = Promise.withResolvers<void>();
      const write = () => {
        writing.resolve();
        return firstWrite.promise;
      };
      const pipe = () =>
        mode === "readable.pipeTo(WritableStream), late"
          ? flusher.readable.pipeTo(
            new WritableStream({ write: () => write().then(() => {}) }, { highWaterMark: 2 }),
          )
          : flusher.pipeTo({ write });
      let piped = pipeLate ? null : pipe();
      // The worker fills both buffers (the first one stays in the sink's
      // write), then waits for a third; it reports what its calls then throw.
      const source = `
    import { BufferPool, Writer } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };
    const describe = (e) => ({ name: e.name, message: e.message, cause: "cause" in e });
    self.onmessage = async ({ data }) => {
      const pool = BufferPool.attach(data.pool);
      const writer = new Writer(pool, data.flusher, { flush: "manual" });
      // Awaited: the buffers may sit in the main thread's cache until it trims.
      await writer.write(new Uint8Array(16));
      writer.flush();
      await writer.write(new Uint8Array(16));
      writer.flush();
      const waiting = writer.write(new Uint8Array(4)).then(() => ({ name: "none" }), describe);
      self.postMessage("waiting");
      const waited = await waiting;
      let later = { name: "none" };
      try { writer.tryWrite(new Uint8Array(1)); } catch (e) { later = describe(e); }
      pool.detach();
      self.postMessage({ waited, later });
    };`;
      const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      const worker = new Worker(url, { type: "module" });
      try {
        const replies: unknown[] = [];
        const waitingReply = Promise.withResolvers<void>();
        const report = Promise.withResolvers<void>();
        worker.onmessage = (event) => {
          replies.push(event.data);
          (replies.length === 1 ? waitingReply : report).resolve();
        };
        worker.onerror = (event) => {
          event.preventDefault();
          report.reject(new Error(event.message));
        };
        worker.postMessage({ pool: pool.handle, flusher: flusher.handle });
        if (pipeLate) {
          await waitingReply.promise;
          piped = pipe();
          await writing.promise;
        } else {
          await writing.promise;
          await waitingReply.promise;
        }
        firstWrite.reject(error);
        await assert.rejects(piped!, (e) => e === error);
        await report.promise;
        const told = {
          name: "ClosedError",
          message: "Cannot write: the flusher's consumer failed: broken pipe",
          cause: false,
        };
        assert.deepEqual(replies[1], { waited: told, later: told });
      } finally {
        worker.terminate();
        URL.revokeObjectURL(url);
      }
      assertAllFree(pool);
    },
  );
}

Deno.test("pipeTo() aborted in the same tick as a flush strands nothing the waiting read got", async () => {
  for (let hops = 0; hops < 12; hops++) {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
    const flusher = new WriteFlusher(pool);
    const writer = new Writer(pool, flusher, { flush: "manual" });
    const controller = new AbortController();
    const piped = flusher.pipeTo({ write: (bytes) => Promise.resolve(bytes.length) }, {
      signal: controller.signal,
    });
    await flush(); // pipeTo's read waits on an empty list
    const reason = new Error("stop");
    assert.ok(writer.tryWrite(new Uint8Array([1, 2, 3])));
    // The batch and the abort race by `hops` turns of the microtask queue.
    writer.flush();
    for (let i = 0; i < hops; i++) await Promise.resolve();
    controller.abort(reason);
    await piped.catch(() => {});
    await flush();
    assertAllFree(pool);
  }
});

Deno.test("Issue 11's example: a cancel after the readable could have pulled ahead leaves nothing in use", async () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 8 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  writer.tryWrite(new Uint8Array(10));
  await flush(); // long enough for a stream that reads ahead to have taken the batch
  await flusher.readable.cancel();
  assert.equal(pool.stats().inUse, 0);
  assert.ok(writer.closed);
  assertAllFree(pool);
});

Deno.test("WriteFlusher takes any highWaterMark from 0 up and refuses the rest with a RangeError", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  for (const bad of [-1, NaN]) {
    assert.throws(() => new WriteFlusher(pool, { highWaterMark: bad }), RangeError);
  }
  for (const highWaterMark of [0, 1, 1000, Infinity]) {
    const flusher = new WriteFlusher(pool, { highWaterMark });
    const writer = new Writer(pool, flusher);
    assert.ok(writer.tryWrite(new Uint8Array([1])));
    await flush();
    writer.close();
    flusher.close();
    assert.deepEqual(await readBytes(flusher.readable.getReader()), [1]);
  }
  assertAllFree(pool);
});

Deno.test("WriteFlusher.close() tells writers elsewhere that the flusher was closed", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const local = new Writer(pool, flusher);
  const remote = new Writer(pool, flusher.handle);
  flusher.close();
  const closed = (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.equal(e.message, "Cannot write: the flusher was closed");
    assert.equal(e.cause, undefined);
    return true;
  };
  assert.throws(() => local.tryWrite(new Uint8Array(1)), closed);
  assert.throws(() => remote.tryWrite(new Uint8Array(1)), closed);
  await assert.rejects(remote.reserve(1), closed);
  // A cancel after close still releases everything; the writers stay told the same.
  await flusher.readable.cancel(new Error("late"));
  assertAllFree(pool);
});

Deno.test("A reservation open when its writer closes: commit and bytes throw a ClosedError saying why, cancel does nothing", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  const other = new Writer(pool, flusher);
  const closedHere = writer.tryReserve(4)!;
  const failed = other.tryReserve(4)!;
  writer.close();
  assert.throws(() => closedHere.commit(), (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.equal(e.message, "Cannot commit a reservation: the writer was closed");
    return true;
  });
  assert.throws(() => closedHere.bytes, ClosedError);
  assert.throws(() => closedHere.toPacket(), ClosedError);
  closedHere.cancel(); // what was asked is done
  const reason = new Error("sink failed");
  await flusher.readable.cancel(reason);
  assert.equal(failed.open, false);
  assert.throws(() => failed.commit(), (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.equal(
      e.message,
      "Cannot commit a reservation: the flusher's consumer failed: sink failed",
    );
    assert.equal(e.cause, reason);
    return true;
  });
  failed.cancel();
  // One its user settled says so while the writer is open, and that the
  // writer closed once it did.
  const pool2 = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const flusher2 = new WriteFlusher(pool2);
  const writer2 = new Writer(pool2, flusher2);
  const r = writer2.tryReserve(1)!;
  r.cancel();
  assert.throws(() => r.cancel(), ReleasedError);
  assert.throws(() => r.commit(), ReleasedError);
  writer2.close();
  assert.throws(() => r.commit(), /Cannot commit a reservation: the writer was closed/);
  flusher2.close();
  await flusher2.readable.cancel();
  assertAllFree(pool);
  assertAllFree(pool2);
});

Deno.test("pipeTo() on a flusher that has ended keeps its list ended: a writer elsewhere flushing later gets a ClosedError and its buffer back", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  const remote = new Writer(pool, flusher.handle, { flush: "manual" });
  assert.ok(remote.tryWrite(new Uint8Array([1, 2])));
  flusher.close();
  const reader = flusher.readable.getReader();
  assert.deepEqual(await readBytes(reader), []);
  reader.releaseLock();
  let writes = 0;
  await flusher.pipeTo({ write: (bytes) => Promise.resolve(writes += bytes.length) });
  assert.equal(writes, 0);
  assert.throws(() => remote.flush(), (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    assert.equal(e.message, "Cannot flush: the flusher was closed; the bytes were dropped");
    return true;
  });
  assert.ok(remote.closed);
  assertAllFree(pool);
});

// The pipe takes a batch that is ready as it starts, before pipeTo returns:
// the flusher must count it as handed to the pipe, or a failed destination
// drops it unreleased.
for (const through of [false, true]) {
  Deno.test(
    `readable.${
      through ? "pipeThrough" : "pipeTo"
    }() started with batches ready: a failed destination strands none of them`,
    async () => {
      for (const highWaterMark of [1, 4]) {
        const pool = new BufferPool({ bufferSize: 16, bufferCount: 3 });
        const flusher = new WriteFlusher(pool);
        const writer = new Writer(pool, flusher, { flush: "manual" });
        for (let i = 0; i < 3; i++) {
          writer.tryWrite(new Uint8Array(16));
          writer.flush();
        }
        const error = new Error("destination broke");
        const failWrite = Promise.withResolvers<void>();
        const writing = Promise.withResolvers<void>();
        const destination = new WritableStream<FlushRegion[]>({
          write() {
            writing.resolve();
            return failWrite.promise;
          },
        }, { highWaterMark });
        // Every buffer is out: this write waits until the failure ends it.
        const waiting = writer.write(new Uint8Array(1));
        // The readable has started: the pipe's first read pulls at once.
        await flush();
        let ended: Promise<unknown> | null = null;
        if (through) {
          flusher.readable.pipeThrough({ writable: destination, readable: new ReadableStream() });
        } else ended = flusher.readable.pipeTo(destination).then(() => null, (e) => e);
        await writing.promise;
        failWrite.reject(error);
        await assert.rejects(waiting, ClosedError);
        if (ended !== null) assert.equal(await ended, error);
        writer.close();
        assertAllFree(pool);
      }
    },
  );
}

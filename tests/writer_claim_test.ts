// The writer's fill-in-place path: tryClaim/claim and the one reusable
// WriterClaim, against everything issue 11 promised for reservations (order
// across buffers, flush cadences, cancel, close, a failing consumer).
import assert from "node:assert/strict";
import {
  BufferPool,
  type BufferPoolOptions,
  ClosedError,
  delimiter,
  fixedSize,
  type FrameCodec,
  lengthPrefix,
  ReleasedError,
  varintPrefix,
  WriteFlusher,
  Writer,
  WriterClaim,
  type WriterOptions,
} from "../mod.ts";
import { assertAllFree, flush, prng, Tracked } from "./_helpers.ts";
import { checkMessages, finish, parseFrames, readBytes } from "./_writer_helpers.ts";
import type { ClaimJob, ClaimReport } from "./workers/claim_writer_worker.ts";

/** A pool, a flusher, a writer to it, and a reader of the flusher. */
function rig(poolOptions: BufferPoolOptions, writerOptions?: WriterOptions) {
  const pool = new BufferPool(poolOptions);
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, writerOptions);
  const reader = flusher.readable.getReader();
  return { pool, flusher, writer, reader };
}

/** Claims `length` bytes now (the claim must be granted) and fills them with `byte`. */
function claimFilled(writer: Writer, length: number, byte: number): WriterClaim {
  const claim = writer.tryClaim(length);
  assert.ok(claim !== null, "expected room for the claim");
  claim.buffer.fill(byte, claim.offset, claim.offset + claim.length);
  return claim;
}

const claimOpen =
  /^Cannot place a message: the writer's claim is still open; commit or cancel it first$/;

function assertClaimOpen(error: unknown): true {
  assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
  assert.match(error.message, claimOpen);
  return true;
}

function assertReleased(fn: () => unknown, action: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ReleasedError, `expected a ReleasedError, got ${String(error)}`);
    assert.equal(
      error.message,
      `Cannot ${action} a claim: it was already committed or cancelled`,
    );
    return true;
  });
}

// -- Filling in place --

const codecs: { name: string; codec: FrameCodec | undefined; fixed?: number }[] = [
  { name: "no codec", codec: undefined },
  { name: "lengthPrefix(1)", codec: lengthPrefix(1) },
  { name: "lengthPrefix(2, little-endian)", codec: lengthPrefix(2, { littleEndian: true }) },
  { name: "lengthPrefix(4)", codec: lengthPrefix(4) },
  { name: "varintPrefix()", codec: varintPrefix() },
  { name: "delimiter(\\r\\n)", codec: delimiter("\r\n") },
  { name: "fixedSize(6)", codec: fixedSize(6), fixed: 6 },
];

/** Message `i` of the codec tests: 0 to 19 bytes (or the fixed size), never a delimiter byte. */
function messageOf(i: number, fixed: number | undefined): Uint8Array {
  const length = fixed ?? (i * 7) % 20;
  const bytes = new Uint8Array(length);
  for (let k = 0; k < length; k++) bytes[k] = 0x20 + ((i + k) % 90);
  return bytes;
}

for (const { name, codec, fixed } of codecs) {
  for (
    const poolOptions of [{ bufferSize: 32, bufferCount: 2 }, {
      bufferSize: 64 * 1024,
      bufferCount: 4,
    }]
  ) {
    Deno.test(`Claims send exactly the bytes tryWrite sends, ${name}, ${poolOptions.bufferCount} x ${poolOptions.bufferSize} B`, async () => {
      const count = 300;
      const options = codec === undefined ? {} : { codec };
      const run = async (useClaims: boolean): Promise<number[]> => {
        const { pool, flusher, writer, reader } = rig(poolOptions, options);
        // Consumed as it comes: a small pool must be drained for the writer to go on.
        const got = readBytes(reader);
        for (let i = 0; i < count; i++) {
          const message = messageOf(i, fixed);
          if (!useClaims) {
            if (!writer.tryWrite(message)) await writer.write(message);
            continue;
          }
          const claim = writer.tryClaim(message.length) ?? await writer.claim(message.length);
          assert.equal(claim.length, message.length);
          // Only the message's bytes are written: the codec's framing is the writer's.
          claim.buffer.set(message, claim.offset);
          claim.commit();
        }
        writer.close();
        flusher.close();
        const bytes = await got;
        assertAllFree(pool);
        return bytes;
      };
      const claimed = await run(true);
      assert.deepEqual(claimed, await run(false));
      if (codec !== undefined) {
        const frames = parseFrames(codec, new Uint8Array(claimed));
        assert.equal(frames.length, count);
        frames.forEach((frame, i) => assert.deepEqual(frame, messageOf(i, fixed)));
      }
    });
  }
}

Deno.test("WriterClaim: buffer and dataView are the pool buffer's whole memory, made once per buffer, and the claim object is reused", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 16, bufferCount: 2 }, {
    codec: lengthPrefix(2),
    flush: "manual",
  });
  const first = writer.tryClaim(4)!;
  assert.ok(first instanceof WriterClaim);
  assert.equal(first.open, true);
  assert.equal(first.offset, 2, "after the 2-byte header");
  assert.equal(first.buffer.length, 16, "the whole buffer");
  const buffer = first.buffer;
  const dataView = first.dataView;
  assert.equal(dataView.buffer, buffer.buffer);
  assert.equal(dataView.byteOffset, buffer.byteOffset);
  assert.equal(dataView.byteLength, 16);
  dataView.setUint32(first.offset, 0x01020304);
  first.commit();
  assert.equal(first.open, false);

  const second = writer.tryClaim(4)!;
  assert.equal(second, first, "one claim object per writer");
  assert.equal(second.offset, 8);
  assert.equal(second.buffer, buffer, "the same view while in the same buffer");
  assert.equal(second.dataView, dataView);
  second.buffer.set([5, 6, 7, 8], second.offset);
  second.commit();

  // 6 more bytes do not fit in the 4 left: the next buffer, with views of its own.
  const third = writer.tryClaim(4)!;
  assert.equal(third.offset, 2);
  assert.notEqual(third.buffer.byteOffset, buffer.byteOffset);
  assert.equal(third.dataView.byteOffset, third.buffer.byteOffset);
  third.dataView.setUint32(third.offset, 0x090a0b0c);
  third.commit();
  assert.deepEqual(await finish(writer, flusher, reader), [
    0,
    4,
    1,
    2,
    3,
    4,
    0,
    4,
    5,
    6,
    7,
    8, // the first buffer
    0,
    4,
    9,
    10,
    11,
    12, // the second
  ]);
  assertAllFree(pool);

  // The next writer on these buffers finds the views the pool already made.
  const again = rig({ bufferSize: 16, bufferCount: 1 });
  const a = again.writer.tryClaim(1)!;
  const view = a.dataView;
  a.cancel();
  again.writer.close();
  const other = new Writer(again.pool, again.flusher);
  const b = other.tryClaim(1)!;
  assert.notEqual(b, a, "each writer has its own claim");
  assert.equal(b.dataView, view, "one DataView per pool buffer");
  b.cancel();
  other.close();
  assert.deepEqual(await finish(again.writer, again.flusher, again.reader), []);
  assertAllFree(again.pool);
});

Deno.test("Claims across buffer boundaries: tryClaim returns null when a buffer must be waited for, claim() waits for one", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 16, bufferCount: 1 }, {
    flush: "manual",
  });
  claimFilled(writer, 10, 1).commit();
  assert.equal(writer.tryClaim(10), null, "the only buffer is in use");
  // tryClaim flushed before it said no: the full buffer is the reader's.
  const waiting = new Tracked(writer.claim(10));
  await flush();
  assert.ok(waiting.pending);
  assert.deepEqual(await readBytes(reader, false), new Array(10).fill(1));
  await flush();
  const claim = waiting.value();
  assert.equal(claim.offset, 0, "at the start of a fresh buffer");
  claim.buffer.fill(2, claim.offset, claim.offset + 10);
  claim.commit();
  // Exactly a buffer: it fits, and the writer's next claim starts the next one.
  const rest = writer.tryClaim(6)!;
  assert.equal(rest.offset, 10);
  rest.buffer.fill(3, 10, 16);
  rest.commit();
  assert.deepEqual(await finish(writer, flusher, reader), [
    ...new Array(10).fill(2),
    ...new Array(6).fill(3),
  ]);
  assertAllFree(pool);
});

Deno.test("Claims of 0 bytes and of the whole buffer; a RangeError for one byte more", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 16, bufferCount: 2 }, {
    codec: lengthPrefix(1),
  });
  const empty = writer.tryClaim(0)!;
  assert.equal(empty.length, 0);
  empty.commit();
  const whole = writer.tryClaim(15)!;
  assert.equal(whole.offset, 1);
  whole.buffer.fill(9, 1, 16);
  whole.commit();
  assert.throws(() => writer.tryClaim(16), RangeError);
  await assert.rejects(writer.claim(16), RangeError);
  assert.throws(() => writer.tryClaim(-1), RangeError);
  assert.throws(() => writer.tryClaim(1.5), RangeError);
  assert.deepEqual(await finish(writer, flusher, reader), [0, 15, ...new Array(15).fill(9)]);
  assertAllFree(pool);
});

Deno.test("tryClaim, claim, tryReserve and reserve refuse a bad length with the same RangeError, saying what is wrong", async () => {
  const pool = new BufferPool({ bufferSize: 300, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const plain = new Writer(pool, flusher);
  const framed = new Writer(pool, flusher, { codec: lengthPrefix(1) });
  const cases: [Writer, number, RegExp][] = [
    [plain, -1, /^Cannot reserve -1 bytes: not an integer from 0 up$/],
    [plain, 1.5, /^Cannot reserve 1.5 bytes: not an integer from 0 up$/],
    [plain, NaN, /^Cannot reserve NaN bytes: not an integer from 0 up$/],
    [plain, 2 ** 32, /^Cannot reserve 4294967296 bytes: not an integer from 0 up$/],
    [plain, 301, /^Cannot reserve 301 bytes: the pool's buffers hold 300$/],
    [framed, 256, /^Cannot reserve 256 bytes: the u8 length prefix codec can frame at most 255$/],
    [framed, 300, /^Cannot reserve 300 bytes: the u8 length prefix codec can frame at most 255$/],
    [framed, -1, /^Cannot reserve -1 bytes: not an integer from 0 up$/],
  ];
  for (const [writer, length, message] of cases) {
    const isIt = (error: unknown) => {
      assert.ok(error instanceof RangeError, `expected a RangeError, got ${String(error)}`);
      assert.match(error.message, message);
      return true;
    };
    assert.throws(() => writer.tryClaim(length), isIt);
    assert.throws(() => writer.tryReserve(length), isIt);
    await assert.rejects(writer.claim(length), isIt);
    await assert.rejects(writer.reserve(length), isIt);
  }
  // A frame one byte over: 300 bytes of payload fit a plain writer, 299 + 1 a framed one.
  const framedOver = new Writer(pool, flusher, { codec: lengthPrefix(2) });
  assert.throws(
    () => framedOver.tryClaim(299),
    /^RangeError: Cannot reserve 301 bytes: the pool's buffers hold 300$/,
  );
  assert.equal(pool.stats().inUse, 0, "nothing was taken for a refused length");
  plain.close();
  framed.close();
  framedOver.close();
  flusher.close();
  assert.deepEqual(await readBytes(flusher.readable.getReader()), []);
  assertAllFree(pool);
});

// -- One claim at a time --

Deno.test("While a claim is open every placing call throws a TypeError; flush and close still work", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, {
    flush: "manual",
  });
  const claim = claimFilled(writer, 2, 7);
  const bytes = new Uint8Array([1]);
  assert.throws(() => writer.tryClaim(1), assertClaimOpen);
  await assert.rejects(writer.claim(1), assertClaimOpen);
  assert.throws(() => writer.tryReserve(1), assertClaimOpen);
  await assert.rejects(writer.reserve(1), assertClaimOpen);
  assert.throws(() => writer.tryWrite(bytes), assertClaimOpen);
  await assert.rejects(writer.write(bytes), assertClaimOpen);
  assert.throws(() => writer.tryWriteString("x"), assertClaimOpen);
  await assert.rejects(writer.writeString("x"), assertClaimOpen);
  // Bad input while a claim is open still says the claim is the problem.
  assert.throws(() => writer.tryClaim(1000), assertClaimOpen);
  writer.flush();
  assert.ok(claim.open, "nothing above touched the claim");
  claim.commit();
  // Settled: the writer places again, after the claim.
  assert.ok(writer.tryWrite(bytes));
  const next = claimFilled(writer, 1, 8);
  next.cancel();
  assert.ok(writer.tryWriteString("x"));
  assert.deepEqual(await finish(writer, flusher, reader), [7, 7, 1, 120]);
  assertAllFree(pool);
});

Deno.test("A settled claim throws a ReleasedError on every use, cheaply checked", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 });
  for (const settle of ["commit", "cancel"] as const) {
    const claim = claimFilled(writer, 3, 1);
    claim[settle]();
    assert.equal(claim.open, false);
    assertReleased(() => claim.commit(), "commit");
    assertReleased(() => claim.cancel(), "cancel");
    assertReleased(() => claim.buffer, "read the buffer of");
    assertReleased(() => claim.dataView, "read the dataView of");
    assertReleased(() => claim.offset, "read the offset of");
    assertReleased(() => claim.length, "read the length of");
    // Disposing a settled claim does nothing, so `using` is safe after a commit.
    claim[Symbol.dispose]();
  }
  assert.deepEqual(await finish(writer, flusher, reader), [1, 1, 1]);
  assertAllFree(pool);
});

Deno.test("Cancelling a claim takes its space back, header included; `using` cancels one left open", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 16, bufferCount: 2 }, {
    codec: lengthPrefix(1),
    flush: "manual",
  });
  claimFilled(writer, 2, 1).commit();
  const cancelled = claimFilled(writer, 5, 9);
  cancelled.cancel();
  {
    using disposed = claimFilled(writer, 5, 9);
    assert.ok(disposed.open);
  }
  const next = writer.tryClaim(2)!;
  assert.equal(
    next.offset,
    4,
    "right after the first frame: both cancelled frames were taken back",
  );
  next.buffer.fill(2, 4, 6);
  next.commit();
  // A claim alone in a fresh buffer, cancelled: the buffer goes back on close.
  assert.ok(writer.tryWrite(new Uint8Array(9).fill(3)));
  const alone = writer.tryClaim(12)!;
  assert.equal(alone.offset, 1, "it started the second buffer");
  alone.cancel();
  assert.deepEqual(await finish(writer, flusher, reader), [
    ...[2, 1, 1, 2, 2, 2],
    ...[9, ...new Array(9).fill(3)],
  ]);
  assertAllFree(pool);
});

// -- Order with reservations --

Deno.test("A reservation open in an older buffer holds back a claim committed in a newer one", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 16, bufferCount: 4 }, {
    flush: "manual",
  });
  const reservation = writer.tryReserve(10)!;
  const claim = claimFilled(writer, 10, 2);
  assert.equal(pool.stats().inUse, 2, "the claim started a newer buffer");
  claim.commit();
  writer.flush();
  const read = new Tracked(reader.read());
  await flush();
  assert.ok(read.pending, "the claim waits for the reservation before it");
  reservation.bytes.fill(1);
  reservation.commit();
  writer.flush();
  await flush();
  const batch = read.value().value!;
  const bytes = batch.flatMap((region) => [...region.bytes]);
  for (const region of batch) region.release();
  assert.deepEqual(bytes, [...new Array(10).fill(1), ...new Array(10).fill(2)]);
  assert.deepEqual(await finish(writer, flusher, reader), []);
  assertAllFree(pool);
});

Deno.test("A claim after an open reservation in the same buffer: each commit order delivers both in place order", async () => {
  for (const reservationFirst of [true, false]) {
    const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, {
      codec: lengthPrefix(1),
      flush: "manual",
    });
    const reservation = writer.tryReserve(3)!;
    const claim = claimFilled(writer, 2, 2);
    const delivered: number[] = [];
    if (reservationFirst) {
      reservation.bytes.fill(1);
      reservation.commit();
      // The reservation's commit must not reach into the open claim.
      writer.flush();
      delivered.push(...await readBytes(reader, false));
      assert.deepEqual(delivered, [3, 1, 1, 1]);
      claim.commit();
    } else {
      claim.commit();
      writer.flush();
      const read = new Tracked(reader.read());
      await flush();
      assert.ok(read.pending, "the claim waits for the reservation before it");
      reservation.bytes.fill(1);
      reservation.commit();
      writer.flush();
      await flush();
      for (const region of read.value().value!) {
        delivered.push(...region.bytes);
        region.release();
      }
    }
    delivered.push(...await finish(writer, flusher, reader));
    assert.deepEqual(delivered, [3, 1, 1, 1, 2, 2, 2]);
    assertAllFree(pool);
  }
});

Deno.test("Cancelling a reservation while a claim is open after it zeroes it (the claim keeps its place)", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, {
    codec: lengthPrefix(1),
    flush: "manual",
  });
  const reservation = writer.tryReserve(3)!;
  reservation.bytes.fill(1);
  const claim = claimFilled(writer, 2, 2);
  reservation.cancel();
  claim.commit();
  assert.deepEqual(await finish(writer, flusher, reader), [3, 0, 0, 0, 2, 2, 2]);
  assertAllFree(pool);
});

Deno.test("Random mixes of claims, reservations committed in any order, and writes keep placement order on small and big pools", async () => {
  const codec = lengthPrefix(2);
  for (let seed = 1; seed <= 40; seed++) {
    const random = prng(seed);
    const poolOptions = seed % 4 === 0
      ? { bufferSize: 4096, bufferCount: 4 }
      : { bufferSize: 16 + 16 * (seed % 4), bufferCount: 1 + (seed % 4) };
    const most = poolOptions.bufferSize - 2;
    const { pool, flusher, writer, reader } = rig(poolOptions, {
      codec,
      ...(seed % 3 === 0 ? { flush: "manual" as const, flushBytes: 1 + random(40) } : {}),
    });
    const got = readBytes(reader);
    const expected: number[][] = [];
    const open: { slot: number; reservation: ReturnType<Writer["tryReserve"]> & object }[] = [];
    for (let i = 0; i < 200; i++) {
      const length = random(Math.min(most, 30) + 1);
      const fill = i & 0xff;
      const op = random(4);
      if (op === 0 && open.length < 2) {
        const reservation = writer.tryReserve(length);
        if (reservation !== null) {
          reservation.bytes.fill(fill);
          open.push({ slot: expected.length, reservation });
          expected.push(new Array(length).fill(fill));
          continue;
        }
      } else if (op === 1) {
        const bytes = new Uint8Array(length).fill(fill);
        if (writer.tryWrite(bytes)) {
          expected.push([...bytes]);
          continue;
        }
      } else {
        const claim = writer.tryClaim(length);
        if (claim !== null) {
          claim.buffer.fill(fill, claim.offset, claim.offset + length);
          // Cancelled claims are taken back: they never reach the stream.
          if (random(5) === 0) claim.cancel();
          else {
            claim.commit();
            expected.push(new Array(length).fill(fill));
          }
          continue;
        }
      }
      // No room now: commit an open reservation (they may hold the buffers
      // back), else wait for a buffer with a claim.
      if (open.length !== 0) {
        open.splice(random(open.length), 1)[0]!.reservation.commit();
      } else {
        const claim = await writer.claim(length);
        claim.buffer.fill(fill, claim.offset, claim.offset + length);
        claim.commit();
        expected.push(new Array(length).fill(fill));
      }
      if (seed % 3 === 0) writer.flush();
    }
    while (open.length !== 0) open.splice(random(open.length), 1)[0]!.reservation.commit();
    writer.close();
    flusher.close();
    const frames = parseFrames(codec, new Uint8Array(await got)).map((f) => [...f]);
    assert.deepEqual(frames, expected, `seed ${seed}`);
    assertAllFree(pool);
  }
});

// -- Cadence --

Deno.test("A committed claim flushes like a write: at the microtask's end, or at flushBytes", async () => {
  {
    const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 });
    claimFilled(writer, 2, 1).commit();
    claimFilled(writer, 2, 2).commit();
    // One microtask's commits go out together.
    assert.deepEqual(await readBytes(reader, false), [1, 1, 2, 2]);
    assert.deepEqual(await finish(writer, flusher, reader), []);
    assertAllFree(pool);
  }
  {
    const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, {
      flush: "manual",
      flushBytes: 5,
    });
    claimFilled(writer, 3, 1).commit();
    const read = new Tracked(reader.read());
    await flush();
    assert.ok(read.pending, "3 bytes are under flushBytes");
    const cancelled = claimFilled(writer, 3, 9);
    cancelled.cancel();
    await flush();
    assert.ok(read.pending, "a cancelled claim counts for nothing");
    claimFilled(writer, 2, 2).commit();
    await flush();
    const batch = read.value().value!;
    assert.deepEqual(batch.flatMap((r) => [...r.bytes]), [1, 1, 1, 2, 2]);
    for (const region of batch) region.release();
    assert.deepEqual(await finish(writer, flusher, reader), []);
    assertAllFree(pool);
  }
});

// -- Waiting --

Deno.test("claim() waits in call order; calls queued behind it wait until it is settled", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 8, bufferCount: 1 }, {
    flush: "manual",
  });
  assert.ok(writer.tryWrite(new Uint8Array(8).fill(1)));
  const first = new Tracked(writer.write(new Uint8Array(2).fill(2)));
  const claimed = new Tracked(writer.claim(3));
  const after = new Tracked(writer.write(new Uint8Array(2).fill(4)));
  const reserved = new Tracked(writer.reserve(1));
  assert.equal(writer.tryClaim(1), null, "earlier calls wait: order is kept");
  assert.deepEqual(await readBytes(reader, false), new Array(8).fill(1));
  await flush();
  assert.ok(!first.pending);
  const claim = claimed.value();
  assert.equal(claim.offset, 2);
  await flush();
  assert.ok(after.pending && reserved.pending, "queued behind the open claim");
  claim.buffer.fill(3, 2, 5);
  claim.commit();
  await flush();
  assert.ok(!after.pending);
  const reservation = reserved.value();
  reservation.bytes[0] = 5;
  reservation.commit();
  assert.deepEqual(await finish(writer, flusher, reader), [2, 2, 3, 3, 3, 4, 4, 5]);
  assertAllFree(pool);

  // Cancelling the claim serves them too, and a full buffer makes them wait for the next.
  const second = rig({ bufferSize: 8, bufferCount: 1 }, { flush: "manual" });
  assert.ok(second.writer.tryWrite(new Uint8Array(8).fill(1)));
  const claimed2 = new Tracked(second.writer.claim(6));
  const big = new Tracked(second.writer.write(new Uint8Array(7).fill(7)));
  assert.deepEqual(await readBytes(second.reader, false), new Array(8).fill(1));
  await flush();
  const claim2 = claimed2.value();
  claim2.cancel();
  await flush();
  assert.ok(!big.pending, "served at once: the cancelled claim left room");
  assert.deepEqual(
    await finish(second.writer, second.flusher, second.reader),
    new Array(7).fill(7),
  );
  assertAllFree(second.pool);
});

Deno.test("An aborted claim() rejects with the reason and never wedges the writer", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 8, bufferCount: 1 }, {
    codec: varintPrefix(),
    flush: "manual",
  });
  assert.ok(writer.tryWrite(new Uint8Array(6).fill(1)));
  const controller = new AbortController();
  const aborted = new Tracked(writer.claim(4, { signal: controller.signal }));
  const after = new Tracked(writer.claim(4));
  await flush();
  controller.abort(new Error("gave up"));
  await flush();
  assert.equal((aborted.reason() as Error).message, "gave up");
  await assert.rejects(writer.claim(1, { signal: AbortSignal.abort(new Error("no")) }), /no/);
  assert.ok(after.pending);
  assert.deepEqual(await readBytes(reader, false), [6, 1, 1, 1, 1, 1, 1]);
  await flush();
  const claim = after.value();
  claim.buffer.fill(2, claim.offset, claim.offset + 4);
  // The signal of a claim already granted changes nothing.
  const late = new AbortController();
  claim.commit();
  const granted = await writer.claim(1, { signal: late.signal });
  late.abort();
  granted.buffer[granted.offset] = 3;
  granted.commit();
  assert.deepEqual(await finish(writer, flusher, reader), [4, 2, 2, 2, 2, 1, 3]);
  assertAllFree(pool);
});

// -- Closing --

Deno.test("A claim open when its writer closes: commit and the accessors throw a ClosedError saying why, cancel does nothing", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 32, bufferCount: 2 }, {
    flush: "manual",
  });
  assert.ok(writer.tryWrite(new Uint8Array([1, 2])));
  const claim = claimFilled(writer, 4, 9);
  writer.close();
  assert.equal(claim.open, false);
  const closed = (action: string) => (e: unknown) => {
    assert.ok(e instanceof ClosedError, `expected a ClosedError, got ${String(e)}`);
    assert.equal(e.message, `Cannot ${action} a claim: the writer was closed`);
    return true;
  };
  assert.throws(() => claim.commit(), closed("commit"));
  assert.throws(() => claim.buffer, closed("read the buffer of"));
  assert.throws(() => claim.offset, closed("read the offset of"));
  claim.cancel(); // what was asked is done
  claim[Symbol.dispose]();
  assert.throws(() => writer.tryClaim(1), ClosedError);
  await assert.rejects(writer.claim(1), ClosedError);
  // The claim's space was taken back, not sent.
  assert.deepEqual(await finish(writer, flusher, reader), [1, 2]);
  assertAllFree(pool);

  // A claim alone in its buffer at close: the buffer comes back.
  const alone = rig({ bufferSize: 32, bufferCount: 1 });
  const lone = alone.writer.tryClaim(8)!;
  assert.equal(alone.pool.stats().inUse, 1);
  alone.writer.close();
  assertAllFree(alone.pool);
  assert.throws(() => lone.commit(), ClosedError);
  assert.deepEqual(await finish(alone.writer, alone.flusher, alone.reader), []);
});

Deno.test("close() with a claim open and calls waiting behind it rejects them and places nothing", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 8, bufferCount: 1 }, {
    flush: "manual",
  });
  assert.ok(writer.tryWrite(new Uint8Array(8).fill(1)));
  const claimed = new Tracked(writer.claim(2));
  const behind = new Tracked(writer.write(new Uint8Array(2).fill(3)));
  assert.deepEqual(await readBytes(reader, false), new Array(8).fill(1));
  await flush();
  const claim = claimed.value();
  writer.close();
  await flush();
  assert.ok(behind.reason() instanceof ClosedError);
  assert.throws(() => claim.commit(), ClosedError);
  assert.deepEqual(await finish(writer, flusher, reader), []);
  assertAllFree(pool);
});

Deno.test("The flusher's consumer failing while a claim is open: commit throws a ClosedError with the failure as cause", async () => {
  for (const how of ["readable.cancel", "pipeTo", "flusher.close"] as const) {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
    const flusher = new WriteFlusher(pool);
    const writer = new Writer(pool, flusher);
    const claim = claimFilled(writer, 4, 1);
    const reason = new Error("sink failed");
    if (how === "readable.cancel") await flusher.readable.cancel(reason);
    else if (how === "pipeTo") {
      const other = new Writer(pool, flusher);
      assert.ok(other.tryWrite(new Uint8Array([5])));
      await assert.rejects(
        flusher.pipeTo({ write: () => Promise.reject(reason) }),
        (e) => e === reason,
      );
    } else flusher.close();
    assert.ok(writer.closed);
    assert.equal(claim.open, false);
    assert.throws(() => claim.commit(), (e: unknown) => {
      assert.ok(e instanceof ClosedError);
      if (how === "flusher.close") {
        assert.equal(e.message, "Cannot commit a claim: the flusher was closed");
        assert.equal(e.cause, undefined);
      } else {
        assert.equal(
          e.message,
          "Cannot commit a claim: the flusher's consumer failed: sink failed",
        );
        assert.equal(e.cause, reason);
      }
      return true;
    });
    claim.cancel();
    if (how === "flusher.close") await readBytes(flusher.readable.getReader());
    assertAllFree(pool);
  }
});

Deno.test("A writer through the flusher's handle that finds the flusher ended while its claim is open closes the claim too", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true });
  const flusher = new WriteFlusher(pool);
  // As a writer in another worker would: through the handle, not registered.
  const writer = new Writer(pool, flusher.handle, { flush: "manual" });
  assert.ok(writer.tryWrite(new Uint8Array([1, 1])));
  const claim = claimFilled(writer, 4, 2);
  await flusher.readable.cancel(new Error("sink failed"));
  assert.equal(claim.open, true, "the writer has not looked yet");
  assert.throws(() => writer.flush(), ClosedError);
  assert.ok(writer.closed);
  assert.equal(claim.open, false);
  assert.throws(() => claim.commit(), (e: unknown) => {
    assert.ok(e instanceof ClosedError);
    // Through a handle, as from another worker: the error is quoted, not the cause.
    assert.equal(
      e.message,
      "Cannot commit a claim: the flusher's consumer failed: sink failed",
    );
    assert.equal(e.cause, undefined);
    return true;
  });
  claim.cancel();
  assertAllFree(pool);
});

// -- Across workers --

Deno.test("Writers in two workers fill numbered messages in place with claims, in order, through one flusher", async () => {
  // Few small buffers: the workers' claims wait on the pool while this thread consumes.
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, batchSize: 1, shared: true });
  const codec = lengthPrefix(4);
  const flusher = new WriteFlusher(pool);
  const got = readBytes(flusher.readable.getReader());
  const perWriter = 2000;
  const workers = [0, 1].map(() =>
    new Worker(new URL("./workers/claim_writer_worker.ts", import.meta.url), { type: "module" })
  );
  try {
    const reports = workers.map((worker, w) =>
      new Promise<ClaimReport>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<ClaimReport>) => resolve(event.data);
        worker.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message));
        };
        worker.postMessage(
          {
            pool: pool.handle,
            flusher: flusher.handle,
            writer: w,
            count: perWriter,
          } satisfies ClaimJob,
        );
      })
    );
    for (const report of await Promise.all(reports)) {
      assert.ok(report.ok, JSON.stringify(report));
      assert.ok(report.waited > 0, "the small pool made the workers wait");
    }
  } finally {
    for (const worker of workers) worker.terminate();
  }
  flusher.close();
  checkMessages(parseFrames(codec, new Uint8Array(await got)), 2, perWriter);
  assertAllFree(pool);
  assert.equal(pool.stats().workers, 1, "the workers detached");
});

// -- Runs: one claim for many messages of one length --

/** Every codec a writer may frame with, the inline length prefixes and the general path alike. */
const RUN_CODECS: { name: string; codec?: FrameCodec }[] = [
  { name: "no codec" },
  { name: "lengthPrefix(1)", codec: lengthPrefix(1) },
  { name: "lengthPrefix(2, le)", codec: lengthPrefix(2, { littleEndian: true }) },
  { name: "lengthPrefix(4)", codec: lengthPrefix(4) },
  { name: "varintPrefix()", codec: varintPrefix() },
  { name: "delimiter", codec: delimiter("\r\n") },
];

Deno.test("A run claims as many messages as the buffer holds, up to count, headers written, one commit", async () => {
  for (const { name, codec } of RUN_CODECS) {
    const { pool, flusher, writer, reader } = rig(
      { bufferSize: 100, bufferCount: 4 },
      codec === undefined ? {} : { codec },
    );
    const frame = codec === undefined ? 6 : codec.headerLength(6) + 6 + codec.trailerLength;
    const payloads: number[][] = [];
    let next = 0;
    let used = 0;
    // 3 now, then as many as the rest of the buffer holds, then a fresh buffer's worth.
    for (const ask of [3, 1000, 1000]) {
      const run = writer.tryClaim(6, ask);
      assert.ok(run !== null, name);
      if (used + frame > 100) used = 0;
      const expected = Math.min(ask, Math.floor((100 - used) / frame));
      assert.equal(run.count, expected, `${name}: count for ${ask}`);
      assert.equal(run.offset, used + frame - 6 - (codec?.trailerLength ?? 0), name);
      used += expected * frame;
      assert.equal(run.stride, frame, name);
      assert.equal(run.length, 6, name);
      for (let i = 0; i < run.count; i++) {
        const payload = [next, next + 1, next + 2, next + 3, next + 4, next + 5].map((b) =>
          b & 0xff
        );
        run.buffer.set(payload, run.offset + i * run.stride);
        payloads.push(payload);
        next += 7;
      }
      run.commit();
      assert.equal(run.open, false);
    }
    const bytes = await finish(writer, flusher, reader);
    const frames = codec === undefined
      ? Array.from({ length: bytes.length / 6 }, (_, i) => bytes.slice(i * 6, i * 6 + 6))
      : parseFrames(codec, new Uint8Array(bytes)).map((f) => [...f]);
    assert.deepEqual(frames, payloads, name);
    assertAllFree(pool);
  }
});

Deno.test("commit(n) keeps a run's first n messages and takes the rest back; commit(0) is a cancel", async () => {
  const codec = lengthPrefix(2);
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, { codec });
  const run = writer.tryClaim(2, 10)!;
  assert.equal(run.count, 10);
  for (let i = 0; i < 10; i++) run.buffer.fill(i, run.offset + i * 4, run.offset + i * 4 + 2);
  run.commit(3);
  const empty = writer.tryClaim(2, 5)!;
  empty.commit(0);
  // The next message follows the third directly: nothing of the run was left behind.
  assert.ok(writer.tryWrite(new Uint8Array([9, 9])));
  const bytes = await finish(writer, flusher, reader);
  assert.deepEqual(bytes, [0, 2, 0, 0, 0, 2, 1, 1, 0, 2, 2, 2, 0, 2, 9, 9]);
  assertAllFree(pool);
});

Deno.test("Bad run counts are RangeErrors that name the limit, and leave the writer usable", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 });
  for (const count of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => writer.tryClaim(4, count), (error: unknown) => {
      assert.ok(error instanceof RangeError);
      assert.equal(
        error.message,
        `Cannot claim ${count} messages: count must be an integer from 1 up`,
      );
      return true;
    });
    await assert.rejects(writer.claim(4, { count }), RangeError);
  }
  const run = writer.tryClaim(4, 2)!;
  assert.throws(
    () => run.commit(3),
    /Cannot commit 3 messages of a claim: it holds 2; commit from 0 to 2/,
  );
  assert.throws(() => run.commit(-1), RangeError);
  assert.equal(run.open, true);
  run.buffer.fill(5, run.offset, run.offset + 8);
  run.commit();
  assert.deepEqual(await finish(writer, flusher, reader), [5, 5, 5, 5, 5, 5, 5, 5]);
  assertAllFree(pool);
});

Deno.test("claim() with a count waits for a buffer on a full pool and then gives a whole run", async () => {
  const codec = lengthPrefix(1);
  const { pool, flusher, writer, reader } = rig({ bufferSize: 16, bufferCount: 1 }, { codec });
  const first = writer.tryClaim(3, 100)!;
  assert.equal(first.count, 4);
  first.buffer.fill(1, first.offset, first.offset + 15);
  first.commit();
  assert.equal(writer.tryClaim(3, 100), null);
  const waiting = new Tracked(writer.claim(3, { count: 100 }));
  await flush();
  assert.ok(waiting.pending);
  assert.equal(pool.stats().waiters, 1);
  // Reading the flushed buffer gives it back; the run then fills the buffer anew.
  const before = await readBytes(reader, false);
  assert.equal(before.length, 16);
  await flush();
  const run = waiting.value();
  assert.equal(run.count, 4);
  assert.equal(run.offset, 1);
  run.cancel();
  assert.deepEqual(await finish(writer, flusher, reader), []);
  assertAllFree(pool);
});

Deno.test("A run open when its writer closes is dropped: commit throws the ClosedError, nothing is sent", async () => {
  const { pool, flusher, writer, reader } = rig({ bufferSize: 64, bufferCount: 2 }, {
    codec: lengthPrefix(4),
  });
  assert.ok(writer.tryWrite(new Uint8Array([1])));
  const run = writer.tryClaim(4, 5)!;
  writer.close();
  assert.throws(() => run.commit(), ClosedError);
  assert.throws(() => run.count, ClosedError);
  run.cancel();
  flusher.close();
  assert.deepEqual(await readBytes(reader), [0, 0, 0, 1, 1]);
  assertAllFree(pool);
});

// encode() and decode(): the async-iterable helpers for users coming from
// it-length-prefixed. Interop is proved against the npm package itself, in
// both directions, over many message sizes and random chunkings; the rest
// checks that every way out of decode's loop gives its buffer back.
import assert from "node:assert/strict";
import * as lp from "npm:it-length-prefixed@11.0.1";
import { Uint8ArrayList } from "npm:uint8arraylist@3.0.2";
import {
  BufferPool,
  decode,
  delimiter,
  encode,
  fixedSize,
  FrameError,
  lengthPrefix,
  TruncatedError,
  varintPrefix,
} from "../mod.ts";
import { assertAllFree, concat, prng, take } from "./_helpers.ts";

const SIZES = [0, 1, 127, 128, 16383, 16384, 100000];

/** Messages of every size in SIZES, in a shuffled order, each filled from `random`. */
function messagesOf(random: (n: number) => number, count: number): Uint8Array[] {
  const messages: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const message = new Uint8Array(SIZES[random(SIZES.length)]!);
    for (let k = 0; k < message.length; k++) message[k] = random(256);
    messages.push(message);
  }
  // Every size at least once.
  for (const size of SIZES) messages.push(new Uint8Array(size).fill(size & 0xff));
  return messages;
}

/**
 * `bytes` cut at random places: empty chunks, single bytes and long runs
 * all occur, so frames split inside headers and payloads alike.
 */
function rechunk(bytes: Uint8Array, random: (n: number) => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const pick = random(4);
    const n = pick === 0 ? random(2) : pick === 1 ? 1 + random(8) : 1 + random(70000);
    chunks.push(bytes.slice(at, Math.min(bytes.length, at + n)));
    at += n;
  }
  return chunks;
}

/** Yields `chunks` asynchronously, one macrotask apart at random, as a socket would. */
async function* trickle(
  chunks: readonly (Uint8Array | Uint8ArrayList)[],
  random: (n: number) => number,
): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  for (const chunk of chunks) {
    if (random(4) === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    yield chunk;
  }
}

/**
 * Asserts that two byte arrays hold the same bytes, naming the first that
 * differs: deepEqual's diff of 100 KB arrays takes minutes.
 */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assert.equal(at, -1, `${label}: first differing byte`);
}

async function collect<T>(source: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

Deno.test("bab encode → it-length-prefixed decode: every size, any chunking", async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const random = prng(seed);
    const messages = messagesOf(random, 12);
    const framed = concat(await collect(encode(trickle(messages, random))));
    const chunks = rechunk(framed, random);
    const decoded = await collect(lp.decode(trickle(chunks, random)));
    assert.equal(decoded.length, messages.length, `seed ${seed}`);
    decoded.forEach((list, i) =>
      assertSameBytes(list.subarray(), messages[i]!, `seed ${seed}, message ${i}`)
    );
  }
});

Deno.test("it-length-prefixed encode → bab decode: every size, any chunking, with its Uint8ArrayLists", async () => {
  const pool = new BufferPool({ bufferSize: 128 * 1024, bufferCount: 1 });
  for (let seed = 1; seed <= 20; seed++) {
    const random = prng(seed);
    const messages = messagesOf(random, 12);
    const framed = concat(await collect(lp.encode(messages)));
    // Half the runs hand decode Uint8ArrayLists of several chunks each.
    const chunks: (Uint8Array | Uint8ArrayList)[] = rechunk(framed, random);
    if (seed % 2 === 0) {
      for (let i = 0; i + 1 < chunks.length; i++) {
        chunks.splice(i, 2, new Uint8ArrayList(chunks[i]!, chunks[i + 1]!));
      }
    }
    // decode's own pool, then a one-buffer pool of the caller's.
    for (const options of [{}, { pool }]) {
      const decoded = await collect(decode(trickle(chunks, random), options));
      assert.equal(decoded.length, messages.length, `seed ${seed}`);
      decoded.forEach((message, i) => {
        assert.ok(message instanceof Uint8Array);
        assertSameBytes(message, messages[i]!, `seed ${seed}, message ${i}`);
      });
      assertAllFree(pool);
    }
  }
});

Deno.test("decode reads it-length-prefixed's own chunks as they come: prefix and payload apart", async () => {
  const random = prng(99);
  const messages = messagesOf(random, 30);
  // lp.encode yields each prefix and payload as separate arrays.
  const decoded = await collect(decode(lp.encode(messages)));
  assert.equal(decoded.length, messages.length);
  decoded.forEach((message, i) => assertSameBytes(message, messages[i]!, `message ${i}`));
});

Deno.test("decode's messages are copies: they stay intact while the staging buffer is reused", async () => {
  // A 64-byte staging buffer is overwritten many times over by 2000 messages.
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const messages = Array.from({ length: 2000 }, (_, i) => new Uint8Array(1 + i % 40).fill(i));
  const kept = await collect(decode(encode(messages, { codec: lengthPrefix(1) }), {
    codec: lengthPrefix(1),
    pool,
  }));
  assert.equal(kept.length, messages.length);
  kept.forEach((message, i) => {
    // An array of its own, not a view of the pool's block.
    assert.equal(message.byteLength, message.buffer.byteLength, `message ${i}`);
    assert.deepEqual([...message], [...messages[i]!], `message ${i}`);
  });
  assertAllFree(pool);
});

Deno.test("encode and decode round-trip with every kind of codec", async () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
  const random = prng(7);
  const cases: [ReturnType<typeof varintPrefix>, Uint8Array[]][] = [
    [varintPrefix(), [new Uint8Array(0), new Uint8Array(200).fill(1), new Uint8Array([5])]],
    [lengthPrefix(2, { littleEndian: true }), [new Uint8Array(250).fill(2), new Uint8Array(0)]],
    [lengthPrefix(4), [new Uint8Array([1, 2, 3]), new Uint8Array(100)]],
    [delimiter("\r\n"), [new TextEncoder().encode("one"), new Uint8Array(0), Uint8Array.of(13)]],
    [fixedSize(3), [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5, 6)]],
  ];
  for (const [codec, messages] of cases) {
    const framed = concat(await collect(encode(messages, { codec })));
    for (const options of [{ codec }, { codec, pool }]) {
      const decoded = await collect(decode(rechunk(framed, random), options));
      assert.deepEqual(decoded, messages, codec.name);
    }
    assertAllFree(pool);
  }
});

Deno.test("encode takes Uint8ArrayList messages and yields one array a message", async () => {
  const list = new Uint8ArrayList(Uint8Array.of(1, 2), Uint8Array.of(3));
  const frames = await collect(encode([list, Uint8Array.of(4)]));
  assert.deepEqual(frames, [Uint8Array.of(3, 1, 2, 3), Uint8Array.of(1, 4)]);
});

Deno.test("encode: a message it cannot frame is a RangeError after the frames before it", async () => {
  const frames: Uint8Array[] = [];
  const codec = delimiter("\n");
  const source = [new TextEncoder().encode("fine"), new TextEncoder().encode("two\nlines")];
  await assert.rejects(
    async () => {
      for await (const frame of encode(source, { codec })) frames.push(frame);
    },
    (error: unknown) =>
      error instanceof RangeError && /delimiter occurs in the payload/.test(error.message),
  );
  assert.deepEqual(frames, [new TextEncoder().encode("fine\n")]);
  await assert.rejects(
    () => collect(encode([new Uint8Array(256)], { codec: lengthPrefix(1) })),
    RangeError,
  );
});

Deno.test("encode: leaving the loop early closes the source", async () => {
  let closed = false;
  async function* source() {
    try {
      for (let i = 0;; i++) yield Uint8Array.of(i);
    } finally {
      closed = true;
    }
  }
  const frames: Uint8Array[] = [];
  for await (const frame of encode(source())) {
    frames.push(frame);
    if (frames.length === 3) break;
  }
  assert.deepEqual(frames, [Uint8Array.of(1, 0), Uint8Array.of(1, 1), Uint8Array.of(1, 2)]);
  assert.equal(closed, true);
});

/** An endless source of 10-byte varint-prefixed messages, noting when it is closed. */
function endless(): { source: AsyncGenerator<Uint8Array>; closed: () => boolean } {
  let closed = false;
  async function* source() {
    try {
      for (let i = 0;; i++) yield varintPrefix().encode(new Uint8Array(10).fill(i));
    } finally {
      closed = true;
    }
  }
  return { source: source(), closed: () => closed };
}

Deno.test("decode: break gives the staging buffer back and closes the source", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const { source, closed } = endless();
  let seen = 0;
  for await (const message of decode(source, { pool })) {
    assert.equal(message[0], seen);
    if (++seen === 5) break;
  }
  assert.equal(closed(), true);
  assertAllFree(pool);
});

Deno.test("decode: return() from outside gives the staging buffer back and closes the source", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const { source, closed } = endless();
  const messages = decode(source, { pool });
  assert.deepEqual(await messages.next(), { done: false, value: new Uint8Array(10).fill(0) });
  assert.equal(pool.stats().inUse, 1); // the cutter stages in it
  assert.deepEqual(await messages.return(), { done: true, value: undefined });
  assert.equal(closed(), true);
  assertAllFree(pool);
});

Deno.test("decode: a throwing source fails the loop after the messages before, and gives the buffer back", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const boom = new Error("source failed");
  async function* source() {
    yield Uint8Array.of(1, 7, 2); // one message, and half a header's frame
    throw boom;
  }
  const seen: Uint8Array[] = [];
  await assert.rejects(async () => {
    for await (const message of decode(source(), { pool })) seen.push(message);
  }, (error: unknown) => error === boom);
  assert.deepEqual(seen, [Uint8Array.of(7)]);
  assertAllFree(pool);
});

Deno.test("decode: a truncated last frame is a TruncatedError after the whole ones", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const seen: Uint8Array[] = [];
  // "ab", then a frame announcing 5 bytes of which 2 arrive.
  const chunks = [Uint8Array.of(2, 97, 98, 5), Uint8Array.of(1, 2)];
  await assert.rejects(async () => {
    for await (const message of decode(chunks, { pool })) seen.push(message);
  }, (error: unknown) => {
    assert.ok(error instanceof TruncatedError, String(error));
    assert.equal(error.received, 3);
    assert.equal(error.expected, 6);
    return true;
  });
  assert.deepEqual(seen, [Uint8Array.of(97, 98)]);
  assertAllFree(pool);
  // And a header cut short, on decode's own pool.
  await assert.rejects(() => collect(decode([Uint8Array.of(0x80)])), TruncatedError);
});

Deno.test("decode: a FrameError comes after the messages before the bad frame, in the same chunk", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  for (const bad of [[0x80, 0x80, 0x80, 0x80, 0x10], [50]]) {
    const seen: Uint8Array[] = [];
    const chunk = Uint8Array.of(1, 4, 0, 2, 5, 6, ...bad, 0, 0);
    await assert.rejects(async () => {
      for await (const message of decode([chunk], { pool, maxFrameLength: 40 })) {
        seen.push(message);
      }
    }, FrameError);
    assert.deepEqual(seen, [Uint8Array.of(4), new Uint8Array(0), Uint8Array.of(5, 6)]);
    assertAllFree(pool);
  }
  // decode's own pool enforces maxFrameLength before buffering the payload.
  await assert.rejects(
    () => collect(decode([varintPrefix().encode(new Uint8Array(11))], { maxFrameLength: 10 })),
    (error: unknown) =>
      error instanceof FrameError && error.frameLength === 11 && error.maxFrameLength === 10,
  );
  // The default is it-length-prefixed's 4 MiB: a 4 MiB message is only cut
  // short, one byte more is refused.
  for (
    const [length, error] of [[4 * 1024 * 1024, TruncatedError], [
      4 * 1024 * 1024 + 1,
      FrameError,
    ]] as const
  ) {
    const header = new Uint8Array(varintPrefix().headerLength(length));
    varintPrefix().encodeHeader(header, 0, length);
    await assert.rejects(() => collect(decode([header])), error);
  }
});

Deno.test("decode: a consumer that breaks out while an error's earlier messages are handed out swallows it", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const chunk = Uint8Array.of(1, 4, 1, 5, 60);
  for await (const message of decode([chunk], { pool, maxFrameLength: 40 })) {
    assert.deepEqual(message, Uint8Array.of(4));
    break;
  }
  assertAllFree(pool);
});

Deno.test("decode: waits for a buffer of a busy pool, and a signal ends the wait", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const held = take(pool);
  const messages = decode([Uint8Array.of(1, 9)], { pool });
  const next = messages.next();
  // decode is waiting in the pool's queue: hand it the buffer.
  while (pool.stats().waiters === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  held.release();
  assert.deepEqual(await next, { done: false, value: Uint8Array.of(9) });
  assert.deepEqual(await messages.next(), { done: true, value: undefined });
  assertAllFree(pool);

  const again = take(pool);
  const controller = new AbortController();
  const reason = new Error("gave up");
  const waiting = decode([Uint8Array.of(1, 9)], { pool, signal: controller.signal }).next();
  while (pool.stats().waiters === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  controller.abort(reason);
  await assert.rejects(waiting, (error: unknown) => error === reason);
  again.release();
  assertAllFree(pool);

  // An aborted signal stops before the first chunk is taken.
  await assert.rejects(
    () => collect(decode([Uint8Array.of(1, 9)], { pool, signal: AbortSignal.abort(reason) })),
    (error: unknown) => error === reason,
  );
  assertAllFree(pool);
});

Deno.test("decode's own pool stages a frame of maxFrameLength bytes behind a padded varint header", async () => {
  // 100000 as a 5-byte varint, padded with 0x80 bytes: longer than the
  // 3 bytes a writer uses for it, still a valid header.
  const frame = new Uint8Array(5 + 100000).fill(7);
  frame.set([0xa0 | 0x80, 0x8d | 0x80, 0x06 | 0x80, 0x80, 0x00]);
  assert.equal(0x20 | 0x0d << 7 | 0x06 << 14, 100000);
  const [message, ...rest] = await collect(decode([frame], { maxFrameLength: 100000 }));
  assert.equal(rest.length, 0);
  assertSameBytes(message!, new Uint8Array(100000).fill(7), "the message");
});

Deno.test("decode: a maxFrameLength it cannot stage is a RangeError naming the limit", async () => {
  for (const maxFrameLength of [-1, 1.5, NaN, Infinity]) {
    await assert.rejects(
      () => decode([], { maxFrameLength }).next(),
      (error: unknown) =>
        error instanceof RangeError &&
        error.message.includes(
          `maxFrameLength must be a non-negative integer, received ${maxFrameLength}`,
        ),
    );
  }
  await assert.rejects(
    () => decode([], { maxFrameLength: 2 ** 30 }).next(),
    (error: unknown) =>
      error instanceof RangeError && /over the limit of 1073741824 bytes/.test(error.message),
  );
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  await assert.rejects(
    () => decode([], { pool, maxFrameLength: 64 }).next(),
    (error: unknown) => error instanceof RangeError && /from 0 to 63/.test(error.message),
  );
  assertAllFree(pool);
  // A codec's own limit bounds the staging buffer: fixed 3-byte frames need no 4 MiB.
  assert.deepEqual(
    await collect(decode([Uint8Array.of(1, 2, 3)], { codec: fixedSize(3) })),
    [Uint8Array.of(1, 2, 3)],
  );
});

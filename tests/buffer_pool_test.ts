import assert from "node:assert/strict";
import {
  BufferPool,
  type BufferPoolOptions,
  type Packet,
  type PooledBuffer,
  ReleasedError,
} from "../mod.ts";
import {
  assertAllFree,
  assertRangeError,
  at,
  escapeRegExp,
  flush,
  prng,
  take,
  Tracked,
} from "./_helpers.ts";

// -- Helpers --
function assertConsistent(pool: BufferPool): void {
  const s = pool.stats();
  assert.equal(s.free + s.inUse, s.bufferCount);
  assert.ok(s.free >= 0 && s.free <= s.bufferCount, `free ${s.free}`);
  assert.ok(s.cached >= 0 && s.cached <= s.free, `cached ${s.cached}, free ${s.free}`);
  assert.ok(s.cached <= 2 * s.batchSize, `cached ${s.cached} > 2 * ${s.batchSize}`);
}

// -- Configuration --

const GiB16 = 2 ** 34;

const badConfigs: { what: string; options: BufferPoolOptions; patterns: RegExp[] }[] = [
  ...[0, -1, 1.5, NaN, 2 ** 30 + 1, Infinity].map((v) => ({
    what: `bufferSize ${v}`,
    options: { bufferSize: v, bufferCount: 4 },
    patterns: [
      escapeRegExp(`bufferSize must be an integer from 1 to ${2 ** 30}`),
      escapeRegExp(`received ${v}`),
    ],
  })),
  ...[0, -1, 1.5, NaN, 2 ** 24 + 1].map((v) => ({
    what: `bufferCount ${v}`,
    options: { bufferSize: 64, bufferCount: v, batchSize: 1 },
    patterns: [
      escapeRegExp(`bufferCount must be an integer from 1 to ${2 ** 24}`),
      escapeRegExp(`received ${v}`),
    ],
  })),
  ...[0, -1, 1.5, NaN, 9].map((v) => ({
    what: `batchSize ${v} with bufferCount 8`,
    options: { bufferSize: 64, bufferCount: 8, batchSize: v },
    patterns: [
      escapeRegExp(`batchSize must be an integer from 1 to bufferCount (8)`),
      escapeRegExp(`received ${v}`),
    ],
  })),
];

for (const { what, options, patterns } of badConfigs) {
  Deno.test(`new BufferPool() rejects ${what} with a RangeError naming value and limit`, () => {
    assertRangeError(() => new BufferPool(options), ...patterns);
    // The neighbouring valid configuration still builds.
    const pool = new BufferPool({ bufferSize: 64, bufferCount: 8, batchSize: 8 });
    assertAllFree(pool);
  });
}

Deno.test("new BufferPool() rejects a block over the 16 GiB limit, naming sizes and limit", () => {
  assertRangeError(
    () => new BufferPool({ bufferSize: 2 ** 30, bufferCount: 64 }),
    /64 buffers of 1073741824 bytes/,
    /need a \d+-byte block/,
    escapeRegExp(`over the limit of ${GiB16} bytes`),
  );
  // Exactly 16 buffers of 1 GiB is 16 GiB of data plus headers: still over.
  assertRangeError(
    () => new BufferPool({ bufferSize: 2 ** 30, bufferCount: 16, batchSize: 1 }),
    escapeRegExp(`over the limit of ${GiB16} bytes`),
  );
  const pool = new BufferPool({ bufferSize: 1, bufferCount: 1 });
  assertAllFree(pool);
});

Deno.test("new BufferPool() accepts the edges: bufferSize 1, batchSize === bufferCount", () => {
  const pool = new BufferPool({ bufferSize: 1, bufferCount: 5, batchSize: 5 });
  const s = pool.stats();
  assert.equal(s.bufferSize, 1);
  assert.equal(s.bufferCount, 5);
  assert.equal(s.batchSize, 5);
  assert.equal(pool.bufferSize, 1);
  assert.equal(pool.bufferCount, 5);
  assert.equal(pool.batchSize, 5);
  assert.equal(s.cached, 0);
  assertAllFree(pool);
});

Deno.test("new BufferPool() defaults batchSize to bufferCount / 16, clamped to 1..64", () => {
  const cases: [bufferCount: number, batchSize: number][] = [
    [1, 1],
    [15, 1],
    [16, 1],
    [32, 2],
    [100, 6],
    [1024, 64],
    [4096, 64],
  ];
  for (const [bufferCount, expected] of cases) {
    const pool = new BufferPool({ bufferSize: 1, bufferCount });
    assert.equal(pool.batchSize, expected, `bufferCount ${bufferCount}`);
    assertAllFree(pool);
  }
});

// -- tryAcquire --

Deno.test("BufferPool.tryAcquire() exhausts the pool, then recovers after release", () => {
  // 10 is not a multiple of 4: the last batch is short.
  const bufferSize = 100; // not a multiple of the 64-byte stride either
  const bufferCount = 10;
  const pool = new BufferPool({ bufferSize, bufferCount, batchSize: 4 });

  for (let round = 0; round < 3; round++) {
    const held: PooledBuffer[] = [];
    for (let i = 0; i < bufferCount; i++) {
      held.push(take(pool));
      assert.equal(pool.stats().inUse, i + 1);
      assertConsistent(pool);
    }
    assert.equal(pool.tryAcquire(), null);
    assert.equal(pool.tryAcquire(), null);
    const s = pool.stats();
    assert.equal(s.free, 0);
    assert.equal(s.cached, 0);
    assert.equal(s.inUse, bufferCount);

    const indices = held.map((b) => b.index).sort((a, b) => a - b);
    assert.deepEqual(indices, Array.from({ length: bufferCount }, (_, i) => i));
    for (const buffer of held) {
      assert.equal(buffer.bytes.length, bufferSize);
    }

    // Each buffer's bytes are its own: fill each with its marker, then check.
    for (const buffer of held) buffer.bytes.fill(buffer.index + 1 + round * 16);
    for (const buffer of held) {
      const marker = buffer.index + 1 + round * 16;
      assert.ok(
        buffer.bytes.every((byte) => byte === marker),
        `buffer ${buffer.index} was overwritten by another buffer`,
      );
    }
    // Writing one buffer's edges leaves its neighbours alone.
    const first = at(held, 0);
    first.bytes[0] = 0xee;
    first.bytes[bufferSize - 1] = 0xee;
    for (const buffer of held) {
      if (buffer === first) continue;
      const marker = buffer.index + 1 + round * 16;
      assert.ok(buffer.bytes.every((byte) => byte === marker), `buffer ${buffer.index} changed`);
    }

    for (const buffer of held) buffer.release();
    assertAllFree(pool);
  }
  assertAllFree(pool);
});

Deno.test("BufferPool.tryAcquire() gives byte views that never overlap across the whole block", () => {
  const bufferSize = 3;
  const bufferCount = 40;
  const pool = new BufferPool({ bufferSize, bufferCount, batchSize: 8 });
  const held: PooledBuffer[] = [];
  for (let i = 0; i < bufferCount; i++) held.push(take(pool));
  // Every pair of views: same ArrayBuffer, disjoint byte ranges.
  const ranges = held.map((b) => [b.bytes.byteOffset, b.bytes.byteOffset + b.bytes.length]);
  ranges.sort((a, b) => at(a, 0) - at(b, 0));
  for (let i = 1; i < ranges.length; i++) {
    assert.ok(at(at(ranges, i - 1), 1) <= at(at(ranges, i), 0), "two buffers overlap");
  }
  for (const buffer of held) buffer.release();
  assertAllFree(pool);
});

// -- Cache refill and spill --

Deno.test("BufferPool.tryAcquire() refills the cache a batch at a time", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 64, batchSize: 8 });
  assert.equal(pool.stats().cached, 0);
  const held: PooledBuffer[] = [];
  held.push(take(pool));
  assert.equal(pool.stats().cached, 7);
  for (let i = 1; i < 8; i++) {
    held.push(take(pool));
    assert.equal(pool.stats().cached, 7 - i);
  }
  held.push(take(pool)); // the 9th refills again
  assert.equal(pool.stats().cached, 7);
  assert.equal(pool.stats().free, 64 - 9);
  for (const buffer of held) buffer.release();
  assertConsistent(pool);
  assertAllFree(pool);
});

Deno.test("BufferPool release spills the cache to the free stack a batch at a time", () => {
  const batchSize = 8;
  const bufferCount = 64;
  const pool = new BufferPool({ bufferSize: 16, bufferCount, batchSize });
  const held: PooledBuffer[] = [];
  for (let i = 0; i < bufferCount; i++) held.push(take(pool));
  assert.equal(pool.stats().cached, 0);

  let released = 0;
  for (const buffer of held) {
    buffer.release();
    released++;
    const s = pool.stats();
    assert.equal(s.inUse, bufferCount - released);
    assert.equal(s.free + s.inUse, bufferCount);
    assert.ok(s.cached <= 2 * batchSize, `cached ${s.cached}`);
    assert.ok(s.cached >= 1, "a release must land in the cache");
  }
  // 64 releases into a cache of 16 must have spilled: not all of them cached.
  assert.ok(pool.stats().cached < bufferCount);
  assertAllFree(pool);
});

Deno.test("BufferPool release spills exactly one batch when the cache fills", () => {
  const batchSize = 8;
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 64, batchSize });
  const held: PooledBuffer[] = [];
  for (let i = 0; i < 64; i++) held.push(take(pool));
  for (let i = 0; i < 2 * batchSize - 1; i++) at(held, i).release();
  assert.equal(pool.stats().cached, 2 * batchSize - 1);
  at(held, 2 * batchSize - 1).release();
  assert.equal(pool.stats().cached, batchSize); // one batch went to the free stack
  assert.equal(pool.stats().free, 2 * batchSize);
  for (let i = 2 * batchSize; i < 64; i++) at(held, i).release();
  assertAllFree(pool);
});

Deno.test("BufferPool keeps its counts consistent over thousands of random acquires and releases", () => {
  const runs: [bufferCount: number, batchSize: number, seed: number][] = [
    [64, 8, 1],
    [37, 5, 2],
    [16, 1, 3],
    [9, 9, 4],
  ];
  for (const [bufferCount, batchSize, seed] of runs) {
    const pool = new BufferPool({ bufferSize: 8, bufferCount, batchSize });
    const random = prng(seed);
    const held: PooledBuffer[] = [];
    for (let step = 0; step < 5000; step++) {
      if (random(2) === 0) {
        const buffer = pool.tryAcquire();
        if (held.length === bufferCount) {
          assert.equal(buffer, null, `step ${step}: acquired from a full pool`);
        } else {
          assert.ok(buffer !== null, `step ${step}: null with ${held.length} held`);
          assert.ok(
            !held.includes(buffer),
            `step ${step}: buffer ${buffer.index} handed out twice`,
          );
          buffer.bytes[0] = step & 0xff;
          held.push(buffer);
        }
      } else if (held.length > 0) {
        const i = random(held.length);
        const buffer = at(held, i);
        held.splice(i, 1);
        buffer.release();
      }
      assertConsistent(pool);
      assert.equal(pool.stats().inUse, held.length, `step ${step}`);
    }
    for (const buffer of held) buffer.release();
    assertAllFree(pool);
  }
});

Deno.test("BufferPool works with batchSize 1", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 4, batchSize: 1 });
  for (let round = 0; round < 4; round++) {
    const held: PooledBuffer[] = [];
    for (let i = 0; i < 4; i++) {
      held.push(take(pool));
      assertConsistent(pool);
    }
    assert.equal(pool.tryAcquire(), null);
    assert.deepEqual(held.map((b) => b.index).sort(), [0, 1, 2, 3]);
    // Release in a different order each round.
    const order = round % 2 === 0 ? held : [...held].reverse();
    for (const buffer of order) {
      buffer.release();
      assertConsistent(pool);
      assert.ok(pool.stats().cached <= 2);
    }
    assertAllFree(pool);
  }
  assertAllFree(pool);
});

Deno.test("BufferPool works with bufferCount 1", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  assert.equal(pool.batchSize, 1);
  const a = take(pool);
  assert.equal(a.index, 0);
  assert.equal(pool.tryAcquire(), null);
  a.release();
  const b = take(pool);
  assert.equal(b.index, a.index);
  assert.notEqual(b, a, "each acquire makes a new handle");
  const next = new Tracked(pool.acquire());
  await flush();
  assert.ok(next.pending);
  b.release();
  await flush();
  const c = next.value();
  assert.equal(c.index, 0);
  c.release();
  assertAllFree(pool);
});

// -- acquire --

Deno.test("BufferPool.acquire() resolves at once when a buffer is free", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const promise = pool.acquire();
  assert.equal(pool.stats().inUse, 1, "the buffer is taken synchronously");
  assert.equal(pool.stats().waiters, 0);
  const tracked = new Tracked(promise);
  await flush();
  const buffer = tracked.value();
  assert.equal(buffer.bytes.length, 16);
  buffer.release();
  assertAllFree(pool);
});

Deno.test("BufferPool.acquire() waits while the pool is empty", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const a = take(pool);
  const b = take(pool);
  const waiting = new Tracked(pool.acquire());
  await flush();
  assert.ok(waiting.pending, "acquire() resolved from an empty pool");
  assert.equal(pool.stats().waiters, 1);
  b.release();
  assert.equal(pool.stats().waiters, 0);
  assert.equal(pool.stats().inUse, 2, "the released buffer went straight to the waiter");
  await flush();
  const got = waiting.value();
  assert.equal(got.index, b.index);
  got.bytes[0] = 1; // the handed-over handle is live
  got.release();
  a.release();
  assertAllFree(pool);
});

Deno.test("BufferPool.acquire() serves waiters first come, first served", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 3 });
  const held = [take(pool), take(pool), take(pool)];
  const order: number[] = [];
  const waiters = [0, 1, 2].map((id) => new Tracked(pool.acquire(), () => order.push(id)));
  await flush();
  assert.deepEqual(order, []);
  assert.equal(pool.stats().waiters, 3);

  const got: PooledBuffer[] = [];
  for (let i = 0; i < 3; i++) {
    // Release in reverse order so that the buffer handed over differs from held[i].
    const releasing = at(held, 2 - i);
    releasing.release();
    assert.equal(pool.stats().waiters, 2 - i);
    await flush();
    assert.deepEqual(order, [0, 1, 2].slice(0, i + 1), `after release ${i + 1}`);
    for (let j = i + 1; j < 3; j++) assert.ok(at(waiters, j).pending, `waiter ${j} served early`);
    const buffer = at(waiters, i).value();
    assert.equal(buffer.index, releasing.index, "the waiter gets the buffer just released");
    got.push(buffer);
  }
  assert.equal(pool.stats().inUse, 3);
  for (const buffer of got) buffer.release();
  assertAllFree(pool);
});

Deno.test("BufferPool.acquire() queues waiters behind each other while buffers come back via packets", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const first = take(pool);
  const packet = first.toPacket(0, 4);
  first.release();
  const waiting = new Tracked(pool.acquire());
  await flush();
  assert.ok(waiting.pending, "a packet still holds the only buffer");
  packet.release();
  await flush();
  const buffer = waiting.value();
  assert.equal(buffer.index, first.index);
  buffer.release();
  assertAllFree(pool);
});

// -- Aborting acquire --

for (const [position, abortAt] of [["first", 0], ["middle", 1], ["last", 2]] as const) {
  Deno.test(
    `BufferPool.acquire() aborted as the ${position} of 3 waiters rejects with the reason and keeps the others in order`,
    async () => {
      const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
      const held = [take(pool), take(pool)];
      const order: number[] = [];
      const controllers = [0, 1, 2].map(() => new AbortController());
      const waiters = controllers.map((c, id) =>
        new Tracked(pool.acquire({ signal: c.signal }), () => order.push(id))
      );
      await flush();
      assert.equal(pool.stats().waiters, 3);

      const reason = new Error("stop");
      at(controllers, abortAt).abort(reason);
      assert.equal(pool.stats().waiters, 2);
      await flush();
      assert.deepEqual(order, [abortAt]);
      assert.equal(at(waiters, abortAt).reason(), reason, "rejects with the very same reason");
      assert.equal(pool.stats().inUse, 2, "aborting acquired nothing");

      const rest = [0, 1, 2].filter((i) => i !== abortAt);
      const got: PooledBuffer[] = [];
      for (let k = 0; k < rest.length; k++) {
        const releasing = at(held, k);
        releasing.release();
        assert.equal(pool.stats().waiters, rest.length - k - 1);
        await flush();
        assert.deepEqual(order, [abortAt, ...rest.slice(0, k + 1)]);
        const buffer = at(waiters, at(rest, k)).value();
        assert.equal(buffer.index, releasing.index);
        got.push(buffer);
      }
      // Aborting a served waiter's signal afterwards changes nothing.
      for (const c of controllers) c.abort(new Error("late"));
      await flush();
      assert.equal(pool.stats().inUse, 2);
      for (const buffer of got) buffer.release();
      assertAllFree(pool);
    },
  );
}

Deno.test("BufferPool.acquire() aborting every waiter empties the queue and a later release caches", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const held = take(pool);
  const controllers = [0, 1, 2].map(() => new AbortController());
  const waiters = controllers.map((c) => new Tracked(pool.acquire({ signal: c.signal })));
  await flush();
  assert.equal(pool.stats().waiters, 3);
  const reasons = controllers.map((_, i) => new Error(`stop ${i}`));
  for (const i of [1, 2, 0]) {
    at(controllers, i).abort(at(reasons, i));
  }
  assert.equal(pool.stats().waiters, 0);
  await flush();
  waiters.forEach((w, i) => assert.equal(w.reason(), at(reasons, i)));
  held.release();
  assert.equal(pool.stats().cached, 1, "nobody waits, so the buffer goes to the cache");
  // A new waiter after all that is still served.
  const again = take(pool);
  const late = new Tracked(pool.acquire());
  again.release();
  await flush();
  late.value().release();
  assertAllFree(pool);
});

Deno.test("BufferPool.acquire() with an already-aborted signal rejects at once and acquires nothing", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  const warm = take(pool); // fill the cache so that a buffer is ready
  const before = pool.stats();
  const controller = new AbortController();
  const reason = new Error("stop");
  controller.abort(reason);
  const tracked = new Tracked(pool.acquire({ signal: controller.signal }));
  assert.deepEqual(pool.stats(), before, "nothing acquired, nothing queued");
  await flush();
  assert.equal(tracked.reason(), reason);

  // Same when the pool is empty: rejected, not queued.
  const others = [take(pool), take(pool), take(pool)];
  const empty = new Tracked(pool.acquire({ signal: controller.signal }));
  assert.equal(pool.stats().waiters, 0);
  await flush();
  assert.equal(empty.reason(), reason);

  for (const buffer of others) buffer.release();
  warm.release();
  assertAllFree(pool);
});

Deno.test("BufferPool.acquire() aborted without a reason rejects with an AbortError", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const held = take(pool);
  const controller = new AbortController();
  const waiting = new Tracked(pool.acquire({ signal: controller.signal }));
  controller.abort();
  await flush();
  const reason = waiting.reason();
  assert.ok(reason instanceof DOMException);
  assert.equal(reason.name, "AbortError");
  assert.equal(reason, controller.signal.reason);
  held.release();
  assertAllFree(pool);
});

// -- Releasing handles --

Deno.test("PooledBuffer.release() twice throws ReleasedError and leaves the counts alone", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 4 });
  const a = take(pool);
  const b = take(pool);
  a.release();
  const before = pool.stats();
  assert.throws(() => a.release(), ReleasedError);
  assert.throws(() => a.release(), /already released/);
  assert.deepEqual(pool.stats(), before);
  assert.equal(pool.stats().inUse, 1);
  // The other buffer is untouched by the bad release.
  b.bytes[0] = 7;
  b.release();
  assertAllFree(pool);
});

Deno.test("PooledBuffer.bytes after release throws ReleasedError", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const a = take(pool);
  a.release();
  assert.throws(() => a.bytes, (error: unknown) => {
    assert.ok(error instanceof ReleasedError);
    assert.equal(error.name, "ReleasedError");
    assert.match(error.message, /buffer \d+/);
    return true;
  });
  assert.throws(() => a.toPacket(), ReleasedError);
  assert.throws(() => a.intoPacket(), ReleasedError);
  assertAllFree(pool);
});

Deno.test("PooledBuffer[Symbol.dispose]() releases once and is a no-op after release", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const a = take(pool);
  a[Symbol.dispose]();
  assertAllFree(pool);
  const before = pool.stats();
  a[Symbol.dispose](); // no throw, no change
  assert.deepEqual(pool.stats(), before);
  const b = take(pool);
  b.release();
  b[Symbol.dispose]();
  assertAllFree(pool);
});

Deno.test("PooledBuffer with `using` is released at the end of the scope", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  {
    using buffer = take(pool);
    buffer.bytes[0] = 1;
    assert.equal(pool.stats().inUse, 1);
  }
  assertAllFree(pool);
  {
    using buffer = take(pool);
    buffer.release(); // already released by hand: the scope's dispose must not throw
  }
  assertAllFree(pool);
  assert.throws(() => {
    using buffer = take(pool);
    buffer.bytes[0] = 2;
    throw new Error("boom");
  }, /boom/);
  assertAllFree(pool);
});

// -- Handles and packets --

Deno.test("PooledBuffer.toPacket() keeps the buffer in use until the last packet is released", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const buffer = take(pool);
  const p1 = buffer.toPacket(0, 4);
  const p2 = buffer.toPacket(4, 8);
  const whole = buffer.toPacket();
  assert.equal(whole.length, 16);
  buffer.release();
  assert.equal(pool.stats().inUse, 1);
  assert.throws(() => buffer.release(), ReleasedError);
  assert.throws(() => buffer.toPacket(), ReleasedError);
  assert.equal(pool.stats().inUse, 1);
  p2.release();
  assert.equal(pool.stats().inUse, 1);
  whole.release();
  assert.equal(pool.stats().inUse, 1);
  p1.release();
  assertAllFree(pool);
});

Deno.test("PooledBuffer.toPacket() packets released before the handle leave the handle holding it", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const buffer = take(pool);
  const packets = [buffer.toPacket(0, 1), buffer.toPacket(1, 2), buffer.toPacket(2, 16)];
  for (const packet of packets) packet.release();
  assert.equal(pool.stats().inUse, 1);
  buffer.bytes[0] = 3; // still held
  buffer.release();
  assertAllFree(pool);
});

Deno.test("PooledBuffer.intoPacket() moves the handle's reference into the packet", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const buffer = take(pool);
  buffer.bytes.set([1, 2, 3, 4]);
  const packet = buffer.intoPacket(1, 3);
  assert.deepEqual([...packet.bytes], [2, 3]);
  assert.equal(pool.stats().inUse, 1);
  assert.throws(() => buffer.release(), ReleasedError);
  assert.throws(() => buffer.bytes, ReleasedError);
  assert.throws(() => buffer.intoPacket(), ReleasedError);
  buffer[Symbol.dispose](); // no-op: the handle counts as released
  assert.equal(pool.stats().inUse, 1);
  packet.release();
  assertAllFree(pool);
});

Deno.test("PooledBuffer.intoPacket() after toPacket() needs every packet released", () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  const buffer = take(pool);
  const extra = buffer.toPacket(0, 2);
  const owned = buffer.intoPacket();
  assert.equal(owned.length, 16);
  owned.release();
  assert.equal(pool.stats().inUse, 1);
  extra.release();
  assertAllFree(pool);
});

Deno.test("PooledBuffer.intoPacket() default range is the whole buffer", () => {
  const pool = new BufferPool({ bufferSize: 24, bufferCount: 1 });
  const buffer = take(pool);
  const view = buffer.bytes;
  const packet = buffer.intoPacket();
  assert.equal(packet.length, 24);
  assert.equal(packet.bytes.byteOffset, view.byteOffset);
  assert.equal(packet.bytes.buffer, view.buffer);
  packet.release();
  assertAllFree(pool);
});

// -- Packet range errors --

const badRanges: [begin: number, end: number][] = [
  [-1, 4],
  [0, -1],
  [5, 4],
  [0, 17],
  [16, 17],
  [17, 17],
  [0.5, 4],
  [0, 1.5],
  [NaN, 4],
  [0, NaN],
  [0, Infinity],
];

for (const method of ["toPacket", "intoPacket"] as const) {
  Deno.test(`PooledBuffer.${method}() rejects out-of-range or non-integer bounds and leaks nothing`, () => {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2 });
    const buffer = take(pool);
    const before = pool.stats();
    for (const [begin, end] of badRanges) {
      assertRangeError(
        () => buffer[method](begin, end),
        escapeRegExp(`[${begin}, ${end})`),
        /<= 16/,
      );
      assert.deepEqual(pool.stats(), before, `counts changed by ${method}(${begin}, ${end})`);
    }
    // A lone begin past the size fails against the default end.
    assertRangeError(() => buffer[method](17), escapeRegExp("[17, 16)"), /<= 16/);
    assert.deepEqual(pool.stats(), before);
    // The handle is still held after all those errors.
    buffer.bytes[0] = 1;
    const edge = buffer.toPacket(16, 16);
    assert.equal(edge.length, 0);
    edge.release();
    buffer.release();
    assertAllFree(pool);
  });
}

// -- Stale handles (issue 11, defect 7) --
// A handle kept after its release must never reach the buffer's next owner:
// every use throws ReleasedError (dispose does nothing), and the owner's
// bytes, references and the pool's counts stay exactly as they were.

const TIMEOUT_MS = 5_000;

/** Every use of a handle that must fail on a stale one. */
const staleUses: [name: string, use: (buffer: PooledBuffer) => unknown][] = [
  ["release()", (b) => b.release()],
  ["bytes", (b) => b.bytes],
  ["toPacket()", (b) => b.toPacket()],
  ["toPacket(0, 4)", (b) => b.toPacket(0, 4)],
  ["intoPacket()", (b) => b.intoPacket()],
  ["intoPacket(1, 3)", (b) => b.intoPacket(1, 3)],
];

/** A stale handle, and what holds its buffer now: a new handle, a packet, or nothing. */
interface Staleness {
  stale: PooledBuffer;
  owner?: PooledBuffer;
  packet?: Packet;
  /** Buffers held to steer which one is handed out; released at the end. */
  held?: PooledBuffer[];
  /** Pool objects to detach at the end. */
  other?: BufferPool;
}

/** Takes every buffer this pool object can get now. */
function takeAll(pool: BufferPool): PooledBuffer[] {
  const held: PooledBuffer[] = [];
  for (let b = pool.tryAcquire(); b !== null; b = pool.tryAcquire()) held.push(b);
  return held;
}

/** Every way a handle goes stale, leaving its buffer free or with a new holder. */
const stalings: {
  name: string;
  sharedOnly?: boolean;
  make(pool: BufferPool): Promise<Staleness>;
}[] = [
  {
    name: "released, its buffer free",
    make(pool) {
      const stale = take(pool);
      stale.release();
      return Promise.resolve({ stale });
    },
  },
  {
    name: "turned into a packet that still holds the buffer",
    make(pool) {
      const stale = take(pool);
      return Promise.resolve({ stale, packet: stale.intoPacket(0, 4) });
    },
  },
  {
    name: "released, its buffer re-acquired with tryAcquire()",
    make(pool) {
      const stale = take(pool);
      stale.release();
      const owner = take(pool);
      assert.equal(owner.index, stale.index, "the cache hands the same buffer out again");
      return Promise.resolve({ stale, owner });
    },
  },
  {
    name: "turned into packets, its buffer re-acquired once they were released",
    make(pool) {
      const stale = take(pool);
      const packet = stale.intoPacket(0, 4);
      const clone = packet.clone();
      packet.release();
      clone.release();
      const owner = take(pool);
      assert.equal(owner.index, stale.index);
      return Promise.resolve({ stale, owner });
    },
  },
  {
    name: "released into a waiting acquire()",
    async make(pool) {
      const held = takeAll(pool);
      const stale = held.pop()!;
      const waiting = pool.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
      stale.release();
      const owner = await waiting;
      assert.equal(owner.index, stale.index);
      return { stale, owner, held };
    },
  },
  {
    name: "released, its buffer acquired through another pool object",
    sharedOnly: true,
    async make(pool) {
      const other = BufferPool.attach(pool.handle);
      const held = takeAll(pool);
      const stale = held.pop()!;
      stale.release(); // into this object's cache: the other has it trimmed back
      const owner = await other.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
      assert.equal(owner.index, stale.index);
      return { stale, owner, held, other };
    },
  },
];

const staleLayouts: { name: string; options: BufferPoolOptions }[] = [
  { name: "a 1-buffer pool", options: { bufferSize: 16, bufferCount: 1 } },
  { name: "a 4-buffer pool", options: { bufferSize: 16, bufferCount: 4 } },
  { name: "a 1-buffer shared pool", options: { bufferSize: 16, bufferCount: 1, shared: true } },
  { name: "a 4-buffer shared pool", options: { bufferSize: 16, bufferCount: 4, shared: true } },
];

for (const layout of staleLayouts) {
  for (const staling of stalings) {
    if (staling.sharedOnly === true && layout.options.shared !== true) continue;
    Deno.test(
      `PooledBuffer kept after being ${staling.name} throws ReleasedError and touches nothing, on ${layout.name}`,
      async () => {
        const pool = new BufferPool(layout.options);
        const { stale, owner, packet, held = [], other } = await staling.make(pool);
        const pattern = [1, 2, 3, 4, 5, 6, 7, 8];
        (owner?.bytes ?? packet?.bytes)?.set(pattern.slice(0, owner ? 8 : 4));
        const before = pool.stats();

        assert.equal(stale.released, true);
        for (const [name, use] of staleUses) {
          assert.throws(() => use(stale), (error: unknown) => {
            assert.ok(error instanceof ReleasedError, `${name}: ${String(error)}`);
            assert.match(error.message, escapeRegExp(`buffer ${stale.index}:`));
            assert.match(error.message, /already released/);
            return true;
          });
          assert.deepEqual(pool.stats(), before, `${name} on a stale handle changed the counts`);
        }
        stale[Symbol.dispose](); // a no-op, never a release of someone else's reference
        {
          using _scoped = stale; // leaving a `using` scope: the same no-op
        }
        assert.deepEqual(pool.stats(), before, "disposing a stale handle changed the counts");
        assert.ok(stale.index >= 0 && stale.index < pool.bufferCount, "index stays readable");

        if (owner !== undefined) {
          // The owner's handle is live with its bytes, and the buffer comes
          // back exactly when the owner's last reference goes.
          assert.equal(owner.released, false);
          assert.deepEqual([...owner.bytes.subarray(0, 8)], pattern);
          const last = owner.toPacket(0, 4);
          owner.release();
          assert.equal(pool.stats().inUse, before.inUse, "the owner's packet still holds it");
          last.release();
          assert.equal(pool.stats().inUse, before.inUse - 1);
        }
        if (packet !== undefined) {
          assert.equal(packet.released, false);
          assert.deepEqual([...packet.bytes], pattern.slice(0, 4));
          packet.release();
          assert.equal(pool.stats().inUse, before.inUse - 1);
        }
        for (const buffer of held) buffer.release();
        other?.detach();
        assertAllFree(pool);
      },
    );
  }
}

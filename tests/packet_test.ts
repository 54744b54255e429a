import assert from "node:assert/strict";
import {
  BufferPool,
  type Packet,
  type PooledBuffer,
  ReleasedError,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import {
  assertAllFree,
  assertRangeError,
  at,
  escapeRegExp,
  permutations,
  prng,
  take,
} from "./_helpers.ts";

// -- Helpers --
/** Asserts that `fn` throws a ReleasedError mentioning a packet. */
function assertReleased(fn: () => unknown): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ReleasedError, `expected a ReleasedError, got ${String(error)}`);
    assert.equal(error.name, "ReleasedError");
    assert.match(error.message, /packet.*already released/);
    return true;
  });
}

/** Fills `bytes` with 0, 1, 2, ... (mod 256). */
function fillPattern(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = i & 0xff;
}

function range(begin: number, end: number): number[] {
  return Array.from({ length: end - begin }, (_, i) => (begin + i) & 0xff);
}

// -- Bytes, length, released --

Deno.test("Packet.bytes shows exactly its region of the buffer", () => {
  const pool = new BufferPool({ bufferSize: 300, bufferCount: 2 });
  const buffer = take(pool);
  fillPattern(buffer.bytes);
  const regions: [number, number][] = [[0, 300], [0, 1], [10, 30], [299, 300], [256, 290], [5, 5]];
  const packets = regions.map(([b, e]) => buffer.toPacket(b, e));
  regions.forEach(([b, e], i) => {
    const packet = at(packets, i);
    assert.equal(packet.length, e - b);
    assert.equal(packet.bytes.length, e - b);
    assert.deepEqual([...packet.bytes], range(b, e), `region [${b}, ${e})`);
    assert.equal(packet.released, false);
    // Same memory as the buffer, at the right offset.
    assert.equal(packet.bytes.buffer, buffer.bytes.buffer);
    assert.equal(packet.bytes.byteOffset, buffer.bytes.byteOffset + b);
  });
  buffer.release();
  for (const packet of packets) {
    packet.release();
    assert.equal(packet.released, true);
  }
  assertAllFree(pool);
});

Deno.test("Packet.bytes returns the same view on every read", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const packet = take(pool).intoPacket(4, 12);
  assert.equal(packet.bytes, packet.bytes);
  packet.release();
  assertAllFree(pool);
});

Deno.test("Packet.bytes sees writes made later through the buffer handle", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const buffer = take(pool);
  const packet = buffer.toPacket(8, 16);
  const view = packet.bytes; // made before the write
  buffer.bytes.fill(0xab, 8, 16);
  assert.deepEqual([...view], new Array(8).fill(0xab));
  packet.release();
  buffer.release();
  assertAllFree(pool);
});

// -- Many packets on one buffer --

type Maker = (buffer: PooledBuffer, made: Packet[]) => Packet;

/** Four ways to get a packet on one buffer; later ones build on earlier ones. */
const makers: Maker[] = [
  (buffer) => buffer.toPacket(4, 60),
  (_, made) => at(made, 0).clone(),
  (_, made) => at(made, 0).subarray(8, 40),
  (_, made) => at(made, 2).subarray(4, 12),
];

/** The buffer regions of the packets that `makers` make. */
const expectedRegions: [number, number][] = [[4, 60], [4, 60], [12, 44], [16, 24]];

Deno.test("Packet release in all 120 orders of 4 packets + the handle returns the buffer only after the last", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2, batchSize: 1 });
  const orders = permutations([0, 1, 2, 3, 4]); // 4 = the handle
  assert.equal(orders.length, 120);
  for (const order of orders) {
    const buffer = take(pool);
    fillPattern(buffer.bytes);
    const packets: Packet[] = [];
    for (const make of makers) packets.push(make(buffer, packets));
    assert.deepEqual([...at(packets, 3).bytes], range(16, 24));
    assert.equal(pool.stats().inUse, 1);

    order.forEach((which, step) => {
      if (which === 4) buffer.release();
      else at(packets, which).release();
      const last = step === order.length - 1;
      assert.equal(
        pool.stats().inUse,
        last ? 0 : 1,
        `order ${order.join(",")}: inUse wrong after release ${step + 1}`,
      );
      // Whatever is still alive still reads its own bytes.
      for (let i = step + 1; i < order.length; i++) {
        const alive = at(order, i);
        if (alive === 4) continue;
        const [b, e] = at(expectedRegions, alive);
        assert.deepEqual([...at(packets, alive).bytes], range(b, e));
      }
    });
    for (const packet of packets) assert.equal(packet.released, true);
    assertAllFree(pool);
  }
  assertAllFree(pool);
});

Deno.test("Packet release of 8 mixed packets + the handle in 500 random orders returns the buffer only after the last", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 3, batchSize: 1 });
  const random = prng(42);
  const other = take(pool); // a second buffer in use throughout, to tell the two apart
  for (let round = 0; round < 500; round++) {
    const buffer = take(pool);
    fillPattern(buffer.bytes);
    const first = buffer.toPacket(0, 64);
    const packets: Packet[] = [
      first,
      buffer.toPacket(32, 48),
      first.clone(),
      first.subarray(10, 50),
    ];
    packets.push(at(packets, 3).subarray(5, 20)); // buffer [15, 30)
    packets.push(at(packets, 4).subarray(1, 3)); // buffer [16, 18)
    packets.push(at(packets, 4).clone());
    packets.push(at(packets, 1).subarray()); // buffer [32, 48)
    assert.equal(packets.length, 8);
    assert.deepEqual([...at(packets, 5).bytes], [16, 17]);
    assert.deepEqual([...at(packets, 7).bytes], range(32, 48));

    const live: (Packet | PooledBuffer)[] = [...packets, buffer];
    while (live.length > 0) {
      const i = random(live.length);
      const item = at(live, i);
      live.splice(i, 1);
      item.release();
      assert.equal(pool.stats().inUse, live.length === 0 ? 1 : 2, `round ${round}`);
    }
  }
  other.release();
  assertAllFree(pool);
});

// -- subarray --

Deno.test("Packet.subarray() accepts the edges of the packet", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const buffer = take(pool);
  fillPattern(buffer.bytes);
  const packet = buffer.intoPacket(10, 30); // length 20
  const cases: [begin: number, end: number | undefined, expected: number[]][] = [
    [0, 0, []],
    [20, 20, []],
    [0, 20, range(10, 30)],
    [0, undefined, range(10, 30)],
    [5, undefined, range(15, 30)],
    [19, 20, [29]],
    [7, 9, [17, 18]],
  ];
  for (const [begin, end, expected] of cases) {
    const sub = end === undefined ? packet.subarray(begin) : packet.subarray(begin, end);
    assert.equal(sub.length, expected.length, `subarray(${begin}, ${end})`);
    assert.deepEqual([...sub.bytes], expected, `subarray(${begin}, ${end})`);
    sub.release();
  }
  const whole = packet.subarray();
  assert.deepEqual([...whole.bytes], range(10, 30));
  whole.release();
  assert.equal(pool.stats().inUse, 1);
  packet.release();
  assertAllFree(pool);
});

Deno.test("Packet.subarray() offsets are relative to the parent packet, at every level", () => {
  const pool = new BufferPool({ bufferSize: 128, bufferCount: 1 });
  const buffer = take(pool);
  fillPattern(buffer.bytes);
  const a = buffer.intoPacket(20, 100); // buffer [20, 100)
  const b = a.subarray(10, 60); // buffer [30, 80)
  const c = b.subarray(5, 25); // buffer [35, 55)
  const d = c.subarray(3); // buffer [38, 55)
  const dCopy = d.clone();
  const e = dCopy.subarray(1, 2); // buffer [39, 40)
  assert.deepEqual([...b.bytes], range(30, 80));
  assert.deepEqual([...c.bytes], range(35, 55));
  assert.deepEqual([...d.bytes], range(38, 55));
  assert.deepEqual([...e.bytes], [39]);
  assert.equal(c.bytes.byteOffset - a.bytes.byteOffset, 15);
  // Bounds are checked against the packet, not the buffer.
  assertRangeError(() => c.subarray(0, 21), /<= 20/);
  for (const p of [a, b, c, d, e]) p.release();
  assert.equal(pool.stats().inUse, 1, "the clone that e was cut from still holds the buffer");
  dCopy.release();
  assertAllFree(pool);
});

Deno.test("Packet.subarray() rejects out-of-range or non-integer bounds and leaks nothing", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
  const packet = take(pool).intoPacket(10, 30); // length 20
  const before = pool.stats();
  const bad: [begin: number, end: number][] = [
    [-1, 5],
    [0, -1],
    [3, 2],
    [0, 21],
    [20, 21],
    [21, 21],
    [0.5, 5],
    [0, 2.5],
    [NaN, 5],
    [0, NaN],
    [-Infinity, 5],
    [0, Infinity],
  ];
  for (const [begin, end] of bad) {
    assertRangeError(
      () => packet.subarray(begin, end),
      escapeRegExp(`slice a packet at [${begin}, ${end})`),
      /<= 20/,
    );
    assert.deepEqual(pool.stats(), before, `subarray(${begin}, ${end}) changed the counts`);
  }
  // A lone begin past the end fails against the default end.
  assertRangeError(() => packet.subarray(21), escapeRegExp("[21, 20)"), /<= 20/);
  assertRangeError(() => packet.subarray(-1), escapeRegExp("[-1, 20)"));
  assert.deepEqual(pool.stats(), before);
  // The packet still holds exactly one reference: one release frees the buffer.
  assert.equal(packet.released, false);
  packet.release();
  assertAllFree(pool);
});

Deno.test("Packet.subarray() on an empty packet allows only [0, 0)", () => {
  const pool = new BufferPool({ bufferSize: 8, bufferCount: 1 });
  const empty = take(pool).intoPacket(8, 8);
  assert.equal(empty.length, 0);
  assert.equal(empty.bytes.length, 0);
  const sub = empty.subarray();
  assert.equal(sub.length, 0);
  sub.release();
  assertRangeError(() => empty.subarray(0, 1), /<= 0/);
  assertRangeError(() => empty.subarray(1), /<= 0/);
  empty.release();
  assertAllFree(pool);
});

// -- Released packets --

Deno.test("Packet.release() twice throws ReleasedError and leaves the counts alone", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
  const buffer = take(pool);
  const a = buffer.toPacket(0, 8);
  const b = buffer.toPacket(8, 16);
  a.release();
  const before = pool.stats();
  assertReleased(() => a.release());
  assertReleased(() => a.release());
  assert.deepEqual(pool.stats(), before);
  // Had the bad releases dropped references, the buffer would be back by now.
  buffer.release();
  assert.equal(pool.stats().inUse, 1, "b must still hold the buffer");
  assert.equal(b.bytes.length, 8);
  b.release();
  assertAllFree(pool);
});

Deno.test("Packet after release: bytes, clone and subarray throw ReleasedError; length and released still read", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
  const buffer = take(pool);
  const keep = buffer.toPacket(0, 4);
  const packet = buffer.intoPacket(4, 20);
  const view = packet.bytes; // read before release: the view made then
  assert.equal(view.length, 16);
  packet.release();
  const before = pool.stats();
  assert.equal(before.inUse, 1);
  assertReleased(() => packet.bytes);
  assertReleased(() => packet.clone());
  assertReleased(() => packet.subarray());
  assertReleased(() => packet.subarray(0, 1));
  // Range errors do not take precedence over the released state.
  assertReleased(() => packet.subarray(-1, 100));
  assert.equal(packet.length, 16);
  assert.equal(packet.released, true);
  assert.deepEqual(pool.stats(), before, "the failed calls took or dropped references");
  keep.release();
  assertAllFree(pool);
});

Deno.test("Packet[Symbol.dispose]() releases once and is a no-op after release", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const a = take(pool).intoPacket();
  const b = a.clone();
  a[Symbol.dispose]();
  assert.equal(a.released, true);
  assert.equal(pool.stats().inUse, 1);
  a[Symbol.dispose](); // no throw, and must not drop b's reference
  assert.equal(pool.stats().inUse, 1);
  b.release();
  b[Symbol.dispose]();
  assertAllFree(pool);
});

Deno.test("Packet with `using` is released at the end of the scope, even after a manual release", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const buffer = take(pool);
  {
    using packet = buffer.toPacket(0, 4);
    using sub = packet.subarray(1, 3);
    assert.equal(sub.length, 2);
    using early = packet.clone();
    early.release(); // disposing it again at scope end must be a no-op
  }
  assert.equal(pool.stats().inUse, 1);
  buffer.release();
  assertAllFree(pool);
  assert.throws(() => {
    using packet = take(pool).intoPacket(0, 8);
    packet.bytes[0] = 1;
    throw new Error("boom");
  }, /boom/);
  assertAllFree(pool);
});

// -- Shared memory --

Deno.test("Packet writes through bytes are visible through clones, subarrays and the buffer (no copy)", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const buffer = take(pool);
  buffer.bytes.fill(0);
  const packet = buffer.toPacket(16, 32);
  const copy = packet.clone();
  const sub = copy.subarray(4, 8); // buffer [20, 24)
  packet.bytes.set([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...copy.bytes.subarray(0, 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...sub.bytes], [5, 6, 7, 8]);
  assert.equal(buffer.bytes[16], 1);
  sub.bytes[0] = 0xff;
  assert.equal(packet.bytes[4], 0xff);
  assert.equal(copy.bytes[4], 0xff);
  assert.equal(buffer.bytes[20], 0xff);
  assert.equal(buffer.bytes[15], 0, "nothing written before the packet");
  assert.equal(buffer.bytes[32], 0, "nothing written after the packet");
  assert.equal(copy.bytes.buffer, packet.bytes.buffer);
  assert.equal(copy.bytes.byteOffset, packet.bytes.byteOffset);
  for (const p of [packet, copy, sub]) p.release();
  buffer.release();
  assertAllFree(pool);
});

// -- Reuse --

Deno.test("Packet-returned buffer re-acquired gives a handle whose release works", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const first = take(pool);
  const packet = first.intoPacket(0, 8);
  const clone = packet.clone();
  packet.release();
  clone.release();
  assertAllFree(pool);

  const again = take(pool);
  assert.equal(again.index, first.index);
  assert.notEqual(again, first, "each acquire makes a new handle");
  assert.equal(again.bytes.length, 32);
  assert.equal(pool.stats().inUse, 1);
  // Stale packets from the buffer's previous life stay dead and touch nothing.
  assertReleased(() => packet.release());
  assertReleased(() => clone.bytes);
  clone[Symbol.dispose]();
  assert.equal(pool.stats().inUse, 1);

  const fresh = again.toPacket(0, 4);
  again.release();
  assert.equal(pool.stats().inUse, 1);
  fresh.release();
  assertAllFree(pool);
  assert.throws(() => again.release(), ReleasedError);

  // And once more through intoPacket.
  const third = take(pool);
  third.intoPacket().release();
  assertAllFree(pool);
});

Deno.test("Packet-returned buffer goes straight to a waiting acquire()", async () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1 });
  const packet = take(pool).intoPacket(0, 8);
  const sub = packet.subarray(2, 4);
  const waiting = pool.acquire();
  packet.release();
  assert.equal(pool.stats().waiters, 1, "one packet still holds the buffer");
  sub.release();
  assert.equal(pool.stats().waiters, 0);
  const buffer = await waiting;
  assert.equal(buffer.bytes.length, 32);
  assert.equal(pool.stats().inUse, 1);
  buffer.release();
  assertAllFree(pool);
});

// -- The README's promises for released packets and ranges --

Deno.test("Packet released, its buffer re-owned: release, bytes, clone, subarray, send and sendBatch throw ReleasedError and leave the counts", () => {
  const pool = new BufferPool({ bufferSize: 32, bufferCount: 1, shared: true });
  const stale = take(pool).intoPacket(0, 8);
  const staleClone = stale.clone();
  stale.release();
  staleClone.release();
  const owner = take(pool).intoPacket(0, 8); // the same buffer, a new owner
  owner.bytes.fill(7);
  const before = pool.stats();
  for (const dead of [stale, staleClone]) {
    assertReleased(() => dead.release());
    assertReleased(() => dead.bytes);
    assertReleased(() => dead.clone());
    assertReleased(() => dead.subarray());
    assertReleased(() => dead.subarray(0, 1));
    assertReleased(() => dead.send());
    assertReleased(() => pool.sendBatch([dead]));
    dead[Symbol.dispose]();
    assert.deepEqual(pool.stats(), before);
  }
  assert.deepEqual([...owner.bytes], [7, 7, 7, 7, 7, 7, 7, 7]);
  owner.release();
  assertAllFree(pool);
});

Deno.test("Packet and PooledBuffer ranges are checked, not clamped: subarray(-1) and toPacket(0, 9000) on an 8192-byte buffer say the limit", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const buffer = take(pool);
  const packet = buffer.toPacket();
  const before = pool.stats();
  assertRangeError(() => packet.subarray(-1), escapeRegExp("[-1, 8192)"), /<= 8192/);
  assertRangeError(() => buffer.toPacket(0, 9000), escapeRegExp("[0, 9000)"), /<= 8192/);
  assertRangeError(() => buffer.intoPacket(0, 9000), escapeRegExp("[0, 9000)"), /<= 8192/);
  assert.deepEqual(pool.stats(), before);
  assert.equal(buffer.released, false, "a refused intoPacket keeps the handle");
  packet.release();
  buffer.release();
  assertAllFree(pool);
});

Deno.test("FlushRegion released, its buffer re-owned: release, bytes and toPacket throw ReleasedError and leave the counts", async () => {
  const pool = new BufferPool({ bufferSize: 16, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher, { flush: "manual" });
  const reader = flusher.readable.getReader();
  assert.ok(writer.tryWrite(new Uint8Array([1, 2, 3])));
  writer.close(); // flushes, and lets go of the buffer
  const { value: batch } = await reader.read();
  const [region] = batch!;
  assert.equal(batch!.length, 1);
  const packet = region!.toPacket(1, 3);
  region!.release();
  packet.release();
  assert.equal(pool.stats().inUse, 0);
  const owner = take(pool); // the same buffer, a new owner
  owner.bytes.fill(9);
  const before = pool.stats();
  for (const use of [() => region!.release(), () => region!.bytes, () => region!.toPacket()]) {
    assert.throws(use, (error: unknown) => {
      assert.ok(error instanceof ReleasedError, String(error));
      assert.match(error.message, /flush region.*already released/);
      return true;
    });
  }
  region![Symbol.dispose]();
  assert.equal(region!.released, true);
  assert.deepEqual(pool.stats(), before);
  assert.deepEqual([...owner.bytes], new Array(16).fill(9));
  owner.release();
  flusher.close();
  assert.equal((await reader.read()).done, true);
  assertAllFree(pool);
});

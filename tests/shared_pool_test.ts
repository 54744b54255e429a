import assert from "node:assert/strict";
import {
  BufferPool,
  type BufferPoolOptions,
  type BufferPoolStats,
  DetachedError,
  type Packet,
  type PooledBuffer,
  ReleasedError,
  type SendPacket,
} from "../mod.ts";
import { assertRangeError, at, permutations, prng, take, Tracked } from "./_helpers.ts";
import { checksum, type PoolWorker, type Reply, withWorkers } from "./_worker_helpers.ts";

// -- Helpers --

/** How long any single wait may take before the test fails instead of hanging. */
const TIMEOUT_MS = 5_000;

function sharedPool(options: Omit<BufferPoolOptions, "shared">): BufferPool {
  return new BufferPool({ ...options, shared: true });
}

/** Asserts that, seen from `pool`, every buffer is back and nobody waits anywhere. */
function assertAllBack(pool: BufferPool): void {
  const s = pool.stats();
  assert.equal(s.inUse, 0, "buffers still in use");
  assert.equal(s.free, s.bufferCount);
  assert.equal(s.waiters, 0);
  assert.equal(s.waitingWorkers, 0);
}

/** Buffers on the free stack itself: free minus every attached worker's cache. */
function freeStack(s: BufferPoolStats): number {
  return s.free - s.cachedByWorker.reduce((sum, n) => sum + Math.max(n, 0), 0);
}

/** Asserts that `fn` throws an instance of `type` whose message matches every pattern. */
function assertThrowsA(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
  ...patterns: RegExp[]
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

/** The reply's stats, which the worker sends while it is attached. */
function statsOf(reply: { stats: BufferPoolStats | null }): BufferPoolStats {
  assert.ok(reply.stats !== null, "the worker is not attached");
  return reply.stats;
}

/** Fills `bytes` with `seed`, `seed + 1`, ... (mod 256). */
function fillFrom(bytes: Uint8Array, seed: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seed + i) & 0xff;
}

function pattern(length: number, seed: number): number[] {
  return Array.from({ length }, (_, i) => (seed + i) & 0xff);
}

// ---------------------------------------------------------------------------
// One thread, several pool objects on the same block
// ---------------------------------------------------------------------------

// -- attach and detach --

Deno.test("BufferPool.attach() makes a second pool object on the same memory with its own cache", () => {
  const pool = sharedPool({ bufferSize: 64, bufferCount: 16, batchSize: 4, maxWorkers: 4 });
  assert.equal(pool.shared, true);
  const other = BufferPool.attach(pool.handle);
  assert.equal(other.shared, true);
  assert.equal(other.bufferSize, 64);
  assert.equal(other.bufferCount, 16);
  assert.equal(other.batchSize, 4);
  assert.equal(other.handle.block, pool.handle.block, "the same block, not a copy");

  for (const p of [pool, other]) {
    const s = p.stats();
    assert.equal(s.workers, 2);
    assert.deepEqual(s.cachedByWorker, [0, 0, -1, -1]);
  }

  const buffer = take(other);
  assert.equal(other.stats().cached, 3, "a refill of one batch into the attached cache");
  assert.equal(pool.stats().cached, 0, "the creator's cache is untouched");
  assert.deepEqual(pool.stats().cachedByWorker, [0, 3, -1, -1]);
  assert.equal(pool.stats().inUse, 1);
  assert.equal(other.stats().inUse, 1);

  buffer.release();
  assert.deepEqual(pool.stats().cachedByWorker, [0, 4, -1, -1]);
  assertAllBack(pool);
  assertAllBack(other);

  other.detach();
  assert.equal(pool.stats().workers, 1);
  assert.deepEqual(pool.stats().cachedByWorker, [0, -1, -1, -1]);
  assertAllBack(pool);
});

Deno.test("BufferPool.attach() reuses a detached slot and throws a RangeError naming maxWorkers when all are taken", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 12, batchSize: 2, maxWorkers: 3 });
  const a = BufferPool.attach(pool.handle);
  const b = BufferPool.attach(pool.handle);
  assert.equal(pool.stats().workers, 3);
  const full = /all 3 worker slots are taken/;
  assertRangeError(() => BufferPool.attach(pool.handle), full, /maxWorkers/);
  assert.equal(pool.stats().workers, 3, "a failed attach claims nothing");

  take(b).release(); // b (slot 2) caches a batch
  assert.deepEqual(pool.stats().cachedByWorker, [0, 0, 2]);

  a.detach();
  assert.equal(pool.stats().workers, 2);
  assert.deepEqual(pool.stats().cachedByWorker, [0, -1, 2]);

  const c = BufferPool.attach(pool.handle); // takes slot 1 again
  assert.equal(pool.stats().workers, 3);
  const held = take(c);
  assert.deepEqual(pool.stats().cachedByWorker, [0, 1, 2], "c publishes into slot 1");
  assertRangeError(() => BufferPool.attach(pool.handle), full);

  // Detaching a again is a no-op: it must not free the slot c now owns.
  a.detach();
  assert.equal(pool.stats().workers, 3);
  assertRangeError(() => BufferPool.attach(pool.handle), full);

  held.release();
  b.detach();
  c.detach();
  assert.equal(pool.stats().workers, 1);
  const d = BufferPool.attach(pool.handle);
  assert.equal(pool.stats().workers, 2);
  d.detach();
  assertAllBack(pool);
});

Deno.test("BufferPool.attach() also works after the creating pool object detached", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1, maxWorkers: 1 });
  const handle = pool.handle;
  assertRangeError(() => BufferPool.attach(handle), /all 1 worker slots are taken/);
  take(pool).release();
  pool.detach();
  const other = BufferPool.attach(handle); // slot 0, freed by the creator
  const s = other.stats();
  assert.equal(s.workers, 1);
  assert.deepEqual(s.cachedByWorker, [0]);
  assert.equal(s.free, 4, "the creator's cache went back to the free stack");
  const buffers = [take(other), take(other), take(other), take(other)];
  assert.equal(other.tryAcquire(), null);
  for (const buffer of buffers) buffer.release();
  other.detach();
  const after = other.stats();
  assert.equal(after.workers, 0);
  assert.equal(after.inUse, 0);
  assert.equal(after.free, 4);
});

Deno.test("BufferPool.attach() rejects a bogus handle with a TypeError", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4 });
  // A block that looks like a pool but has another layout version.
  const versioned = new SharedArrayBuffer(pool.handle.block.byteLength);
  new Uint8Array(versioned).set(new Uint8Array(pool.handle.block));
  new Int32Array(versioned)[1] = 99;

  const noBlock = /holds no SharedArrayBuffer/;
  const notBab = /not a bab pool of layout version \d+/;
  const cases: [what: string, handle: unknown, pattern: RegExp][] = [
    ["undefined", undefined, noBlock],
    ["null", null, noBlock],
    ["an empty object", {}, noBlock],
    ["an ArrayBuffer block", { block: new ArrayBuffer(4096) }, noBlock],
    ["a typed array block", { block: new Int32Array(new SharedArrayBuffer(4096)) }, noBlock],
    ["a block too small", { block: new SharedArrayBuffer(16) }, noBlock],
    ["a zeroed block", { block: new SharedArrayBuffer(4096) }, notBab],
    ["another layout version", { block: versioned }, notBab],
  ];
  for (const [what, handle, pattern] of cases) {
    assert.throws(
      () => BufferPool.attach(handle as never),
      (error: unknown) => {
        assert.ok(error instanceof TypeError, `${what}: got ${String(error)}`);
        assert.match(error.message, pattern, what);
        return true;
      },
    );
  }
  assert.equal(pool.stats().workers, 1, "no failed attach claimed a slot");
  assertAllBack(pool);
});

Deno.test("BufferPool.handle, send() and detach() of a pool that is not shared throw a TypeError", () => {
  const local = new BufferPool({ bufferSize: 16, bufferCount: 2 });
  assert.equal(local.shared, false);
  assertThrowsA(() => local.handle, TypeError, /without shared: true/);
  assertThrowsA(() => local.detach(), TypeError, /not shared/);

  const packet = take(local).intoPacket(0, 4);
  packet.bytes.set([1, 2, 3, 4]);
  assertThrowsA(() => packet.send(), TypeError, /without shared: true/);
  assert.equal(packet.released, false, "a failed send keeps the packet");
  assert.deepEqual([...packet.bytes], [1, 2, 3, 4]);
  assert.equal(local.stats().inUse, 1);
  packet.release();
  const s = local.stats();
  assert.equal(s.inUse, 0);
  assert.equal(s.free, 2);
  assert.equal(s.workers, 1);
});

// -- send and receive --

Deno.test("Packet.send() and BufferPool.receive() move a packet between pool objects with no copy", () => {
  const pool = sharedPool({ bufferSize: 32, bufferCount: 4, batchSize: 1 });
  const other = BufferPool.attach(pool.handle);
  const buffer = take(pool);
  fillFrom(buffer.bytes, 0);
  const kept = buffer.toPacket(4, 20);
  const sent = buffer.intoPacket(4, 20).send();

  // Plain data that survives structured cloning.
  assert.deepEqual(structuredClone(sent), sent);
  assert.equal(Object.getPrototypeOf(sent), Object.prototype);
  assert.equal(sent.index, buffer.index);
  assert.equal(sent.offset, 4);
  assert.equal(sent.length, 16);
  assert.equal(pool.stats().inUse, 1);

  const got = other.receive(structuredClone(sent));
  assert.equal(got.length, 16);
  assert.deepEqual([...got.bytes], pattern(16, 4));
  assert.equal(got.bytes.buffer, pool.handle.block, "a view of the shared block");
  assert.equal(got.bytes.byteOffset, kept.bytes.byteOffset);

  // Writes through either side show on the other: one memory.
  got.bytes.fill(0xab);
  assert.deepEqual([...kept.bytes], new Array(16).fill(0xab));
  kept.bytes[0] = 0x11;
  assert.equal(got.bytes[0], 0x11);

  got.release();
  assert.equal(pool.stats().inUse, 1, "the sender's packet still holds it");
  kept.release();
  assertAllBack(pool);
  other.detach();
  assertAllBack(pool);
});

Deno.test("BufferPool.receive() of a SendPacket already received throws ReleasedError everywhere and changes nothing", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const b = BufferPool.attach(pool.handle);
  const c = BufferPool.attach(pool.handle);
  const sent = take(pool).intoPacket().send();
  const packet = b.receive(sent);
  const before = [pool.stats(), b.stats(), c.stats()];
  for (const receiver of [b, pool, c]) {
    assertThrowsA(() => receiver.receive(sent), ReleasedError, /already received/);
    assertThrowsA(() => receiver.receive(structuredClone(sent)), ReleasedError);
  }
  assert.deepEqual([pool.stats(), b.stats(), c.stats()], before);
  packet.release();
  b.detach();
  c.detach();
  assertAllBack(pool);
});

Deno.test("BufferPool.receive() refuses a stale SendPacket whose ticket was reused by a later send", () => {
  // One ticket per worker: every send reuses it with a new stamp.
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1, maxInFlight: 1 });
  const other = BufferPool.attach(pool.handle);
  const first = take(pool).intoPacket().send();
  other.receive(first).release();
  const second = take(pool).intoPacket().send();
  assert.equal(second.ticket, first.ticket);
  assert.notEqual(second.stamp, first.stamp);
  assertThrowsA(() => other.receive(first), ReleasedError);
  assert.equal(pool.stats().inUse, 1);
  other.receive(second).release();
  other.detach();
  assertAllBack(pool);
});

Deno.test(
  "BufferPool.receive() refuses a packet of another pool, or into a pool that is not shared, with a TypeError",
  () => {
    const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
    const stranger = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
    const local = new BufferPool({ bufferSize: 16, bufferCount: 4 });
    const sent = take(pool).intoPacket(2, 6).send();

    assertThrowsA(
      () => stranger.receive(sent),
      TypeError,
      /sent from pool \d+, and this is pool \d+/,
    );
    assertThrowsA(() => local.receive(sent), TypeError, /a pool that is not shared/);
    assert.equal(stranger.stats().inUse, 0);
    assert.equal(local.stats().inUse, 0);

    // A region outside the pool, on the right pool id.
    const badRegions: Partial<Record<keyof SendPacket, number>>[] = [
      { index: 4 },
      { index: -1 },
      { index: 0.5 },
      { offset: 12, length: 5 },
      { length: 17 },
      { offset: -1 },
    ];
    for (const fields of badRegions) {
      assertThrowsA(() => pool.receive({ ...sent, ...fields }), TypeError, /outside this pool/);
    }
    // A ticket that does not exist cannot have been sent.
    for (const ticket of [-1, 0.5, 2 ** 31, 16 * 16384]) {
      assert.throws(
        () => pool.receive({ ...sent, ticket }),
        (error: unknown) => error instanceof ReleasedError || error instanceof TypeError,
        `ticket ${ticket}`,
      );
    }
    assert.equal(pool.stats().inUse, 1);

    // None of that consumed the SendPacket.
    const packet = pool.receive(sent);
    assert.equal(packet.length, 4);
    packet.release();
    assertAllBack(pool);
    assertAllBack(stranger);
  },
);

Deno.test("BufferPool.receive() refuses a SendPacket whose stamp was never issued (0)", () => {
  // No send ever stamps a ticket 0: 0 is what a free ticket holds. A
  // SendPacket claiming stamp 0 (built by hand, or a zeroed record) must not
  // be received, or it would hand out references to buffers nobody sent.
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const other = BufferPool.attach(pool.handle);
  const sent = take(pool).intoPacket().send();
  assert.notEqual(sent.stamp, 0);
  other.receive(sent).release();
  assertAllBack(pool);

  const before = pool.stats();
  let forged: Packet | undefined;
  assert.throws(() => {
    forged = other.receive({ ...sent, stamp: 0 });
  }, (error: unknown) => error instanceof ReleasedError || error instanceof TypeError);
  forged?.release();
  assert.deepEqual(pool.stats(), before);
  other.detach();
  assertAllBack(pool);
});

Deno.test("Packet.send() beyond maxInFlight throws a RangeError and leaks nothing", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 8, batchSize: 2, maxInFlight: 3 });
  const other = BufferPool.attach(pool.handle);
  const flights = [0, 1, 2].map((i) => {
    const buffer = take(pool);
    buffer.bytes.fill(i);
    return buffer.intoPacket().send();
  });
  assert.equal(new Set(flights.map((f) => f.ticket)).size, 3);

  const extra = take(pool).intoPacket(0, 8);
  extra.bytes.fill(9);
  const before = [pool.stats(), other.stats()];
  assertRangeError(() => extra.send(), /already has 3 \w+ in flight \(maxInFlight\)/);
  assertRangeError(() => extra.send(), /maxInFlight/);
  assert.equal(extra.released, false, "the packet stays with the sender");
  assert.deepEqual([...extra.bytes], new Array(8).fill(9));
  assert.deepEqual([pool.stats(), other.stats()], before, "nothing leaked or moved");

  // The limit is per worker: the other pool object still has its tickets.
  const back = take(other).intoPacket().send();
  pool.receive(back).release();

  // Receiving one of the three frees a ticket for the extra packet.
  const first = other.receive(at(flights, 0));
  assert.deepEqual([...first.bytes], new Array(16).fill(0));
  const extraSent = extra.send();
  assert.equal(extraSent.ticket, at(flights, 0).ticket);
  const received = [first, ...flights.slice(1).map((f) => other.receive(f))];
  received.push(other.receive(extraSent));
  assert.deepEqual(received.map((p) => p.bytes[0]), [0, 1, 2, 9]);
  assert.equal(pool.stats().inUse, 4);
  for (const packet of received) packet.release();

  // Over many rounds only what is in flight counts.
  for (let round = 0; round < 50; round++) {
    const sent = [take(pool), take(pool), take(pool)].map((b) => b.intoPacket().send());
    for (const s of sent) other.receive(s).release();
  }
  other.detach();
  assertAllBack(pool);
});

// -- Batches of packets --

Deno.test("BufferPool.sendBatch() and receiveBatch() move packets in order, sharing buffers, with no copy", () => {
  const pool = sharedPool({ bufferSize: 32, bufferCount: 4, batchSize: 1 });
  const other = BufferPool.attach(pool.handle);
  const a = take(pool);
  const b = take(pool);
  fillFrom(a.bytes, 0);
  fillFrom(b.bytes, 100);
  // Three packets on a, one on b, then a again: runs of one buffer and a return to it.
  const packets = [
    a.toPacket(0, 4),
    a.toPacket(4, 8),
    a.toPacket(8, 32),
    b.intoPacket(1, 3),
    a.intoPacket(30),
  ];
  const batch = pool.sendBatch(packets);
  assert.ok(packets.every((p) => p.released), "each sent packet counts as released");
  assert.equal(batch.regions.length, 15);
  assert.deepEqual(structuredClone(batch), batch);
  assert.equal(pool.stats().inUse, 2, "in flight, still in use");

  const got = other.receiveBatch(structuredClone(batch));
  assert.deepEqual(got.map((p) => p.length), [4, 4, 24, 2, 2]);
  assert.deepEqual([...at(got, 2).bytes], pattern(24, 8));
  assert.deepEqual([...at(got, 3).bytes], pattern(2, 101));
  assert.equal(at(got, 0).bytes.buffer, pool.handle.block);
  assertThrowsA(() => other.receiveBatch(batch), ReleasedError, /already received/);
  assertThrowsA(() => pool.receiveBatch(batch), ReleasedError);

  // The buffer of a comes back only after its fourth packet is released.
  for (const i of [0, 1, 3, 2]) at(got, i).release();
  assert.equal(pool.stats().inUse, 1);
  at(got, 4).release();
  other.detach();
  assertAllBack(pool);
});

Deno.test("BufferPool.sendBatch() refuses a released, repeated or foreign packet and sends none of the batch", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const stranger = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const live = take(pool).intoPacket();
  const twice = take(pool).intoPacket();
  const gone = take(pool).intoPacket();
  gone.release();
  const foreign = take(stranger).intoPacket();
  const before = pool.stats();

  assertThrowsA(() => pool.sendBatch([live, gone]), ReleasedError);
  assertThrowsA(() => pool.sendBatch([live, twice, twice]), TypeError, /in the batch twice/);
  assertThrowsA(() => pool.sendBatch([live, foreign]), TypeError, /another pool/);
  assert.deepEqual(pool.stats(), before);
  assert.ok(!live.released && !twice.released, "the good packets stay with the sender");

  // A clone is another packet: sending both is fine.
  const batch = pool.sendBatch([live, twice, twice.clone()]);
  const got = pool.receiveBatch(batch);
  for (const packet of got) packet.release();
  foreign.release();
  assertAllBack(pool);
  assertAllBack(stranger);
});

Deno.test("BufferPool.receiveBatch() refuses malformed regions and batches of another pool, consuming nothing", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const stranger = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const batch = pool.sendBatch([take(pool).intoPacket(0, 8)]);
  const bad = [
    new Int32Array([0, 0]),
    new Int32Array([4, 0, 1]),
    new Int32Array([0, 10, 7]),
  ];
  for (const regions of bad) {
    assertThrowsA(() => pool.receiveBatch({ ...batch, regions }), TypeError);
  }
  assertThrowsA(
    () => pool.receiveBatch({ ...batch, regions: [0, 0, 8] as unknown as Int32Array }),
    TypeError,
    /Int32Array/,
  );
  assertThrowsA(() => stranger.receiveBatch(batch), TypeError, /pool \d+/);
  const empty = pool.sendBatch([]);
  assert.deepEqual(pool.receiveBatch(empty), []);
  assertThrowsA(() => pool.receiveBatch(empty), ReleasedError);

  const [packet] = pool.receiveBatch(batch);
  assert.equal(packet?.length, 8);
  packet?.release();
  assertAllBack(pool);
  assertAllBack(stranger);
});

// -- Reference counts shared across pool objects --

Deno.test("A sent buffer comes back only after the last reference anywhere, in every release order", () => {
  const pool = sharedPool({ bufferSize: 32, bufferCount: 8, batchSize: 2, maxWorkers: 3 });
  const b = BufferPool.attach(pool.handle);
  const c = BufferPool.attach(pool.handle);
  const names = ["handle in A", "clone in A", "packet in B", "clone in B", "packet in C"] as const;
  type Name = typeof names[number];

  let orders = 0;
  for (const order of permutations(names)) {
    const buffer = take(pool);
    fillFrom(buffer.bytes, orders);
    const toB = buffer.toPacket(0, 16);
    const toC = buffer.toPacket(8, 32);
    const cloneA = toB.clone();
    const inB = b.receive(toB.send());
    const inC = c.receive(toC.send());
    const refs = new Map<Name, { release(): void; bytes: Uint8Array }>([
      ["handle in A", buffer],
      ["clone in A", cloneA],
      ["packet in B", inB],
      ["clone in B", inB.clone()],
      ["packet in C", inC],
    ]);
    const expected = new Map<Name, number[]>([
      ["handle in A", pattern(32, orders)],
      ["clone in A", pattern(16, orders)],
      ["packet in B", pattern(16, orders)],
      ["clone in B", pattern(16, orders)],
      ["packet in C", pattern(24, orders + 8)],
    ]);
    order.forEach((name, i) => {
      refs.get(name)!.release();
      refs.delete(name);
      const last = i === order.length - 1;
      for (const p of [pool, b, c]) {
        assert.equal(p.stats().inUse, last ? 0 : 1, `${order.join(", ")}: after ${name}`);
      }
      // What is left still sees the bytes: the buffer was not reused.
      for (const [other, ref] of refs) {
        assert.deepEqual([...ref.bytes], expected.get(other), `${other} after ${name}`);
      }
    });
    orders++;
  }
  assert.equal(orders, 120);
  b.detach();
  c.detach();
  assertAllBack(pool);
});

Deno.test("A SendPacket not yet received keeps its buffer in use after the sender let go", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const other = BufferPool.attach(pool.handle);
  const buffer = take(pool);
  buffer.bytes.fill(7);
  const sentA = buffer.toPacket().send();
  const sentB = buffer.toPacket(0, 8).send();
  buffer.release();
  assert.equal(pool.stats().inUse, 1, "two packets in flight hold it");
  assert.equal(pool.stats().cached, 0);

  const a = other.receive(sentA);
  a.release();
  assert.equal(pool.stats().inUse, 1, "one packet in flight still holds it");
  const bPacket = other.receive(sentB);
  assert.deepEqual([...bPacket.bytes], new Array(8).fill(7));
  bPacket.release();
  assertAllBack(pool);
  assert.equal(other.stats().cached, 1, "freed by the receiver, into its cache");
  other.detach();
  assertAllBack(pool);
});

Deno.test("A packet sent back to its sender while it still holds references is counted once per reference", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const other = BufferPool.attach(pool.handle);
  const buffer = take(pool);
  buffer.bytes.fill(3);
  const there = other.receive(buffer.toPacket(0, 4).send());
  const again = there.clone();
  const home = pool.receive(there.send()); // back to A, which still holds the handle
  assert.equal(there.released, true);
  const home2 = pool.receive(again.send());
  assert.equal(pool.stats().inUse, 1);
  assert.equal(other.stats().inUse, 1);
  buffer.release();
  home.release();
  assert.equal(pool.stats().inUse, 1);
  assert.deepEqual([...home2.bytes], [3, 3, 3, 3]);
  home2.release();
  assertAllBack(pool);
  other.detach();
  assertAllBack(pool);
});

Deno.test("A pool object that received a buffer twice and forwards its last packet passes on exactly its share", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const b = BufferPool.attach(pool.handle);
  const c = BufferPool.attach(pool.handle);
  const buffer = take(pool);
  fillFrom(buffer.bytes, 0);
  const first = buffer.toPacket(0, 4).send();
  const second = buffer.toPacket(4, 8).send();
  buffer.release();
  const p1 = b.receive(first);
  const p2 = b.receive(second); // b now holds two shares of the buffer
  p1.release();
  assert.equal(pool.stats().inUse, 1);
  const onward = c.receive(p2.send()); // b's last local reference leaves
  assert.equal(pool.stats().inUse, 1);
  assert.deepEqual([...onward.bytes], [4, 5, 6, 7]);
  onward.release();
  assertAllBack(pool);
  assert.equal(c.stats().cached, 1, "c dropped the last share and freed it");
  b.detach();
  c.detach();
  assertAllBack(pool);
});

interface ModelRef {
  /** Index of the buffer it references. */
  index: number;
  /** The pool object it lives in (may be a detached one). */
  owner: BufferPool;
  /** The worker slot of its owner, for the in-flight limit. */
  slot: number;
  handle?: PooledBuffer | undefined;
  packet?: Packet | undefined;
}

interface ModelFlight {
  index: number;
  slot: number;
  sent: SendPacket;
}

Deno.test(
  "Random sends, receives, clones, releases and re-attaches over three pool objects match a model",
  () => {
    const bufferCount = 6;
    const maxInFlight = 3;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const random = prng(seed);
      const pool = sharedPool({
        bufferSize: 8,
        bufferCount,
        batchSize: 2,
        maxWorkers: 3,
        maxInFlight,
      });
      // actors[slot] is the pool object attached through that slot now.
      const actors = [pool, BufferPool.attach(pool.handle), BufferPool.attach(pool.handle)];
      const refs: ModelRef[] = [];
      const flights: ModelFlight[] = [];
      const fill = new Map<number, number>();
      const pick = <T>(items: T[]): T => at(items, random(items.length));
      const checkBytes = (ref: ModelRef, step: number): void => {
        const bytes = ref.handle !== undefined ? ref.handle.bytes : ref.packet!.bytes;
        const want = fill.get(ref.index)!;
        assert.ok(bytes.every((v) => v === want), `step ${step}: buffer ${ref.index} was reused`);
      };
      let reattached = 0;

      for (let step = 0; step < 2500; step++) {
        const op = random(20);
        const packets = refs.filter((r) => r.packet !== undefined);
        const handles = refs.filter((r) => r.handle !== undefined);
        if (op < 4) {
          const slot = random(3);
          const actor = at(actors, slot);
          const live = new Set([...refs, ...flights].map((r) => r.index));
          const buffer = actor.tryAcquire();
          if (buffer === null) {
            const s = actor.stats();
            assert.equal(s.cached, 0, `step ${step}: null with a cached buffer`);
            assert.equal(freeStack(s), 0, `step ${step}: null with buffers on the free stack`);
          } else {
            assert.ok(
              !live.has(buffer.index),
              `step ${step}: buffer ${buffer.index} handed out twice`,
            );
            fill.set(buffer.index, 1 + (step % 255));
            buffer.bytes.fill(1 + (step % 255));
            refs.push({ index: buffer.index, owner: actor, slot, handle: buffer });
          }
        } else if (op < 6 && handles.length > 0) {
          const ref = pick(handles);
          const begin = random(9);
          const end = begin + random(9 - begin);
          if (random(2) === 0) {
            refs.push({ ...ref, handle: undefined, packet: ref.handle!.toPacket(begin, end) });
          } else {
            ref.packet = ref.handle!.intoPacket(begin, end);
            ref.handle = undefined;
          }
        } else if (op < 8 && packets.length > 0) {
          const ref = pick(packets);
          const length = ref.packet!.length;
          const copy = random(2) === 0
            ? ref.packet!.clone()
            : ref.packet!.subarray(random(length + 1), length);
          refs.push({ ...ref, packet: copy });
        } else if (op < 11 && packets.length > 0) {
          const ref = pick(packets);
          const inFlight = flights.filter((f) => f.slot === ref.slot).length;
          if (inFlight === maxInFlight) {
            const before = pool.stats();
            assertRangeError(() => ref.packet!.send(), /maxInFlight/);
            assert.deepEqual(pool.stats(), before, `step ${step}`);
            assert.equal(ref.packet!.released, false);
          } else {
            flights.push({ index: ref.index, slot: ref.slot, sent: ref.packet!.send() });
            refs.splice(refs.indexOf(ref), 1);
          }
        } else if (op < 14 && flights.length > 0) {
          const flight = flights.splice(random(flights.length), 1)[0]!;
          const slot = random(3);
          const actor = at(actors, slot);
          const packet = actor.receive(structuredClone(flight.sent));
          refs.push({ index: flight.index, owner: actor, slot, packet });
          if (random(4) === 0) {
            const again = at(actors, random(3));
            assertThrowsA(() => again.receive(flight.sent), ReleasedError);
          }
        } else if (op < 19 && refs.length > 0) {
          const ref = refs.splice(random(refs.length), 1)[0]!;
          checkBytes(ref, step);
          if (ref.handle !== undefined) ref.handle.release();
          else ref.packet!.release();
        } else if (op === 19 && random(10) === 0) {
          // Re-attach slot 1 or 2; what the old object holds stays valid.
          const slot = 1 + random(2);
          const old = at(actors, slot);
          old.detach();
          assertThrowsA(() => old.tryAcquire(), DetachedError);
          actors[slot] = BufferPool.attach(pool.handle);
          reattached++;
        }

        const live = new Set([...refs, ...flights].map((r) => r.index));
        for (const actor of actors) {
          const s = actor.stats();
          assert.equal(s.inUse, live.size, `seed ${seed} step ${step}: inUse`);
          assert.equal(s.free + s.inUse, bufferCount);
          assert.equal(s.workers, 3);
        }
        if (step % 16 === 0) { for (const ref of refs) checkBytes(ref, step); }
      }
      assert.ok(reattached > 0, "the run re-attached at least once");

      for (const flight of flights) {
        refs.push({ ...flight, owner: pool, packet: pool.receive(flight.sent) });
      }
      for (const ref of refs) {
        checkBytes(ref, -1);
        if (ref.handle !== undefined) ref.handle.release();
        else ref.packet!.release();
      }
      at(actors, 1).detach();
      at(actors, 2).detach();
      assert.equal(pool.stats().workers, 1);
      assertAllBack(pool);
    }
  },
);

// -- Detaching --

Deno.test(
  "BufferPool.detach() gives cached buffers back; buffers held across it stay valid and return when released",
  () => {
    const pool = sharedPool({ bufferSize: 16, bufferCount: 16, batchSize: 4, maxWorkers: 2 });
    const other = BufferPool.attach(pool.handle);
    const held = [take(other), take(other), take(other)];
    held.pop()!.release();
    const fromPool = take(pool);
    fromPool.bytes.fill(5);
    const received = other.receive(fromPool.intoPacket(0, 4).send());
    assert.equal(other.stats().cached, 2);
    assert.deepEqual(pool.stats().cachedByWorker, [3, 2]);
    assert.equal(pool.stats().inUse, 3);

    other.detach();
    assert.equal(other.stats().cached, 0, "the detached object caches nothing");
    const s = pool.stats();
    assert.deepEqual(s.cachedByWorker, [3, -1]);
    assert.equal(s.workers, 1);
    assert.equal(s.inUse, 3, "held buffers stay held");
    assert.equal(s.free, 13, "the cached ones went back");
    assert.equal(freeStack(s), 10);

    // Held buffers and packets still work.
    for (const [i, buffer] of held.entries()) buffer.bytes.fill(0xa0 + i);
    const cut = at(held, 0).toPacket(0, 2);
    assert.deepEqual([...cut.bytes], [0xa0, 0xa0]);
    assert.deepEqual([...received.bytes], [5, 5, 5, 5]);
    // A packet made there can still be sent to a pool object that is attached.
    const home = pool.receive(cut.send());
    assert.deepEqual([...home.bytes], [0xa0, 0xa0]);

    // Each release goes straight to the free stack: nothing is cached any more.
    let inUse = 3;
    for (const buffer of held) {
      buffer.release();
      if (buffer !== at(held, 0)) inUse--;
      assert.equal(pool.stats().inUse, inUse);
      assert.equal(other.stats().cached, 0);
    }
    home.release(); // the last reference to held[0]: freed by pool, into its cache
    assert.equal(pool.stats().inUse, 1);
    assert.deepEqual(pool.stats().cachedByWorker, [4, -1]);
    received.release(); // freed through the detached object: to the free stack
    assert.deepEqual(pool.stats().cachedByWorker, [4, -1]);
    assert.equal(freeStack(pool.stats()), 12);
    assertAllBack(pool);
  },
);

Deno.test("A detached pool object throws DetachedError from tryAcquire, acquire and receive", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const other = BufferPool.attach(pool.handle);
  const sent = take(pool).intoPacket().send();
  other.detach();
  other.detach(); // twice is fine

  assertThrowsA(() => other.tryAcquire(), DetachedError, /detached from the pool/);
  await assert.rejects(async () => await other.acquire(), DetachedError);
  await assert.rejects(
    async () => await other.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) }),
    DetachedError,
  );
  assertThrowsA(() => other.receive(sent), DetachedError, /receive/);
  assert.equal(other.stats().waiters, 0);
  assert.equal(pool.stats().waitingWorkers, 0);

  // The refused receive did not consume the SendPacket.
  pool.receive(sent).release();
  assertAllBack(pool);
});

Deno.test("BufferPool.acquire() on a detached pool object returns a rejected promise instead of throwing", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  const other = BufferPool.attach(pool.handle);
  other.detach();
  let promise: Promise<PooledBuffer> | undefined;
  let thrown: unknown = undefined;
  try {
    promise = other.acquire();
  } catch (error) {
    thrown = error;
  }
  // Either way the caller gets a DetachedError; but a promise-returning
  // method that throws synchronously breaks `acquire().catch(...)` chains.
  assert.equal(thrown, undefined, `acquire() threw synchronously: ${String(thrown)}`);
  await assert.rejects(promise!, DetachedError);
  assertAllBack(pool);
});

Deno.test("BufferPool.stats() of a detached pool object still counts the worker now in its old slot", () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 16, batchSize: 4, maxWorkers: 2 });
  const old = BufferPool.attach(pool.handle);
  old.detach();
  const next = BufferPool.attach(pool.handle); // takes the same slot
  take(next).release();
  assert.deepEqual(pool.stats().cachedByWorker, [0, 4]);
  assertAllBack(pool);
  const seen = old.stats();
  assert.deepEqual(seen.cachedByWorker, [0, 4], "the slot's cache as published by its owner");
  assert.equal(seen.free, 16);
  assert.equal(seen.inUse, 0);
  next.detach();
  assertAllBack(pool);
});

Deno.test(
  "BufferPool.detach() rejects the object's pending acquires and ends its waiting registration",
  async () => {
    const pool = sharedPool({ bufferSize: 16, bufferCount: 2, batchSize: 1 });
    const other = BufferPool.attach(pool.handle);
    const held = [take(pool), take(pool)];
    const waiting = [
      other.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) }),
      other.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) }),
    ];
    assert.equal(other.stats().waiters, 2);
    assert.equal(pool.stats().waitingWorkers, 1, "one registration for two waiters");
    other.detach();
    assert.equal(pool.stats().waitingWorkers, 0);
    assert.equal(other.stats().waiters, 0);
    for (const promise of waiting) await assert.rejects(promise, DetachedError);

    // Nobody waits any more: a released buffer stays in the releaser's cache.
    at(held, 0).release();
    assert.equal(pool.stats().cached, 1);
    assert.equal(freeStack(pool.stats()), 0);
    at(held, 1).release();
    assertAllBack(pool);
  },
);

// -- Waiting across pool objects in one thread --

Deno.test(
  "BufferPool.acquire() waiting in one pool object is served, in order, by releases in another",
  async () => {
    const pool = sharedPool({ bufferSize: 16, bufferCount: 3, batchSize: 1 });
    const other = BufferPool.attach(pool.handle);
    const held = [take(pool), take(pool), take(pool)];
    const order: string[] = [];
    const firstPromise = other.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
    const secondPromise = other.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
    const first = new Tracked(firstPromise, () => order.push("first"));
    const second = new Tracked(secondPromise, () => order.push("second"));
    assert.equal(pool.stats().waitingWorkers, 1, "one registration for two waiters");
    assert.equal(other.stats().waiters, 2);

    const released = at(held, 1);
    released.release();
    const got = await firstPromise;
    assert.equal(got.index, released.index);
    assert.deepEqual(order, ["first"]);
    assert.ok(second.pending);
    assert.equal(pool.stats().waitingWorkers, 1, "still waiting for the second");

    at(held, 2).release();
    const got2 = await secondPromise;
    assert.equal(got2.index, at(held, 2).index);
    assert.deepEqual(order, ["first", "second"]);
    assert.equal(first.value(), got);
    assert.equal(pool.stats().waitingWorkers, 0);
    assert.equal(other.stats().waiters, 0);

    for (const buffer of [got, got2, at(held, 0)]) buffer.release();
    other.detach();
    assertAllBack(pool);
  },
);

Deno.test("BufferPool.acquire() gets a buffer out of another pool object's idle cache", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 8, batchSize: 2 });
  const other = BufferPool.attach(pool.handle);
  const held: PooledBuffer[] = [];
  for (let i = 0; i < 6; i++) held.push(take(pool));
  take(other).release(); // other caches the last batch
  let s = pool.stats();
  assert.deepEqual(s.cachedByWorker.slice(0, 2), [0, 2]);
  assert.equal(freeStack(s), 0);
  assert.equal(pool.tryAcquire(), null, "only other's cache has buffers");

  // The waiter asks other to trim its cache; other does so when its event
  // loop gets to it, here while this test awaits.
  const got = await pool.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.ok(!held.includes(got));
  s = pool.stats();
  assert.equal(s.cachedByWorker[1], 0, "other's cache was trimmed");
  assert.equal(s.waitingWorkers, 0);
  assert.equal(s.inUse, 7);

  got.release();
  for (const buffer of held) buffer.release();
  other.detach();
  assertAllBack(pool);
});

Deno.test(
  "BufferPool.acquire() aborted across pool objects rejects with the reason and ends the registration",
  async () => {
    const pool = sharedPool({ bufferSize: 16, bufferCount: 2, batchSize: 1 });
    const other = BufferPool.attach(pool.handle);
    const held = [take(pool), take(pool)];
    const controller = new AbortController();
    const waiting = other.acquire({ signal: controller.signal });
    assert.equal(pool.stats().waitingWorkers, 1);
    const reason = new Error("gave up");
    controller.abort(reason);
    assert.equal(pool.stats().waitingWorkers, 0);
    await assert.rejects(waiting, (error: unknown) => error === reason);

    // Later releases stay in the releaser's cache, as if nobody had ever waited.
    at(held, 0).release();
    assert.equal(pool.stats().cached, 1);
    assert.equal(freeStack(pool.stats()), 0);
    at(held, 1).release();
    other.detach();
    assertAllBack(pool);
  },
);

Deno.test("BufferPool.acquire() waiting in one pool object is served when another, which held every buffer, releases them", async () => {
  // When the wait starts, the releaser's cache is empty, so no trim request
  // reaches it; its releases must still serve the waiter.
  const pool = sharedPool({ bufferSize: 16, bufferCount: 8, batchSize: 2 });
  const other = BufferPool.attach(pool.handle);
  const held: PooledBuffer[] = [];
  for (let i = 0; i < 8; i++) held.push(take(pool));
  const waiting = other.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.equal(pool.stats().waitingWorkers, 1);
  for (const buffer of held) buffer.release();
  assert.equal(pool.stats().free, 8, "every buffer is free now");
  const got = await waiting;
  assert.equal(pool.stats().waitingWorkers, 0);
  got.release();
  other.detach();
  assertAllBack(pool);
});

Deno.test("BufferPool.acquire() is served from an idle cache filled after an earlier trim", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 8, batchSize: 2 });
  const other = BufferPool.attach(pool.handle);
  take(other).release(); // other caches a batch of 2
  const held: PooledBuffer[] = [];
  for (let i = 0; i < 6; i++) held.push(take(pool));
  // First wait: other trims its idle cache.
  held.push(await pool.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) }));
  assert.equal(pool.stats().cachedByWorker[1], 0);
  // Give buffers back until a batch reaches the free stack, and let other
  // refill from it: it holds one and caches one, and then sits idle.
  for (let i = 0; i < 4; i++) held.pop()!.release();
  assert.ok(freeStack(pool.stats()) > 0);
  const kept = take(other);
  while (pool.stats().cached > 0) held.push(take(pool));
  let s = pool.stats();
  assert.equal(s.cachedByWorker[1], 1, "one buffer idles in other's cache");
  assert.equal(s.free, 1, "and it is the only free one");

  // Second wait: other's idle cache must be trimmed again.
  const got = await pool.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
  s = pool.stats();
  assert.equal(s.inUse, 8);
  assert.equal(s.cachedByWorker[1], 0);
  got.release();
  kept.release();
  for (const buffer of held) buffer.release();
  other.detach();
  assertAllBack(pool);
});

// ---------------------------------------------------------------------------
// Real workers
// ---------------------------------------------------------------------------

/** Asserts that `main` sees every buffer back, after asking each worker to detach. */
async function detachAll(pool: BufferPool, workers: PoolWorker[]): Promise<void> {
  for (const worker of workers) {
    const reply = await worker.call("detach", {});
    assert.equal(reply.stats, null);
  }
  const s = pool.stats();
  assert.equal(s.workers, 1, "only the main thread is attached");
  assertAllBack(pool);
}

/** Asserts the reply is an acquire that was served. */
function served(reply: Reply<"settled">): number {
  assert.equal(reply.error, undefined, `expected a buffer, got ${JSON.stringify(reply.error)}`);
  assert.ok(reply.index !== undefined);
  return reply.index;
}

for (const [count, perPeer] of [[2, 3000], [4, 1000]] as const) {
  Deno.test(`${count} workers exchange thousands of checksummed packets and give every buffer back`, async () => {
    const pool = sharedPool({ bufferSize: 200, bufferCount: 40, batchSize: 2, maxWorkers: 8 });
    await withWorkers(pool, count, async (workers) => {
      // A MessageChannel between every two workers.
      for (let i = 0; i < count; i++) {
        for (let j = i + 1; j < count; j++) {
          const channel = new MessageChannel();
          await at(workers, i).call("connect", { peer: j, port: channel.port1 }, [channel.port1]);
          await at(workers, j).call("connect", { peer: i, port: channel.port2 }, [channel.port2]);
        }
      }
      const results = await Promise.all(workers.map((worker, i) => {
        const peers = workers.map((_, j) => j).filter((j) => j !== i);
        return worker.call("exchange", { peers, perPeer, seed: 1000 + i });
      }));
      const waits = results.reduce((sum, result) => sum + result.waits, 0);
      assert.ok(waits > 0, "the pool never ran dry: the cross-worker wait went untested");
      for (const result of results) {
        assert.equal(result.sent, perPeer * (count - 1));
        assert.equal(result.received, perPeer * (count - 1));
      }
      // Every worker is done and holds nothing; caches may hold buffers.
      const s = pool.stats();
      assert.equal(s.inUse, 0);
      assert.equal(s.waitingWorkers, 0);
      assert.equal(s.workers, count + 1);
      await detachAll(pool, workers);
    });
  });
}

Deno.test("A worker writes into a received packet and the sender's clone sees it: no copy", async () => {
  const pool = sharedPool({ bufferSize: 64, bufferCount: 4, batchSize: 1 });
  await withWorkers(pool, 1, async ([worker]) => {
    const buffer = take(pool);
    fillFrom(buffer.bytes, 10);
    const packet = buffer.intoPacket(8, 40);
    const clone = packet.clone();
    const sum = checksum(packet.bytes);
    const reply = await worker!.call("flip", { packet: { sent: packet.send(), sum } });
    // The worker flipped the bytes in place; our clone is a view of the same memory.
    assert.deepEqual([...clone.bytes], pattern(32, 18).map((b) => b ^ 0xff));
    assert.equal(reply.packet.sum, checksum(clone.bytes));
    const back = pool.receive(reply.packet.sent);
    assert.equal(back.bytes.byteOffset, clone.bytes.byteOffset);
    assert.equal(statsOf(reply).inUse, 1, "the worker sees the buffer in use too");
    back.release();
    assert.equal(pool.stats().inUse, 1);
    clone.release();
    await detachAll(pool, [worker!]);
  });
});

Deno.test("A worker receives a batch, flips its bytes in place and sends it back as a batch", async () => {
  const pool = sharedPool({ bufferSize: 64, bufferCount: 8, batchSize: 2 });
  await withWorkers(pool, 1, async ([worker]) => {
    const packets: Packet[] = [];
    for (let i = 0; i < 5; i++) {
      const buffer = take(pool);
      fillFrom(buffer.bytes, i * 7);
      // Two packets per buffer, so runs of one buffer cross the boundary too.
      packets.push(buffer.toPacket(0, 20), buffer.intoPacket(20, 64));
    }
    const expected = packets.map((p) => [...p.bytes].map((b) => b ^ 0xff));
    const sums = packets.map((p) => checksum(p.bytes));
    const reply = await worker!.call("flipBatch", { batch: pool.sendBatch(packets), sums });
    assert.equal(statsOf(reply).inUse, 5);
    const back = pool.receiveBatch(reply.batch);
    assert.deepEqual(back.map((p) => [...p.bytes]), expected);
    assert.deepEqual(back.map((p) => checksum(p.bytes)), reply.sums);
    for (const packet of back) packet.release();
    await detachAll(pool, [worker!]);
  });
});

Deno.test("A worker waiting on an empty pool is served when another worker releases a buffer", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 6, batchSize: 2 });
  await withWorkers(pool, 2, async ([a, b]) => {
    const hold = await a!.call("hold", { n: 6 });
    assert.equal(pool.stats().inUse, 6);
    const started = await b!.call("startAcquire", { key: "w" });
    assert.equal(statsOf(started).waiters, 1);
    assert.equal(pool.stats().waitingWorkers, 1, "main sees b waiting");
    assert.equal((await b!.call("pending", { key: "w" })).pending, true);

    const released = await a!.call("release", { n: 1 });
    assert.deepEqual(released.indices, [at(hold.indices, 5)]);
    const got = served(await b!.call("settled", { key: "w" }));
    assert.equal(got, at(hold.indices, 5), "b got the very buffer a released");
    assert.equal(pool.stats().waitingWorkers, 0);
    assert.equal(pool.stats().inUse, 6);

    await a!.call("release", {});
    await b!.call("release", {});
    await detachAll(pool, [a!, b!]);
  });
});

Deno.test("Two workers waiting at once are both served by releases in a third", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  await withWorkers(pool, 3, async ([a, b, c]) => {
    await a!.call("hold", { n: 4 });
    await b!.call("startAcquire", { key: "w" });
    await c!.call("startAcquire", { key: "w" });
    assert.equal(pool.stats().waitingWorkers, 2);
    const released = await a!.call("release", { n: 2 });
    const got = [
      served(await b!.call("settled", { key: "w" })),
      served(await c!.call("settled", { key: "w" })),
    ];
    assert.deepEqual(got.sort(), [...released.indices].sort());
    assert.equal(pool.stats().waitingWorkers, 0);
    for (const worker of [a!, b!, c!]) await worker.call("release", {});
    await detachAll(pool, [a!, b!, c!]);
  });
});

Deno.test("A waiting worker gets a buffer out of an idle worker's cache", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 8, batchSize: 2 });
  await withWorkers(pool, 2, async ([a, b]) => {
    // Main holds 6 of 8; a's cache holds the other 2; the free stack is empty.
    const mainHeld: PooledBuffer[] = [];
    for (let i = 0; i < 6; i++) mainHeld.push(take(pool));
    const warmed = await a!.call("warm", { n: 1 });
    assert.equal(statsOf(warmed).cached, 2);
    let s = pool.stats();
    assert.deepEqual(s.cachedByWorker.slice(0, 3), [0, 2, 0], "a (slot 1) caches 2");
    assert.equal(freeStack(s), 0, "the free stack alone cannot serve b");
    assert.equal(s.inUse, 6);

    // a now just waits for messages; b must be served from a's cache.
    await b!.call("startAcquire", { key: "w" });
    const got = served(await b!.call("settled", { key: "w" }));
    assert.ok(!mainHeld.some((buffer) => buffer.index === got), "not one of main's");
    assert.equal(statsOf(await a!.call("stats", {})).cached, 0, "a's cache was trimmed");
    s = pool.stats();
    assert.equal(s.inUse, 7);
    assert.equal(s.waitingWorkers, 0);

    await b!.call("release", {});
    for (const buffer of mainHeld) buffer.release();
    await detachAll(pool, [a!, b!]);
  });
});

Deno.test("A worker's aborted wait rejects with the reason, ends its registration, and releases go on normally", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  await withWorkers(pool, 2, async ([a, b]) => {
    await a!.call("hold", { n: 4 });
    await b!.call("startAcquire", { key: "w" });
    assert.equal(pool.stats().waitingWorkers, 1);
    const aborted = await b!.call("abort", { key: "w", reason: "gave up" });
    assert.equal(statsOf(aborted).waiters, 0);
    assert.equal(pool.stats().waitingWorkers, 0, "b's registration ended with its last waiter");
    const settled = await b!.call("settled", { key: "w" });
    assert.deepEqual(settled.error, { name: "Error", message: "gave up" });
    assert.equal(pool.stats().inUse, 4, "the aborted wait took nothing");

    // Nobody waits: a's release stays in a's cache, b gets nothing.
    const released = await a!.call("release", { n: 1 });
    assert.equal(statsOf(released).cached, 1);
    assert.equal(statsOf(await b!.call("stats", {})).cached, 0);
    assert.equal(pool.stats().inUse, 3);

    // A new wait in b is served from that idle cache.
    await b!.call("startAcquire", { key: "again" });
    assert.equal(served(await b!.call("settled", { key: "again" })), at(released.indices, 0));

    await a!.call("release", {});
    await b!.call("release", {});
    await detachAll(pool, [a!, b!]);
  });
});

for (const abortAt of [0, 1, 2]) {
  Deno.test(`Aborting waiter ${abortAt} of 3 in one worker keeps the others in order as another worker releases`, async () => {
    const pool = sharedPool({ bufferSize: 16, bufferCount: 3, batchSize: 1 });
    await withWorkers(pool, 2, async ([a, b]) => {
      await a!.call("hold", { n: 3 });
      const keys = ["w0", "w1", "w2"];
      for (const key of keys) await b!.call("startAcquire", { key });
      assert.equal(statsOf(await b!.call("stats", {})).waiters, 3);
      assert.equal(pool.stats().waitingWorkers, 1, "one registration for three waiters");

      await b!.call("abort", { key: at(keys, abortAt), reason: `abort ${abortAt}` });
      const aborted = await b!.call("settled", { key: at(keys, abortAt) });
      assert.equal(aborted.error?.message, `abort ${abortAt}`);
      assert.equal(statsOf(aborted).waiters, 2);
      assert.equal(pool.stats().waitingWorkers, 1, "the other two still wait");

      const rest = keys.filter((_, i) => i !== abortAt);
      let lastSeq = aborted.seq;
      for (const [k, key] of rest.entries()) {
        const released = await a!.call("release", { n: 1 });
        const settled = await b!.call("settled", { key });
        assert.equal(served(settled), at(released.indices, 0), `${key} gets the released buffer`);
        assert.ok(settled.seq > lastSeq, `${key} settled in order`);
        lastSeq = settled.seq;
        for (const later of rest.slice(k + 1)) {
          const { pending } = await b!.call("pending", { key: later });
          assert.ok(pending, `${later} was served before ${key}'s turn was over`);
        }
      }
      assert.equal(pool.stats().waitingWorkers, 0);
      assert.equal(pool.stats().inUse, 3);

      await a!.call("release", {});
      await b!.call("release", {});
      await detachAll(pool, [a!, b!]);
    });
  });
}

Deno.test("The main thread waiting on an empty pool is served by a worker's release", async () => {
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 1 });
  await withWorkers(pool, 1, async ([a]) => {
    const hold = await a!.call("hold", { n: 4 });
    const waiting = pool.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
    let s = pool.stats();
    assert.equal(s.waiters, 1);
    assert.equal(s.waitingWorkers, 1);
    assert.equal(s.inUse, 4);
    const released = await a!.call("release", { n: 1 });
    const buffer = await waiting;
    assert.equal(buffer.index, at(released.indices, 0));
    assert.equal(buffer.index, at(hold.indices, 3));
    s = pool.stats();
    assert.equal(s.waiters, 0);
    assert.equal(s.waitingWorkers, 0);
    buffer.release();
    await a!.call("release", {});
    await detachAll(pool, [a!]);
  });
});

Deno.test("BufferPool.acquire() keeps the event loop alive while it waits, with nothing else pending", async () => {
  // A pending Atomics.waitAsync alone does not keep Deno's event loop alive:
  // without the pool's keepalive this test ends with "Promise resolution is
  // still pending but the event loop has already resolved". So the guard
  // against a hang is an unref'd timer, which keeps nothing alive itself.
  const pool = sharedPool({ bufferSize: 16, bufferCount: 4, batchSize: 2 });
  const other = BufferPool.attach(pool.handle);
  take(other).release(); // other's cache holds 2 of the 4, idle
  const held = [take(pool), take(pool)];
  assert.equal(pool.tryAcquire(), null);
  const guard = new AbortController();
  const timer = setTimeout(() => guard.abort(new Error("timed out")), TIMEOUT_MS);
  Deno.unrefTimer(timer);
  try {
    // Served once other's trim listener runs, a task of this same event loop.
    held.push(await pool.acquire({ signal: guard.signal }));
  } finally {
    clearTimeout(timer);
  }
  assert.equal(pool.stats().waitingWorkers, 0);
  for (const buffer of held) buffer.release();
  other.detach();
  assertAllBack(pool);
});

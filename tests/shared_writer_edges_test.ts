// SharedWriter at the edges: every way the flusher's consumer stops while a
// handle waits, another holds a reservation and a packet is held; closing
// one handle of several; aborted reserves on tiny pools; out-of-order
// settling across two handles checked against what the flusher delivers.
import assert from "node:assert/strict";
import {
  BufferPool,
  ClosedError,
  type FlushRegion,
  lengthPrefix,
  SharedWriter,
  WriteFlusher,
} from "../mod.ts";
import { assertAllFree, permutations, withinDeadline } from "./_helpers.ts";
import { parseFrames, readBytes } from "./_writer_helpers.ts";

const codec = lengthPrefix(1);

/** What a promise came to, without letting it reject unobserved. */
function settled<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
}

function release(batch: FlushRegion[]): void {
  for (const region of batch) region.release();
}

/** A writer on a shared pool, and a second handle of it on another pool object, as in another worker. */
function twoHandles(bufferCount: number, bufferSize = 16) {
  const pool = new BufferPool({ bufferSize, bufferCount, shared: true });
  const flusher = new WriteFlusher(pool);
  const main = new SharedWriter(pool, flusher, { codec, flush: "manual" });
  const there = BufferPool.attach(pool.handle);
  const other = SharedWriter.attach(there, main.handle, { codec, flush: "manual" });
  return { pool, flusher, main, there, other };
}

type Stop = "cancel" | "break" | "sink rejects" | "readable pipe throws" | "signal";
const stops: Stop[] = ["cancel", "break", "sink rejects", "readable pipe throws", "signal"];

/** Stops the flusher's consumer the way `how` says; resolves once it stopped. */
async function stopConsumer(flusher: WriteFlusher, how: Stop): Promise<void> {
  const reason = new Error(`stopped by ${how}`);
  if (how === "cancel") {
    const reader = flusher.readable.getReader();
    release((await reader.read()).value!);
    await reader.cancel(reason);
  } else if (how === "break") {
    for await (const batch of flusher.readable) {
      release(batch);
      break;
    }
  } else if (how === "sink rejects") {
    const sink = { write: () => Promise.reject(reason) };
    await assert.rejects(flusher.pipeTo(sink), reason);
  } else if (how === "readable pipe throws") {
    const sink = new WritableStream<FlushRegion[]>({
      write(batch) {
        release(batch);
        throw reason;
      },
    });
    await assert.rejects(flusher.readable.pipeTo(sink), reason);
  } else {
    const controller = new AbortController();
    let wrote: () => void;
    const written = new Promise<void>((resolve) => wrote = resolve);
    const sink = new WritableStream<Uint8Array>({ write: () => wrote() });
    const piped = flusher.pipeTo(sink, { signal: controller.signal });
    await written;
    controller.abort(reason);
    await assert.rejects(piped, reason);
  }
}

/** The text a ClosedError should carry for `how`: break cancels with no reason. */
function reasonOf(how: Stop): RegExp {
  return how === "break" ? /flusher/ : new RegExp(`stopped by ${how}`);
}

for (const how of stops) {
  for (const bufferCount of [1, 2, 4]) {
    for (const waiter of ["main", "other"] as const) {
      Deno.test(`SharedWriter edges: consumer stops (${how}), ${bufferCount} buffers, ${waiter} handle waiting, the other holding`, async () => {
        const { pool, flusher, main, there, other } = twoHandles(bufferCount);
        const [waits, holds] = waiter === "main" ? [main, other] : [other, main];
        // Bytes the consumer gets first.
        assert.ok(main.tryWrite(new Uint8Array([1, 2])));
        main.flush();
        // An open reservation, and a packet of a committed one, in the first buffer.
        const held = holds.tryReserve(3)!;
        held.bytes.fill(3);
        const kept = holds.tryReserve(2)!;
        kept.bytes.fill(4);
        const packet = kept.commitToPacket();
        // Fill every buffer: the held one stops them from going to the flusher.
        while (waits.tryWrite(new Uint8Array(9).fill(5)));
        const waiting = settled(waits.write(new Uint8Array(9).fill(6)));
        const reserving = settled(waits.reserve(9));
        await withinDeadline(stopConsumer(flusher, how), "stopping the consumer");
        // The held reservation was cancelled if the flusher closed its handle.
        if (held.open) held.commit();
        else assert.throws(() => held.commit(), ClosedError);
        // A wait in another worker learns of the end only when a buffer comes
        // back (as a Writer's does): with one buffer, the packet holds it.
        if (waiter === "other") packet.release();
        for (
          const result of [
            await withinDeadline(waiting, "write"),
            await withinDeadline(reserving, "reserve"),
          ]
        ) {
          assert.equal(result.ok, false);
          if (!result.ok) {
            assert.ok(result.error instanceof ClosedError, String(result.error));
            assert.match(result.error.message, reasonOf(how));
          }
        }
        if (waiter === "main") {
          assert.deepEqual([...packet.bytes], [4, 4]);
          packet.release();
        }
        for (const writer of [main, other]) {
          assert.throws(() => writer.tryWrite(new Uint8Array(1)), ClosedError);
          await assert.rejects(writer.write(new Uint8Array(1)), ClosedError);
        }
        other.close();
        main.close();
        there.detach();
        assertAllFree(pool);
      });
    }
  }
}

/** Every frame the flusher delivers until it ends, as arrays. */
function frames(flusher: WriteFlusher): Promise<number[][]> {
  return readBytes(flusher.readable.getReader()).then((bytes) =>
    parseFrames(codec, new Uint8Array(bytes)).map((frame) => [...frame])
  );
}

Deno.test("SharedWriter edges: one handle closes while another writes and holds; the last close seals", async () => {
  for (const bufferCount of [1, 2, 3]) {
    const { pool, flusher, main, there, other } = twoHandles(bufferCount);
    const delivered = frames(flusher);
    const heldByMain = main.tryReserve(3)!;
    heldByMain.bytes.fill(1);
    const heldByOther = other.tryReserve(2)!;
    heldByOther.bytes.fill(2);
    assert.ok(main.tryWrite(new Uint8Array([3])));
    // Main closes with a reservation open: it goes zeroed, the other handle goes on.
    main.close();
    assert.equal(heldByMain.open, false);
    assert.throws(() => heldByMain.commit(), /the writer was closed; it was sent zeroed/);
    assert.throws(() => main.tryWrite(new Uint8Array(1)), /this handle was closed/);
    await assert.rejects(main.reserve(1), ClosedError);
    assert.equal(other.closed, false);
    heldByOther.commit();
    // Through several buffers, each waiting for the consumer on small pools.
    for (let i = 0; i < 6; i++) {
      await withinDeadline(other.write(new Uint8Array(9).fill(10 + i)), "write");
    }
    const last = other.tryReserve(1)!;
    last.bytes[0] = 99;
    last.commit();
    other.close();
    assert.equal(other.closed, true);
    assert.throws(() => other.tryWrite(new Uint8Array(1)), ClosedError);
    flusher.close();
    assert.deepEqual(await withinDeadline(delivered, "reading"), [
      [0, 0, 0],
      [2, 2],
      [3],
      ...[0, 1, 2, 3, 4, 5].map((i) => new Array(9).fill(10 + i)),
      [99],
    ]);
    there.detach();
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter edges: closing the flusher while handles are open", async () => {
  for (const bufferCount of [1, 2]) {
    const { pool, flusher, main, there, other } = twoHandles(bufferCount);
    const held = other.tryReserve(2)!;
    held.bytes.fill(7);
    assert.ok(main.tryWrite(new Uint8Array([1, 1])));
    const reader = flusher.readable.getReader();
    flusher.close();
    // This worker's handle closed with the flusher; the other learns at its next write.
    assert.equal(main.closed, true);
    assert.throws(() => main.tryWrite(new Uint8Array(1)), /the flusher was closed/);
    held.commit();
    await assert.rejects(other.write(new Uint8Array(14)), /the flusher was closed/);
    other.close();
    const bytes = await withinDeadline(readBytes(reader), "reading");
    // Nothing was read yet, so the list had not ended: what was committed arrives.
    assert.deepEqual(bytes, [2, 7, 7, 2, 1, 1]);
    there.detach();
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter edges: reserve with a signal aborted before, during and after the wait", async () => {
  for (const bufferCount of [1, 2]) {
    const { pool, flusher, main, there, other } = twoHandles(bufferCount);
    const reader = flusher.readable.getReader();
    const gone = new Error("gave up");
    // Aborted before: refused at once, as Writer.reserve does, with no claim made.
    await assert.rejects(main.reserve(2, { signal: AbortSignal.abort(gone) }), gone);
    await assert.rejects(main.write(new Uint8Array(2), { signal: AbortSignal.abort(gone) }), gone);
    await assert.rejects(main.writeString("x", { signal: AbortSignal.abort(gone) }), gone);
    // Fill every buffer; then one call of each handle waits.
    while (main.tryWrite(new Uint8Array(15).fill(1)));
    const controller = new AbortController();
    const aborted = settled(main.reserve(4, { signal: controller.signal }));
    const waiting = other.reserve(4, { signal: AbortSignal.timeout(5000) });
    controller.abort(gone);
    const result = await aborted;
    assert.ok(!result.ok && result.error === gone);
    // The other handle's wait goes on, and is served once the consumer gives buffers back.
    const reading = readBytes(reader);
    const granted = await withinDeadline(waiting, "the other handle's reserve");
    // Aborted after the grant: nothing changes.
    const late = new AbortController();
    const mine = await main.reserve(3, { signal: late.signal });
    late.abort(gone);
    mine.bytes.fill(3);
    granted.bytes.fill(4);
    mine.commit();
    granted.commit();
    other.close();
    main.close();
    flusher.close();
    const bytes = await withinDeadline(reading, "reading");
    const full = new Array(bufferCount).fill([15, ...new Array(15).fill(1)]).flat();
    assert.deepEqual(bytes, [...full, 4, 4, 4, 4, 4, 3, 3, 3, 3]);
    there.detach();
    assertAllFree(pool);
  }
});

Deno.test("SharedWriter edges: two handles settle out of order on a 1-buffer pool; the flusher gets each message once, in claim order", async () => {
  const sizes = [3, 1, 4, 2];
  for (const order of permutations([0, 1, 2, 3])) {
    for (const cancelled of [[], [1], [0, 3], [0, 1, 2, 3]]) {
      const { pool, flusher, main, there, other } = twoHandles(1);
      const delivered = frames(flusher);
      // Claimed alternately: main, other, main, other.
      const open = sizes.map((size, i) => {
        const r = (i % 2 === 0 ? main : other).tryReserve(size)!;
        r.bytes.fill(i + 1);
        return r;
      });
      for (const i of order) {
        if (cancelled.includes(i)) open[i]!.cancel();
        else if (i === 2) open[i]!.commitToPacket().release();
        else open[i]!.commit();
        main.flush();
      }
      // Then one message each that does not fit: each waits for the buffer to come back.
      await withinDeadline(main.write(new Uint8Array(10).fill(7)), "main's write");
      await withinDeadline(other.write(new Uint8Array(10).fill(8)), "other's write");
      main.close();
      other.close();
      flusher.close();
      const expected = sizes.map((size, i) =>
        new Array(size).fill(cancelled.includes(i) ? 0 : i + 1)
      );
      assert.deepEqual(
        await withinDeadline(delivered, "reading"),
        [...expected, new Array(10).fill(7), new Array(10).fill(8)],
        `order ${order}, cancelled ${cancelled}`,
      );
      there.detach();
      assertAllFree(pool);
    }
  }
});

/** A worker that writes into the shared writer until a write fails, then closes, detaches and says why. */
const writingWorker = `
import { BufferPool, lengthPrefix, SharedWriter } from ${
  JSON.stringify(import.meta.resolve("../mod.ts"))
};
self.onmessage = async ({ data }) => {
  const pool = BufferPool.attach(data.pool);
  const writer = SharedWriter.attach(pool, data.writer, { codec: lengthPrefix(1) });
  self.postMessage("started");
  let why = "never failed";
  try {
    for (;;) await writer.write(new Uint8Array(9).fill(5));
  } catch (error) {
    why = error.name + ": " + error.message;
  }
  writer.close();
  pool.detach();
  self.postMessage(why);
};`;

for (const how of stops) {
  Deno.test(`SharedWriter edges: consumer stops (${how}) while a real worker writes and this thread holds a reservation`, async () => {
    const pool = new BufferPool({ bufferSize: 16, bufferCount: 2, shared: true });
    const flusher = new WriteFlusher(pool);
    const main = new SharedWriter(pool, flusher, { codec, flush: "manual" });
    assert.ok(main.tryWrite(new Uint8Array([1, 2])));
    main.flush();
    const held = main.tryReserve(3)!;
    const url = URL.createObjectURL(new Blob([writingWorker], { type: "text/javascript" }));
    const worker = new Worker(url, { type: "module" });
    const messages: string[] = [];
    let heard: () => void = () => {};
    worker.onmessage = (event: MessageEvent<string>) => {
      messages.push(event.data);
      heard();
    };
    const next = () => new Promise<void>((resolve) => heard = resolve);
    try {
      worker.postMessage({ pool: pool.handle, writer: main.handle });
      await withinDeadline(next(), "the worker starting");
      const ended = next();
      await withinDeadline(stopConsumer(flusher, how), "stopping the consumer");
      assert.throws(() => held.commit(), ClosedError);
      await withinDeadline(ended, "the worker's write failing");
      assert.match(messages[1]!, /^ClosedError: Cannot write to the shared writer: /);
      assert.match(messages[1]!, reasonOf(how));
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
    assertAllFree(pool);
  });
}

Deno.test("SharedWriter edges: a handle that closes while its switch waits for a buffer hands the switch to a waiting handle", async () => {
  const { pool, flusher, main, there, other } = twoHandles(1);
  while (main.tryWrite(new Uint8Array(4).fill(1)));
  // Main's failed try started the switch; the other handle waits on it.
  const waiting = other.write(new Uint8Array(4).fill(2));
  main.close();
  assert.equal(pool.stats().waiters, 0);
  const delivered = frames(flusher);
  await withinDeadline(waiting, "the other handle's write");
  other.close();
  flusher.close();
  assert.deepEqual(await withinDeadline(delivered, "reading"), [
    [1, 1, 1, 1],
    [1, 1, 1, 1],
    [1, 1, 1, 1],
    [2, 2, 2, 2],
  ]);
  there.detach();
  assertAllFree(pool);
});

Deno.test("SharedWriter edges: a one-worker pool's handle waits while a packet is held, and the consumer stops", async () => {
  for (const how of stops) {
    for (const bufferCount of [1, 2]) {
      const pool = new BufferPool({ bufferSize: 16, bufferCount });
      const flusher = new WriteFlusher(pool);
      const writer = new SharedWriter(pool, flusher, { codec, flush: "manual" });
      assert.ok(writer.tryWrite(new Uint8Array([1, 2])));
      writer.flush();
      const r = writer.tryReserve(2)!;
      r.bytes.fill(4);
      const packet = r.commitToPacket();
      while (writer.tryWrite(new Uint8Array(9)));
      const waiting = settled(writer.write(new Uint8Array(9)));
      await withinDeadline(stopConsumer(flusher, how), "stopping the consumer");
      const result = await withinDeadline(waiting, "write");
      assert.ok(!result.ok && result.error instanceof ClosedError, `${how}: ${result}`);
      assert.match(result.error.message, reasonOf(how));
      assert.deepEqual([...packet.bytes], [4, 4]);
      packet.release();
      assert.throws(() => writer.tryWrite(new Uint8Array(1)), ClosedError);
      assertAllFree(pool);
    }
  }
});

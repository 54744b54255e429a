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
import { assertAllFree } from "./_helpers.ts";

const codec = lengthPrefix(1);

/** Turns a hang into a failure: `promise`, or a rejection after 5 s. */
async function deadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what}`)), 5000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

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
        await deadline(stopConsumer(flusher, how), "stopping the consumer");
        // The held reservation was cancelled if the flusher closed its handle.
        if (held.open) held.commit();
        else assert.throws(() => held.commit(), ClosedError);
        // A wait in another worker learns of the end only when a buffer comes
        // back (as a Writer's does): with one buffer, the packet holds it.
        if (waiter === "other") packet.release();
        for (
          const result of [await deadline(waiting, "write"), await deadline(reserving, "reserve")]
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

// SharedWriter across real workers: numbered messages from several workers
// into one writer, through the flusher, over loopback TCP, cut back into
// packets by a BatchFramer; and a worker terminated with reservations open.
import assert from "node:assert/strict";
import { BatchFramer, BufferPool, lengthPrefix, SharedWriter, WriteFlusher } from "../mod.ts";
import { assertAllFree } from "./_helpers.ts";
import { checkMessages } from "./_writer_helpers.ts";
import { type PlaceMode, sharedNumbered } from "./_shared_writer_helpers.ts";
import type { SharedWriterJob, SharedWriterReport } from "./workers/shared_writer_worker.ts";

const codec = lengthPrefix(4);

function startWorker(
  job: SharedWriterJob,
): { worker: Worker; report: Promise<SharedWriterReport> } {
  const worker = new Worker(new URL("./workers/shared_writer_worker.ts", import.meta.url), {
    type: "module",
  });
  const report = new Promise<SharedWriterReport>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<SharedWriterReport>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(event.message));
    };
  });
  worker.postMessage(job);
  return { worker, report };
}

/** A loopback connection: the flusher writes into `conn`; `frames` are the payloads the far side cut. */
async function loopback(readPool: BufferPool) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const frames = (async () => {
    const accepted = await listener.accept();
    listener.close();
    const out: Uint8Array[] = [];
    for await (const batch of accepted.readable.pipeThrough(new BatchFramer(readPool, { codec }))) {
      for (const packet of batch) {
        out.push(packet.bytes.slice());
        packet.release();
      }
    }
    return out;
  })();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  return { conn, frames };
}

for (
  const [workers, bufferCount, modes] of [
    [2, 4, ["reserve", "write"]],
    [3, 6, ["pairs", "write", "reserve"]],
    [4, 3, ["write", "reserve", "pairs", "write"]],
  ] as [number, number, PlaceMode[]][]
) {
  Deno.test(`SharedWriter: ${workers} workers and the main thread into one writer, ${bufferCount} buffers, over TCP`, async () => {
    const pool = new BufferPool({ bufferSize: 1500, bufferCount, batchSize: 1, shared: true });
    const readPool = new BufferPool({ bufferSize: 4096, bufferCount: 8 });
    const { conn, frames } = await loopback(readPool);
    const flusher = new WriteFlusher(pool);
    const piped = flusher.pipeTo(conn);
    const writer = new SharedWriter(pool, flusher, { codec });
    const perWriter = 3000;
    const started = modes.map((mode, i) =>
      startWorker({ pool: pool.handle, writer: writer.handle, w: i + 1, count: perWriter, mode })
    );
    try {
      await sharedNumbered(writer, 0, perWriter, "reserve");
      for (const { report } of started) {
        const result = await report;
        assert.ok(result.ok, JSON.stringify(result));
      }
    } finally {
      for (const { worker } of started) worker.terminate();
    }
    writer.close();
    flusher.close();
    await piped;
    conn.close();
    checkMessages(await frames, workers + 1, perWriter);
    assertAllFree(pool);
    assertAllFree(readPool);
  });
}

Deno.test("SharedWriter: a worker terminated with reservations open is reclaimed; the others' messages all arrive", async () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 4, batchSize: 1, shared: true });
  const flusher = new WriteFlusher(pool);
  const writer = new SharedWriter(pool, flusher, { codec });
  const readPool = new BufferPool({ bufferSize: 1024, bufferCount: 4 });
  const reading = (async () => {
    const out: Uint8Array[] = [];
    for await (const batch of flusher.bytes().pipeThrough(new BatchFramer(readPool, { codec }))) {
      for (const packet of batch) {
        out.push(packet.bytes.slice());
        packet.release();
      }
    }
    return out;
  })();
  const doomed = startWorker({
    pool: pool.handle,
    writer: writer.handle,
    w: 1,
    count: 50,
    mode: "hold",
  });
  const held = await doomed.report;
  assert.ok(held.ok && held.held === 2, JSON.stringify(held));
  // Blocked behind the held reservations: the pool's 4 buffers fill up.
  const writing = sharedNumbered(writer, 0, 200, "reserve");
  doomed.worker.terminate();
  assert.equal(writer.reclaim(held.workerId), 2);
  pool.reclaim(held.workerId);
  await writing;
  writer.close();
  flusher.close();
  const frames = await reading;
  // The dead worker's 50 committed messages, and the two it held, zeroed
  // (writer 0's first message, 8 bytes, is all zeros too).
  const cancelled = (f: Uint8Array) => f.length !== 8 && f.every((byte) => byte === 0);
  assert.deepEqual(frames.filter(cancelled).map((f) => f.length), [40, 12]);
  const numbered = frames.filter((f) => !cancelled(f));
  const writerOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(0);
  checkMessages(numbered.filter((f) => writerOf(f) === 0), 1, 200);
  assert.equal(numbered.filter((f) => writerOf(f) === 1).length, 50);
  assertAllFree(pool);
  assertAllFree(readPool);
});

// The round trip: publisher workers write numbered messages of mixed
// sizes through one NATS connection made in the main thread (a Writer each,
// or one SharedWriter), a real nats-server carries them, and a subscriber in
// another worker, with a connection of its own, gets each once, in order per
// publisher, byte-exact. Every pool ends with every buffer back.
import assert from "node:assert/strict";
import { BufferPool, SharedWriter } from "../../mod.ts";
import { NatsConnection } from "../../nats.ts";
import { assertAllFree } from "../_helpers.ts";
import { natsTest, startNatsServer } from "./_nats_server.ts";
import type { BusReply, BusRequest } from "../workers/nats_bus_worker.ts";

/** A worker of tests/workers/nats_bus_worker.ts, asked one thing at a time. */
class BusWorker {
  readonly worker = new Worker(new URL("../workers/nats_bus_worker.ts", import.meta.url), {
    type: "module",
  });

  ask(request: BusRequest): Promise<BusReply> {
    const { promise, resolve, reject } = Promise.withResolvers<BusReply>();
    this.worker.onmessage = (event: MessageEvent<BusReply>) => resolve(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(event.message));
    };
    this.worker.postMessage(request);
    return promise;
  }

  async must(request: BusRequest): Promise<BusReply & { ok: true }> {
    const reply = await this.ask(request);
    if (!reply.ok) throw new Error(`worker: ${reply.error}`);
    return reply;
  }
}

async function roundTrip(shared: boolean, publishers: number, count: number): Promise<void> {
  await using server = await startNatsServer();
  const pool = new BufferPool({ bufferSize: 8 * 1024, bufferCount: 32, shared: true });
  const conn = await NatsConnection.connect({ pool, port: server.port });
  const writer = shared ? new SharedWriter(pool, conn.flusher) : null;
  const subscriber = new BusWorker();
  const workers = Array.from({ length: publishers }, () => new BusWorker());
  try {
    await subscriber.must({
      kind: "subscribe",
      port: server.port,
      subject: "bus.>",
      publishers,
      count,
    });
    await Promise.all(workers.map((w, publisher) =>
      w.must({
        kind: "publish",
        pool: pool.handle,
        nats: conn.publisherHandle,
        shared: writer?.handle ?? null,
        publisher,
        count,
        subject: `bus.p${publisher}`,
      })
    ));
    writer?.close();
    await conn.flush();
    const result = await subscriber.must({ kind: "collect" });
    assert.deepEqual(result.received, new Array(publishers).fill(count));
    assert.equal(result.inUse, 0, "the subscriber's pool has buffers out");
    await conn.drain();
    await conn.closed;
    assertAllFree(pool);
  } finally {
    subscriber.worker.terminate();
    for (const w of workers) w.worker.terminate();
  }
}

natsTest(
  "NATS across workers: 2 publisher workers with a Writer each, through one connection, to a subscriber worker: every message once, in order, byte-exact",
  async () => {
    await roundTrip(false, 2, 3000);
  },
);

natsTest(
  "NATS across workers: 3 publisher workers sharing one SharedWriter, to a subscriber worker",
  async () => {
    await roundTrip(true, 3, 2000);
  },
);

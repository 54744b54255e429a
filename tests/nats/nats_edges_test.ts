// NatsConnection and NatsSubscription at the edges, against a real
// nats-server (and a fake one where the server must misbehave): handlers
// that close, drain, unsubscribe, subscribe, publish and flush from inside
// their call; packets retained past the end; close and drain called twice
// or together; a worker's publish waiting for a buffer when the connection
// drains; an INFO mid-stream. Small pools and roomy ones; every test ends
// with every buffer back.
import assert from "node:assert/strict";
import { BufferPool, ClosedError, type Packet } from "../../mod.ts";
import {
  NatsConnection,
  NatsConnectionError,
  NatsSubject,
  type NatsSubscription,
} from "../../nats.ts";
import { assertAllFree } from "../_helpers.ts";
import { natsTest, startNatsServer } from "./_nats_server.ts";

/** A tight pool (a buffer for the reader, one for the writer, little spare) and a roomy one. */
const POOLS = [
  { name: "3 small buffers", bufferSize: 2048, bufferCount: 3 },
  { name: "64 roomy buffers", bufferSize: 16 * 1024, bufferCount: 64 },
] as const;

function makePool(shape: { bufferSize: number; bufferCount: number }, shared = false): BufferPool {
  return new BufferPool({ bufferSize: shape.bufferSize, bufferCount: shape.bufferCount, shared });
}

/** `promise`, or a failure naming `what` if it has not settled in 10 s: a hang becomes a failure. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what}`)), 10_000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Publishes `count` one-byte messages numbered from 0 to `subject`, waiting for room as needed. */
async function burst(conn: NatsConnection, subject: string, count: number): Promise<void> {
  const publisher = conn.publisher();
  const to = new NatsSubject(subject);
  for (let i = 0; i < count; i++) await publisher.publish(to, new Uint8Array([i]));
}

// 1. Re-entrancy: what a handler may do to its own connection.

for (const shape of POOLS) {
  natsTest(
    `NATS edges (${shape.name}): a handler that closes the connection ends it cleanly, and is not called after`,
    async () => {
      await using server = await startNatsServer();
      const p = makePool(shape);
      const conn = await NatsConnection.connect({ pool: p, port: server.port });
      let calls = 0;
      let closing: Promise<void> | null = null;
      conn.subscribe("re.close", () => {
        calls++;
        closing ??= conn.close();
      });
      await conn.flush();
      // Every message in one flush, so that they arrive in one read.
      const publisher = conn.publisher();
      for (let i = 0; i < 5; i++) {
        publisher.tryPublish(new NatsSubject("re.close"), new Uint8Array([i]));
      }
      await within(conn.closed, "closed after a handler's close()");
      await within(closing!, "the handler's close()");
      assert.equal(calls, 1, "the handler ran after the connection was closed");
      assertAllFree(p);
    },
  );

  natsTest(
    `NATS edges (${shape.name}): a handler that drains the connection ends it cleanly`,
    async () => {
      await using server = await startNatsServer();
      const p = makePool(shape);
      const conn = await NatsConnection.connect({ pool: p, port: server.port });
      let draining: Promise<void> | null = null;
      const sub = conn.subscribe("re.drain", () => {
        draining ??= conn.drain();
      });
      await conn.flush();
      await burst(conn, "re.drain", 5);
      await within(conn.closed, "closed after a handler's drain()");
      await within(draining!, "the handler's drain()");
      assert.ok(sub.ended);
      assert.ok(sub.received >= 1);
      assertAllFree(p);
    },
  );

  natsTest(
    `NATS edges (${shape.name}): a handler subscribes, publishes (try and awaited), unsubscribes and flushes from inside its call`,
    async () => {
      await using server = await startNatsServer();
      const p = makePool(shape);
      const conn = await NatsConnection.connect({ pool: p, port: server.port });
      const publisher = conn.publisher();
      const replies: string[] = [];
      const later: Promise<void>[] = [];
      let inner: NatsSubscription | null = null;
      const outer = conn.subscribe("re.outer", (message) => {
        const n = message.payload[0]!;
        if (inner === null) {
          inner = conn.subscribe("re.inner", (reply) => replies.push(reply.text()));
        }
        // A reply on the subscription just made: the SUB goes first, same writer.
        if (!publisher.tryPublishString(new NatsSubject("re.inner"), `try ${n}`)) {
          later.push(publisher.publishString(new NatsSubject("re.inner"), `try ${n}`));
        }
        later.push(publisher.publishString(new NatsSubject("re.inner"), `awaited ${n}`));
        later.push(conn.flush());
        if (n === 2) outer.unsubscribe();
      });
      await conn.flush();
      await burst(conn, "re.outer", 5);
      await within(conn.flush(), "a flush after the burst");
      await within(Promise.all(later), "the handler's publishes and flushes");
      await within(conn.flush(), "a flush after the handler's");
      assert.equal(outer.received, 3);
      assert.ok(outer.ended);
      assert.deepEqual(replies, ["try 0", "awaited 0", "try 1", "awaited 1", "try 2", "awaited 2"]);
      await within(conn.drain(), "drain");
      assert.ok(inner!.ended);
      assertAllFree(p);
    },
  );
}

natsTest(
  "NATS edges: a handler whose close() is followed by a publish in the same call does not turn a close into a failure",
  async () => {
    await using server = await startNatsServer();
    const p = makePool(POOLS[1]);
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const publisher = conn.publisher();
    let closing: Promise<void> | null = null;
    let refused: unknown = null;
    conn.subscribe("re.late", () => {
      closing ??= conn.close();
      // The publisher is closed now: a publish rejects with a ClosedError, a flush rejects.
      publisher.publish(new NatsSubject("re.late"), new Uint8Array(1)).catch((e) => refused = e);
      conn.flush().catch(() => {});
    });
    await conn.flush();
    await burst(conn, "re.late", 3);
    await within(conn.closed, "closed");
    await within(closing!, "close()");
    assert.ok(refused instanceof ClosedError, String(refused));
    assertAllFree(p);
  },
);

// 2. Packets retained past the end of the connection.

for (const end of ["close", "drain"] as const) {
  natsTest(
    `NATS edges: packets retained by a handler outlive ${end}(), stay valid, and give their buffers back once released`,
    async () => {
      await using server = await startNatsServer();
      const p = makePool(POOLS[1]);
      const conn = await NatsConnection.connect({ pool: p, port: server.port });
      const kept: Packet[] = [];
      conn.subscribe("keep", (message) => kept.push(message.retain()));
      await conn.flush();
      for (let i = 0; i < 20; i++) {
        conn.publisher().tryPublishString(new NatsSubject("keep"), `kept ${i}`);
      }
      await conn.flush();
      await within(end === "close" ? conn.close() : conn.drain(), end);
      await within(conn.closed, "closed");
      assert.deepEqual(
        kept.map((packet) => packet.text()),
        Array.from({ length: 20 }, (_, i) => `kept ${i}`),
      );
      assert.ok(p.stats().inUse > 0, "the packets pin their buffer");
      for (const packet of kept) packet.release();
      assertAllFree(p);
    },
  );
}

natsTest(
  "NATS edges: with every buffer pinned by retained packets the connection waits, and goes on once they are released",
  async () => {
    await using server = await startNatsServer();
    // 2 KiB buffers, payloads of 900 bytes: two messages a buffer at most.
    const p = makePool({ bufferSize: 2048, bufferCount: 3 });
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const sender = await NatsConnection.connect({ pool: makePool(POOLS[1]), port: server.port });
    const kept: Packet[] = [];
    const payloads: number[] = [];
    let keep = true;
    const pinned = Promise.withResolvers<void>();
    conn.subscribe("pin", (message) => {
      payloads.push(message.payload[0]!);
      if (!keep) return;
      kept.push(message.retain());
      if (p.stats().free === 0) pinned.resolve();
    });
    await conn.flush();
    for (let i = 0; i < 12; i++) {
      sender.publisher().tryPublish(new NatsSubject("pin"), new Uint8Array(900).fill(i));
    }
    await sender.flush();
    await within(pinned.promise, "the pool running dry");
    // Its PONG comes after the messages, which wait for a buffer.
    const flushed = conn.flush();
    keep = false;
    assert.ok(kept.length < 12);
    for (const [i, packet] of kept.entries()) {
      assert.deepEqual(packet.bytes, new Uint8Array(900).fill(i));
      packet.release();
    }
    await within(flushed, "a flush made while pinned, once released");
    assert.deepEqual(payloads, [...Array(12).keys()]);
    assert.equal(conn.ended, false);
    await within(conn.drain(), "drain");
    assertAllFree(p);
    await sender.close();
  },
);

for (const end of ["close", "drain"] as const) {
  natsTest(
    `NATS edges: ${end}() while retained packets pin every buffer and a PING waits for one ends the connection without a failure`,
    async () => {
      await using server = await startNatsServer();
      const p = makePool({ bufferSize: 2048, bufferCount: 3 });
      const conn = await NatsConnection.connect({ pool: p, port: server.port });
      const sender = await NatsConnection.connect({ pool: makePool(POOLS[1]), port: server.port });
      const kept: Packet[] = [];
      let keep = true;
      const pinned = Promise.withResolvers<void>();
      conn.subscribe("pin", (message) => {
        if (!keep) return;
        kept.push(message.retain());
        if (p.stats().free === 0) pinned.resolve();
      });
      await conn.flush();
      for (let i = 0; i < 12; i++) {
        sender.publisher().tryPublish(new NatsSubject("pin"), new Uint8Array(900));
      }
      await sender.flush();
      await within(pinned.promise, "the pool running dry");
      // Fill the writer's buffer: the PING of the flush then waits for another.
      while (conn.publisher().tryPublish(new NatsSubject("elsewhere"), new Uint8Array(100)));
      const flushed = conn.flush().then(() => null, (e) => e);
      const ending = end === "close" ? conn.close() : conn.drain();
      // drain() waits for the messages before its PONG, so for the packets' release.
      keep = false;
      if (end === "drain") { for (const packet of kept.splice(0)) packet.release(); }
      await within(ending, `${end} while pinned`);
      await within(conn.closed, `closed after ${end}`);
      const flush = await flushed;
      assert.ok(
        end === "close" ? flush instanceof NatsConnectionError : flush === null,
        String(flush),
      );
      for (const packet of kept.splice(0)) packet.release();
      assertAllFree(p);
      await sender.close();
    },
  );
}

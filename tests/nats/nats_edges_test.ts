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
import { assertAllFree, withinDeadline } from "../_helpers.ts";
import { natsTest, startNatsServer } from "./_nats_server.ts";
import type { BusReply, BusRequest } from "../workers/nats_bus_worker.ts";

/** A tight pool (a buffer for the reader, one for the writer, little spare) and a roomy one. */
const POOLS = [
  { name: "3 small buffers", bufferSize: 2048, bufferCount: 3 },
  { name: "64 roomy buffers", bufferSize: 16 * 1024, bufferCount: 64 },
] as const;

function makePool(shape: { bufferSize: number; bufferCount: number }, shared = false): BufferPool {
  return new BufferPool({ bufferSize: shape.bufferSize, bufferCount: shape.bufferCount, shared });
}

/** Resolves once `condition()` holds, checked every millisecond, or fails naming `what` after 10 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`never came: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
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
      await withinDeadline(conn.closed, "closed after a handler's close()");
      await withinDeadline(closing!, "the handler's close()");
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
      await withinDeadline(conn.closed, "closed after a handler's drain()");
      await withinDeadline(draining!, "the handler's drain()");
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
      await withinDeadline(conn.flush(), "a flush after the burst");
      await withinDeadline(Promise.all(later), "the handler's publishes and flushes");
      await withinDeadline(conn.flush(), "a flush after the handler's");
      assert.equal(outer.received, 3);
      assert.ok(outer.ended);
      assert.deepEqual(replies, ["try 0", "awaited 0", "try 1", "awaited 1", "try 2", "awaited 2"]);
      await withinDeadline(conn.drain(), "drain");
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
    await withinDeadline(conn.closed, "closed");
    await withinDeadline(closing!, "close()");
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
      await withinDeadline(end === "close" ? conn.close() : conn.drain(), end);
      await withinDeadline(conn.closed, "closed");
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
    await withinDeadline(pinned.promise, "the pool running dry");
    // Its PONG comes after the messages, which wait for a buffer.
    const flushed = conn.flush();
    keep = false;
    assert.ok(kept.length < 12);
    for (const [i, packet] of kept.entries()) {
      assert.deepEqual(packet.bytes, new Uint8Array(900).fill(i));
      packet.release();
    }
    await withinDeadline(flushed, "a flush made while pinned, once released");
    assert.deepEqual(payloads, [...Array(12).keys()]);
    assert.equal(conn.ended, false);
    await withinDeadline(conn.drain(), "drain");
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
      await withinDeadline(pinned.promise, "the pool running dry");
      // Fill the writer's buffer: the PING of the flush then waits for another.
      while (conn.publisher().tryPublish(new NatsSubject("elsewhere"), new Uint8Array(100)));
      const flushed = conn.flush().then(() => null, (e) => e);
      const ending = end === "close" ? conn.close() : conn.drain();
      // drain() waits for the messages before its PONG, so for the packets' release.
      keep = false;
      if (end === "drain") { for (const packet of kept.splice(0)) packet.release(); }
      await withinDeadline(ending, `${end} while pinned`);
      await withinDeadline(conn.closed, `closed after ${end}`);
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

// 3. close() and drain() twice, together, and after each other; what comes after.

for (const shape of POOLS) {
  natsTest(
    `NATS edges (${shape.name}): close() and drain() twice, together and one after the other all end cleanly; then flush and subscribe fail with typed errors`,
    async () => {
      await using server = await startNatsServer();
      const orders: ((conn: NatsConnection) => Promise<unknown>)[] = [
        (conn) => Promise.all([conn.close(), conn.close()]),
        (conn) => Promise.all([conn.drain(), conn.drain()]),
        (conn) => Promise.all([conn.drain(), conn.close()]),
        (conn) => Promise.all([conn.close(), conn.drain()]),
        async (conn) => {
          await conn.close();
          await conn.drain();
        },
        async (conn) => {
          await conn.drain();
          await conn.close();
        },
      ];
      for (const [n, order] of orders.entries()) {
        const p = makePool(shape);
        const conn = await NatsConnection.connect({ pool: p, port: server.port });
        const sub = conn.subscribe("twice", () => {});
        conn.publisher().tryPublish(new NatsSubject("twice"), new Uint8Array(8));
        const flushed = conn.flush().then(() => null, (e) => e);
        await withinDeadline(order(conn), `order ${n}`);
        await withinDeadline(conn.closed, `closed, order ${n}`);
        const flush = await flushed;
        assert.ok(flush === null || flush instanceof NatsConnectionError, String(flush));
        assert.ok(conn.ended && sub.ended);
        await assert.rejects(conn.flush(), NatsConnectionError);
        assert.throws(() => conn.subscribe("after", () => {}), NatsConnectionError);
        assert.throws(
          () => conn.publisher().tryPublish(new NatsSubject("x"), new Uint8Array(1)),
          ClosedError,
        );
        sub.unsubscribe();
        sub.unsubscribe(3);
        assertAllFree(p);
      }
    },
  );
}

natsTest(
  "NATS edges: subscribe() with a max that is not a positive integer throws before anything is subscribed",
  async () => {
    await using server = await startNatsServer();
    const p = makePool(POOLS[0]);
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const got: number[] = [];
    for (const max of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => conn.subscribe("bad.max", () => got.push(max), { max }), RangeError);
    }
    await conn.flush();
    conn.publisher().tryPublish(new NatsSubject("bad.max"), new Uint8Array(1));
    await conn.flush();
    assert.deepEqual(got, []);
    await withinDeadline(conn.drain(), "drain");
    assertAllFree(p);
  },
);

/**
 * A fake server on 127.0.0.1: sends `info`, answers the PING after CONNECT,
 * then hands the socket and a reader of what the client sends to `script`.
 */
function fakeServer(
  info: Record<string, unknown>,
  script: (
    send: (text: string) => Promise<void>,
    until: (text: string) => Promise<string>,
  ) => Promise<void>,
): { port: number; done: Promise<void>; stop(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const encoder = new TextEncoder();
  let accepted: Deno.Conn | null = null;
  const done = (async () => {
    const conn = accepted = await listener.accept();
    listener.close();
    const buffer = new Uint8Array(4096);
    const decoder = new TextDecoder();
    let received = "";
    /** Reads until `text` came (then consumes up to it), or the client closed. */
    const until = async (text: string): Promise<string> => {
      while (!received.includes(text)) {
        const n = await conn.read(buffer);
        if (n === null) return "";
        received += decoder.decode(buffer.subarray(0, n));
      }
      const at = received.indexOf(text) + text.length;
      const seen = received.slice(0, at);
      received = received.slice(at);
      return seen;
    };
    const send = async (text: string) => void await conn.write(encoder.encode(text));
    try {
      await send(
        `INFO ${
          JSON.stringify({
            server_id: "fake",
            version: "2.10.0",
            proto: 1,
            max_payload: 4096,
            ...info,
          })
        }\r\n`,
      );
      await until("PING\r\n");
      await send("PONG\r\n");
      await script(send, until);
      await until("never: the client closes");
    } finally {
      stop();
    }
  })();
  /** Closes the server's side, for a script that never ends. */
  function stop(): void {
    try {
      accepted?.close();
    } catch {
      // Closed already.
    }
  }
  return { port: (listener.addr as Deno.NetAddr).port, done, stop };
}

natsTest(
  "NATS edges: a subscription with max 1 hands exactly one message to its handler when the server sends several",
  async () => {
    const server = fakeServer({}, async (send, until) => {
      assert.match(await until("PING\r\n"), /SUB one 1\r\nUNSUB 1 1\r\n/);
      // A server late with the UNSUB: three messages for sid 1, one for a sid never made.
      await send(
        "MSG one 1 1\r\na\r\nMSG one 1 1\r\nb\r\nHMSG one 1 12 13\r\nNATS/1.0\r\n\r\nc\r\nMSG one 9 1\r\nd\r\nPONG\r\n",
      );
    });
    const p = makePool(POOLS[0]);
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const got: string[] = [];
    const sub = conn.subscribe("one", (message) => got.push(message.text()), { max: 1 });
    await withinDeadline(conn.flush(), "flush");
    await withinDeadline(sub.closed, "the subscription's end");
    assert.deepEqual(got, ["a"]);
    assert.equal(sub.received, 1);
    await withinDeadline(conn.close(), "close");
    await server.done;
    assertAllFree(p);
  },
);

// 5. An INFO mid-stream.

natsTest(
  "NATS edges: an INFO mid-stream with another max_payload and connect_urls updates info; messages and publishes go on",
  async () => {
    const server = fakeServer({}, async (send, until) => {
      await until("PING\r\n");
      await send(
        'MSG s 1 2\r\nhi\r\nINFO {"server_id":"fake","version":"2.10.0","proto":1,"max_payload":2048,' +
          '"connect_urls":["10.0.0.1:4222","10.0.0.2:4222"],"ldm":true}\r\nMSG s 1 5\r\nthere\r\nPONG\r\n',
      );
      assert.match(await until("PING\r\n"), /PUB back 5\r\nafter\r\n/);
      await send("PONG\r\n");
    });
    const p = makePool(POOLS[0]);
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    assert.equal(conn.info.max_payload, 4096);
    assert.equal(conn.info.connect_urls, undefined);
    const maxPayload = conn.maxPayload;
    const got: string[] = [];
    conn.subscribe("s", (message) => got.push(message.text()));
    await withinDeadline(conn.flush(), "the flush answered after the INFO");
    assert.deepEqual(got, ["hi", "there"]);
    assert.equal(conn.info.max_payload, 2048);
    assert.deepEqual(conn.info.connect_urls, ["10.0.0.1:4222", "10.0.0.2:4222"]);
    assert.equal(conn.info.ldm, true);
    assert.equal(conn.maxPayload, maxPayload);
    conn.publisher().tryPublishString(new NatsSubject("back"), "after");
    await withinDeadline(conn.flush(), "a flush after a publish");
    assert.equal(conn.ended, false);
    await withinDeadline(conn.close(), "close");
    await conn.closed;
    await server.done;
    assertAllFree(p);
  },
);

// 4. A publisher in another worker when the connection ends.

for (const bufferCount of [2, 3]) {
  natsTest(
    `NATS edges: drain() while a worker's publisher waits for one of ${bufferCount} buffers: its publish rejects with a ClosedError, nothing leaks or hangs`,
    async () => {
      await using server = await startNatsServer();
      const p = makePool({ bufferSize: 8192, bufferCount }, true);
      const conn = await NatsConnection.connect({ pool: p, port: server.port });
      const watcher = await NatsConnection.connect({ pool: makePool(POOLS[1]), port: server.port });
      let seen = 0;
      const flowing = Promise.withResolvers<void>();
      watcher.subscribe("w.>", () => {
        if (++seen === 200) flowing.resolve();
      });
      await watcher.flush();
      const worker = new Worker(new URL("../workers/nats_bus_worker.ts", import.meta.url), {
        type: "module",
      });
      try {
        const replied = new Promise<BusReply>((resolve, reject) => {
          worker.onmessage = (event: MessageEvent<BusReply>) => resolve(event.data);
          worker.onerror = (event) => {
            event.preventDefault();
            reject(new Error(event.message));
          };
        });
        worker.postMessage(
          {
            kind: "publish",
            pool: p.handle,
            nats: conn.publisherHandle,
            shared: null,
            publisher: 0,
            // More than it can publish before the drain: it is mid-stream then.
            count: 10_000_000,
            subject: "w.p0",
          } satisfies BusRequest,
        );
        // Two buffers are the connection's own (its reader's and its writer's): the
        // worker's first publish waits. With three, it waits now and then.
        if (bufferCount > 2) {
          await withinDeadline(flowing.promise, "the worker's messages arriving");
        }
        await until(() => p.stats().waitingWorkers > 0, "the worker waiting for a buffer");
        await withinDeadline(conn.drain(), "drain");
        await withinDeadline(conn.closed, "closed");
        const reply = await withinDeadline(replied, "the worker's publish settling");
        assert.equal(reply.ok, false);
        assert.match(reply.ok ? "" : reply.error, /^ClosedError/);
        assertAllFree(p);
      } finally {
        worker.terminate();
        await watcher.close();
      }
    },
  );
}

natsTest(
  "NATS edges: close() against a server that stopped reading does not hang: it fails the connection as stale",
  async () => {
    // The fake never reads again, and never ends: the test does not wait for it.
    const server = fakeServer({}, () => new Promise(() => {}));
    // Far more than the socket's buffers hold, committed before close().
    const p = makePool({ bufferSize: 16 * 1024, bufferCount: 2048 });
    const conn = await NatsConnection.connect({ pool: p, port: server.port, pingInterval: 300 });
    const publisher = conn.publisher();
    const payload = new Uint8Array(4000);
    for (let i = 0; i < 7500 && publisher.tryPublish(new NatsSubject("x"), payload); i++);
    await withinDeadline(conn.close(), "close() with bytes the server does not read");
    await assert.rejects(conn.closed, /stale/);
    // Its script never ends: its side is closed here, or it outlives the test.
    server.stop();
    assertAllFree(p);
  },
);

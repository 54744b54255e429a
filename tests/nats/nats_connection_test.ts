// NatsConnection against a real nats-server (tests/nats/_nats_server.ts):
// round trips checked byte by byte, wildcards, queue groups, limits, login,
// -ERR, PINGs both ways, and every way the connection ends (close, drain, the
// server going away, a stale link, a server that speaks no NATS), each with
// every buffer back in the pool.
import assert from "node:assert/strict";
import { BufferPool, ClosedError, Writer } from "../../mod.ts";
import {
  NatsConnection,
  NatsConnectionError,
  type NatsMessage,
  NatsProtocolError,
  NatsServerError,
  NatsSubject,
} from "../../nats.ts";
import { assertAllFree, withinDeadline } from "../_helpers.ts";
import { natsTest, startNatsServer } from "./_nats_server.ts";

function pool(bufferSize = 16 * 1024, bufferCount = 64): BufferPool {
  return new BufferPool({ bufferSize, bufferCount });
}

/** Message `i` of a numbered stream: 4 bytes of its number, then `size - 4` bytes of a pattern. */
function numbered(i: number, size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(size, 4));
  new DataView(bytes.buffer).setUint32(0, i);
  for (let k = 4; k < bytes.length; k++) bytes[k] = (i + k) & 0xff;
  return bytes;
}

/** The mixed sizes of message `i`: 0 to ~3 KiB, digit boundaries included. */
function sizeOf(i: number): number {
  return [4, 9, 10, 99, 100, 1000, 3000, 32][i % 8]!;
}

/** Checks a numbered message's bytes and returns its number. */
function checkNumbered(message: NatsMessage): number {
  const bytes = message.payload;
  const i = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(0);
  assert.deepEqual(bytes, numbered(i, sizeOf(i)), `message ${i} changed on the way`);
  return i;
}

natsTest(
  "NATS: numbered messages of mixed sizes make a round trip once each, in order, byte-exact",
  async () => {
    await using server = await startNatsServer();
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port, name: "round-trip" });
    const seen: number[] = [];
    conn.subscribe("trip", (message) => seen.push(checkNumbered(message)));
    await conn.flush();
    const publisher = conn.publisher();
    const subject = new NatsSubject("trip");
    const count = 2000;
    for (let i = 0; i < count; i++) await publisher.publish(subject, numbered(i, sizeOf(i)));
    await conn.flush();
    assert.deepEqual(seen, Array.from({ length: count }, (_, i) => i));
    await conn.drain();
    await conn.closed;
    assertAllFree(p);
  },
);

natsTest("NATS: wildcards: '*' matches one token, '>' the rest", async () => {
  await using server = await startNatsServer();
  const p = pool();
  const conn = await NatsConnection.connect({ pool: p, port: server.port });
  const one: string[] = [];
  const rest: string[] = [];
  conn.subscribe("a.*", (message) => one.push(message.subject));
  conn.subscribe("a.>", (message) => rest.push(message.subject));
  await conn.flush();
  const publisher = conn.publisher();
  for (const subject of ["a", "a.b", "a.b.c", "b.a", "a.c"]) {
    publisher.tryPublish(new NatsSubject(subject), new Uint8Array(1));
  }
  await conn.flush();
  assert.deepEqual(one, ["a.b", "a.c"]);
  assert.deepEqual(rest, ["a.b", "a.b.c", "a.c"]);
  await conn.close();
  assertAllFree(p);
});

natsTest("NATS: a queue group shares the messages: each goes to exactly one member", async () => {
  await using server = await startNatsServer();
  const p = pool();
  const publisherSide = await NatsConnection.connect({ pool: p, port: server.port });
  const members = [
    await NatsConnection.connect({ pool: p, port: server.port }),
    await NatsConnection.connect({ pool: p, port: server.port }),
  ];
  const got: number[][] = [[], []];
  members.forEach((member, m) =>
    member.subscribe("work", (message) => got[m]!.push(checkNumbered(message)), { queue: "q" })
  );
  await Promise.all(members.map((member) => member.flush()));
  const publisher = publisherSide.publisher();
  const count = 400;
  for (let i = 0; i < count; i++) {
    await publisher.publish(new NatsSubject("work"), numbered(i, sizeOf(i)));
  }
  await publisherSide.flush();
  await Promise.all(members.map((member) => member.flush()));
  assert.deepEqual([...got[0]!, ...got[1]!].sort((a, b) => a - b), [...Array(count).keys()]);
  assert.ok(got[0]!.length > 0 && got[1]!.length > 0, "both members got a share");
  for (const conn of [publisherSide, ...members]) await conn.drain();
  assertAllFree(p);
});

natsTest(
  "NATS: a subscription with max ends after that many messages, and the server stops sending",
  async () => {
    await using server = await startNatsServer();
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    let count = 0;
    const sub = conn.subscribe("few", () => count++, { max: 3 });
    await conn.flush();
    for (let i = 0; i < 10; i++) {
      conn.publisher().tryPublish(new NatsSubject("few"), new Uint8Array(2));
    }
    await conn.flush();
    await sub.closed;
    assert.equal(count, 3);
    assert.equal(sub.received, 3);
    assert.ok(sub.ended);
    await conn.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: a payload over the server's max_payload is refused before anything is sent",
  async () => {
    await using server = await startNatsServer({ maxPayload: 1024 });
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    assert.equal(conn.maxPayload, 1024);
    const got: number[] = [];
    conn.subscribe("limit", (message) => got.push(message.payload.length));
    await conn.flush();
    const publisher = conn.publisher();
    const subject = new NatsSubject("limit");
    assert.throws(() => publisher.tryPublish(subject, new Uint8Array(1025)), RangeError);
    await assert.rejects(publisher.publish(subject, new Uint8Array(5000)), RangeError);
    // The connection is unharmed: the server never saw the refused ones.
    assert.ok(publisher.tryPublish(subject, new Uint8Array(1024)));
    await conn.flush();
    assert.deepEqual(got, [1024]);
    await conn.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: a wrong password is refused at connect with a NatsServerError; nothing is left behind",
  async () => {
    await using server = await startNatsServer({ user: "bab", password: "right" });
    const p = pool();
    const error = await NatsConnection.connect({
      pool: p,
      port: server.port,
      user: "bab",
      pass: "wrong",
    })
      .then(() => null, (e) => e);
    assert.ok(error instanceof NatsServerError, String(error));
    assert.match(error.serverMessage, /Authorization Violation/i);
    assert.ok(error.fatal);
    assertAllFree(p);
    const conn = await NatsConnection.connect({
      pool: p,
      port: server.port,
      user: "bab",
      pass: "right",
    });
    await conn.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: a -ERR that does not close the connection reaches onError, and the connection goes on",
  async () => {
    await using server = await startNatsServer({
      user: "bab",
      password: "pw",
      config:
        `authorization { users = [ { user: bab, password: pw, permissions: { publish: { deny: ["secret"] } } } ] }`,
    });
    const p = pool();
    const errors: NatsServerError[] = [];
    const conn = await NatsConnection.connect({
      pool: p,
      port: server.port,
      user: "bab",
      pass: "pw",
      onError: (error) => errors.push(error),
    });
    const got: string[] = [];
    conn.subscribe("open", (message) => got.push(message.text()));
    await conn.flush();
    conn.publisher().tryPublishString(new NatsSubject("secret"), "no");
    conn.publisher().tryPublishString(new NatsSubject("open"), "yes");
    await conn.flush();
    assert.deepEqual(got, ["yes"]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.serverMessage, /Permissions Violation/);
    assert.equal(errors[0]!.fatal, false);
    await conn.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: the server's PINGs are answered under load, so a fast ping interval does not drop the client",
  async () => {
    await using server = await startNatsServer({ pingIntervalMs: 50, config: "ping_max: 2" });
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    let received = 0;
    conn.subscribe("load", () => received++);
    await conn.flush();
    const publisher = conn.publisher();
    const subject = new NatsSubject("load");
    const payload = new Uint8Array(32);
    const started = performance.now();
    // Publish for a while: several of the server's ping intervals.
    let sent = 0;
    while (performance.now() - started < 400) {
      for (let i = 0; i < 1000; i++, sent++) await publisher.publish(subject, payload);
      await conn.flush();
    }
    assert.equal(received, sent);
    assert.equal(conn.ended, false);
    await conn.drain();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: a server restart mid-stream fails the connection cleanly (closed rejects, publishes reject with ClosedError, every buffer back); a new connection then works",
  async () => {
    await using server = await startNatsServer();
    const p = pool(4096, 8);
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const publisher = conn.publisher();
    const subject = new NatsSubject("gone");
    const payload = new Uint8Array(100);
    // Caught at once: it fails while the test waits for closed.
    const publishing = (async () => {
      for (;;) await publisher.publish(subject, payload);
    })().then(() => null, (error) => error);
    await conn.flush();
    await server.restart();
    await assert.rejects(conn.closed, NatsConnectionError);
    const failure = await publishing;
    assert.ok(failure instanceof ClosedError, String(failure));
    assert.ok(
      failure.cause instanceof NatsConnectionError,
      "the cause says the connection was lost",
    );
    assert.throws(() => conn.subscribe("x", () => {}), NatsConnectionError);
    await assert.rejects(conn.flush(), NatsConnectionError);
    assertAllFree(p);
    // Reconnecting is connecting again, and subscribing again.
    const again = await NatsConnection.connect({ pool: p, port: server.port });
    const got: string[] = [];
    again.subscribe("back", (message) => got.push(message.text()));
    await again.flush();
    again.publisher().tryPublishString(new NatsSubject("back"), "hello again");
    await again.flush();
    assert.deepEqual(got, ["hello again"]);
    await again.drain();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: close() while a publisher waits for a buffer rejects the wait and frees everything",
  async () => {
    await using server = await startNatsServer();
    // One buffer for the connection's reader, one for its writer, one held here.
    const p = pool(2048, 3);
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    // A second writer of this worker, holding the only other buffer.
    const other = new Writer(p, conn.flusher);
    const held = other.tryReserve(100)!;
    const publisher = conn.publisher();
    const subject = new NatsSubject("full");
    while (publisher.tryPublish(subject, new Uint8Array(500)));
    const waiting = publisher.publish(subject, new Uint8Array(500)).then(() => null, (e) => e);
    held.commit();
    other.close();
    await conn.close();
    assert.ok(await waiting instanceof ClosedError);
    await conn.closed;
    assertAllFree(p);
  },
);

natsTest(
  "NATS: close() with a reservation left open cancels it the NATS way: the message after it still arrives",
  async () => {
    await using server = await startNatsServer();
    const p = pool();
    const listener = await NatsConnection.connect({ pool: p, port: server.port });
    const arrived = Promise.withResolvers<string>();
    listener.subscribe("after", (message) => arrived.resolve(message.text()));
    await listener.flush();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const publisher = conn.publisher();
    const forgotten = publisher.tryReserve(new NatsSubject("left.open"), 16)!;
    publisher.tryPublishString(new NatsSubject("after"), "still here");
    await conn.close();
    assert.equal(forgotten.open, false);
    // close() sends, it does not wait for the server: the server reads the
    // closed connection's bytes in its own time, so wait for the message
    // itself (a deadline only so that a lost message fails instead of hanging).
    assert.equal(
      await withinDeadline(arrived.promise, "the message after the cancelled one"),
      "still here",
    );
    await listener.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: a handler that throws fails the connection with its error; nothing leaks or goes unhandled",
  async () => {
    await using server = await startNatsServer();
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const boom = new Error("handler failed");
    conn.subscribe("bad", () => {
      throw boom;
    });
    await conn.flush();
    const publisher = conn.publisher();
    publisher.tryPublish(new NatsSubject("bad"), new Uint8Array(8));
    await assert.rejects(conn.closed, (error: unknown) => error === boom);
    await assert.rejects(publisher.publish(new NatsSubject("bad"), new Uint8Array(8)), ClosedError);
    await conn.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: a message larger than this connection's maxPayload fails it before buffering, with every buffer back",
  async () => {
    await using server = await startNatsServer();
    // 8 KiB buffers: with a 4,096-byte control line, payloads of up to 4,092 bytes.
    const small = pool(8192, 4);
    const conn = await NatsConnection.connect({ pool: small, port: server.port });
    assert.equal(conn.maxPayload, 4092);
    conn.subscribe("big", () => {});
    await conn.flush();
    const p = pool();
    const sender = await NatsConnection.connect({ pool: p, port: server.port });
    sender.publisher().tryPublish(new NatsSubject("big"), new Uint8Array(6000));
    await sender.flush();
    await assert.rejects(conn.closed, (error: unknown) => {
      assert.ok(error instanceof NatsProtocolError, String(error));
      assert.match(error.message, /4092/);
      return true;
    });
    assertAllFree(small);
    await sender.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: a handler may unsubscribe its own subscription; later messages are not handed to it",
  async () => {
    await using server = await startNatsServer();
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const got: number[] = [];
    const sub = conn.subscribe("once", (message) => {
      got.push(message.payload[0]!);
      sub.unsubscribe();
    });
    await conn.flush();
    for (let i = 0; i < 5; i++) {
      conn.publisher().tryPublish(new NatsSubject("once"), new Uint8Array([i]));
    }
    await conn.flush();
    assert.deepEqual(got, [0]);
    assert.ok(sub.ended);
    await sub.closed;
    await conn.close();
    assertAllFree(p);
  },
);

natsTest(
  "NATS: drain and close are idempotent, in any order; later calls fail with typed errors",
  async () => {
    await using server = await startNatsServer();
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    const sub = conn.subscribe("x", () => {});
    await Promise.all([conn.drain(), conn.drain(), conn.close()]);
    await conn.close();
    await conn.drain();
    await conn.closed;
    assert.ok(conn.ended);
    assert.ok(sub.ended);
    sub.unsubscribe();
    assert.throws(() => conn.subscribe("y", () => {}), NatsConnectionError);
    await assert.rejects(conn.flush(), NatsConnectionError);
    await assert.rejects(
      conn.publisher().publish(new NatsSubject("x"), new Uint8Array(1)),
      ClosedError,
    );
    assertAllFree(p);
  },
);

/** A fake server on 127.0.0.1: sends INFO, then does what `script` says with the client's socket. */
function fakeServer(
  script: (conn: Deno.Conn, read: () => Promise<string>) => Promise<void>,
): { port: number; done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(4096);
    const read = async () => {
      const n = await conn.read(buffer);
      return n === null ? "" : decoder.decode(buffer.subarray(0, n));
    };
    await conn.write(
      new TextEncoder().encode(
        'INFO {"server_id":"fake","version":"2.9.10","proto":1,"max_payload":4096}\r\n',
      ),
    );
    try {
      await script(conn, read);
    } finally {
      conn.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

Deno.test("NATS: PINGs left unanswered make the connection stale: it fails with a NatsConnectionError", async () => {
  const server = fakeServer(async (conn, read) => {
    // Answer the PING after CONNECT, then stay silent until the client gives up.
    let text = "";
    while (!text.includes("PING")) text += await read();
    await conn.write(new TextEncoder().encode("PONG\r\n"));
    while ((await read()) !== "");
  });
  const p = pool();
  const conn = await NatsConnection.connect({
    pool: p,
    port: server.port,
    pingInterval: 20,
    maxPingsOut: 2,
  });
  await assert.rejects(conn.closed, (error: unknown) => {
    assert.ok(error instanceof NatsConnectionError);
    assert.match(error.message, /stale: 2 PINGs went unanswered/);
    return true;
  });
  await server.done;
  assertAllFree(p);
});

Deno.test("NATS: close() while the server keeps sending PINGs still ends cleanly: closed resolves", async () => {
  for (let round = 0; round < 20; round++) {
    const server = fakeServer(async (conn, read) => {
      let text = "";
      while (!text.includes("PING")) text += await read();
      await conn.write(new TextEncoder().encode("PONG\r\n"));
      // PINGs without pause, until the client goes; its PONGs are read and dropped.
      const ping = new TextEncoder().encode("PING\r\n".repeat(50));
      const draining = (async () => {
        while ((await read()) !== "");
      })().catch(() => {});
      try {
        for (;;) await conn.write(ping);
      } catch {
        // The client closed.
      }
      await draining;
    });
    const p = pool();
    const conn = await NatsConnection.connect({ pool: p, port: server.port });
    await conn.close();
    await conn.closed;
    await server.done;
    assertAllFree(p);
  }
});

Deno.test("NATS: a server that sends what is not NATS fails the connection with a NatsProtocolError", async () => {
  const server = fakeServer(async (conn, read) => {
    let text = "";
    while (!text.includes("PING")) text += await read();
    await conn.write(new TextEncoder().encode("PONG\r\nHELLO THERE\r\n"));
    while ((await read()) !== "");
  });
  const p = pool();
  const conn = await NatsConnection.connect({ pool: p, port: server.port });
  await assert.rejects(conn.closed, NatsProtocolError);
  await server.done;
  assertAllFree(p);
});

Deno.test("NATS: connect fails with a NatsConnectionError when nothing listens, or the server never says INFO", async () => {
  const p = pool();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = listener.accept();
  await assert.rejects(
    NatsConnection.connect({ pool: p, port, timeout: 50 }),
    (error: unknown) =>
      error instanceof NatsConnectionError && /INFO within 50 ms/.test(error.message),
  );
  (await accepted).close();
  listener.close();
  await assert.rejects(NatsConnection.connect({ pool: p, port }), NatsConnectionError);
  assertAllFree(p);
});

natsTest(
  "NATS: options out of range are refused with RangeErrors that name the limit",
  async () => {
    await using server = await startNatsServer({ maxPayload: 4096 });
    const p = pool(2048, 4);
    await assert.rejects(
      NatsConnection.connect({ pool: p, port: server.port, maxPayload: 8192 }),
      /server's max_payload is 4096/,
    );
    await assert.rejects(
      NatsConnection.connect({ pool: p, port: server.port, maxPayload: 2000 }),
      /buffers of 2048 bytes hold a payload of at most/,
    );
    await assert.rejects(
      NatsConnection.connect({ pool: p, port: server.port, timeout: 0 }),
      RangeError,
    );
    assertAllFree(p);
  },
);

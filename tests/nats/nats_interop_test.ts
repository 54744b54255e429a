// bab and the ecosystem's client on the same nats-server: the npm `nats`
// client (2.29.3) publishes and bab subscribes, and the reverse, with
// numbered messages of mixed sizes (0 B to 64 KiB + 1) checked byte by byte
// and in order, and headers both ways.
import assert from "node:assert/strict";
import { BufferPool } from "../../mod.ts";
import { NatsConnection, NatsHeaders, NatsSubject } from "../../nats.ts";
import { assertAllFree } from "../_helpers.ts";
import { natsTest, startNatsServer } from "./_nats_server.ts";
import {
  checkNumbered,
  connectNpm,
  MIXED_SIZES,
  npmCollect,
  npmPublishNumbered,
  numberedPayload,
} from "./_npm_nats.ts";
import { headers as npmHeaders } from "npm:nats@2.29.3";

/** Buffers that hold the largest of MIXED_SIZES with its control line. */
function bigPool(): BufferPool {
  return new BufferPool({ bufferSize: 128 * 1024, bufferCount: 16 });
}

natsTest(
  "NATS interop: the npm client publishes, bab subscribes: every message once, in order, byte-exact",
  async () => {
    await using server = await startNatsServer();
    const pool = bigPool();
    const conn = await NatsConnection.connect({ pool, port: server.port });
    const count = 400;
    const got: number[] = [];
    const all = Promise.withResolvers<void>();
    conn.subscribe("interop.npm", (message) => {
      checkNumbered(got.length, message.payload);
      got.push(message.payload.length);
      if (got.length === count) all.resolve();
    });
    await conn.flush();
    const npm = await connectNpm(server);
    await npmPublishNumbered(npm, "interop.npm", count);
    await Promise.race([all.promise, conn.closed]);
    assert.deepEqual(
      got,
      Array.from({ length: count }, (_, i) => MIXED_SIZES[i % MIXED_SIZES.length]),
    );
    await npm.close();
    await conn.drain();
    assertAllFree(pool);
  },
);

natsTest(
  "NATS interop: bab publishes, the npm client subscribes: every message once, in order, byte-exact",
  async () => {
    await using server = await startNatsServer();
    const pool = bigPool();
    const conn = await NatsConnection.connect({ pool, port: server.port });
    const npm = await connectNpm(server);
    const count = 400;
    const collecting = await npmCollect(npm, "interop.bab", count);
    const publisher = conn.publisher();
    const subject = new NatsSubject("interop.bab");
    for (let i = 0; i < count; i++) await publisher.publish(subject, numberedPayload(i));
    const messages = await collecting.messages;
    messages.forEach((message, i) => checkNumbered(i, message.data));
    await npm.close();
    await conn.drain();
    assertAllFree(pool);
  },
);

natsTest("NATS interop: headers and reply subjects cross both ways", async () => {
  await using server = await startNatsServer();
  const pool = bigPool();
  const conn = await NatsConnection.connect({ pool, port: server.port });
  const npm = await connectNpm(server);

  // bab → npm: HPUB with a header and a reply subject.
  const collecting = await npmCollect(npm, "interop.h", 1);
  conn.publisher().tryPublishString(new NatsSubject("interop.h"), "with headers", {
    reply: new NatsSubject("interop.reply"),
    headers: new NatsHeaders({ "Bab-Trace": "abc123" }),
  });
  const [fromBab] = await collecting.messages;
  assert.equal(new TextDecoder().decode(fromBab!.data), "with headers");
  assert.equal(fromBab!.headers?.get("Bab-Trace"), "abc123");
  assert.equal(fromBab!.reply, "interop.reply");

  // npm → bab: a header and a reply subject, seen in place.
  const seen = Promise.withResolvers<{ text: string; headers: string; reply: string | null }>();
  conn.subscribe("interop.back", (message) =>
    seen.resolve({
      text: message.text(),
      headers: new TextDecoder().decode(message.headers ?? new Uint8Array()),
      reply: message.reply,
    }));
  await conn.flush();
  const h = npmHeaders();
  h.set("Npm-Trace", "xyz");
  npm.publish("interop.back", new TextEncoder().encode("from npm"), { headers: h, reply: "r.1" });
  await npm.flush();
  const back = await Promise.race([seen.promise, conn.closed.then(() => assert.fail("closed"))]);
  assert.equal(back.text, "from npm");
  assert.match(back.headers, /^NATS\/1\.0\r\n/);
  assert.match(back.headers, /Npm-Trace: xyz\r\n/);
  assert.equal(back.reply, "r.1");
  await npm.close();
  await conn.drain();
  assertAllFree(pool);
});

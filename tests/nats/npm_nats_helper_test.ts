// The npm-client wrappers (tests/nats/_npm_nats.ts) that interop tests use
// as the other end: numbered messages of mixed sizes make the round trip
// through a real server byte for byte, and a check or a collect that should
// fail does, with a message that says what went wrong.
import assert from "node:assert/strict";
import { natsTest, startNatsServer } from "./_nats_server.ts";
import {
  checkNumbered,
  connectNpm,
  MIXED_SIZES,
  npmCollect,
  npmPublishNumbered,
  numberedPayload,
} from "./_npm_nats.ts";

natsTest(
  "npm client: numbered messages of every mixed size arrive whole and in order",
  async () => {
    await using server = await startNatsServer({ user: "bab", password: "pw" });
    const publisher = await connectNpm(server, { user: "bab", pass: "pw" });
    const subscriber = await connectNpm(server, { user: "bab", pass: "pw" });
    try {
      const count = MIXED_SIZES.length * 3;
      const collecting = await npmCollect(subscriber, "interop.numbered", count);
      await npmPublishNumbered(publisher, "interop.numbered", count);
      const messages = await collecting.messages;
      assert.equal(messages.length, count);
      messages.forEach((msg, i) => {
        assert.equal(msg.subject, "interop.numbered");
        checkNumbered(i, msg.data);
      });
    } finally {
      await publisher.close();
      await subscriber.close();
    }
  },
);

natsTest("checkNumbered catches a wrong length, a changed byte and a swapped message", () => {
  const payload = numberedPayload(6);
  assert.equal(payload.length, MIXED_SIZES[6]);
  checkNumbered(6, payload);
  assert.throws(
    () => checkNumbered(6, payload.subarray(1)),
    /Message 6 has 4094 bytes, expected 4095/,
  );
  const changed = payload.slice();
  changed[100]! ^= 1;
  assert.throws(() => checkNumbered(6, changed), /Message 6 differs at byte 100/);
  const sizes = [8];
  assert.throws(() => checkNumbered(1, numberedPayload(2, sizes), sizes), /differs at byte 0/);
});

natsTest("npmCollect fails after its timeout, saying how many arrived", async () => {
  await using server = await startNatsServer();
  const nc = await connectNpm(server);
  try {
    const collecting = await npmCollect(nc, "interop.few", 3, 200);
    nc.publish("interop.few", numberedPayload(0));
    await assert.rejects(collecting.messages, /Got 1 of 3 messages on interop.few in 200 ms/);
  } finally {
    await nc.close();
  }
});

natsTest("npmCollect fails when the server goes away, instead of waiting", async () => {
  await using server = await startNatsServer();
  const nc = await connectNpm(server);
  try {
    const collecting = await npmCollect(nc, "interop.gone", 3, 60_000);
    await server.stop();
    await assert.rejects(collecting.messages, /closed after 0 of 3 messages/);
  } finally {
    await nc.close();
  }
});

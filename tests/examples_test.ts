// Every example runs, with small sizes, and exits 0: they are documentation
// that must keep working.
import assert from "node:assert/strict";
import { damage, fill, HEADER, MessageChecker } from "../examples/_bus_message.ts";

const examples: [file: string, args: string[], expect: RegExp][] = [
  ["pool_and_packets.ts", ["--messages", "20000"], /20000/],
  ["workers.ts", ["--records", "5000"], /5000 records: .* pool in use: 0/],
  ["bson_writer.ts", ["--documents", "2000"], /2000 BSON documents .* pool in use: 0/],
  ["framer_tcp.ts", ["--lines", "2000"], /2000 lines framed, echoed and checked; pool in use: 0/],
  ["bus.ts", ["--messages", "100000", "--workers", "3"], /OK: every message arrived once/],
  [
    "bus.ts",
    ["--messages", "20000", "--workers", "2", "--size", "3000", "--audit"],
    /OK: every message arrived once, in order, intact; forwarded packets checked in another worker/,
  ],
];

for (const [file, args, expect] of examples) {
  Deno.test(`examples/${file} ${args.join(" ")} runs and passes its own checks`, async () => {
    const path = new URL(`../examples/${file}`, import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", path, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `${file} exited ${code}:\n${out}\n${new TextDecoder().decode(stderr)}`);
    assert.match(out, expect);
  });
}

Deno.test("bench/e2e.ts runs every case with small sizes and checks every message", async () => {
  const path = new URL("../bench/e2e.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      path,
      "--runs",
      "1",
      "--messages",
      "20000",
      "--sizes",
      "32,5000",
      "--halves",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `exited ${code}:\n${out}\n${new TextDecoder().decode(stderr)}`);
  for (const kind of ["hand-written", "library", "library sends, by hand reads", "TCP ceiling"]) {
    assert.match(out, new RegExp(`\\| ${kind} `));
  }
});

// The demo and the e2e bench trust these checks to fail on a bad message.
Deno.test("the bus's message checks catch a changed byte, a short message and a reordered one", () => {
  const bytes = new Uint8Array(64);
  const view = new DataView(bytes.buffer);
  for (const size of [HEADER, 13, 32, 47]) {
    fill(view, 3, size, 1, 7);
    assert.equal(damage(view, 3, size), undefined);
    for (let at = 3; at < 3 + size; at++) {
      bytes[at]! ^= 0x10;
      assert.notEqual(damage(view, 3, size), undefined, `byte ${at - 3} of ${size} changed`);
      bytes[at]! ^= 0x10;
    }
  }
  assert.match(damage(view, 0, HEADER - 1)!, /shorter than its 12-byte header/);

  const checker = new MessageChecker(2);
  for (const seq of [0, 1, 3]) {
    fill(view, 0, 32, 1, seq);
    checker.check(view, 0, 32);
  }
  assert.equal(checker.received, 3);
  assert.equal(checker.inOrder, 2);
  assert.equal(checker.failure, "producer 1: message 3 arrived, expected 2");
  fill(view, 0, 32, 2, 0);
  const other = new MessageChecker(2);
  other.check(view, 0, 32);
  assert.equal(other.failure, "a message from producer 2, of 2");
});

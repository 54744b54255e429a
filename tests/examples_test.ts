// Every example runs, with small sizes, and exits 0: they are documentation
// that must keep working.
import assert from "node:assert/strict";
import { damage, fill, HEADER, MessageChecker } from "../examples/_bus_message.ts";
import { natsTest } from "./nats/_nats_server.ts";

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
  [
    "shared_writer.ts",
    ["--workers", "2", "--messages", "5000"],
    // Buffers go out full but for a few: each worker's close, and the last.
    /^2 workers wrote 5000 messages .*\n\d+ TCP writes .*: buffers packed 9\d\.\d% full \(1500-byte MTU\)\nevery message arrived once, intact, in order per worker; pool in use: 0$/m,
  ],
  [
    "nats_bridge.ts",
    ["--workers", "3", "--messages", "5000"],
    /^3 producer workers published 5000 messages .* this process's pool in use: 0\nthe consumer process received every message once, intact, in order per producer .*; its pool in use: 0$/m,
  ],
];

for (const [file, args, expect] of examples) {
  // The NATS bridge starts a nats-server: skipped where there is none (see tests/nats/_nats_server.ts).
  const test = file === "nats_bridge.ts" ? natsTest : Deno.test;
  test(`examples/${file} ${args.join(" ")} runs and passes its own checks`, async () => {
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

/** Runs an example with `args`; its exit code and what it printed. */
async function run(
  file: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const path = new URL(`../examples/${file}`, import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
}

const BUS_FLAGS = [
  "--workers",
  "--messages",
  "--size",
  "--seconds",
  "--audit",
  "--memory",
  "--help",
];

Deno.test("examples/bus.ts --help lists every flag, with its default, and exits 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const { code, out, err } = await run("bus.ts", [flag]);
    assert.equal(code, 0, `${flag} exited ${code}:\n${out}\n${err}`);
    assert.match(out, /^Usage: deno task demo/);
    for (const name of BUS_FLAGS) {
      // The flag, its value's name if it takes one, then a description.
      assert.match(out, new RegExp(`^ {2}(-h, )?${name}( [A-Z]+)? +\\w.{15,}$`, "m"), name);
    }
    for (const fallback of ["2", "20000000", "64", "10"]) {
      assert.match(out, new RegExp(`\\(default ${fallback}\\)`));
    }
    assert.doesNotMatch(out, /messages sent/); // it does not run
  }
});

Deno.test("examples/bus.ts: an unknown flag or a bad value prints the usage and exits 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--size"], /--size/],
    [["stray"], /Unexpected argument 'stray'/],
    [["--workers", "0"], /--workers must be an integer from 1 to 64, received 0/],
    [["--seconds", "soon"], /--seconds must be a number above 0, received soon/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run("bus.ts", args);
    assert.equal(code, 2, `${args.join(" ")} exited ${code}:\n${out}\n${err}`);
    assert.match(err, message);
    assert.match(err, /Usage: deno task demo/);
    for (const name of BUS_FLAGS) assert.match(err, new RegExp(name));
  }
});

Deno.test("examples/bus.ts: a run stopped by --seconds says so and still exits 0", async () => {
  const { code, out, err } = await run("bus.ts", ["--messages", "1000000000", "--seconds", "1"]);
  assert.equal(code, 0, `exited ${code}:\n${out}\n${err}`);
  const stopped = out.match(/^stopped by --seconds 1 after ([\d,]+) of 1,000,000,000 messages$/m);
  assert.ok(stopped !== null, out);
  assert.match(out, new RegExp(`^messages sent +${stopped[1]}$`, "m"));
  assert.match(out, /^OK: every message arrived once/m);
});

Deno.test("examples/bus.ts --memory on a short run says it has no samples; the summary is plain lines", async () => {
  const { code, out, err } = await run("bus.ts", ["--messages", "20000", "--memory"]);
  assert.equal(code, 0, `exited ${code}:\n${out}\n${err}`);
  // Producers sample only past a million messages: 10000 each is too few.
  assert.match(
    out,
    /^producers' heaps after warm-up \/ most after +no samples: the run was too short/m,
  );
  assert.doesNotMatch(out, / 0\.0 \/ 0\.0 MB/);
  assert.doesNotMatch(out, /stopped by/);
  // Aligned "label  value" lines, not console.table's box.
  assert.doesNotMatch(out, /\(idx\)|Values|│/);
  assert.match(out, /^messages received, once each, in order, intact {2}20,000$/m);
});

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

Deno.test("examples/shared_writer.ts: --help prints the usage; a bad flag or value prints it and exits 2", async () => {
  for (const flag of ["--help", "-h"]) {
    const { code, out, err } = await run("shared_writer.ts", [flag]);
    assert.equal(code, 0, `${flag} exited ${code}:\n${out}\n${err}`);
    assert.match(out, /^Usage: examples\/shared_writer.ts/);
    for (const name of ["--workers", "--messages", "--mtu", "--help"]) {
      assert.match(out, new RegExp(name));
    }
    assert.doesNotMatch(out, /workers wrote/); // it does not run
  }
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--mtu"], /--mtu/],
    [["stray"], /Unexpected argument 'stray'/],
    [["--workers", "0"], /--workers must be an integer from 1 to 64, received 0/],
    [["--mtu", "255"], /--mtu must be an integer from 256 to 65535, received 255/],
    [["--messages", "many"], /--messages must be an integer of at least 1, received many/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run("shared_writer.ts", args);
    assert.equal(code, 2, `${args.join(" ")} exited ${code}:\n${out}\n${err}`);
    assert.match(err, message);
    assert.match(err, /Usage: examples\/shared_writer.ts/);
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

Deno.test("examples/nats_bridge.ts: --help prints the usage; a bad flag or value prints it and exits 2", async () => {
  const help = await run("nats_bridge.ts", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: examples\/nats_bridge.ts/);
  for (const args of [["--workers", "0"], ["--messages", "x"], ["--nope"]]) {
    const { code, err } = await run("nats_bridge.ts", args);
    assert.equal(code, 2, args.join(" "));
    assert.match(err, /Usage: examples\/nats_bridge.ts/);
  }
});

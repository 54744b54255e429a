// The shared-memory protocols run step by step in one thread under many
// schedules (tests/explorer/). EXPLORE_SCHEDULES sets the seeded schedules
// per protocol (default 10^4; `deno task explore` runs 10^6), EXPLORE_SEED
// replays one failing seed alone.

import assert from "node:assert/strict";
import { exploreAll, exploreRandom, type Model, type Report } from "./explorer/scheduler.ts";
import { flushListModel, type WriterScript } from "./explorer/flush_list_model.ts";
import { freeStackModel, waitingModel } from "./explorer/free_stack_model.ts";
import { refCountModel, type RefOp } from "./explorer/ref_count_model.ts";

const SCHEDULES = Number(Deno.env.get("EXPLORE_SCHEDULES") ?? 10_000);
const SEED = Deno.env.get("EXPLORE_SEED");
const DEPTH_FIRST = 3_000;

/** Explores `model` at random (or the one seed asked for), then depth first; logs the count. */
function explore(name: string, model: Model): void {
  const random: Report = SEED === undefined
    ? exploreRandom(name, model, SCHEDULES)
    : exploreRandom(name, model, 1, Number(SEED));
  const all = exploreAll(name, model, DEPTH_FIRST);
  console.log(
    `${name}: ${random.schedules} seeded + ${all.schedules} depth-first schedules` +
      (all.complete ? " (every schedule)" : ""),
  );
}

/** Asserts that exploring a broken variant fails, and logs the seed that shows it. */
function catches(name: string, model: Model): void {
  let message = "";
  assert.throws(() => {
    try {
      exploreRandom(name, model, SCHEDULES);
    } catch (error) {
      message = (error as Error).message;
      throw error;
    }
  }, /\n {2}seed \d+ \(replay/);
  console.log(`caught, as it must be: ${message.split("\n").slice(0, 2).join(" |")}`);
}

// Writer 0 leaves a reservation open in buffer 0 while buffer 1 gets bytes,
// so a flush must hold buffer 1 back until the commit; writer 1 commits two
// reservations newest first. Both close after their last op.
const WRITERS: WriterScript[] = [
  {
    buffers: [0, 1],
    ops: [
      { reserve: 1 },
      { write: 1 },
      "flush",
      "finish",
      { write: 2 },
      "flush",
      { commit: 0 },
      "flush",
      { write: 1 },
    ],
  },
  {
    buffers: [2],
    ops: [{ write: 1 }, "flush", { reserve: 1 }, { reserve: 1 }, { commit: 1 }, "flush", {
      commit: 0,
    }],
  },
];

Deno.test("interleavings: flush list, two writers and a flusher deliver every byte once, in order, waking it every time", () => {
  explore("flush list (2 writers)", flushListModel(WRITERS));
  explore("flush list (1 writer)", flushListModel([WRITERS[0]!]));
});

Deno.test("interleavings: flush list, closed early or failed mid-flight, gives every buffer back once", () => {
  for (const after of [0, 3]) {
    explore(
      `flush list (closed once ${after} bytes arrived)`,
      flushListModel(WRITERS, { ending: "close-early", after }),
    );
    explore(
      `flush list (consumer fails once ${after} bytes arrived)`,
      flushListModel(WRITERS, { ending: "cancel", after }),
    );
  }
});

Deno.test("interleavings: flush list, each broken variant is caught", () => {
  catches(
    "flush list (LISTED cleared before the links are read)",
    flushListModel(WRITERS, { bug: "clear-listed-before-links" }),
  );
  catches(
    "flush list (linked after the push)",
    flushListModel(WRITERS, { bug: "link-after-push" }),
  );
  catches(
    "flush list (bell read after the look)",
    flushListModel(WRITERS, { bug: "bell-after-look" }),
  );
  catches(
    "flush list (rung before the push)",
    flushListModel(WRITERS, { bug: "ring-before-push" }),
  );
  catches(
    "flush list (taking reopens an ended list)",
    flushListModel(WRITERS, { ending: "cancel", bug: "take-clears-end" }),
  );
});

// Thread 1 pops A then B and pushes A back: the ABA pattern against the others.
const ABA = [["pop", "push"], ["pop", "pop", "push", "push"], ["pop", "push"]] as const;

Deno.test("interleavings: free stack, batches popped and pushed keep every buffer in one place", () => {
  explore("free stack (3 threads, batches of 1)", freeStackModel(3, 1, ABA));
  explore("free stack (2 threads, batches of 2)", freeStackModel(5, 2, ABA.slice(0, 2)));
});

Deno.test("interleavings: free stack without the ABA tag is caught", () => {
  catches("free stack (untagged)", freeStackModel(3, 1, ABA, "untagged"));
});

Deno.test("interleavings: waiting for a buffer across workers loses no wake-up", () => {
  explore("waiting (2 buffers, 2 waiters)", waitingModel(2, 2));
  explore("waiting (1 buffer, 1 waiter)", waitingModel(1, 1));
});

Deno.test("interleavings: reading the wait sequence after the re-check is caught", () => {
  catches("waiting (seq read late)", waitingModel(2, 2, "seq-after-recheck"));
});

// Worker 0 sends two packets of its buffer to worker 1 and releases its own;
// worker 1 merges them into one share, tries one SendPacket twice, sends one back.
const PING_PONG: RefOp[][] = [
  ["acquire", "clone", "clone", { send: [1] }, { send: [1] }, "release", "receive", "release"],
  ["receive", "receive", "receive-again", { send: [0] }, "release"],
];
// The same SendPacket posted to workers 1 and 2: exactly one receives it.
const POSTED_TWICE: RefOp[][] = [
  ["acquire", "clone", { send: [1, 2] }, "clone", { send: [2] }, "release"],
  ["receive", "release"],
  ["receive", "receive", "release", "release"],
];

Deno.test("interleavings: hybrid ref counts free a sent, merged, returned buffer once, at the end", () => {
  explore("ref counts (send, merge, send back)", refCountModel(PING_PONG));
  explore("ref counts (one SendPacket posted twice)", refCountModel(POSTED_TWICE));
});

Deno.test("interleavings: reclaim after a worker dies between operations gives the buffer back", () => {
  for (const worker of [0, 1]) {
    explore(
      `ref counts (worker ${worker} dies, reclaim)`,
      refCountModel(PING_PONG, { death: { worker, at: "between-ops" } }),
    );
  }
  // Dying inside an operation may strand a unit (a leak), never free early or twice.
  explore(
    "ref counts (worker 1 dies at any step, reclaim)",
    refCountModel(PING_PONG, { death: { worker: 1, at: "anywhere" } }),
  );
});

Deno.test("interleavings: hybrid ref counts with a non-atomic release or kept units are caught", () => {
  catches(
    "ref counts (recycle reads, then subtracts)",
    refCountModel(PING_PONG, { bug: "recycle-read-then-sub" }),
  );
  catches(
    "ref counts (takeUnits keeps extra units)",
    refCountModel(PING_PONG, { bug: "take-units-keeps-extra" }),
  );
});

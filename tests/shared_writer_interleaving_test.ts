// The SharedWriter's claim / seal / switch / commit / publish / wait /
// close / reclaim protocol run step by step under many schedules
// (tests/explorer/shared_writer_model.ts), on the real block of
// src/_shared_writer_block.ts. Schedules come from three strategies: seeded
// random walks, PCT (random priorities with a few change points, which
// starve one thread for a long stretch: the races here need a writer to
// stop between two steps while others switch buffers, and a random walk
// almost never does that) and a bounded depth-first search; the few races
// that need a long run first (the ring wrapping) or one exact stall are
// steered there. A worker may also die at any step, and another reclaims
// it. EXPLORE_SCHEDULES sets the seeded schedules per model and per strategy
// (default 1,000; the time grows with it) and EXPLORE_SEED replays one
// failing seed alone, as in interleaving_test.ts.

import assert from "node:assert/strict";
import {
  exploreAll,
  exploreRandom,
  type Model,
  type Outcome,
  prng,
  runOnce,
  runSeed,
} from "./explorer/scheduler.ts";
import {
  type SharedWriterEvent,
  sharedWriterModel,
  type SharedWriterModelOptions,
  type SharedWriterOp,
  type SharedWriterWindow,
} from "./explorer/shared_writer_model.ts";
import { MIN_RING_SLOTS } from "../src/_shared_writer_block.ts";

const SCHEDULES = Number(Deno.env.get("EXPLORE_SCHEDULES") ?? 1_000);
const SEED = Deno.env.get("EXPLORE_SEED");
const DEPTH_FIRST = 500;
/** PCT's bug depth: up to this many ordering constraints (change points + 1). */
const PCT_DEPTH = 3;

/**
 * One PCT schedule (Burckhardt et al., "A randomized scheduler with
 * probabilistic guarantees of finding bugs", ASPLOS 2010): the threads get
 * random distinct priorities and the highest runnable one steps, but at up
 * to PCT_DEPTH - 1 random steps the thread about to step drops below all
 * others. A bug that needs d such constraints among n threads and k steps
 * shows with probability at least 1 / (n k^(d-1)) per schedule.
 */
function runPct(model: Model, seed: number, threads: number, steps: number): Outcome {
  const random = prng(seed);
  const changes = Math.floor(random() * PCT_DEPTH);
  const priority = Array.from({ length: threads }, (_, t) => t);
  for (let i = threads - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [priority[i], priority[j]] = [priority[j]!, priority[i]!];
  }
  const at = Array.from({ length: changes }, () => Math.floor(random() * steps));
  const highest = (runnable: readonly number[]) =>
    runnable.reduce((best, t) => (priority[t]! > priority[best]! ? t : best));
  let lowest = 0;
  return runOnce(model, (step, runnable) => {
    if (at.includes(step)) priority[highest(runnable)] = --lowest;
    return highest(runnable);
  });
}

/** The steps of a typical run of `model`, where PCT's change points fall. */
function typicalSteps(model: Model): number {
  return runSeed(model, 0).schedule.length;
}

/** Runs `count` PCT schedules, seeds `seed`, `seed + 1`, ...; throws on the first failure. */
function explorePct(name: string, model: Model, count: number, seed = 1): void {
  const threads = model().threads.length;
  const steps = typicalSteps(model);
  for (let i = 0; i < count; i++) {
    const s = (seed + i) >>> 0;
    const outcome = runPct(model, s, threads, steps);
    if (outcome.failure !== undefined) {
      throw new Error(
        `${name}: ${outcome.failure}\n  pct seed ${s} (replay: EXPLORE_SEED=${s})` +
          `\n  schedule (thread per step): [${outcome.schedule.join(",")}]`,
      );
    }
  }
}

/** The model of `scripts`, recording in `reached` each event a run passes. */
function modelOf(
  scripts: SharedWriterOp[][],
  options: SharedWriterModelOptions,
  reached: Set<SharedWriterEvent>,
): Model {
  return sharedWriterModel(scripts, { ...options, onEvent: (_, event) => reached.add(event) });
}

/**
 * Explores a model at random, by PCT (or the one seed asked for), then depth
 * first; asserts that the schedules passed every event in `expected`, so
 * that a branch the scripts no longer reach shows.
 */
function explore(
  name: string,
  scripts: SharedWriterOp[][],
  options: SharedWriterModelOptions,
  expected: readonly SharedWriterEvent[],
): void {
  const reached = new Set<SharedWriterEvent>();
  const model = modelOf(scripts, options, reached);
  const count = SEED === undefined ? SCHEDULES : 1;
  const seed = SEED === undefined ? 1 : Number(SEED);
  exploreRandom(name, model, count, seed);
  explorePct(name, model, count, seed);
  const all = exploreAll(name, model, DEPTH_FIRST);
  console.log(
    `${name}: ${count} seeded + ${count} PCT + ${all.schedules} depth-first schedules` +
      (all.complete ? " (every schedule)" : ""),
  );
  if (SEED !== undefined) return;
  const missed = expected.filter((event) => !reached.has(event));
  assert.deepEqual(missed, [], `${name}: no schedule reached ${missed.join(", ")}`);
}

/**
 * Finds a failing schedule of `model` at random and by PCT, a block of each
 * at a time (some bugs show only under one), among `count` seeds of each.
 *
 * @returns The failure with its seed, or undefined.
 */
function findFailure(name: string, model: Model, count: number): string | undefined {
  try {
    for (let seed = 1; seed <= count; seed += 100) {
      const block = Math.min(100, count - seed + 1);
      exploreRandom(name, model, block, seed);
      explorePct(name, model, block, seed);
    }
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

/** Asserts that exploring a broken variant fails, and logs the seed that shows it. */
function catches(name: string, model: Model): void {
  const failure = findFailure(name, model, Math.max(SCHEDULES, 2_500));
  assert.match(failure ?? "not caught", /\n {2}(pct )?seed \d+ \(replay/, name);
  console.log(`caught, as it must be: ${failure!.split("\n").slice(0, 2).join(" |")}`);
}

/**
 * Runs one schedule steered by the model's events: threads step in the
 * order of preference `prefer` (the first runnable one), and each entry of
 * `plan`, once its worker passes its event, sets a new order.
 */
function steer(
  scripts: SharedWriterOp[][],
  options: SharedWriterModelOptions,
  prefer: readonly number[],
  plan: readonly (readonly [number, SharedWriterEvent, readonly number[]])[],
): Outcome & { reached: number } {
  let order = prefer;
  let reached = 0;
  const model = sharedWriterModel(scripts, {
    ...options,
    onEvent(worker, event) {
      const next = plan[reached];
      if (next !== undefined && next[0] === worker && next[1] === event) {
        order = next[2];
        reached++;
      }
    },
  });
  const outcome = runOnce(
    model,
    (_, runnable) => order.find((t) => runnable.includes(t)) ?? runnable[0]!,
  );
  return { ...outcome, reached };
}

/**
 * Kills worker `victim` at each step of a typical run in turn (outside every
 * window, or inside `inside`), under `perStep` random and as many PCT
 * schedules each; stops at the first failure.
 *
 * @returns The failure with its step and seed, or undefined; and the events reached.
 */
function sweepDeaths(
  scripts: SharedWriterOp[][],
  options: SharedWriterModelOptions,
  victim: number,
  inside: SharedWriterWindow | undefined,
  perStep: number,
): { failure: string | undefined; reached: Set<SharedWriterEvent>; runs: number } {
  const reached = new Set<SharedWriterEvent>();
  const steps = typicalSteps(sharedWriterModel(scripts, options));
  let runs = 0;
  for (let at = 0; at <= steps; at++) {
    const model = modelOf(scripts, { ...options, death: { victim, at, inside } }, reached);
    const threads = model().threads.length;
    for (let i = 0; i < perStep; i++) {
      const seed = at * perStep + i + 1;
      for (
        const [strategy, outcome] of [
          ["seed", runSeed(model, seed)],
          ["pct seed", runPct(model, seed, threads, steps)],
        ] as const
      ) {
        runs++;
        if (outcome.failure !== undefined) {
          return {
            failure: `${outcome.failure}\n  death from step ${at}, ${strategy} ${seed}` +
              `\n  schedule (thread per step): [${outcome.schedule.join(",")}]`,
            reached,
            runs,
          };
        }
      }
    }
  }
  return { failure: undefined, reached, runs };
}

const writes = (count: number, length: number): SharedWriterOp[] =>
  Array.from({ length: count }, () => ({ write: length }));

// Buffers of 8 bytes and frames of 2 to 6, so that claims seal buffers and
// switch often, and a small pool runs dry while the flusher holds buffers.
const TWO: SharedWriterOp[][] = [
  [{ write: 3 }, { write: 5 }, "flush", { write: 2 }, { write: 4 }],
  [{ write: 4 }, "flush", { write: 3 }, { write: 2 }],
];
// Writer 0 holds two claims open and commits the newer first (its second
// reserve is refused when it would have to wait).
const REVERSED: SharedWriterOp[][] = [
  [{ reserve: 3 }, { reserve: 2 }, { commit: 1 }, { commit: 0 }, "flush", { write: 4 }],
  [{ write: 5 }, { write: 3 }, "flush", { write: 2 }],
];
// Calls that give up when the next buffer is not there at once, as an
// aborted wait does: the switch they started goes on without them, and
// writer 1 may close while writer 0's switch still waits for a buffer.
const GIVING_UP: SharedWriterOp[][] = [
  [{ write: 5 }, { tryWrite: 4 }, { write: 3 }, "flush"],
  [{ write: 6 }, { tryWrite: 5 }, { tryWrite: 2 }],
];
// Writer 0 leaves a switch to its task, which waits for the pool's one
// buffer; writer 1 fills the next buffer and waits for the switch after it.
const WAKE: SharedWriterOp[][] = [[{ write: 5 }, { tryWrite: 4 }], writes(2, 6)];
const THREE: SharedWriterOp[][] = [
  [{ write: 3 }, { write: 4 }],
  [{ write: 5 }, "flush"],
  [{ write: 2 }, { write: 6 }],
];
// Writer 0 holds a claim open while other claims fill its buffer behind it.
const HELD: SharedWriterOp[][] = [
  [{ reserve: 2 }, "flush", { commit: 0 }],
  writes(3, 2),
];
// Writer 0 (the one that dies) holds claims open, switches, publishes, and
// leaves a switch to its task; writer 1 writes through.
const DYING: SharedWriterOp[][] = [
  [{ reserve: 3 }, { write: 4 }, "flush", { reserve: 2 }, { write: 5 }, { tryWrite: 6 }],
  [{ write: 4 }, "flush", { write: 3 }, { write: 6 }, { write: 2 }],
];

/** Events every two-worker run set reaches. */
const EVERY: readonly SharedWriterEvent[] = [
  "claim",
  "seal",
  "commit sees seal",
  "switch waits for a buffer",
  "switch already done",
  "open cursor",
  "wait for switch",
  "lock taken",
  "publish again",
  "offer open buffer",
  "seal seen in cursor",
  "install skips the publish",
  "close",
];

// Threads, in the model's order: the writers, the flusher, each writer's
// switch task, then the reclaiming worker.

Deno.test("interleavings: shared writer, two workers claim, switch, commit and publish every claim once, in order", () => {
  for (const buffers of [1, 2, 3]) {
    explore(`shared writer (2 workers, ${buffers} buffers)`, TWO, { buffers }, EVERY);
  }
  explore(
    "shared writer (2 workers, flush per microtask)",
    TWO,
    { buffers: 2, cadence: "microtask" },
    EVERY,
  );
});

Deno.test("interleavings: shared writer, claims held open and committed newest first never show a hole", () => {
  explore("shared writer (reversed commits, 3 buffers)", REVERSED, { buffers: 3 }, [
    ...EVERY,
    "refused",
  ]);
});

Deno.test("interleavings: shared writer, a switch whose caller gave up still finishes, even after the last close", () => {
  explore("shared writer (giving up, 2 buffers)", GIVING_UP, { buffers: 2 }, [
    ...EVERY,
    "give up",
    "install after close",
  ]);
  explore("shared writer (a switch left to its task, 1 buffer)", WAKE, { buffers: 1 }, [
    "give up",
    "switch waits for a buffer",
    "wait for switch",
  ]);
});

Deno.test("interleavings: shared writer, three workers", () => {
  explore("shared writer (3 workers, 2 buffers)", THREE, { buffers: 2 }, EVERY);
});

Deno.test("interleavings: shared writer, a reserve that would wait while its handle holds a claim is refused, and the claim is committed after", () => {
  // The pool's size forces it: the next buffer can only be the held one,
  // which cannot go to the flusher before its claim is committed.
  const holding: SharedWriterOp[][] = [[{ reserve: 5 }, { reserve: 5 }, { commit: 1 }, {
    commit: 0,
  }]];
  explore("shared writer (a claim held across a reserve, 1 buffer)", holding, { buffers: 1 }, [
    "refused",
    "switch waits for a buffer",
  ]);
});

Deno.test("interleavings: shared writer, each broken variant is caught", () => {
  catches(
    "shared writer (an open buffer's sum published without the cursor)",
    sharedWriterModel(REVERSED, { buffers: 3, bug: "collect-no-offset-check" }),
  );
  catches(
    "shared writer (an open buffer's sum read after the cursor)",
    sharedWriterModel(HELD, { bug: "collect-sum-after-offset" }),
  );
  catches(
    "shared writer (commit reads E_SEALED before adding)",
    sharedWriterModel(TWO, { bug: "commit-reads-sealed-first" }),
  );
  catches(
    "shared writer (a ring slot reused with its last buffer's counts)",
    sharedWriterModel([writes(MIN_RING_SLOTS + 2, 8)], { buffers: 2, bug: "install-keeps-counts" }),
  );
  catches(
    "shared writer (unlock ignores SW_AGAIN)",
    sharedWriterModel(TWO, { bug: "unlock-ignores-again" }),
  );
  catches(
    "shared writer (lock leaves a note but does not retry)",
    sharedWriterModel(TWO, { bug: "lock-no-retry" }),
  );
  catches(
    "shared writer (install opens the cursor before the ring slot)",
    sharedWriterModel(TWO, { bug: "install-cursor-first" }),
  );
  catches(
    "shared writer (install misses a close)",
    sharedWriterModel(GIVING_UP, { bug: "install-ignores-closed" }),
  );
  catches(
    "shared writer (waiters wait on the cursor, the old way)",
    sharedWriterModel(WAKE, { buffers: 1, bug: "wait-on-cursor" }),
  );
  catches(
    "shared writer (reclaim leaves the dead worker's lock)",
    sharedWriterModel(DYING, { bug: "reclaim-keeps-lock", death: { victim: 0, at: 40 } }),
  );
  catches(
    "shared writer (reclaim leaves the dead worker's switch)",
    sharedWriterModel(DYING, { bug: "reclaim-keeps-switch", death: { victim: 0, at: 20 } }),
  );
});

Deno.test("interleavings: shared writer, a waiter that waits on the cursor loses its wake-up; on the switcher's word it does not", () => {
  // PCT finds it too (above); steered, the one schedule that shows it: once
  // writer 0's task opens the cursor, it stalls before clearing SW_SWITCHER
  // while writer 1 fills the new buffer, seals it, fails to claim the switch
  // and waits. Threads: 0 and 1 writers, 2 flusher, 3 and 4 switch tasks.
  const plan = [
    [0, "give up", [0, 2, 3, 1, 4]],
    [0, "open cursor", [1, 4, 2, 0, 3]],
    [1, "wait for switch", [3, 0, 2, 1, 4]],
  ] as const;
  const old = steer(WAKE, { buffers: 1, bug: "wait-on-cursor" }, [0, 2, 3, 1, 4], plan);
  assert.equal(old.reached, plan.length);
  assert.match(old.failure ?? "", /^deadlock/);
  const now = steer(WAKE, { buffers: 1 }, [0, 2, 3, 1, 4], plan);
  assert.equal(now.reached, plan.length);
  assert.equal(now.failure, undefined);
});

// The model's ring (MIN_RING_SLOTS) wraps after 32 buffers, far beyond what random schedules
// reach: these two schedules are steered there.

Deno.test("interleavings: shared writer, a sealer that stalls while the ring wraps does not mark the new buffer sealed", () => {
  // Writer 0 seals its buffer, then stops before markSealed while writer 1
  // fills MIN_RING_SLOTS - 1 buffers and opens the next one in the same slot.
  const outcome = steer(
    [[{ write: 5 }, { write: 5 }], [...writes(31, 8), { write: 5 }]],
    { buffers: 2 },
    [0, 2, 3, 1, 4],
    [[0, "seal", [1, 4, 2, 0, 3]]],
  );
  assert.equal(outcome.reached, 1);
  assert.equal(outcome.failure, undefined);
});

Deno.test("interleavings: shared writer, a switch waiting for a ring slot is woken when the slot frees", () => {
  // Writer 0 holds a claim in the oldest buffer while writer 1 fills the
  // ring; its switch finds no slot, and writer 0 commits just then.
  const outcome = steer(
    [[{ reserve: 1 }, { commit: 0 }], writes(32, 8)],
    { buffers: 33 },
    [0, 2, 3, 1, 4],
    [[0, "claim", [1, 4, 2, 0, 3]], [1, "ring full", [0, 2, 3, 1, 4]]],
  );
  assert.equal(outcome.reached, 2);
  assert.equal(outcome.failure, undefined);
});

// A worker that dies: worker 0 stops taking steps from a given step on, and
// a third worker reclaims it (writer.reclaim, then pool.reclaim).

Deno.test("interleavings: shared writer, a worker that dies at any step outside the known windows is reclaimed: every buffer back, every claim delivered", () => {
  const perStep = SEED === undefined ? Math.max(1, Math.round(SCHEDULES / 300)) : 1;
  for (const buffers of [2, 3]) {
    const { failure, reached, runs } = sweepDeaths(DYING, { buffers }, 0, undefined, perStep);
    assert.equal(failure, undefined, failure);
    console.log(`shared writer (worker 0 dies, ${buffers} buffers): ${runs} schedules`);
    const missed = ([
      "die",
      "reclaim settles a claim",
      "lock taken from the dead",
      "take over the switch: open",
      "take over the switch: drop",
      "seal for good marks",
    ] as const).filter((event) => !reached.has(event));
    assert.deepEqual(missed, [], `no schedule reached ${missed.join(", ")}`);
  }
});

// What a death inside each window loses, confirmed by a failing schedule.
// Inherent to recording a claim beside the cursor, to lending a buffer
// before the ring names it, to two handle counts (close), and to marking
// a buffer published before pushing it: a worker terminated there wedges
// the writer, leaks a buffer or sends one out of order.
const WINDOWS: readonly (readonly [SharedWriterWindow, RegExp])[] = [
  ["claimed, not recorded", /never arrived|deadlock/],
  ["forgotten, not committed", /never arrived|deadlock/],
  ["lent, not installed", /never came back/],
  ["counted out, not subtracted", /never came back|handles 1 at the end|deadlock/],
  ["offered, not pushed", /never arrived|never came back|arrived before|deadlock/],
];

Deno.test("interleavings: shared writer, a worker that dies inside a known window loses what reclaim cannot find", () => {
  for (const [window, expected] of WINDOWS) {
    const { failure } = sweepDeaths(DYING, { buffers: 2 }, 0, window, 1);
    assert.match(failure ?? "no failure", expected, window);
    console.log(`dies "${window}": ${failure!.split("\n").slice(0, 2).join(" |")}`);
  }
});

Deno.test("interleavings: shared writer, a publisher that dies between moving SW_DELIVER and its notify: reclaim wakes the switch waiting for a ring slot", () => {
  // As in the ring-slot test above, but the switch starts its wait first,
  // and writer 0 dies inside advance() after its commit made the oldest
  // buffer whole; thread 5 reclaims it.
  const outcome = steer(
    [[{ reserve: 1 }, { commit: 0 }], writes(32, 8)],
    { buffers: 33, death: { victim: 0, at: 0, inside: "delivery moved, not notified" } },
    [5, 0, 2, 3, 1, 4],
    [[0, "claim", [5, 1, 4, 2, 0, 3]], [1, "ring full", [5, 4, 0, 2, 3, 1]]],
  );
  assert.equal(outcome.reached, 2);
  assert.equal(outcome.failure, undefined);
});

Deno.test("interleavings: shared writer, a flusher that ends early hands its tokens back: every buffer comes back, none while in use", () => {
  // FlushListTaker.end gives a shared writer's tokens back, lent and
  // unclaimed, and its #drop takes them once each buffer is whole.
  for (const at of [0, 40, 80, 120, 160, 200]) {
    const expected: SharedWriterEvent[] = at === 0
      ? ["flusher ends"]
      : ["flusher ends", "push finds the flusher gone"];
    explore(
      `shared writer (flusher ends at step ${at})`,
      TWO,
      { buffers: 2, flusherEndsAt: at },
      expected,
    );
  }
});

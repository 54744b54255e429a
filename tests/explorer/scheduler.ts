// A deterministic interleaving explorer: each modelled thread is a generator
// that yields before every shared-memory access, and a scheduler picks which
// thread takes the next step. Schedules come from a seeded PRNG (one seed per
// schedule, so a failing one replays alone) or from a bounded depth-first
// enumeration of every choice. A failure names its seed or schedule.

/**
 * What a thread yields: `undefined` before one shared-memory step, or a
 * predicate when it blocks (a modelled `Atomics.waitAsync`): the thread is
 * runnable again only once the predicate holds.
 */
export type Step = undefined | (() => boolean);
/** One modelled thread. */
export type Thread = Generator<Step, void, void>;

/** One run of a model: fresh shared memory and threads. */
export interface Run {
  readonly threads: Thread[];
  /** Checked after every step; returns a failure message or undefined. */
  check?(): string | undefined;
  /** Checked once every thread returned. */
  finish(): string | undefined;
}

/** Builds a fresh run. */
export type Model = () => Run;

/** Thrown by a model when an invariant breaks mid-step. */
export class Violation extends Error {}

/** Picks the thread to step at step `depth` among `runnable` (two or more thread ids). */
type Chooser = (depth: number, runnable: readonly number[]) => number;

const MAX_STEPS = 20_000;

/** Result of one schedule: the thread ids in the order they stepped, and a failure if any. */
export interface Outcome {
  readonly schedule: number[];
  readonly failure: string | undefined;
}

/** Runs one schedule of `model`, choosing among runnable threads with `choose`. */
export function runOnce(model: Model, choose: Chooser): Outcome {
  const run = model();
  const threads = run.threads;
  const pending: (Step | "start")[] = threads.map(() => "start");
  const done = threads.map(() => false);
  const schedule: number[] = [];
  try {
    for (let depth = 0;; depth++) {
      const runnable: number[] = [];
      for (let t = 0; t < threads.length; t++) {
        if (done[t]) continue;
        const p = pending[t];
        if (typeof p !== "function" || p()) runnable.push(t);
      }
      if (runnable.length === 0) {
        if (done.every((d) => d)) break;
        const blocked = done.flatMap((d, t) => (d ? [] : [t]));
        return { schedule, failure: `deadlock: threads ${blocked.join(", ")} blocked forever` };
      }
      if (depth >= MAX_STEPS) return { schedule, failure: `livelock: over ${MAX_STEPS} steps` };
      const t = runnable.length === 1 ? runnable[0]! : choose(depth, runnable);
      schedule.push(t);
      const result = threads[t]!.next();
      if (result.done) done[t] = true;
      else pending[t] = result.value;
      const failure = run.check?.();
      if (failure !== undefined) return { schedule, failure };
    }
    return { schedule, failure: run.finish() };
  } catch (error) {
    if (error instanceof Violation) return { schedule, failure: error.message };
    throw error;
  }
}

/** A small, fast, seedable PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs the schedule that `seed` picks. */
export function runSeed(model: Model, seed: number): Outcome {
  const random = prng(seed);
  return runOnce(model, (_depth, runnable) => runnable[Math.floor(random() * runnable.length)]!);
}

/** Replays a schedule given as thread ids, e.g. printed by a failure. */
export function replay(model: Model, schedule: readonly number[]): Outcome {
  return runOnce(model, (depth, runnable) => {
    const t = schedule[depth];
    if (t === undefined || !runnable.includes(t)) {
      throw new Error(`Cannot replay: thread ${t} is not runnable at step ${depth}`);
    }
    return t;
  });
}

/** How a model was explored. */
export interface Report {
  readonly schedules: number;
  /** Depth-first only: whether every schedule was enumerated. */
  readonly complete: boolean;
}

/**
 * Runs `count` seeded schedules, seeds `seed`, `seed + 1`, ...; throws on the
 * first failure with its seed and schedule.
 */
export function exploreRandom(name: string, model: Model, count: number, seed = 1): Report {
  for (let i = 0; i < count; i++) {
    const s = (seed + i) >>> 0;
    const outcome = runSeed(model, s);
    if (outcome.failure !== undefined) {
      throw new Error(
        `${name}: ${outcome.failure}\n  seed ${s} (replay: EXPLORE_SEED=${s})` +
          `\n  schedule (thread per step): [${outcome.schedule.join(",")}]`,
      );
    }
  }
  return { schedules: count, complete: false };
}

/**
 * Enumerates schedules depth first, up to `limit` of them; throws on the
 * first failure with its schedule.
 */
export function exploreAll(name: string, model: Model, limit: number): Report {
  // choices[k]: index taken at the k-th choice point; counts[k]: options there.
  const choices: number[] = [];
  const counts: number[] = [];
  for (let runs = 1;; runs++) {
    let k = 0;
    const outcome = runOnce(model, (_depth, runnable) => {
      if (k === choices.length) {
        choices.push(0);
        counts.push(runnable.length);
      }
      return runnable[choices[k++]!]!;
    });
    if (outcome.failure !== undefined) {
      throw new Error(
        `${name}: ${outcome.failure}\n  depth-first schedule ${runs}` +
          `\n  schedule (thread per step): [${outcome.schedule.join(",")}]`,
      );
    }
    while (choices.length !== 0 && choices[choices.length - 1]! + 1 >= counts[counts.length - 1]!) {
      choices.pop();
      counts.pop();
    }
    if (choices.length === 0) return { schedules: runs, complete: true };
    if (runs >= limit) return { schedules: runs, complete: false };
    choices[choices.length - 1]!++;
  }
}

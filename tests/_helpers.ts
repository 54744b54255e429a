// Helpers shared by the test files.
import assert from "node:assert/strict";
import { BufferPool, type ByteSource, type PooledBuffer } from "../mod.ts";

// Every pool the tests make watches every packet, handle and flush region;
// one collected without release fails the run. Reported, not thrown: an
// error thrown out of a FinalizationRegistry callback is only printed, and
// `deno test` still exits 0.
BufferPool.defaultLeakDetection = "paranoid";
BufferPool.defaultOnLeak = (leak) => {
  reportError(
    new Error(
      `Leaked a ${leak.kind} of buffer ${leak.bufferIndex} [${leak.offset}, +${leak.length})\n${leak.stack}`,
    ),
  );
};

/** Asserts that every buffer of `pool` is back and nobody waits. */
export function assertAllFree(pool: BufferPool): void {
  const s = pool.stats();
  assert.equal(s.inUse, 0);
  assert.equal(s.free, s.bufferCount);
  assert.equal(s.waiters, 0);
}

/** Acquires a buffer that must be free right now. */
export function take(pool: BufferPool): PooledBuffer {
  const buffer = pool.tryAcquire();
  assert.ok(buffer !== null, "expected a free buffer");
  return buffer;
}

/** The element at `i`, which must exist. */
export function at<T>(items: readonly T[], i: number): T {
  assert.ok(i >= 0 && i < items.length, `index ${i} out of ${items.length}`);
  return items[i] as T;
}

export type State<T> =
  | { readonly kind: "pending" }
  | { readonly kind: "fulfilled"; readonly value: T }
  | { readonly kind: "rejected"; readonly reason: unknown };

/** Follows a promise's state without ever leaving a rejection unhandled. */
export class Tracked<T> {
  state: State<T> = { kind: "pending" };

  constructor(promise: Promise<T>, onSettle?: () => void) {
    promise.then(
      (value) => {
        this.state = { kind: "fulfilled", value };
        onSettle?.();
      },
      (reason: unknown) => {
        this.state = { kind: "rejected", reason };
        onSettle?.();
      },
    );
  }

  get pending(): boolean {
    return this.state.kind === "pending";
  }

  /** The value it fulfilled with; fails the test if it has not. */
  value(): T {
    const state = this.state;
    assert.equal(state.kind, "fulfilled", "expected the promise to be fulfilled");
    if (state.kind !== "fulfilled") throw new Error("unreachable");
    return state.value;
  }

  /** The reason it rejected with; fails the test if it has not. */
  reason(): unknown {
    const state = this.state;
    assert.equal(state.kind, "rejected", "expected the promise to be rejected");
    if (state.kind !== "rejected") throw new Error("unreachable");
    return state.reason;
  }
}

/**
 * `promise`, or a rejection naming `what` once `ms` pass without it
 * settling: a deadline that turns a hang into a failure, never a wait that
 * decides an outcome.
 */
export async function withinDeadline<T>(
  promise: Promise<T>,
  what: string,
  ms = 10_000,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what} (still waiting after ${ms} ms)`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Lets every already-queued promise reaction run (no timers involved). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Deterministic PRNG (mulberry32): the same seed gives the same run. */
export function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(r * n);
  };
}

export function escapeRegExp(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

/** Asserts that `fn` throws a RangeError whose message matches every pattern. */
export function assertRangeError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof RangeError, `expected a RangeError, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

/** Asserts the pool's counts are internally consistent. */

/** Every ordering of `items`. */
export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  const out: T[][] = [];
  items.forEach((item, i) => {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const tail of permutations(rest)) out.push([item, ...tail]);
  });
  return out;
}

/** A ByteSource over `chunks`: at most one chunk, and at most `p.length` bytes, a read. */
export function chunkSource(chunks: readonly Uint8Array[]): ByteSource {
  let i = 0;
  let at = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      while (i < chunks.length && at === chunks[i]!.length) {
        i++;
        at = 0;
      }
      if (i === chunks.length) return Promise.resolve(null);
      const n = Math.min(p.length, chunks[i]!.length - at);
      p.set(chunks[i]!.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
}

/** The bytes of `parts`, one after another, in one new array. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

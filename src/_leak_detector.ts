// Watches packets, buffer handles and flush regions with a
// FinalizationRegistry for a pool created with leakDetection: an object
// collected while still registered was never released. It only reports; the
// buffer's reference is not dropped, since nothing can tell what else the
// lost object's owner did with the memory.

import type { LeakDetection, LeakKind, LeakReport } from "./leak_report.ts";

/** One object of each kind in `"sampled"` mode is watched out of this many. */
const SAMPLE_EVERY = 64;

/** How the paranoid stack of each kind begins. */
const ORIGIN: Record<LeakKind, string> = {
  Packet: "packet made here",
  PooledBuffer: "buffer acquired here",
  FlushRegion: "flush region made here",
};

interface Watched {
  kind: LeakKind;
  bufferIndex: number;
  offset: number;
  length: number;
  /** V8 formats an error's stack only when it is read: keep the error, not the text. */
  origin: Error | undefined;
}

/** Registers the objects of one pool object and reports the ones collected unreleased. */
export class LeakDetector {
  readonly #registry: FinalizationRegistry<Watched>;
  readonly #paranoid: boolean;
  /**
   * Sampling countdowns, one per kind: with a shared one, a program that
   * makes a handle and a packet in turn would only ever see one kind watched.
   */
  readonly #countdowns: Record<LeakKind, number> = { Packet: 0, PooledBuffer: 0, FlushRegion: 0 };

  constructor(mode: Exclude<LeakDetection, "off">, onLeak: (leak: LeakReport) => void) {
    this.#paranoid = mode === "paranoid";
    this.#registry = new FinalizationRegistry(({ kind, bufferIndex, offset, length, origin }) => {
      onLeak({ kind, bufferIndex, offset, length, stack: origin?.stack });
    });
  }

  /**
   * Starts watching `object`, made by `maker` (its constructor); returns
   * whether it is watched (sampling may skip it).
   */
  track(
    object: object,
    maker: abstract new (...args: never[]) => unknown,
    kind: LeakKind,
    bufferIndex: number,
    offset: number,
    length: number,
  ): boolean {
    let origin: Error | undefined;
    if (this.#paranoid) {
      origin = new Error(ORIGIN[kind]);
      // Start the trace at the constructor's caller: the constructor's frame
      // would hold the object itself, which could then never be collected.
      Error.captureStackTrace(origin, maker);
    } else {
      if (this.#countdowns[kind]-- !== 0) return false;
      this.#countdowns[kind] = SAMPLE_EVERY - 1;
    }
    this.#registry.register(object, { kind, bufferIndex, offset, length, origin }, object);
    return true;
  }

  /** The object was released: stop watching it. */
  untrack(object: object): void {
    this.#registry.unregister(object);
  }
}

/**
 * The detector for a pool object's `leakDetection` option, or null for
 * `"off"`.
 *
 * @throws {RangeError} If the option is not one of the three modes.
 */
export function leakDetectorFor(
  detection: LeakDetection,
  onLeak: (leak: LeakReport) => void,
): LeakDetector | null {
  if (detection === "off") return null;
  if (detection !== "sampled" && detection !== "paranoid") {
    throw new RangeError(
      `Cannot create buffer pool: leakDetection must be "off", "sampled" or "paranoid", received ${
        String(detection)
      }`,
    );
  }
  return new LeakDetector(detection, onLeak);
}

/** The default report: one line on stderr with what leaked and where it was made. */
export function reportLeak(leak: LeakReport): void {
  const what = leak.kind === "PooledBuffer"
    ? `a PooledBuffer handle of buffer ${leak.bufferIndex}`
    : `a ${leak.kind} of buffer ${leak.bufferIndex} (bytes ${leak.offset} to ${
      leak.offset + leak.length
    })`;
  console.error(
    `bab: ${what} was garbage-collected without release(); the buffer stays in use` +
      (leak.stack === undefined ? "" : `\n${leak.stack}`),
  );
}

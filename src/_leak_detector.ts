// Watches packets with a FinalizationRegistry for a pool created with
// leakDetection: a packet collected while still registered was never
// released. It only reports; the buffer's reference is not dropped, since
// nothing can tell what else the lost packet's owner did with the memory.

import type { LeakDetection, LeakReport } from "./leak_report.ts";

/** One packet in `"sampled"` mode is watched out of this many. */
const SAMPLE_EVERY = 64;

interface Record {
  bufferIndex: number;
  offset: number;
  length: number;
  /** V8 formats an error's stack only when it is read: keep the error, not the text. */
  origin: Error | undefined;
}

/** Registers packets of one pool object and reports the ones collected unreleased. */
export class LeakDetector {
  readonly #registry: FinalizationRegistry<Record>;
  readonly #paranoid: boolean;
  #countdown = 0;

  constructor(mode: Exclude<LeakDetection, "off">, onLeak: (leak: LeakReport) => void) {
    this.#paranoid = mode === "paranoid";
    this.#registry = new FinalizationRegistry(({ bufferIndex, offset, length, origin }) => {
      onLeak({ bufferIndex, offset, length, stack: origin?.stack });
    });
  }

  /**
   * Starts watching `packet`, made by `maker` (its constructor); returns
   * whether it is watched (sampling may skip it).
   */
  track(
    packet: object,
    maker: abstract new (...args: never[]) => unknown,
    bufferIndex: number,
    offset: number,
    length: number,
  ): boolean {
    if (!this.#paranoid) {
      if (this.#countdown-- !== 0) return false;
      this.#countdown = SAMPLE_EVERY - 1;
    }
    let origin: Error | undefined;
    if (this.#paranoid) {
      origin = new Error("packet made here");
      // Start the trace at the constructor's caller: the constructor's frame
      // would hold the packet itself, which could then never be collected.
      Error.captureStackTrace(origin, maker);
    }
    this.#registry.register(packet, { bufferIndex, offset, length, origin }, packet);
    return true;
  }

  /** The packet was released: stop watching it. */
  untrack(packet: object): void {
    this.#registry.unregister(packet);
  }
}

/** The default report: one line on stderr with what leaked and where it was made. */
export function reportLeak(leak: LeakReport): void {
  console.error(
    `bab: a packet of buffer ${leak.bufferIndex} (bytes ${leak.offset} to ${
      leak.offset + leak.length
    }) was garbage-collected without release(); the buffer stays in use` +
      (leak.stack === undefined ? "" : `\n${leak.stack}`),
  );
}

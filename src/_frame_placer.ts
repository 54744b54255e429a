// How code of this package that frames its own messages (the NATS
// publisher) reaches a SharedWriter's placing without a public member or a
// reservation object per message, and says what a cancelled frame becomes. A registry keyed by the writer, so that
// this file imports neither the writer's file nor its core's.

/** A SharedWriter's core, as a publisher that frames its own messages sees it. */
export interface FramePlacer {
  /**
   * Places a frame of `length` bytes, to fill in {@linkcode FramePlacer.placed}
   * and settle at once: the offset where it starts, or -1 when the next
   * buffer must be waited for.
   */
  tryPlace(length: number): number;
  /** The buffer of the last placement. */
  readonly placed: Uint8Array;
  /** Commits the last placement. */
  settlePlaced(): void;
  /** How it lays messages out: its `filler` rewrites cancelled frames (zeros without one). */
  readonly layout: {
    filler: ((view: Uint8Array, start: number, length: number) => void) | null;
  };
}

const placers = new WeakMap<object, FramePlacer>();

/** Called by each SharedWriter handle as it is made. */
export function registerPlacer(writer: object, placer: FramePlacer): void {
  placers.set(writer, placer);
}

/** The placer of a SharedWriter handle. */
export function placerOf(writer: object): FramePlacer | undefined {
  return placers.get(writer);
}

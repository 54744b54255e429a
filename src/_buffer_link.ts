// How the objects that hold a reference to a pooled buffer (packets, and
// through the record also handles and flush regions) see the buffer and
// its pool: only what they use. They depend on these shapes, not on the
// record or the pool, so that the modules that make them import them and
// none imports its own importer.

import type { LeakDetector } from "./_leak_detector.ts";
import type { SendPacket } from "./send_packet.ts";

/** The pool object that made a buffer's record, as the buffer's holders see it. */
export interface PoolLink {
  /** Watches the holders when leak detection is on; null when it is off. */
  readonly _leaks: LeakDetector | null;
}

/** A buffer as the packets on it see it. */
export interface BufferLink {
  /** The pool object that made the buffer's record. */
  readonly pool: PoolLink;
  /** The buffer's index in its pool; the same in every worker. */
  readonly index: number;
  /** The whole buffer's memory. */
  readonly _view: Uint8Array;
  /** Takes one more reference in this worker. */
  retain(): void;
  /** Drops one of this worker's references. */
  release(): void;
  /** Makes a SendPacket of bytes `[offset, offset + length)`, moving one reference into it. */
  send(offset: number, length: number): SendPacket;
}

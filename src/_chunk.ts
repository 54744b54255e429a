// A writer's record of one buffer it fills, shared by the writer, its
// reservations and its claim. Internal: not exported from mod.ts.

import type { BufferRecord } from "./_buffer_record.ts";
import type { ClosedError } from "./errors.ts";

/** What a closed writer tells the reservations and claim it left behind. */
export interface ClosedWriter {
  /** The ClosedError for `action`, saying why the writer closed. */
  _closedError(action: string, more?: string): ClosedError;
}

/**
 * The writer's record of one buffer it filled: what it reserved and
 * committed there, and what it told the flusher.
 */
export class Chunk {
  readonly buffer: BufferRecord;
  readonly index: number;
  readonly view: Uint8Array;
  /** A DataView over the same memory, for claims and inline prefixes. */
  readonly data: DataView;
  /** Int32 index of the buffer's header. */
  readonly header: number;
  /** End of the last reservation or write. */
  reserved = 0;
  /** End of the contiguous committed prefix. */
  committed = 0;
  /** Reservations still open in this buffer. */
  open = 0;
  /** No more reservations go here. */
  done = false;
  /** The flusher holds a token reference. */
  lent = false;
  /** The last value published to the header, without the listed bit. */
  published = 0;
  /** The writer, once it closed: its reservations here say why they failed. */
  closedBy: ClosedWriter | null = null;

  constructor(buffer: BufferRecord, header: number) {
    this.buffer = buffer;
    this.index = buffer.index;
    this.view = buffer._view;
    this.data = buffer._dataView;
    this.header = header;
  }
}

// The plain reference model behind tests/model_test.ts: random writer
// scripts over small pools, what each writer may deliver, and an independent
// decoder for the byte streams that the readers must cut the same way.
// Shared with the worker that drives a writer of a shared pool.
import {
  ClosedError,
  delimiter,
  fixedSize,
  type FrameCodec,
  lengthPrefix,
  type Packet,
  type Reservation,
  varintPrefix,
  type Writer,
} from "../mod.ts";

/** What the model worker posts once loaded: the first job's deadline must not pay for that. */
export const READY = "ready";

/** A codec by name, so that a worker can rebuild it from a message. */
export type CodecSpec =
  | { kind: "u8" | "u16" | "u32" | "varint" | "lf" | "crlf" }
  | { kind: "fixed"; size: number };

export function codecOf(spec: CodecSpec): FrameCodec {
  switch (spec.kind) {
    case "u8":
      return lengthPrefix(1);
    case "u16":
      return lengthPrefix(2);
    case "u32":
      return lengthPrefix(4);
    case "varint":
      return varintPrefix();
    case "lf":
      return delimiter("\n");
    case "crlf":
      return delimiter("\r\n");
    case "fixed":
      return fixedSize(spec.size);
  }
}

export function pickSpec(r: (n: number) => number, bufferSize: number): CodecSpec {
  const kinds = ["u8", "u16", "u32", "varint", "lf", "crlf", "fixed"] as const;
  const kind = kinds[r(kinds.length)]!;
  if (kind === "fixed") return { kind, size: 1 + r(bufferSize) };
  return { kind };
}

function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
}

/** Framing bytes around a payload of `n` bytes, counted without the codec. */
function overhead(spec: CodecSpec, n: number): number {
  switch (spec.kind) {
    case "u8":
      return 1;
    case "u16":
      return 2;
    case "u32":
      return 4;
    case "varint":
      return varintLength(n);
    case "lf":
      return 1;
    case "crlf":
      return 2;
    case "fixed":
      return 0;
  }
}

/**
 * The largest payload a writer on buffers of `bufferSize` bytes takes: one
 * frame must fit one buffer. A reader with the same codec and buffer size
 * must accept it by default.
 */
export function largestPayload(spec: CodecSpec, bufferSize: number): number {
  if (spec.kind === "fixed") return spec.size;
  let n = bufferSize;
  while (n + overhead(spec, n) > bufferSize) n--;
  return spec.kind === "u8" ? Math.min(n, 255) : n;
}

/** A message's payload: never zero in its first byte, never a delimiter byte. */
export function content(writer: number, seq: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const v = (writer * 67 + seq * 29 + i * 13) % 250 + 1;
    bytes[i] = v === 10 || v === 13 ? 0x41 : v;
  }
  return bytes;
}

const encoder = new TextEncoder();
const CHARS = ["a", "Z", "7", "é", "€"];

/** A text of at most `most` UTF-8 bytes, with one- to three-byte characters. */
function text(r: (n: number) => number, most: number): string {
  let out = "";
  let bytes = 0;
  const target = r(4) === 0 ? most : r(most + 1);
  while (bytes < target) {
    const c = CHARS[r(CHARS.length)]!;
    const size = encoder.encode(c).length;
    if (bytes + size > most) break;
    out += c;
    bytes += size;
  }
  return out;
}

/**
 * One message in the order a writer placed it. `placed`: written or
 * committed, so it must arrive; `cancelled`: it arrives as zeros or not at
 * all; `dropped`: never placed; `pending`/`open`: still in play.
 */
export interface Item {
  readonly bytes: Uint8Array;
  state: "pending" | "open" | "placed" | "cancelled" | "dropped";
}

/** What the writers of one run may see: whether the flusher's consumer has stopped. */
export interface World {
  consumerStopped: boolean;
  /** The error the consumer failed with, which ClosedErrors must carry as cause. */
  consumerError: unknown;
}

/** Drives one writer through random operations and records what it must deliver. */
export class WriterScript {
  readonly items: Item[] = [];
  readonly problems: string[] = [];
  readonly #writer: Writer;
  readonly #id: number;
  readonly #spec: CodecSpec;
  readonly #max: number;
  readonly #world: World;
  readonly #open: { item: Item; reservation: Reservation }[] = [];
  readonly #aborts: AbortController[] = [];
  readonly #packets: Packet[] = [];
  readonly #settling: Promise<void>[] = [];
  #seq = 0;
  #closed = false;

  constructor(writer: Writer, spec: CodecSpec, bufferSize: number, world: World) {
    this.#writer = writer;
    this.#id = writer.id;
    this.#spec = spec;
    this.#max = largestPayload(spec, bufferSize);
    this.#world = world;
  }

  /** One random operation. */
  step(r: (n: number) => number, manual: boolean): void {
    const op = r(18);
    if (op >= 16) this.#claim(r);
    else if (op < 3) this.#tryWrite(r);
    else if (op < 5) this.#tryReserve(r);
    else if (op < 6) this.#waiting(r, false);
    else if (op < 7) this.#waiting(r, true);
    else if (op < 10) this.#settle(r);
    else if (op < 11) this.#string(r);
    else if (op < 12) this.#abort(r);
    else if (op < 13) this.#releasePacket(r);
    else if (op < 14 || manual) this.#guard(() => this.#writer.flush());
    else if (op < 15 && r(8) === 0) this.close();
  }

  /** Closes the writer: open reservations become cancelled, waiting calls drop. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#guard(() => this.#writer.close());
    for (const { item } of this.#open.splice(0)) item.state = "cancelled";
  }

  /** Closes, releases every packet, and resolves once every call settled. */
  async finish(): Promise<void> {
    this.close();
    for (const packet of this.#packets.splice(0)) packet.release();
    await Promise.all(this.#settling);
  }

  #length(r: (n: number) => number): number {
    if (this.#spec.kind === "fixed") return this.#max;
    return r(4) === 0 ? this.#max : r(this.#max + 1);
  }

  #next(r: (n: number) => number): Uint8Array {
    return content(this.#id, this.#seq++, this.#length(r));
  }

  #tryWrite(r: (n: number) => number): void {
    const bytes = this.#next(r);
    this.#guard(() => {
      if (this.#writer.tryWrite(bytes)) this.items.push({ bytes, state: "placed" });
    });
  }

  /**
   * The fill-in-place path: claim, fill through the claim's buffer, then
   * commit or cancel; while the claim is open, other calls must be refused.
   */
  #claim(r: (n: number) => number): void {
    if (r(3) === 0) {
      this.#run(r);
      return;
    }
    const bytes = this.#next(r);
    this.#guard(() => {
      const claim = this.#writer.tryClaim(bytes.length);
      if (claim === null) return;
      claim.buffer.set(bytes, claim.offset);
      if (r(4) === 0) {
        try {
          this.#writer.tryWrite(bytes);
          this.problems.push(`writer ${this.#id}: tryWrite went through while a claim was open`);
        } catch (error) {
          if (!(error instanceof TypeError)) throw error;
        }
      }
      if (r(5) === 0) {
        claim.cancel();
        this.items.push({ bytes, state: "cancelled" });
      } else {
        claim.commit();
        this.items.push({ bytes, state: "placed" });
      }
    });
  }

  /**
   * A run: room for up to a few messages of one length, filled through the
   * claim, then the first k of them committed and the rest taken back.
   */
  #run(r: (n: number) => number): void {
    const length = this.#length(r);
    const count = 1 + r(5);
    this.#guard(() => {
      const run = this.#writer.tryClaim(length, count);
      if (run === null) return;
      if (run.count < 1 || run.count > count || run.stride < length) {
        this.problems.push(
          `writer ${this.#id}: a run of ${run.count} (stride ${run.stride}) for ${count} of ${length}`,
        );
      }
      const messages: Uint8Array[] = [];
      for (let i = 0; i < run.count; i++) {
        const bytes = content(this.#id, this.#seq++, length);
        run.buffer.set(bytes, run.offset + i * run.stride);
        messages.push(bytes);
      }
      const kept = r(3) === 0 ? r(run.count + 1) : run.count;
      run.commit(kept);
      messages.forEach((bytes, i) =>
        this.items.push({ bytes, state: i < kept ? "placed" : "dropped" })
      );
    });
  }

  #tryReserve(r: (n: number) => number): void {
    const bytes = this.#next(r);
    this.#guard(() => {
      const reservation = this.#writer.tryReserve(bytes.length);
      if (reservation === null) return;
      reservation.bytes.set(bytes);
      const item: Item = { bytes, state: "open" };
      this.items.push(item);
      this.#open.push({ item, reservation });
    });
  }

  /** `write` or `reserve`, maybe with a signal that a later step aborts. */
  #waiting(r: (n: number) => number, reserve: boolean): void {
    const bytes = this.#next(r);
    const controller = r(2) === 0 ? new AbortController() : null;
    if (controller !== null) this.#aborts.push(controller);
    const options = controller === null ? undefined : { signal: controller.signal };
    const item: Item = { bytes, state: "pending" };
    this.items.push(item);
    const call: Promise<Reservation | void> = reserve
      ? this.#writer.reserve(bytes.length, options)
      : this.#writer.write(bytes, options);
    this.#settling.push(call.then((reservation) => {
      if (reservation === undefined) {
        item.state = "placed";
      } else if (!reservation.open) {
        item.state = "cancelled"; // close() came first
      } else {
        reservation.bytes.set(bytes);
        item.state = "open";
        this.#open.push({ item, reservation });
      }
    }, (reason: unknown) => {
      item.state = "dropped";
      if (controller !== null && reason === controller.signal.reason) return;
      this.#expectClosed(reason);
    }));
  }

  /** Commits (maybe to a packet) or cancels an open reservation, in any order. */
  #settle(r: (n: number) => number): void {
    const open = this.#open;
    if (open.length === 0) return;
    const [{ item, reservation }] = open.splice(r(open.length), 1) as [typeof open[0]];
    const how = r(6);
    // Cancelled unless a commit goes through: a writer whose flusher ended takes none.
    item.state = "cancelled";
    this.#guard(() => {
      if (how === 0) {
        reservation.cancel();
        return;
      }
      if (how === 1) this.#packets.push(reservation.commitToPacket());
      else reservation.commit();
      item.state = "placed";
    });
  }

  #string(r: (n: number) => number): void {
    if (this.#spec.kind === "fixed") return;
    const message = text(r, this.#max);
    const bytes = encoder.encode(message);
    if (r(2) === 0) {
      this.#guard(() => {
        if (this.#writer.tryWriteString(message)) this.items.push({ bytes, state: "placed" });
      });
      return;
    }
    const item: Item = { bytes, state: "pending" };
    this.items.push(item);
    this.#settling.push(
      this.#writer.writeString(message).then(() => {
        item.state = "placed";
      }, (reason: unknown) => {
        item.state = "dropped";
        this.#expectClosed(reason);
      }),
    );
  }

  #abort(r: (n: number) => number): void {
    const aborts = this.#aborts;
    if (aborts.length !== 0) aborts.splice(r(aborts.length), 1)[0]!.abort(new Error("aborted"));
  }

  #releasePacket(r: (n: number) => number): void {
    const packets = this.#packets;
    if (packets.length !== 0) packets.splice(r(packets.length), 1)[0]!.release();
  }

  /** Runs a call that may only fail with a ClosedError, and only once that is due. */
  #guard(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#expectClosed(error);
    }
  }

  #expectClosed(error: unknown): void {
    const world = this.#world;
    if (!(error instanceof ClosedError)) {
      this.problems.push(`writer ${this.#id}: unexpected ${describeError(error)}`);
    } else if (!this.#closed && !world.consumerStopped) {
      this.problems.push(`writer ${this.#id}: ${describeError(error)} while the bus was open`);
    } else if (!this.#closed && world.consumerError !== undefined && !causedBy(error, world)) {
      this.problems.push(
        `writer ${this.#id}: ${describeError(error)} does not carry the consumer's error as cause`,
      );
    }
  }
}

function causedBy(error: Error, world: World): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e === world.consumerError) return true;
  }
  return false;
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function sameBytes(a: Uint8Array, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function zeros(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * Whether `actual` is what `items` allow, in order: every placed message
 * once, byte-exact; a cancelled one as zeros or not at all. With `prefix`,
 * `actual` may stop early (the consumer stopped).
 */
export function delivered(items: readonly Item[], actual: readonly Uint8Array[], prefix: boolean) {
  const expected = items.filter((item) => item.state !== "dropped");
  const n = expected.length;
  const m = actual.length;
  // reach[i * (m + 1) + j]: the first i items can account for the first j frames.
  const reach = new Uint8Array((n + 1) * (m + 1));
  reach[0] = 1;
  for (let i = 0; i < n; i++) {
    const item = expected[i]!;
    for (let j = 0; j <= m; j++) {
      if (reach[i * (m + 1) + j] === 0) continue;
      const frame = actual[j];
      if (item.state === "cancelled") {
        reach[(i + 1) * (m + 1) + j] = 1;
        if (frame !== undefined && frame.length === item.bytes.length && zeros(frame)) {
          reach[(i + 1) * (m + 1) + j + 1] = 1;
        }
      } else if (frame !== undefined && sameBytes(frame, item.bytes)) {
        reach[(i + 1) * (m + 1) + j + 1] = 1;
      }
    }
  }
  if (reach[n * (m + 1) + m] === 1) return true;
  if (!prefix) return false;
  for (let i = 0; i < n; i++) if (reach[i * (m + 1) + m] === 1) return true;
  return false;
}

/** Short text of some frames, for a failure message. */
export function show(frames: readonly Uint8Array[]): string {
  const shown = frames.slice(0, 12).map((f) =>
    `${f.length}:${[...f.subarray(0, 4)].join(",")}${f.length > 4 ? ",…" : ""}`
  );
  return `[${shown.join(" ")}${frames.length > 12 ? ` …+${frames.length - 12}` : ""}]`;
}

/** What an independent decoder finds in a byte stream under a reader's default limit. */
export interface Decoded {
  frames: Uint8Array[];
  /** Where each frame ends in the stream. */
  ends: number[];
  end: "clean" | "frame" | "truncated";
}

/** Decodes `bytes` without the library's codecs, refusing payloads over `max`. */
export function referenceDecode(spec: CodecSpec, bytes: Uint8Array, max: number): Decoded {
  const frames: Uint8Array[] = [];
  const ends: number[] = [];
  const stop = (end: Decoded["end"]): Decoded => ({ frames, ends, end });
  let at = 0;
  for (;;) {
    const left = bytes.length - at;
    if (left === 0) return stop("clean");
    let start: number;
    let length: number;
    let trailer = 0;
    switch (spec.kind) {
      case "u8":
      case "u16":
      case "u32": {
        const size = spec.kind === "u8" ? 1 : spec.kind === "u16" ? 2 : 4;
        if (left < size) return stop("truncated");
        length = 0;
        for (let i = 0; i < size; i++) length = length * 256 + bytes[at + i]!;
        start = at + size;
        break;
      }
      case "varint": {
        length = 0;
        let i = 0;
        for (let scale = 1;; scale *= 128, i++) {
          if (i === left) return stop("truncated");
          const b = bytes[at + i]!;
          length += (b & 0x7f) * scale;
          if (b < 0x80) break;
        }
        start = at + i + 1;
        break;
      }
      case "lf":
      case "crlf": {
        const d = spec.kind === "lf" ? [10] : [13, 10];
        let found = -1;
        for (let i = at; i + d.length <= bytes.length; i++) {
          if (bytes[i] === d[0] && (d.length === 1 || bytes[i + 1] === d[1])) {
            found = i;
            break;
          }
        }
        if (found < 0) return stop(left >= max + d.length ? "frame" : "truncated");
        start = at;
        length = found - at;
        trailer = d.length;
        break;
      }
      case "fixed":
        start = at;
        length = spec.size;
        break;
    }
    if (length > max) return stop("frame");
    if (start + length + trailer > bytes.length) return stop("truncated");
    frames.push(bytes.subarray(start, start + length));
    at = start + length + trailer;
    ends.push(at);
  }
}

/** A header that announces `length` bytes, for the codecs that have one. */
export function headerFor(spec: CodecSpec, length: number): number[] | null {
  switch (spec.kind) {
    case "u8":
      return length < 256 ? [length] : null;
    case "u16":
      return [length >>> 8, length & 0xff];
    case "u32":
      return [0, 0, length >>> 8, length & 0xff];
    case "varint": {
      const out: number[] = [];
      while (length >= 0x80) {
        out.push(0x80 | (length & 0x7f));
        length = Math.floor(length / 0x80);
      }
      out.push(length);
      return out;
    }
    default:
      return null;
  }
}

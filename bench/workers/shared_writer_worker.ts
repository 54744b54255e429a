/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// A producer for the shared-writer groups of bench/writer_bench.ts. It
// attaches to the shared pool and makes either its own Writer on the main
// thread's flusher (the baseline, default microtask cadence) or a handle of
// the main thread's SharedWriter ("manual": buffers go out when full). On
// each request it writes `count` 32-byte messages in bursts of `burst`,
// pausing between bursts as a producer fed by events would (see Pause). A
// Writer flushes once per burst. Each message carries this worker's index
// and its sequence number's low byte, for the main thread's order check.
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  SharedWriter,
  type SharedWriterHandle,
  type WriteFlusherHandle,
  Writer,
} from "../../mod.ts";

const SIZE = 32;

/**
 * What a producer waits for between bursts: a microtask (the next event was
 * queued already), a task (it comes in through the event loop), or a 1 ms
 * timer (events are sparse).
 */
export type Pause = "microtask" | "task" | "timer";

type Request =
  | {
    kind: "attach";
    pool: BufferPoolHandle;
    flusher: WriteFlusherHandle;
    /** The SharedWriter to attach to, or null for a Writer of this worker's own. */
    shared: SharedWriterHandle | null;
    index: number;
  }
  | {
    /** Pack by hand instead: no library, no consumer (see HandPacker). */
    kind: "hand";
    /** The cursor word, then each buffer's commit count on a line of its own. */
    cursor: SharedArrayBuffer;
    /** The buffers, `size` bytes each; their number is a power of 2. */
    ring: SharedArrayBuffer;
    size: number;
  }
  | {
    kind: "write";
    count: number;
    burst: number;
    pause: Pause;
  };

/** A reply: how often tryWrite found no room and the write had to wait, or what failed. */
export type ProducerReply = { stalls: number } | { error: string };

/**
 * The ceiling of packing two workers' messages into one buffer, written by
 * hand as a user without the library might: a ring of buffers, a cursor word holding buffer number << 11 | offset, claimed
 * by compare-and-swap (a frame that does not fit moves the cursor to the
 * next buffer), the frame copied in, and an atomic add to the buffer's
 * commit count. Nobody consumes: the ring is reused at once, so there is
 * no waiting, no order across buffers, no flusher and no reclaim.
 */
class HandPacker {
  readonly #cursor: Int32Array;
  readonly #ring: Uint8Array;
  readonly #size: number;
  readonly #mask: number;

  constructor(cursor: SharedArrayBuffer, ring: SharedArrayBuffer, size: number) {
    this.#cursor = new Int32Array(cursor);
    this.#ring = new Uint8Array(ring);
    this.#size = size;
    this.#mask = ring.byteLength / size - 1;
  }

  tryWrite(bytes: Uint8Array): boolean {
    const cursor = this.#cursor;
    const frame = bytes.length + 2;
    let v = cursor[0]!;
    for (;;) {
      if ((v & 2047) + frame > this.#size) {
        const next = ((v >>> 11) + 1) << 11;
        const seen = Atomics.compareExchange(cursor, 0, v, next);
        v = seen === v ? next : seen;
        continue;
      }
      const seen = Atomics.compareExchange(cursor, 0, v, v + frame);
      if (seen === v) break;
      v = seen;
    }
    const slot = (v >>> 11) & this.#mask;
    const at = slot * this.#size + (v & 2047);
    const ring = this.#ring;
    ring[at] = bytes.length >>> 8;
    ring[at + 1] = bytes.length & 0xff;
    ring.set(bytes, at + 2);
    // Each buffer's count on a line of its own.
    Atomics.add(cursor, 16 * (slot + 1), frame);
    return true;
  }

  write(bytes: Uint8Array): Promise<void> {
    this.tryWrite(bytes);
    return Promise.resolve();
  }

  flush(): void {}
}

let writer: Writer | SharedWriter | HandPacker | null = null;
const message = new Uint8Array(SIZE);
/** Messages sent so far, across requests: the main thread checks their order. */
let sent = 0;
for (let i = 0; i < SIZE; i++) message[i] = i;

/** A task of this worker's own: a message to itself, which waits for a turn of the event loop. */
const tick = new MessageChannel();
let ticked: (() => void) | null = null;
tick.port1.onmessage = () => ticked!();

function nextTask(): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  ticked = resolve;
  tick.port2.postMessage(null);
  return promise;
}

function timer(): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  setTimeout(resolve, 1);
  return promise;
}

async function write(count: number, burst: number, pause: Pause): Promise<number> {
  const out = writer!;
  let stalls = 0;
  for (let i = 0; i < count; i++) {
    message[0] = sent++;
    if (!out.tryWrite(message)) {
      // No room now: the pool has no free buffer, or (shared) another
      // worker is switching buffers, or the ring of 32 buffers in use waits
      // for its oldest to be committed whole.
      stalls++;
      await out.write(message);
    }
    if (i % burst === burst - 1) {
      await (pause === "microtask" ? null : pause === "task" ? nextTask() : timer());
    }
  }
  // The tail: a SharedWriter sends its part-filled buffer's committed bytes.
  out.flush();
  return stalls;
}

self.onmessage = async (event: MessageEvent<Request>) => {
  const request = event.data;
  try {
    if (request.kind === "hand") {
      writer = new HandPacker(request.cursor, request.ring, request.size);
      self.postMessage({ stalls: 0 } satisfies ProducerReply);
      return;
    }
    if (request.kind === "attach") {
      const pool = BufferPool.attach(request.pool);
      const codec = lengthPrefix(2);
      writer = request.shared === null
        ? new Writer(pool, request.flusher, { codec })
        : SharedWriter.attach(pool, request.shared, { codec, flush: "manual" });
      message[1] = request.index;
      self.postMessage({ stalls: 0 } satisfies ProducerReply);
      return;
    }
    self.postMessage(
      { stalls: await write(request.count, request.burst, request.pause) } satisfies ProducerReply,
    );
  } catch (error) {
    self.postMessage({ error: String(error) } satisfies ProducerReply);
  }
};

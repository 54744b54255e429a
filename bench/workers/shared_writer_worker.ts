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
    kind: "write";
    count: number;
    burst: number;
    pause: Pause;
  };

/** A reply: how often tryWrite found no room and the write had to wait, or what failed. */
export type ProducerReply = { stalls: number } | { error: string };

let writer: Writer | SharedWriter | null = null;
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

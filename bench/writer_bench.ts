// The send side: Writer + WriteFlusher against what users do without them,
// for 32-byte messages. Run: deno bench -A bench/writer_bench.ts
//
// Every case in a group sends the same number of messages per iteration, so
// the per-iteration times that `deno bench` prints compare per message:
// messages/s = messages per iteration / time per iteration.
//
// Each iteration ends only when the consumer has released (or, over TCP,
// received) everything the iteration wrote, so a case cannot look fast by
// leaving its work queued for the next one. Pool leaks are checked after
// every iteration, outside the timed section (b.end() before the check).
import assert from "node:assert/strict";
import {
  BufferPool,
  type BufferPoolOptions,
  type FlushRegion,
  lengthPrefix,
  WriteFlusher,
  Writer,
  type WriterOptions,
} from "../mod.ts";

const SIZE = 32;
/** How often the manual-cadence writers flush: 32,000 bytes, half a buffer. */
const FLUSH_EVERY = 1000;
let sink = 0;

const message = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i++) message[i] = i;

// =============================================================================
// write-32B: one writer in this thread, a consumer that releases every region
// =============================================================================

/** Messages per iteration: 320,000 bytes, about five 64 KiB buffers. */
const WRITE_N = 10_000;
/** Pool per case: 64 x 64 KiB, far more than an iteration needs, so stalls mean a leak. */
const POOL = { bufferSize: 64 * 1024, bufferCount: 64 };

/** A pool, a flusher, one writer and a reader of the flusher's batches. */
class Rig {
  readonly pool: BufferPool;
  readonly flusher: WriteFlusher;
  readonly writer: Writer;
  readonly reader: ReadableStreamDefaultReader<FlushRegion[]>;
  /** Bytes committed and flushed so far, framing included. */
  flushed = 0;
  /** Bytes of the regions released so far. */
  released = 0;
  /** Times tryWrite, tryReserve or tryClaim found no room; the case then drains and retries. */
  stalls = 0;

  constructor(options: WriterOptions, pool: BufferPoolOptions = POOL) {
    this.pool = new BufferPool(pool);
    this.flusher = new WriteFlusher(this.pool);
    this.writer = new Writer(this.pool, this.flusher, options);
    this.reader = this.flusher.readable.getReader();
  }

  /** Reads batches and releases every region until all flushed bytes came back. */
  async drain(): Promise<void> {
    while (this.released < this.flushed) {
      const result = await this.reader.read();
      if (result.done) throw new Error("the flusher ended while bytes were outstanding");
      const batch = result.value;
      for (let i = 0; i < batch.length; i++) {
        const region = batch[i]!;
        this.released += region.length;
        region.release();
      }
    }
  }

  /** After an iteration: everything released, only the writer's current buffer held. */
  check(): void {
    assert.equal(this.released, this.flushed, "bytes flushed but never delivered");
    assert.equal(this.pool.stats().inUse, 1, "buffers not back in the pool");
  }

  /** Closes writer and flusher, reads to the end, and checks every buffer came back. */
  async close(): Promise<void> {
    this.writer.close();
    this.flusher.close();
    for (;;) {
      const result = await this.reader.read();
      if (result.done) break;
      for (const region of result.value) {
        this.released += region.length;
        region.release();
      }
    }
    assert.equal(this.released, this.flushed);
    assert.equal(this.pool.stats().inUse, 0, "buffers not back in the pool after close");
  }
}

// The ways to write, each one iteration of WRITE_N messages. The retry
// branch never runs with this pool (stalls stay 0, checked below), but it is
// what a real sender must do, so it is there and counted.

/** tryWrite, manual flush every FLUSH_EVERY messages. */
async function tryWriteManual(rig: Rig, frame: number): Promise<void> {
  const writer = rig.writer;
  let since = 0;
  for (let i = 0; i < WRITE_N; i++) {
    message[0] = i;
    if (!writer.tryWrite(message)) {
      rig.stalls++;
      rig.flushed += since * frame;
      since = 0;
      await rig.drain(); // tryWrite flushed before it said no
      i--;
      continue;
    }
    since++;
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) writer.flush();
  }
  writer.flush();
  rig.flushed += since * frame;
  await rig.drain();
}

/**
 * tryWrite with the default cadence: the writer flushes in a microtask, so
 * the loop yields once every FLUSH_EVERY messages (one `await`, ~0.1 ns per
 * message) as any program that writes and then does I/O would.
 */
async function tryWriteMicrotask(rig: Rig, frame: number): Promise<void> {
  const writer = rig.writer;
  let since = 0;
  for (let i = 0; i < WRITE_N; i++) {
    message[0] = i;
    if (!writer.tryWrite(message)) {
      rig.stalls++;
      rig.flushed += since * frame;
      since = 0;
      await rig.drain();
      i--;
      continue;
    }
    since++;
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) await undefined;
  }
  rig.flushed += since * frame;
  await rig.drain(); // its first await lets the last flush run
}

/** tryReserve(32) + bytes.set + commit, manual flush every FLUSH_EVERY messages. */
async function tryReserveManual(rig: Rig, frame: number): Promise<void> {
  const writer = rig.writer;
  let since = 0;
  for (let i = 0; i < WRITE_N; i++) {
    message[0] = i;
    const reservation = writer.tryReserve(SIZE);
    if (reservation === null) {
      rig.stalls++;
      rig.flushed += since * frame;
      since = 0;
      await rig.drain();
      i--;
      continue;
    }
    reservation.bytes.set(message);
    reservation.commit();
    since++;
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) writer.flush();
  }
  writer.flush();
  rig.flushed += since * frame;
  await rig.drain();
}

/** tryClaim(32) + buffer.set at offset + commit, manual flush every FLUSH_EVERY messages. */
async function tryClaimManual(rig: Rig, frame: number): Promise<void> {
  const writer = rig.writer;
  let since = 0;
  for (let i = 0; i < WRITE_N; i++) {
    message[0] = i;
    const claim = writer.tryClaim(SIZE);
    if (claim === null) {
      rig.stalls++;
      rig.flushed += since * frame;
      since = 0;
      await rig.drain();
      i--;
      continue;
    }
    claim.buffer.set(message, claim.offset);
    claim.commit();
    since++;
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) writer.flush();
  }
  writer.flush();
  rig.flushed += since * frame;
  await rig.drain();
}

/**
 * tryClaim(32, up to FLUSH_EVERY) runs: one claim and one commit for as many
 * messages as the buffer holds (at most FLUSH_EVERY), then a manual flush.
 */
async function tryClaimRunManual(rig: Rig, frame: number): Promise<void> {
  const writer = rig.writer;
  for (let i = 0; i < WRITE_N;) {
    const run = writer.tryClaim(SIZE, Math.min(FLUSH_EVERY, WRITE_N - i));
    if (run === null) {
      rig.stalls++;
      await rig.drain();
      continue;
    }
    const buffer = run.buffer;
    const stride = run.stride;
    const count = run.count;
    for (let k = 0; k < count; k++) {
      message[0] = i + k;
      buffer.set(message, run.offset + k * stride);
    }
    run.commit();
    i += count;
    rig.flushed += count * frame;
    writer.flush();
  }
  await rig.drain();
}

interface WriteCase {
  name: string;
  pool?: BufferPoolOptions;
  options: WriterOptions;
  frame: number;
  run: (rig: Rig, frame: number) => Promise<void>;
}

const writeCases: WriteCase[] = [
  {
    name: `tryWrite, flush per ${FLUSH_EVERY}`,
    options: { flush: "manual" },
    frame: SIZE,
    run: tryWriteManual,
  },
  {
    name: `tryWrite + lengthPrefix(4), flush per ${FLUSH_EVERY}`,
    options: { flush: "manual", codec: lengthPrefix(4) },
    frame: SIZE + 4,
    run: tryWriteManual,
  },
  {
    name: `tryWrite, microtask cadence (yield per ${FLUSH_EVERY})`,
    options: {},
    frame: SIZE,
    run: tryWriteMicrotask,
  },
  {
    // bab's own writer_benchmark.rs uses 8 KiB buffers: five times as many
    // buffer switches (and regions) per iteration as 64 KiB ones.
    name: `tryWrite, 8 KiB buffers, flush per ${FLUSH_EVERY}`,
    pool: { bufferSize: 8 * 1024, bufferCount: 256 },
    options: { flush: "manual" },
    frame: SIZE,
    run: tryWriteManual,
  },
  {
    name: `tryReserve + bytes.set + commit, flush per ${FLUSH_EVERY}`,
    options: { flush: "manual" },
    frame: SIZE,
    run: tryReserveManual,
  },
  {
    name: `tryClaim + buffer.set + commit, flush per ${FLUSH_EVERY}`,
    options: { flush: "manual" },
    frame: SIZE,
    run: tryClaimManual,
  },
  {
    name: `tryClaim + buffer.set + commit + lengthPrefix(4), flush per ${FLUSH_EVERY}`,
    options: { flush: "manual", codec: lengthPrefix(4) },
    frame: SIZE + 4,
    run: tryClaimManual,
  },
  {
    name: `tryClaim run of up to ${FLUSH_EVERY} + buffer.set each + one commit + lengthPrefix(4)`,
    options: { flush: "manual", codec: lengthPrefix(4) },
    frame: SIZE + 4,
    run: tryClaimRunManual,
  },
];

// Check each way end to end on a rig of its own (every buffer back after
// close), then warm all of them up on the rigs the benches use, before any
// is timed: they share the Writer's code, and the JIT should have seen every
// shape (codec or none, cadence, reservations) before the first measurement.
for (const c of writeCases) {
  const rig = new Rig(c.options, c.pool);
  for (let round = 0; round < 3; round++) await c.run(rig, c.frame);
  await rig.close();
}
const writeRigs = writeCases.map((c) => new Rig(c.options, c.pool));
for (let round = 0; round < 30; round++) {
  for (let k = 0; k < writeCases.length; k++) {
    await writeCases[k]!.run(writeRigs[k]!, writeCases[k]!.frame);
  }
}
for (const rig of writeRigs) rig.check();

Deno.bench({
  group: "write-32B",
  name: `new Uint8Array(32) + set per message (${WRITE_N} msgs)`,
  baseline: true,
  fn() {
    for (let i = 0; i < WRITE_N; i++) {
      message[0] = i;
      const copy = new Uint8Array(SIZE);
      copy.set(message);
      sink += copy[0]!;
    }
  },
});

// The floor: what copying the bytes alone costs, with no pool, no framing
// and no consumer. Not a way to send anything; the distance to it is the
// writer's bookkeeping.
const slab = new Uint8Array(POOL.bufferSize);
let slabEnd = 0;
Deno.bench({
  group: "write-32B",
  name: `floor: set into one preallocated 64 KiB array (${WRITE_N} msgs)`,
  fn() {
    for (let i = 0; i < WRITE_N; i++) {
      message[0] = i;
      if (slabEnd + SIZE > slab.length) slabEnd = 0;
      slab.set(message, slabEnd);
      slabEnd += SIZE;
    }
    sink += slab[0]!;
  },
});

writeCases.forEach((c, k) => {
  const rig = writeRigs[k]!;
  Deno.bench({
    group: "write-32B",
    name: `${c.name} (${WRITE_N} msgs)`,
    async fn(b) {
      b.start();
      await c.run(rig, c.frame);
      b.end();
      rig.check();
    },
  });
});

// =============================================================================
// tcp-32B: the same messages over loopback TCP, to a reader that counts bytes
// =============================================================================

/**
 * Messages per iteration: 64,000 bytes, one 64 KiB buffer. Kept modest
 * because the baseline pays one syscall round per message.
 */
const TCP_N = 2_000;

/** The receiving end of a connection: reads into one array and counts bytes. */
class Counter {
  total = 0;
  /** Bytes the current iteration waits for. */
  expected = 0;
  #resolve: (() => void) | null = null;

  constructor(conn: Deno.Conn) {
    this.#run(conn);
  }

  async #run(conn: Deno.Conn): Promise<void> {
    const into = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(into);
      if (n === null) return;
      this.total += n;
      if (this.total >= this.expected && this.#resolve !== null) {
        const resolve = this.#resolve;
        this.#resolve = null;
        resolve();
      }
    }
  }

  /** Waits until `bytes` more bytes than before arrived. */
  receive(bytes: number): Promise<void> {
    this.expected += bytes;
    if (this.total >= this.expected) return Promise.resolve();
    return new Promise((resolve) => this.#resolve = resolve);
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });

/** A fresh connection per case, so that no case inherits another's backlog. */
async function connect(): Promise<{ conn: Deno.TcpConn; counter: Counter }> {
  const accepted = listener.accept();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  conn.setNoDelay(true);
  return { conn, counter: new Counter(await accepted) };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = await conn.write(bytes);
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

const tcpWrite = await connect();
// The Web Streams way: one chunk per message through conn.writable. Deno
// sends each chunk as its own write op, so it cannot beat conn.write; it is
// the common path for code written against WritableStream, not the baseline.
const tcpStream = await connect();
const streamWriter = tcpStream.conn.writable.getWriter();
const tcpCoalesce = await connect();
const coalesced = new Uint8Array(64 * 1024);
const tcpBab = await connect();
const tcpPool = new BufferPool(POOL);
const tcpFlusher = new WriteFlusher(tcpPool);
const piped = tcpFlusher.pipeTo(tcpBab.conn);
piped.catch((error) => {
  console.error("pipeTo failed:", error);
});
const tcpWriter = new Writer(tcpPool, tcpFlusher);
let tcpStalls = 0;

async function tcpConnWrite(): Promise<void> {
  const done = tcpWrite.counter.receive(TCP_N * SIZE);
  for (let i = 0; i < TCP_N; i++) {
    message[0] = i;
    await writeAll(tcpWrite.conn, message);
  }
  await done;
}

async function tcpStreamWrite(): Promise<void> {
  const done = tcpStream.counter.receive(TCP_N * SIZE);
  for (let i = 0; i < TCP_N; i++) {
    message[0] = i;
    await streamWriter.write(message);
  }
  await done;
}

/** By hand: copy into one 64 KiB array, one conn.write whenever it is full and at the end. */
async function tcpCoalesceWrite(): Promise<void> {
  const done = tcpCoalesce.counter.receive(TCP_N * SIZE);
  let end = 0;
  for (let i = 0; i < TCP_N; i++) {
    message[0] = i;
    if (end + SIZE > coalesced.length) {
      await writeAll(tcpCoalesce.conn, coalesced.subarray(0, end));
      end = 0;
    }
    coalesced.set(message, end);
    end += SIZE;
  }
  await writeAll(tcpCoalesce.conn, coalesced.subarray(0, end));
  await done;
}

/** bab: tryWrite with the default microtask cadence; pipeTo writes each region with conn.write. */
async function tcpBabWrite(): Promise<void> {
  const done = tcpBab.counter.receive(TCP_N * SIZE);
  for (let i = 0; i < TCP_N; i++) {
    message[0] = i;
    if (!tcpWriter.tryWrite(message)) {
      tcpStalls++;
      await tcpWriter.write(message);
    }
  }
  await done;
}

for (let round = 0; round < 20; round++) {
  await tcpConnWrite();
  await tcpStreamWrite();
  await tcpCoalesceWrite();
  await tcpBabWrite();
}

Deno.bench({
  group: "tcp-32B",
  name: `await conn.write per message (${TCP_N} msgs)`,
  baseline: true,
  fn: tcpConnWrite,
});

Deno.bench({
  group: "tcp-32B",
  name: `await conn.writable writer.write per message (${TCP_N} msgs)`,
  fn: tcpStreamWrite,
});

Deno.bench({
  group: "tcp-32B",
  name: `by hand: copy into 64 KiB + conn.write (${TCP_N} msgs)`,
  fn: tcpCoalesceWrite,
});

Deno.bench({
  group: "tcp-32B",
  name: `bab: tryWrite, microtask flush, flusher.pipeTo(conn) (${TCP_N} msgs)`,
  async fn(b) {
    b.start();
    await tcpBabWrite();
    b.end();
    // Only the writer's current buffer may be held: pipeTo released the rest.
    assert.ok(tcpPool.stats().inUse <= 1, "buffers not back in the pool");
  },
});

// =============================================================================
// writers-across-workers: writer workers on a shared pool, one flusher here
// =============================================================================

/** Messages per iteration, in total: 3.2 MB, so that posting requests is noise. */
const WORKER_N = 100_000;

const sharedPool = new BufferPool({
  bufferSize: 64 * 1024,
  bufferCount: 256,
  batchSize: 8,
  shared: true,
});
const sharedFlusher = new WriteFlusher(sharedPool);

/** This thread's consumer: releases every region as it comes, counting bytes. */
const consumer = {
  released: 0,
  expected: 0,
  resolve: null as (() => void) | null,
  receive(bytes: number): Promise<void> {
    this.expected += bytes;
    if (this.released >= this.expected) return Promise.resolve();
    return new Promise<void>((resolve) => this.resolve = resolve);
  },
};
(async () => {
  const reader = sharedFlusher.readable.getReader();
  for (;;) {
    const result = await reader.read();
    if (result.done) return;
    const batch = result.value;
    for (let i = 0; i < batch.length; i++) {
      consumer.released += batch[i]!.length;
      batch[i]!.release();
    }
    if (consumer.resolve !== null && consumer.released >= consumer.expected) {
      const resolve = consumer.resolve;
      consumer.resolve = null;
      resolve();
    }
  }
})();

/** A writer worker's answer to a "write" request (see workers/writer_worker.ts). */
interface WriteReply {
  stalls: number;
}

class WriterWorker {
  readonly worker = new Worker(new URL("./workers/writer_worker.ts", import.meta.url), {
    type: "module",
  });
  readonly #replies: ((value: unknown) => void)[] = [];
  stalls = 0;

  constructor() {
    this.worker.onmessage = (event) => this.#replies.shift()!(event.data);
  }

  request(message: unknown): Promise<unknown> {
    const reply = new Promise((resolve) => this.#replies.push(resolve));
    this.worker.postMessage(message);
    return reply;
  }

  async write(count: number): Promise<void> {
    const reply = (await this.request({ kind: "write", count })) as WriteReply;
    this.stalls += reply.stalls;
  }
}

const workers = [new WriterWorker(), new WriterWorker()];
await Promise.all(
  workers.map((w) =>
    w.request({ kind: "attach", pool: sharedPool.handle, flusher: sharedFlusher.handle })
  ),
);

async function acrossWorkers(count: number): Promise<void> {
  const done = consumer.receive(WORKER_N * SIZE);
  const share = WORKER_N / count;
  const writes: Promise<void>[] = [];
  for (let k = 0; k < count; k++) writes.push(workers[k]!.write(share));
  await Promise.all(writes);
  await done;
}

for (let round = 0; round < 10; round++) {
  await acrossWorkers(1);
  await acrossWorkers(2);
}

/** Each worker's writer holds its current buffer; everything else is back. */
function checkShared(): void {
  assert.equal(consumer.released, consumer.expected);
  assert.ok(sharedPool.stats().inUse <= workers.length, "buffers not back in the pool");
}
checkShared();

Deno.bench({
  group: "writers-across-workers",
  name: `1 writer worker (${WORKER_N} msgs)`,
  baseline: true,
  async fn(b) {
    b.start();
    await acrossWorkers(1);
    b.end();
    checkShared();
  },
});

Deno.bench({
  group: "writers-across-workers",
  name: `2 writer workers, ${WORKER_N / 2} msgs each (${WORKER_N} msgs)`,
  async fn(b) {
    b.start();
    await acrossWorkers(2);
    b.end();
    checkShared();
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) throw new Error("unreachable");
  const stalls = writeRigs.reduce((sum, rig) => sum + rig.stalls, 0) + tcpStalls +
    workers.reduce((sum, w) => sum + w.stalls, 0);
  if (stalls !== 0) console.error(`writer_bench: ${stalls} writes found no free buffer`);
  for (const w of workers) w.worker.terminate();
});

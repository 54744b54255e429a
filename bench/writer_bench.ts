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
  SharedWriter,
  WriteFlusher,
  Writer,
  type WriterOptions,
} from "../mod.ts";
import type { Pause, ProducerReply } from "./workers/shared_writer_worker.ts";

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

// =============================================================================
// shared-writer: 2 workers packing 32-byte messages into MTU-sized buffers
// =============================================================================
//
// The MTU case: buffers of 1,500 bytes, and each region the flusher hands
// out would be one datagram or one socket write, so the bytes per region are
// the packing that matters. Two producer workers write lengthPrefix(2)
// frames of 34 bytes (44 fill a buffer: 1,496 bytes) in bursts:
//
// - baseline: each worker its own Writer (default microtask cadence) on the
//   flusher here, which flushes once per burst;
// - one SharedWriter, "manual" in both workers: a buffer goes to the flusher
//   once full, with both workers' messages in it;
// - the ceiling: the same two workers packing by hand into one ring (one
//   compare-and-swap cursor, a copy, an atomic add per message; see
//   HandPacker in workers/shared_writer_worker.ts), with no consumer, no
//   order and no flusher. No design that packs two workers' messages into
//   the same buffer goes faster on the machine it runs on.
//
// Pacing, one group each:
// - bursts of 8 messages (272 bytes, under a fifth of a buffer) with a
//   microtask between them: a producer fed by events that are queued
//   already, writing what each one brings; as fast as the writers go;
// - bursts of 1,000 (34,000 bytes, about 23 buffers): a producer with a
//   backlog, where each Writer fills its buffers too;
// - bursts of 8 with a task between them (a message to itself): the next
//   event comes in through the event loop;
// - bursts of 8 with a 1 ms timer between them: sparse events, 1,600
//   messages per iteration. The consumer keeps up here, so it takes each
//   Writer flush as a region of its own.
//
// A Writer's flushes of one buffer that the consumer has not taken yet go
// out as one region (the flusher hands over the buffer's latest end), so
// when the producers outrun the consumer, per-worker Writers pack well too;
// the slower the events, the less they do. A SharedWriter on "manual" packs
// whatever the pace, and holds each message until its buffer fills.
//
// The consumer here releases every region and counts bytes, regions and
// buffers; the summary at the end of the run prints msgs/s and packing per
// case. The names carry "shared-writer", so --filter shared-writer runs them.

/** Bytes in each buffer: an Ethernet MTU. */
const MTU = 1500;
/** A 32-byte message framed with lengthPrefix(2). */
const MTU_FRAME = SIZE + 2;
/** Messages per iteration in total, half per worker: 3.4 MB, about 2,300 buffers. */
const MTU_N = 100_000;

interface Pacing {
  group: string;
  burst: number;
  pause: Pause;
  /** Messages per iteration, in total. */
  messages: number;
}

const pacings: Pacing[] = [
  { group: "shared-writer", burst: 8, pause: "microtask", messages: MTU_N },
  { group: "shared-writer, bursts of 1000", burst: 1000, pause: "microtask", messages: MTU_N },
  { group: "shared-writer, a task between bursts", burst: 8, pause: "task", messages: MTU_N },
  // 100 bursts per worker, about a tenth of a second.
  { group: "shared-writer, a 1 ms timer between bursts", burst: 8, pause: "timer", messages: 1600 },
];

/**
 * Room for an iteration and then some (6 MB), so that a stall means the
 * consumer fell behind, not that the pool is small. Batches of 8 keep the
 * workers' caches from holding more than 16 buffers each.
 */
const mtuPool = new BufferPool({
  bufferSize: MTU,
  bufferCount: 4096,
  batchSize: 8,
  shared: true,
});
const mtuFlusher = new WriteFlusher(mtuPool);
const sharedWriter = new SharedWriter(mtuPool, mtuFlusher, {
  codec: lengthPrefix(2),
  flush: "manual",
});

/** What one case sent in its timed iterations, as the consumer counted it. */
class Packing {
  /** Messages per iteration. */
  readonly messages: number;
  bytes = 0;
  regions = 0;
  buffers = 0;
  stalls = 0;
  iterations = 0;
  /** Time in timed iterations, ms. */
  ms = 0;

  constructor(messages: number) {
    this.messages = messages;
  }

  /** One line: msgs/s over the timed iterations, bytes per region and per buffer. */
  summary(name: string): string {
    const msgs = (this.iterations * this.messages) / (this.ms / 1000);
    if (this.regions === 0) return `${name}: ${(msgs / 1e6).toFixed(2)}M msgs/s`;
    const perRegion = this.bytes / this.regions;
    const perBuffer = this.bytes / this.buffers;
    return `${name}: ${(msgs / 1e6).toFixed(2)}M msgs/s; ` +
      `${perRegion.toFixed(0)} bytes/region (${(100 * perRegion / MTU).toFixed(1)}% of ${MTU}), ` +
      `${perBuffer.toFixed(0)} bytes/buffer (${(100 * perBuffer / MTU).toFixed(1)}%); ` +
      `${this.regions} regions, ${this.buffers} buffers, ${this.stalls} stalls ` +
      `in ${this.iterations} iterations`;
  }
}

/**
 * This thread's consumer of the MTU flusher: releases each region as it
 * comes and counts it. A region starts a new buffer unless it begins where
 * the same writer's last region ended (no buffer holds more than 1,496
 * bytes of these frames, so the next buffer never starts exactly there).
 */
const mtuConsumer = {
  released: 0,
  expected: 0,
  resolve: null as (() => void) | null,
  /** The case being timed, or null while warming up. */
  packing: null as Packing | null,
  /** The case timed last: a new one counts the buffers it starts from scratch. */
  last: null as Packing | null,
  /** Per writer id, the pool byte offset at which its last region ended. */
  ends: new Map<number, number>(),
  /** While warming up: check every frame, and each worker's order. */
  verify: true,
  /** Per worker index, the low byte of the sequence number it sends next. */
  next: [0, 0, 0, 0],
  /** Counts what comes next into `packing`. */
  time(packing: Packing): void {
    if (packing !== this.last) this.ends.clear();
    this.packing = this.last = packing;
  },
  receive(bytes: number): Promise<void> {
    this.expected += bytes;
    if (this.released >= this.expected) return Promise.resolve();
    return new Promise<void>((resolve) => this.resolve = resolve);
  },
  count(region: FlushRegion): void {
    const bytes = region.bytes;
    const length = region.length;
    this.released += length;
    if (this.verify) this.check(bytes);
    const packing = this.packing;
    if (packing === null) return;
    packing.bytes += length;
    packing.regions++;
    if (this.ends.get(region.writerId) !== bytes.byteOffset) packing.buffers++;
    this.ends.set(region.writerId, bytes.byteOffset + length);
  },
  /** Whole 34-byte frames of the workers' pattern, each worker's in order. */
  check(bytes: Uint8Array): void {
    assert.equal(bytes.length % MTU_FRAME, 0, "a region holds a part of a frame");
    for (let at = 0; at < bytes.length; at += MTU_FRAME) {
      assert.equal((bytes[at]! << 8) | bytes[at + 1]!, SIZE, "a frame's prefix is wrong");
      const worker = bytes[at + 3]!;
      assert.equal(bytes[at + 2], this.next[worker], `worker ${worker}'s messages out of order`);
      this.next[worker] = (this.next[worker]! + 1) & 0xff;
      for (let k = 2; k < SIZE; k++) {
        assert.equal(bytes[at + 2 + k], k, "a message's bytes changed");
      }
    }
  },
};
(async () => {
  const reader = mtuFlusher.readable.getReader();
  for (;;) {
    const result = await reader.read();
    if (result.done) return;
    const batch = result.value;
    for (let i = 0; i < batch.length; i++) {
      mtuConsumer.count(batch[i]!);
      batch[i]!.release();
    }
    if (mtuConsumer.resolve !== null && mtuConsumer.released >= mtuConsumer.expected) {
      const resolve = mtuConsumer.resolve;
      mtuConsumer.resolve = null;
      resolve();
    }
  }
})();

/** A producer worker of this group (see workers/shared_writer_worker.ts). */
class ProducerWorker {
  readonly worker = new Worker(new URL("./workers/shared_writer_worker.ts", import.meta.url), {
    type: "module",
  });
  readonly #replies: ((reply: ProducerReply) => void)[] = [];

  constructor() {
    this.worker.onmessage = (event: MessageEvent<ProducerReply>) =>
      this.#replies.shift()!(event.data);
  }

  /** Posts a request; resolves to its reply's stall count, rejects with the worker's error. */
  async request(message: unknown): Promise<number> {
    const reply = new Promise<ProducerReply>((resolve) => this.#replies.push(resolve));
    this.worker.postMessage(message);
    const result = await reply;
    if ("error" in result) throw new Error(`producer worker: ${result.error}`);
    return result.stalls;
  }
}

/** Worker indices 0 and 1 write with a Writer each; 2 and 3 share the SharedWriter. */
const ownWriters = [new ProducerWorker(), new ProducerWorker()];
const sharers = [new ProducerWorker(), new ProducerWorker()];
/** Two more pack by hand into one ring of their own, with no consumer: the ceiling. */
const handPackers = [new ProducerWorker(), new ProducerWorker()];
/** Buffers in the hand packers' ring. */
const HAND_RING = 64;
const handCursor = new SharedArrayBuffer(4 * 16 * (HAND_RING + 1));
const handRing = new SharedArrayBuffer(HAND_RING * MTU);
await Promise.all(
  handPackers.map((w) =>
    w.request({ kind: "hand", cursor: handCursor, ring: handRing, size: MTU })
  ),
);
await Promise.all(
  [...ownWriters, ...sharers].map((w, index) =>
    w.request({
      kind: "attach",
      pool: mtuPool.handle,
      flusher: mtuFlusher.handle,
      shared: index < 2 ? null : sharedWriter.handle,
      index,
    })
  ),
);

/** One iteration: each worker writes half the messages; ends once all is released. */
async function packInto(producers: ProducerWorker[], pacing: Pacing): Promise<number> {
  const { burst, pause, messages } = pacing;
  const done = producers === handPackers
    ? Promise.resolve()
    : mtuConsumer.receive(messages * MTU_FRAME);
  const stalls = await Promise.all(
    producers.map((w) => w.request({ kind: "write", count: messages / 2, burst, pause })),
  );
  await done;
  return stalls[0]! + stalls[1]!;
}

/**
 * After an iteration: everything released, and only each Writer's current
 * buffer and the SharedWriter's are still held.
 */
function checkMtu(): void {
  assert.equal(mtuConsumer.released, mtuConsumer.expected);
  assert.ok(mtuPool.stats().inUse <= ownWriters.length + 1, "buffers not back in the pool");
}

// Warm-up, every frame checked: both workers' messages once each, in order.
for (let round = 0; round < 10; round++) {
  for (const pacing of pacings) {
    if (pacing.pause === "timer" && round >= 2) continue; // slow, and the same code
    await packInto(ownWriters, pacing);
    await packInto(sharers, pacing);
    await packInto(handPackers, pacing);
  }
}
checkMtu();
mtuConsumer.verify = false;

const mtuCases: { name: string; packing: Packing }[] = [];
for (const pacing of pacings) {
  const cases = [
    ["2 Writers", ownWriters],
    ["1 SharedWriter", sharers],
    ["packing by hand (no consumer: the ceiling)", handPackers],
  ] as const;
  for (const [label, producers] of cases) {
    const name = `shared-writer: ${label}, 2 workers, bursts of ${pacing.burst}, ` +
      `${pacing.pause === "timer" ? "a 1 ms timer" : `a ${pacing.pause}`} between ` +
      `(${pacing.messages} msgs)`;
    const packing = new Packing(pacing.messages);
    mtuCases.push({ name, packing });
    Deno.bench({
      group: pacing.group,
      name,
      baseline: producers === ownWriters,
      async fn(b) {
        mtuConsumer.time(packing);
        b.start();
        const started = performance.now();
        packing.stalls += await packInto(producers, pacing);
        packing.ms += performance.now() - started;
        b.end();
        packing.iterations++;
        mtuConsumer.packing = null;
        checkMtu();
      },
    });
  }
}

globalThis.addEventListener("unload", () => {
  for (const c of mtuCases) {
    if (c.packing.iterations > 0) console.log(c.packing.summary(c.name));
  }
  for (const w of [...ownWriters, ...sharers, ...handPackers]) w.worker.terminate();
});

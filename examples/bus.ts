// The demo: a message bus over loopback TCP, end to end, built the way bab
// recommends for many producers.
//
//   producer worker 0: Writer ─claim run, fill─▶ own pool ─▶ WriteFlusher ─▶ TCP ─┐
//   producer worker 1: Writer ─claim run, fill─▶ own pool ─▶ WriteFlusher ─▶ TCP ─┤
//   ...                                                                           │
//   main thread: visitFrames on each connection, into the server pool ◀───────────┘
//                checks every frame in place; no object per message
//                │ --audit: cutter.retain() one in 8, sendBatch
//                ▼
//            auditor (worker): checks them again where they lie, releases them
//
// Each producer worker fills numbered, length-prefixed messages in place in
// a pool of its own (writer.tryClaim with a count: a run of messages per
// claim, one commit per buffer, no object per message) and runs its
// own WriteFlusher, piped to its own connection: the socket writes happen
// in the producer's thread, so the main thread does nothing but consume.
// It reads each connection straight into server pool memory with
// visitFrames and checks every message where it lies: that it arrives
// once, in order per producer, with every byte intact. With --audit, one
// message in eight is kept as a packet (cutter.retain()) and forwarded,
// with no copy, to an auditor worker that checks it again. Memory is the
// producers' pools and the server's: nothing grows with the messages.
//
//   deno task demo [--workers N] [--messages N] [--size BYTES] [--seconds S] [--audit] [--memory]
//   deno task soak    (10M messages with --memory)

import { parseArgs } from "node:util";
import { BufferPool, type FrameVisitor, lengthPrefix, type Packet, visitFrames } from "../mod.ts";
import { HEADER, MessageChecker } from "./_bus_message.ts";
import type { ProducerJob, ProducerReport } from "./_bus_producer.ts";
import type { AuditorReport } from "./_bus_auditor.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    workers: { type: "string", default: "2" },
    messages: { type: "string", default: "20000000" },
    size: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
    audit: { type: "boolean", default: false },
    memory: { type: "boolean", default: false },
  },
});
const producers = Number(values.workers);
const messages = Number(values.messages);
const size = Number(values.size);
const seconds = Number(values.seconds);
const MAX_SIZE = 60 * 1024;
if (
  !Number.isInteger(producers) || producers < 1 || producers > 64 ||
  !Number.isInteger(messages) || messages < 1 ||
  !Number.isInteger(size) || size < HEADER || size > MAX_SIZE ||
  !(seconds > 0)
) {
  console.error(
    `Usage: deno task demo [--workers 1..64] [--messages N >= 1] [--size ${HEADER}..${MAX_SIZE}] [--seconds S > 0] [--audit] [--memory]`,
  );
  Deno.exit(2);
}

const AUDIT_EVERY = 8;
/**
 * Packets kept for the auditor go at least this many at a time, and
 * whenever the reader moves on to another buffer.
 */
const AUDIT_BATCH = 256;
const codec = lengthPrefix(4);
// The server's pool: each connection reads into a 256 KiB buffer; the rest
// is room for packets on their way to the auditor, which pin their buffers.
// Only the auditor needs the pool shared.
const READ_BUFFER = 256 * 1024;
const bufferCount = 2 * producers + (values.audit ? 8 : 0);
const serverPool = new BufferPool({
  bufferSize: READ_BUFFER,
  bufferCount,
  ...(values.audit
    ? {
      shared: true,
      maxWorkers: 2,
      // Every packet the pool's memory could hold for the auditor at once.
      maxInFlight: Math.ceil((bufferCount * READ_BUFFER) / (4 + HEADER) / AUDIT_EVERY),
    }
    : {}),
});

// -- The auditor, if asked for --

const audit = values.audit ? new MessageChannel() : null;
const auditor = values.audit
  ? new Worker(new URL("./_bus_auditor.ts", import.meta.url), { type: "module" })
  : null;
const audited = auditor === null
  ? Promise.resolve<AuditorReport>({ audited: 0 })
  : reportOf<AuditorReport>(auditor, "auditor");
auditor?.postMessage(serverPool.handle, [audit!.port2]);

// -- The server: visit every frame of every connection in place --

const checker = new MessageChecker(producers);
let forwarded = 0;

/** Reads one producer's connection to its end, checking every message. */
function serve(conn: Deno.Conn): Promise<void> {
  // One DataView per staging buffer: the visitor gets the same bytes for
  // every frame on a buffer, so a new view is made only when it changes.
  let staged: Uint8Array | null = null;
  let view: DataView | null = null;
  const keep: Packet[] = [];
  const visit: FrameVisitor = (bytes, start, end, cutter) => {
    if (bytes !== staged) {
      // Kept packets go before the reader moves on, so that they pin no
      // more than the buffer being read while they wait.
      if (keep.length !== 0) forward(keep);
      staged = bytes;
      view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    checker.check(view!, start, end - start);
    if (audit !== null && checker.received % AUDIT_EVERY === 0) {
      keep.push(cutter.retain());
      if (keep.length === AUDIT_BATCH) forward(keep);
    }
  };
  return visitFrames(conn, serverPool, { codec }, visit).finally(() => {
    if (keep.length !== 0) forward(keep);
    conn.close();
  });
}

function forward(packets: Packet[]): void {
  audit!.port1.postMessage(serverPool.sendBatch(packets));
  forwarded += packets.length;
  packets.length = 0;
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const started = performance.now();
const deadline = performance.timeOrigin + started + seconds * 1000;
const workers: Worker[] = [];
const reports: Promise<ProducerReport>[] = [];
for (let producer = 0; producer < producers; producer++) {
  const worker = new Worker(new URL("./_bus_producer.ts", import.meta.url), { type: "module" });
  workers.push(worker);
  reports.push(reportOf<ProducerReport>(worker, `producer ${producer}`));
  const share = Math.floor(messages / producers) + (producer < messages % producers ? 1 : 0);
  worker.postMessage(
    {
      producer,
      port: listener.addr.port,
      messages: share,
      size,
      deadline,
      memory: values.memory,
    } satisfies ProducerJob,
  );
}
const served: Promise<void>[] = [];
for (let i = 0; i < producers; i++) served.push(serve(await listener.accept()));
listener.close();

// -- Progress on a terminal, then a summary --

const tty = Deno.stdout.isTerminal();
const encoder = new TextEncoder();
let mostInUse = 0;
// --memory: heap and RSS after warm-up (a quarter of the messages) and at
// most afterwards, to show that memory stays flat however long it runs.
const memory = { warmHeap: 0, warmRss: 0, maxHeap: 0, maxRss: 0, samples: 0 };
const progress = setInterval(() => {
  const inUse = serverPool.stats().inUse;
  mostInUse = Math.max(mostInUse, inUse);
  if (values.memory && checker.received >= messages / 4) {
    // With --v8-flags=--expose-gc (as `deno task soak` runs) the heap is
    // measured after a full collection: what is live, not garbage not yet
    // collected.
    (globalThis as { gc?: () => void }).gc?.();
    const { heapUsed, rss } = Deno.memoryUsage();
    if (memory.samples++ === 0) {
      memory.warmHeap = heapUsed;
      memory.warmRss = rss;
    }
    memory.maxHeap = Math.max(memory.maxHeap, heapUsed);
    memory.maxRss = Math.max(memory.maxRss, rss);
  }
  if (!tty) return;
  const elapsed = (performance.now() - started) / 1000;
  const line = `${fmt(checker.received / elapsed)} msg/s  ${
    (checker.bytes / elapsed / 1e6).toFixed(1)
  } MB/s  ${fmt(checker.received)} received  server buffers in use ${inUse}/${bufferCount}`;
  Deno.stdout.writeSync(encoder.encode(`\r${line.padEnd(90)}`));
}, 100);

let sent = 0;
let waits = 0;
let producerBuffers = 0;
let producerInUse = 0;
// Each producer's heap, summed: after warm-up, and the most after.
let producerWarmHeap = 0;
let producerMaxHeap = 0;
try {
  for (const report of await Promise.all(reports)) {
    if ("error" in report) checker.failure ??= report.error;
    else {
      sent += report.sent;
      waits += report.waits;
      producerBuffers += report.buffers;
      producerInUse += report.inUse;
      producerWarmHeap += report.warmHeap;
      producerMaxHeap += report.maxHeap;
    }
  }
  for (const result of await Promise.allSettled(served)) {
    if (result.status === "rejected") checker.failure ??= `server: ${result.reason}`;
  }
} finally {
  for (const worker of workers) worker.terminate();
}
const elapsed = (performance.now() - started) / 1000;
audit?.port1.postMessage(null);
const auditReport = await audited;
auditor?.terminate();
audit?.port1.close();
clearInterval(progress);
if (tty) Deno.stdout.writeSync(encoder.encode("\r".padEnd(92) + "\r"));

if ("error" in auditReport) checker.failure ??= `auditor: ${auditReport.error}`;
const auditCount = "audited" in auditReport ? auditReport.audited : 0;
const received = checker.received;
let failure = checker.failure;
if (failure === undefined && received !== sent) failure = `${sent} sent but ${received} received`;
if (failure === undefined && checker.inOrder !== received) {
  failure = `${received} received but ${checker.inOrder} in order`;
}
if (failure === undefined && auditCount !== forwarded) {
  failure = `${forwarded} forwarded but ${auditCount} audited`;
}
const inUse = serverPool.stats().inUse + producerInUse;
if (failure === undefined && inUse !== 0) failure = `${inUse} buffers still in use at the end`;

console.table({
  "producer workers, one connection each": producers,
  "messages sent": sent,
  "messages received, once each, in order, intact": received,
  ...(values.audit ? { "forwarded to the auditor and checked again": auditCount } : {}),
  "message size (bytes)": size,
  "seconds": Number(elapsed.toFixed(2)),
  "messages/s": Math.round(received / elapsed),
  "MB/s": Number((checker.bytes / elapsed / 1e6).toFixed(1)),
  "times a producer waited for a buffer": waits,
  "pools (producers', server's)": `${producerBuffers} × 64 KiB, ${bufferCount} × 256 KiB`,
  "most server buffers in use at once (sampled)": mostInUse,
  "buffers in use at the end": inUse,
  ...(values.memory
    ? {
      "main heap after warm-up / most after (MB)": `${mb(memory.warmHeap)} / ${mb(memory.maxHeap)}`,
      "producers' heaps after warm-up / most after (MB, summed)": `${mb(producerWarmHeap)} / ${
        mb(producerMaxHeap)
      }`,
      "RSS after warm-up / most after (MB)": `${mb(memory.warmRss)} / ${mb(memory.maxRss)}`,
      "memory samples after warm-up": memory.samples,
    }
    : {}),
});
if (failure !== undefined) {
  console.error(`FAILED: ${failure}`);
  Deno.exit(1);
}
console.log(
  `OK: every message arrived once, in order, intact${
    values.audit ? "; forwarded packets checked in another worker" : ""
  }; every buffer is back in its pool`,
);

function reportOf<T>(worker: Worker, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<T>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`${name} failed: ${event.message}`));
    };
  });
}

function mb(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

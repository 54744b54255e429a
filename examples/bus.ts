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
//   deno task demo --help     (every flag, with its default)
//   deno task soak            (10M messages with --memory)

import { parseArgs } from "node:util";
import { BufferPool, type FrameVisitor, lengthPrefix, type Packet, visitFrames } from "../mod.ts";
import { HEADER, MessageChecker } from "./_bus_message.ts";
import type { ProducerJob, ProducerReport } from "./_bus_producer.ts";
import type { AuditorReport } from "./_bus_auditor.ts";

const MAX_SIZE = 60 * 1024;
const MAX_WORKERS = 64;
const DEFAULTS = { workers: "2", messages: "20000000", size: "64", seconds: "10" } as const;
/** Each flag: its value's name ("" for a switch, which is off unless given), what it does. */
const FLAGS: [flag: string, value: string, help: string][] = [
  ["workers", "N", `producer workers, each with its own pool and connection: 1 to ${MAX_WORKERS}`],
  ["messages", "N", "messages to send, in all: at least 1"],
  ["size", "BYTES", `bytes per message: ${HEADER} to ${MAX_SIZE}`],
  ["seconds", "S", "stop sending after S seconds, even if not every message was sent"],
  ["audit", "", "keep one message in 8 as a packet; an auditor worker checks it again"],
  ["memory", "", "sample heap and RSS after warm-up (the first quarter of the messages)"],
  ["help", "", "print this and exit"],
];

function usage(): string {
  const names = FLAGS.map(([flag, value]) =>
    `${flag === "help" ? "-h, " : ""}--${flag}${value === "" ? "" : ` ${value}`}`
  );
  const width = Math.max(...names.map((name) => name.length));
  const lines = FLAGS.map(([flag, , help], i) => {
    const fallback = (DEFAULTS as Record<string, string>)[flag];
    return `  ${names[i]!.padEnd(width)}  ${help}${
      fallback === undefined ? "" : ` (default ${fallback})`
    }`;
  });
  return [
    "Usage: deno task demo [flags]",
    "",
    "A message bus on loopback TCP: producer workers write numbered messages, the main",
    "thread checks every one where it lies. Exits 0 only if every check held.",
    "",
    "Flags (switches are off unless given):",
    ...lines,
  ].join("\n");
}

/** Says what was wrong with the command line, then how to use it, and exits 2. */
function badUsage(message: string): never {
  console.error(`${message}\n\n${usage()}`);
  Deno.exit(2);
}

/** The flags given, or exits 2 on an unknown flag, a missing value or a stray argument. */
function parseFlags() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        workers: { type: "string", default: DEFAULTS.workers },
        messages: { type: "string", default: DEFAULTS.messages },
        size: { type: "string", default: DEFAULTS.size },
        seconds: { type: "string", default: DEFAULTS.seconds },
        audit: { type: "boolean", default: false },
        memory: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    return badUsage(error instanceof Error ? error.message : String(error));
  }
}

const values = parseFlags();
if (values.help) {
  console.log(usage());
  Deno.exit(0);
}
const producers = Number(values.workers);
const messages = Number(values.messages);
const size = Number(values.size);
const seconds = Number(values.seconds);
if (!Number.isInteger(producers) || producers < 1 || producers > MAX_WORKERS) {
  badUsage(`--workers must be an integer from 1 to ${MAX_WORKERS}, received ${values.workers}`);
}
if (!Number.isSafeInteger(messages) || messages < 1) {
  badUsage(`--messages must be an integer of at least 1, received ${values.messages}`);
}
if (!Number.isInteger(size) || size < HEADER || size > MAX_SIZE) {
  badUsage(`--size must be an integer from ${HEADER} to ${MAX_SIZE}, received ${values.size}`);
}
if (!(seconds > 0)) badUsage(`--seconds must be a number above 0, received ${values.seconds}`);

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
// The live line's rate is over the last tick; the average is since the start.
let lastTick = started;
let lastReceived = 0;
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
  const now = performance.now();
  const received = checker.received;
  const current = (received - lastReceived) / ((now - lastTick) / 1000);
  lastTick = now;
  lastReceived = received;
  const elapsed = (now - started) / 1000;
  const line = `${(100 * received / messages).toFixed(1)}%  ${fmt(received)} of ${
    fmt(messages)
  }  now ${millions(current)} msg/s, average ${millions(received / elapsed)}  ${
    (checker.bytes / elapsed / 1e6).toFixed(0)
  } MB/s  ${elapsed.toFixed(1)} of ${seconds} s  server buffers ${inUse}/${bufferCount}`;
  // A line longer than the terminal would wrap, and "\r" not go back over it.
  const columns = Deno.consoleSize().columns;
  // "\x1b[K" clears what a longer line before left at the end.
  Deno.stdout.writeSync(encoder.encode(`\r${line.slice(0, columns - 1)}\x1b[K`));
}, 100);

let sent = 0;
let waits = 0;
let producerBuffers = 0;
let producerInUse = 0;
// Each producer's heap, summed: after warm-up, and the most after.
let producerWarmHeap = 0;
let producerMaxHeap = 0;
let producersSampled = 0;
let producersFailed = 0;
try {
  for (const report of await Promise.all(reports)) {
    if ("error" in report) {
      checker.failure ??= report.error;
      producersFailed++;
    } else {
      sent += report.sent;
      waits += report.waits;
      producerBuffers += report.buffers;
      producerInUse += report.inUse;
      producerWarmHeap += report.warmHeap;
      producerMaxHeap += report.maxHeap;
      // A heap is never 0 bytes: 0 means no sample was taken.
      if (report.warmHeap > 0) producersSampled++;
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
if (tty) Deno.stdout.writeSync(encoder.encode("\r\x1b[K"));

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

const summary: [label: string, value: string][] = [
  ["producer workers, one connection each", fmt(producers)],
  ["messages sent", fmt(sent)],
  ["messages received, once each, in order, intact", fmt(received)],
  ...(values.audit
    ? [["forwarded to the auditor and checked again", fmt(auditCount)]] as [string, string][]
    : []),
  ["message size", `${fmt(size)} bytes`],
  ["seconds", elapsed.toFixed(2)],
  ["messages/s", fmt(received / elapsed)],
  ["MB/s", (checker.bytes / elapsed / 1e6).toFixed(1)],
  ["times a producer waited for a buffer", fmt(waits)],
  ["pools (producers', server's)", `${producerBuffers} × 64 KiB, ${bufferCount} × 256 KiB`],
  ["most server buffers in use at once (sampled)", fmt(mostInUse)],
  ["buffers in use at the end", fmt(inUse)],
];
if (values.memory) {
  if (memory.samples === 0) {
    summary.push([
      "main heap and RSS",
      "no samples: the run was too short (one each 0.1 s past the first quarter of the messages)",
    ]);
  } else {
    summary.push(
      ["main heap after warm-up / most after", `${mb(memory.warmHeap)} / ${mb(memory.maxHeap)} MB`],
      ["RSS after warm-up / most after", `${mb(memory.warmRss)} / ${mb(memory.maxRss)} MB`],
      ["main memory samples after warm-up", fmt(memory.samples)],
    );
  }
  summary.push([
    "producers' heaps after warm-up / most after",
    producersSampled === 0
      ? "no samples: the run was too short (one each million messages past a producer's first quarter)"
      : `${mb(producerWarmHeap)} / ${
        mb(producerMaxHeap)
      } MB, summed over ${producersSampled} of ${producers} producers`,
  ]);
}
const labelWidth = Math.max(...summary.map(([label]) => label.length));
for (const [label, value] of summary) console.log(`${label.padEnd(labelWidth)}  ${value}`);
// Producers stop at the deadline: the checks then cover what was sent.
if (producersFailed === 0 && sent < messages) {
  console.log(`stopped by --seconds ${seconds} after ${fmt(sent)} of ${fmt(messages)} messages`);
}
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

/** A rate in millions, as "12.3M". */
function millions(n: number): string {
  return `${(n / 1e6).toFixed(1)}M`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

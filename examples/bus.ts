// The demo: a message bus over loopback TCP, end to end, on one shared pool.
//
//   producers (workers) ──Writer──▶ WriteFlusher ──TCP──▶ Framer ──▶ server
//                                                                    │ sendBatch (1 in 8)
//                                                                    ▼
//                                                               auditor (worker)
//
// Producer workers write numbered, length-prefixed messages into the pool
// through Writers; one WriteFlusher in the main thread writes the flushed
// regions to a TCP connection straight from pool memory. The server cuts
// the connection's bytes back into Packets with a Framer and checks that
// every message arrives once, in order per producer, with its bytes intact;
// one packet in eight is forwarded to an auditor worker with no copy, which
// checks it again where the server left it. Memory is the two pools, the
// producers' and the server's: nothing grows with the number of messages.
//
//   deno task demo [--workers N] [--messages N] [--size BYTES] [--seconds S] [--memory]
//   deno task soak    (10M messages with --memory)

import { parseArgs } from "node:util";
import { BatchFramer, BufferPool, lengthPrefix, type Packet, WriteFlusher } from "../mod.ts";
import { HEADER, verify } from "./_bus_message.ts";
import type { ProducerJob, ProducerReport } from "./_bus_producer.ts";
import type { AuditorReport } from "./_bus_auditor.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    workers: { type: "string", default: "2" },
    messages: { type: "string", default: "20000000" },
    size: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
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
    `Usage: deno task demo [--workers 1..64] [--messages N >= 1] [--size ${HEADER}..${MAX_SIZE}] [--seconds S > 0]`,
  );
  Deno.exit(2);
}

const AUDIT_EVERY = 8;
// The two ends of the connection have a pool each, as a client and a server
// in two processes would: with one, the senders could fill every buffer
// while the socket is full, and the receiver could not get one to drain it.
const pool = new BufferPool({
  bufferSize: 64 * 1024,
  bufferCount: 256,
  shared: true,
  maxWorkers: producers + 1,
});
const serverPool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 64, shared: true });
const codec = lengthPrefix(4);

// -- The server: frame, check, forward some to the auditor --

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const auditor = new Worker(new URL("./_bus_auditor.ts", import.meta.url), { type: "module" });
const audit = new MessageChannel();
const audited = reportOf<AuditorReport>(auditor, "auditor");
auditor.postMessage(serverPool.handle, [audit.port2]);

const next = new Array<number>(producers).fill(0);
let received = 0;
let receivedBytes = 0;
let failure: string | undefined;

async function serve(): Promise<void> {
  const conn = await listener.accept();
  const forward: Packet[] = [];
  const framed = conn.readable.pipeThrough(new BatchFramer(serverPool, { codec }));
  for await (const batch of framed) {
    for (const packet of batch) {
      const result = verify(packet.bytes);
      if (typeof result === "string") failure ??= result;
      else if (result.producer >= producers || result.seq !== next[result.producer]) {
        failure ??= `producer ${result.producer}: message ${result.seq} arrived, expected ${
          next[result.producer]
        }`;
      } else next[result.producer]!++;
      received++;
      receivedBytes += packet.length;
      if (received % AUDIT_EVERY === 0) forward.push(packet);
      else packet.release();
    }
    if (forward.length !== 0) {
      audit.port1.postMessage(serverPool.sendBatch(forward));
      forward.length = 0;
    }
  }
  audit.port1.postMessage(null);
  listener.close();
}

// -- The producers: workers writing into one flusher piped to the socket --

const served = serve();
const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
const flusher = new WriteFlusher(pool);
const piped = flusher.pipeTo(conn);
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
      pool: pool.handle,
      flusher: flusher.handle,
      messages: share,
      size,
      deadline,
    } satisfies ProducerJob,
  );
}

// -- Progress on a terminal, then a summary --

const tty = Deno.stdout.isTerminal();
const encoder = new TextEncoder();
let mostInUse = 0;
// --memory: heap and RSS after warm-up (a quarter of the messages) and at
// most afterwards, to show that memory stays flat however long it runs.
const memory = { warmHeap: 0, warmRss: 0, maxHeap: 0, maxRss: 0, samples: 0 };
const progress = setInterval(() => {
  const inUse = pool.stats().inUse + serverPool.stats().inUse;
  mostInUse = Math.max(mostInUse, inUse);
  if (values.memory && received >= messages / 4) {
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
  const line =
    `${fmt(received / elapsed)} msg/s  ${(receivedBytes / elapsed / 1e6).toFixed(1)} MB/s  ` +
    `${fmt(received)} received  buffers in use ${inUse}/${
      pool.bufferCount + serverPool.bufferCount
    }`;
  Deno.stdout.writeSync(encoder.encode(`\r${line.padEnd(90)}`));
}, 250);

let sent = 0;
let waits = 0;
try {
  for (const report of await Promise.all(reports)) {
    if ("error" in report) failure ??= report.error;
    else {
      sent += report.sent;
      waits += report.waits;
    }
  }
} finally {
  for (const worker of workers) worker.terminate();
}
flusher.close();
await piped;
conn.close();
await served;
const auditReport = await audited;
auditor.terminate();
clearInterval(progress);
if (tty) Deno.stdout.writeSync(encoder.encode("\r".padEnd(92) + "\r"));

const elapsed = (performance.now() - started) / 1000;
if ("error" in auditReport) failure ??= `auditor: ${auditReport.error}`;
const expectedAudits = Math.floor(received / AUDIT_EVERY);
const auditCount = "audited" in auditReport ? auditReport.audited : 0;
if (failure === undefined && received !== sent) failure = `${sent} sent but ${received} received`;
if (failure === undefined && auditCount !== expectedAudits) {
  failure = `${expectedAudits} forwarded but ${auditCount} audited`;
}
const inUse = pool.stats().inUse + serverPool.stats().inUse;
if (failure === undefined && inUse !== 0) failure = `${inUse} buffers still in use at the end`;

console.table({
  "producer workers": producers,
  "messages sent": sent,
  "messages received, once each, in order": received,
  "forwarded to the auditor and checked": auditCount,
  "message size (bytes)": size,
  "seconds": Number(elapsed.toFixed(2)),
  "messages/s": Math.round(received / elapsed),
  "MB/s": Number((receivedBytes / elapsed / 1e6).toFixed(1)),
  "times a producer waited for a buffer": waits,
  "pools (producers, server)": `${pool.bufferCount} + ${serverPool.bufferCount} × 64 KiB`,
  "most buffers in use at once (sampled)": mostInUse,
  "buffers in use at the end": inUse,
  ...(values.memory
    ? {
      "heap after warm-up / most after (MB)": `${mb(memory.warmHeap)} / ${mb(memory.maxHeap)}`,
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
  "OK: every message arrived once, in order, intact; forwarded packets checked in another worker; every buffer is back in the pool",
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

// Packets handed between workers without a copy: the main thread writes
// numbered records into a shared pool, a "transform" worker receives them,
// rewrites each in place and forwards them to a "check" worker, which
// verifies and releases them. Only SendBatch values (one Int32Array per
// thousand packets) cross postMessage; the bytes never move.
//
//   deno run --allow-read examples/workers.ts [--records N]

import { parseArgs } from "node:util";
import { BufferPool, type Packet } from "../mod.ts";
import type { StageReport, StageSetup } from "./_stage_worker.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { records: { type: "string", default: "200000" } },
});
const records = Number(values.records);
if (!Number.isInteger(records) || records < 1) {
  console.error("Usage: examples/workers.ts [--records N >= 1]");
  Deno.exit(2);
}

const RECORD = 16;
const BATCH = 1000;
const pool = new BufferPool({ bufferSize: 16 * 1024, bufferCount: 64, shared: true });

function start(
  setup: StageSetup,
): { worker: Worker; port: MessagePort; done: Promise<StageReport> } {
  const worker = new Worker(new URL("./_stage_worker.ts", import.meta.url), { type: "module" });
  const channel = new MessageChannel();
  const done = new Promise<StageReport>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<StageReport>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`${setup.role} worker failed: ${event.message}`));
    };
  });
  worker.postMessage(setup, [channel.port2, setup.next]);
  return { worker, port: channel.port1, done };
}

// main → transform → check, each link a MessageChannel.
const link = new MessageChannel();
const transform = start({
  role: "transform",
  pool: pool.handle,
  next: link.port1,
  expected: records,
});
const check = start({ role: "check", pool: pool.handle, next: link.port2, expected: records });

const started = performance.now();
let seq = 0;
while (seq < records) {
  const batch: Packet[] = [];
  while (batch.length < BATCH && seq < records) {
    const buffer = await pool.acquire(); // waits while the pipeline holds every buffer
    const view = new DataView(buffer.bytes.buffer, buffer.bytes.byteOffset);
    let offset = 0;
    for (
      ;
      offset + RECORD <= pool.bufferSize && batch.length < BATCH && seq < records;
      offset += RECORD
    ) {
      view.setUint32(offset, seq);
      view.setUint32(offset + 4, seq * 3);
      batch.push(buffer.toPacket(offset, offset + RECORD));
      seq++;
    }
    buffer.release(); // the packets keep it alive
  }
  transform.port.postMessage(pool.sendBatch(batch));
}
transform.port.postMessage(null);

const [transformed, checked] = await Promise.all([transform.done, check.done]);
const seconds = (performance.now() - started) / 1000;
transform.worker.terminate();
check.worker.terminate();
const { inUse } = pool.stats();
console.log(
  `${records} records: main → transform (${transformed.records}) → check (${checked.records}), ` +
    `${
      Math.round(records / seconds).toLocaleString("en-US")
    } records/s, bytes copied: 0, pool in use: ${inUse}`,
);
if (
  checked.error !== undefined || transformed.error !== undefined || checked.records !== records ||
  inUse !== 0
) {
  console.error("FAILED:", transformed.error ?? checked.error ?? `in use ${inUse}`);
  Deno.exit(1);
}

// A producer packs numbered messages into pooled buffers and hands each one
// on as a Packet, a buffer's worth at a time; a consumer checks and
// releases them. One thread, no I/O. The pool is small on purpose (8
// buffers of 16 KiB): past the first few thousand messages the producer has
// to wait for the consumer to give buffers back, which is how a fixed pool
// turns into backpressure with flat memory.
//
//   deno run examples/pool_and_packets.ts [--messages N] [--size BYTES]
//
// (no permissions needed; defaults: 1000000 messages of 64 bytes, and a
// size from 8 to 16384)

import { parseArgs } from "node:util";
import { BufferPool, type Packet } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "1000000" },
    size: { type: "string", default: "64" },
  },
});
const messages = Number(values.messages);
const size = Number(values.size);
if (!Number.isInteger(messages) || messages < 1 || !Number.isInteger(size) || size < 8) {
  console.error(
    "Usage: deno run examples/pool_and_packets.ts [--messages N >= 1] [--size 8..16384]",
  );
  Deno.exit(2);
}

const pool = new BufferPool({ bufferSize: 16 * 1024, bufferCount: 8, batchSize: 2 });
if (size > pool.bufferSize) {
  console.error(`--size must be at most the pool's buffer size, ${pool.bufferSize}`);
  Deno.exit(2);
}

// Producer → consumer hand-off: one array of packets per filled buffer.
const queue: Packet[][] = [];
let wake: (() => void) | undefined;
let producerDone = false;

async function produce(): Promise<number> {
  let waits = 0;
  let seq = 0;
  while (seq < messages) {
    let buffer = pool.tryAcquire();
    if (buffer === null) {
      waits++;
      buffer = await pool.acquire();
    }
    const bytes = buffer.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const batch: Packet[] = [];
    let offset = 0;
    while (seq < messages && offset + size <= bytes.length) {
      view.setUint32(offset, seq);
      view.setUint32(offset + 4, checksum(seq, size));
      batch.push(buffer.toPacket(offset, offset + size));
      offset += size;
      seq++;
    }
    buffer.release(); // the packets keep it until the consumer is done
    queue.push(batch);
    wake?.();
  }
  producerDone = true;
  wake?.();
  return waits;
}

async function consume(): Promise<number> {
  let expected = 0;
  while (true) {
    const batch = queue.shift();
    if (batch === undefined) {
      if (producerDone) return expected;
      await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
      continue;
    }
    for (const packet of batch) {
      const bytes = packet.bytes;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const seq = view.getUint32(0);
      if (seq !== expected || view.getUint32(4) !== checksum(seq, packet.length)) {
        throw new Error(`Message ${expected} arrived as ${seq} or was corrupted`);
      }
      expected++;
      packet.release();
    }
  }
}

function checksum(seq: number, length: number): number {
  return (Math.imul(seq ^ 0x9e3779b9, 0x85ebca6b) ^ length) >>> 0;
}

const start = performance.now();
const [waits, received] = await Promise.all([produce(), consume()]);
const seconds = (performance.now() - start) / 1000;
const stats = pool.stats();

const summary: [label: string, value: string | number][] = [
  ["messages sent", messages],
  ["messages received in order", received],
  ["message size (bytes)", size],
  ["messages/s", Math.round(messages / seconds)],
  ["producer waits for a free buffer", waits],
  ["pool buffers", `${stats.bufferCount} × ${stats.bufferSize} B`],
  ["buffers in use at the end", stats.inUse],
];
const width = Math.max(...summary.map(([label]) => label.length));
for (const [label, value] of summary) console.log(`${label.padEnd(width)}  ${value}`);

if (received !== messages || stats.inUse !== 0) {
  console.error("FAILED: messages were lost or buffers were not returned");
  Deno.exit(1);
}
console.log("OK: every message arrived once, in order, and every buffer is back in the pool");

// A real serializer writing straight into pool memory: each document is
// sized with BSON.calculateObjectSize, a reservation of exactly that size is
// taken, and BSON.serializeWithBufferAndIndex fills it in place. BSON
// documents start with their own length, so the reader walks the flushed
// regions document by document with no extra framing.
//
//   deno run examples/bson_writer.ts [--documents N]

import { parseArgs } from "node:util";
import { BSON } from "npm:bson@6.10.4";
import { BufferPool, WriteFlusher, Writer } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { documents: { type: "string", default: "100000" } },
});
const documents = Number(values.documents);
if (!Number.isInteger(documents) || documents < 1) {
  console.error("Usage: examples/bson_writer.ts [--documents N >= 1]");
  Deno.exit(2);
}

const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 16 });
const flusher = new WriteFlusher(pool);
const writer = new Writer(pool, flusher);

function documentFor(seq: number) {
  return { seq, symbol: seq % 2 === 0 ? "EURUSD" : "GBPJPY", price: 1 + seq / 1e6, qty: seq % 100 };
}

async function produce(): Promise<void> {
  for (let seq = 0; seq < documents; seq++) {
    const doc = documentFor(seq);
    const reservation = await writer.reserve(BSON.calculateObjectSize(doc));
    BSON.serializeWithBufferAndIndex(doc, reservation.bytes); // no intermediate array
    reservation.commit();
  }
  writer.close();
  flusher.close();
}

async function consume(): Promise<number> {
  let next = 0;
  for await (const batch of flusher.readable) {
    for (const region of batch) {
      const bytes = region.bytes;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let at = 0; at < bytes.length;) {
        const size = view.getInt32(at, true);
        const doc = BSON.deserialize(bytes.subarray(at, at + size));
        const expected = documentFor(next);
        if (doc.seq !== next || doc.symbol !== expected.symbol || doc.price !== expected.price) {
          throw new Error(`document ${next} arrived as ${JSON.stringify(doc)}`);
        }
        next++;
        at += size;
      }
      region.release();
    }
  }
  return next;
}

const started = performance.now();
const [, received] = await Promise.all([produce(), consume()]);
const seconds = (performance.now() - started) / 1000;
const { inUse } = pool.stats();
console.log(
  `${received} BSON documents serialized into pool memory and read back in order: ` +
    `${Math.round(received / seconds).toLocaleString("en-US")} documents/s, pool in use: ${inUse}`,
);
if (received !== documents || inUse !== 0) {
  console.error(`FAILED: received ${received} of ${documents}, ${inUse} buffers still in use`);
  Deno.exit(1);
}

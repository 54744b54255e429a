// The shared pool against the single-worker pool, and SendPacket hand-off
// between workers against what users do today: postMessage per message.
// Run: deno task bench
import { BufferPool } from "../mod.ts";

const OPS = 1000;
let sink = 0;

// -- acquire-release: the shared pool's cache hit must cost what the local one does --

const local = new BufferPool({ bufferSize: 1033, bufferCount: 1024 });
const shared = new BufferPool({ bufferSize: 1033, bufferCount: 1024, shared: true });

function hits(pool: BufferPool): void {
  for (let i = 0; i < OPS; i++) {
    const buffer = pool.tryAcquire()!;
    buffer.bytes[0] = i;
    sink += buffer.bytes[0]!;
    buffer.release();
  }
}

// The same code serves both kinds of pool: warm it up on both first, so that
// neither case is timed while the JIT is still learning about the other.
for (let round = 0; round < 200; round++) {
  hits(local);
  hits(shared);
}

Deno.bench({
  group: "acquire-release",
  name: "single-worker pool: tryAcquire+bytes+release",
  baseline: true,
  fn: () => hits(local),
});

Deno.bench({
  group: "acquire-release",
  name: "shared pool: tryAcquire+bytes+release",
  fn: () => hits(shared),
});

// -- cross-worker: 64-byte messages from this worker to another --

const MESSAGES = 10_000;
const SIZE = 64;
const BATCH = 1000;

const pool = new BufferPool({
  bufferSize: 8192,
  bufferCount: 1024,
  batchSize: 32,
  shared: true,
});
const worker = new Worker(new URL("./workers/sink_worker.ts", import.meta.url), {
  type: "module",
});
const replies: ((value: unknown) => void)[] = [];
worker.onmessage = (event) => replies.shift()!(event.data);
function reply(): Promise<unknown> {
  return new Promise((resolve) => replies.push(resolve));
}
const attached = reply();
worker.postMessage({ kind: "attach", handle: pool.handle });
await attached;

Deno.bench({
  group: "cross-worker",
  name: `postMessage a copied Uint8Array(${SIZE}) per message (${MESSAGES} msgs)`,
  baseline: true,
  async fn() {
    const done = reply();
    const message = new Uint8Array(SIZE);
    for (let i = 0; i < MESSAGES; i++) {
      message[0] = i;
      worker.postMessage({ kind: "bytes", bytes: message, last: i === MESSAGES - 1 });
    }
    sink += (await done) as number;
  },
});

Deno.bench({
  group: "cross-worker",
  name: `SendPacket objects, ${BATCH} per postMessage (${MESSAGES} msgs)`,
  async fn() {
    const done = reply();
    let batch = [];
    let buffer = null;
    let offset = 0;
    for (let i = 0; i < MESSAGES; i++) {
      if (buffer === null || offset + SIZE > buffer.bytes.length) {
        buffer?.release();
        buffer = pool.tryAcquire() ?? await pool.acquire();
        offset = 0;
      }
      buffer.bytes[offset] = i;
      batch.push(buffer.toPacket(offset, offset + SIZE).send());
      offset += SIZE;
      if (batch.length === BATCH || i === MESSAGES - 1) {
        worker.postMessage({ kind: "packets", packets: batch, last: i === MESSAGES - 1 });
        batch = [];
      }
    }
    buffer?.release();
    sink += (await done) as number;
  },
});

Deno.bench({
  group: "cross-worker",
  name: `sendBatch of ${BATCH} packets per postMessage (${MESSAGES} msgs)`,
  async fn() {
    const done = reply();
    let batch = [];
    let buffer = null;
    let offset = 0;
    for (let i = 0; i < MESSAGES; i++) {
      if (buffer === null || offset + SIZE > buffer.bytes.length) {
        buffer?.release();
        buffer = pool.tryAcquire() ?? await pool.acquire();
        offset = 0;
      }
      buffer.bytes[offset] = i;
      batch.push(buffer.toPacket(offset, offset + SIZE));
      offset += SIZE;
      if (batch.length === BATCH || i === MESSAGES - 1) {
        worker.postMessage({
          kind: "batch",
          batch: pool.sendBatch(batch),
          last: i === MESSAGES - 1,
        });
        batch = [];
      }
    }
    buffer?.release();
    sink += (await done) as number;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) throw new Error("unreachable");
});

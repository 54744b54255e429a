// Workers packing messages into datagram-sized buffers: every worker writes
// small messages of mixed sizes (10 to 200 bytes) into one SharedWriter
// whose buffers hold one MTU (1,500 bytes unless told), and each buffer goes
// out as one TCP write once full. The far side checks every message. With a
// Writer per worker, each worker would fill a buffer of its own, and a flush
// per tick would send part-filled ones; here they fill the same buffer.
//
//   deno run --allow-net=127.0.0.1 --allow-read examples/shared_writer.ts [--workers N] [--messages N] [--mtu BYTES]

import { parseArgs } from "node:util";
import { BufferPool, lengthPrefix, SharedWriter, visitFrames, WriteFlusher } from "../mod.ts";
import { messageSize, type PackJob, type PackReport } from "./_shared_writer_worker.ts";

const MAX_WORKERS = 64;
const MIN_MTU = 256; // the largest message, 200 bytes and its 2-byte prefix, must fit
const MAX_MTU = 65535;
const USAGE = `Usage: examples/shared_writer.ts [flags]

  --workers N     producer workers, 1 to ${MAX_WORKERS} (default 3)
  --messages N    messages in all, at least 1 (default 200000)
  --mtu BYTES     bytes per buffer, and so per TCP write at most: ${MIN_MTU} to ${MAX_MTU} (default 1500)
  -h, --help      print this and exit`;

function badUsage(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  Deno.exit(2);
}

function flags(): Record<string, string | boolean> {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        workers: { type: "string", default: "3" },
        messages: { type: "string", default: "200000" },
        mtu: { type: "string", default: "1500" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    return badUsage(error instanceof Error ? error.message : String(error));
  }
}

/** The value of `--name` as an integer from `min` to `max`, or the usage and exit 2. */
function integer(values: Record<string, string | boolean>, name: string, min: number, max: number) {
  const text = String(values[name]);
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `of at least ${min}` : `from ${min} to ${max}`;
    badUsage(`--${name} must be an integer ${range}, received ${text}`);
  }
  return value;
}

const values = flags();
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const workers = integer(values, "workers", 1, MAX_WORKERS);
const messages = integer(values, "messages", 1, Infinity);
const mtu = integer(values, "mtu", MIN_MTU, MAX_MTU);

const codec = lengthPrefix(2);
const pool = new BufferPool({
  bufferSize: mtu,
  bufferCount: 256,
  shared: true,
  maxWorkers: workers + 1,
});
const flusher = new WriteFlusher(pool);
// "manual": a buffer goes to the flusher once full (and the last one when
// the writer closes), never part-filled by a flush per tick.
const writer = new SharedWriter(pool, flusher, { codec, flush: "manual" });

// The far side: checks each message's worker, order, size and filler.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const received = (async () => {
  const conn = await listener.accept();
  listener.close();
  const next = new Array<number>(workers).fill(0);
  const readPool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 8 });
  await visitFrames(conn, readPool, { codec }, (bytes, start, end) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset + start, end - start);
    const w = view.getUint16(0);
    const seq = view.getUint32(2);
    if (w >= workers || seq !== next[w]) {
      throw new Error(`message ${seq} of worker ${w} arrived, expected ${next[w]}`);
    }
    if (end - start !== messageSize(w, seq) || bytes[end - 1] !== (seq & 0xff)) {
      throw new Error(`message ${seq} of worker ${w} arrived damaged`);
    }
    next[w]!++;
  });
  return next;
})();

// One TCP write per region the flusher hands out: count them.
const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
let writes = 0;
let sent = 0;
const piped = flusher.pipeTo({
  write(chunk: Uint8Array): Promise<number> {
    writes++;
    sent += chunk.length;
    return conn.write(chunk);
  },
});

/** Starts worker `w` and resolves once it attached; `done` settles once it wrote `count`. */
async function start(w: number, count: number): Promise<{ go(): void; done: Promise<void> }> {
  const worker = new Worker(new URL("./_shared_writer_worker.ts", import.meta.url), {
    type: "module",
  });
  const ready = Promise.withResolvers<void>();
  const done = Promise.withResolvers<void>();
  const fail = (error: Error) => {
    worker.terminate();
    ready.reject(error);
    done.reject(error);
  };
  worker.onmessage = (event: MessageEvent<PackReport>) => {
    const report = event.data;
    if ("error" in report) fail(new Error(`worker ${w}: ${report.error}`));
    else if ("ready" in report) ready.resolve();
    else {
      worker.terminate();
      done.resolve();
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    fail(new Error(`worker ${w} failed: ${event.message}`));
  };
  worker.postMessage({ pool: pool.handle, writer: writer.handle, w, count } satisfies PackJob);
  await ready.promise;
  return { go: () => worker.postMessage("go"), done: done.promise };
}

// The messages split as evenly as they go.
const producers = await Promise.all(
  Array.from({ length: workers }, (_, w) => {
    const count = Math.floor(messages / workers) + (w < messages % workers ? 1 : 0);
    return start(w, count);
  }),
);
const started = performance.now();
for (const producer of producers) producer.go();
await Promise.all(producers.map((producer) => producer.done));
// The last handle to close seals the last buffer, which goes out once whole.
writer.close();
flusher.close();
await piped;
conn.close();
const counts = await received;
const seconds = (performance.now() - started) / 1000;

const total = counts.reduce((sum, count) => sum + count, 0);
if (total !== messages) throw new Error(`${total} of ${messages} messages arrived`);
console.log(
  `${workers} workers wrote ${total} messages of 10 to 200 bytes into one SharedWriter ` +
    `in ${seconds.toFixed(2)} s (${(total / seconds / 1e6).toFixed(2)}M msg/s)`,
);
console.log(
  `${writes} TCP writes of ${(sent / writes).toFixed(0)} bytes on average: ` +
    `buffers packed ${(100 * sent / (writes * mtu)).toFixed(1)}% full (${mtu}-byte MTU)`,
);
console.log(
  `every message arrived once, intact, in order per worker; pool in use: ${pool.stats().inUse}`,
);

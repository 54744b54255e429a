/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// A producer worker of bench/e2e.ts. It connects to the main thread's
// listener, says it is ready, and on "go" sends until the deadline (or its
// message count), then closes its connection and reports. One of:
//
// - "plain": hand-written, as a competent user would without the library:
//   messages are filled straight into one preallocated 64 KiB batch (4-byte
//   big-endian length + message), written with conn.write when the next one
//   would not fit, and the batch is reused.
// - "library": a Writer with a length-prefix codec claims room in pool
//   memory for a run of messages (as many as the buffer holds, prefixes
//   written), fills them in place and commits them at once; this worker's
//   own WriteFlusher writes the flushed regions to its connection.
// - "ceiling": the same chunk (of `size` bytes) written over and over: what
//   loopback TCP carries at most.
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  WriteFlusher,
  type WriteFlusherHandle,
  Writer,
} from "../mod.ts";
import { fill, fillRun } from "../examples/_bus_message.ts";
import process from "node:process";

export type ProducerMode = "plain" | "library" | "ceiling";

export interface ProducerJob {
  mode: ProducerMode;
  /** The main thread's port to connect to; 0 to write into `flusher` instead. */
  port: number;
  producer: number;
  size: number;
  /** Most messages to send (Infinity: until the deadline). */
  messages: number;
  /** The pool to attach to; without it, a library producer makes its own. */
  pool?: BufferPoolHandle;
  /** The main thread's flusher to write into, instead of a connection of its own. */
  flusher?: WriteFlusherHandle;
  /** Buffers of a producer's own pool. */
  bufferCount: number;
  /** Bytes per buffer of a producer's own pool, and the plain producer's batch. */
  bufferSize: number;
}

export interface Go {
  /** performance.timeOrigin-based time to stop at. */
  deadline: number;
}

export type ProducerReport =
  | { sent: number; bytes: number; waits: number; inUse: number; cpu: number }
  | { error: string };

/** CPU seconds this thread has used, user and system (the OS counts in 10 ms ticks). */
export function threadCpu(): number {
  const { user, system } = (process as unknown as { threadCpuUsage(): NodeJS.CpuUsage })
    .threadCpuUsage();
  return (user + system) / 1e6;
}

type Done = Exclude<ProducerReport, { error: string }>;

/** Messages between deadline checks: a clock read costs more than a small message. */
const CHECK_EVERY = 256;
/** The most messages a library producer claims at once (a run ends at its buffer's end anyway). */
const RUN = 4096;

let job: ProducerJob;
let conn: Deno.TcpConn | undefined;

self.onmessage = async ({ data }: MessageEvent<ProducerJob | Go>) => {
  if ("mode" in data) {
    job = data;
    if (job.port !== 0) {
      conn = await Deno.connect({ hostname: "127.0.0.1", port: job.port });
      conn.setNoDelay(true);
    }
    self.postMessage("ready");
    return;
  }
  const stopAt = data.deadline - performance.timeOrigin;
  const cpu = threadCpu();
  try {
    const report = job.mode === "plain"
      ? await plain(stopAt)
      : job.mode === "library"
      ? await library(stopAt)
      : await ceiling(stopAt);
    report.cpu = threadCpu() - cpu;
    self.postMessage(report satisfies ProducerReport);
  } catch (error) {
    self.postMessage({ error: String(error) } satisfies ProducerReport);
  } finally {
    conn?.close();
  }
};

async function plain(stopAt: number): Promise<Done> {
  const { size, producer, messages } = job;
  const batch = new Uint8Array(job.bufferSize);
  const view = new DataView(batch.buffer);
  const frame = 4 + size;
  let end = 0;
  let seq = 0;
  let bytes = 0;
  for (; seq < messages; seq++) {
    if (seq % CHECK_EVERY === 0 && performance.now() >= stopAt) break;
    if (end + frame > batch.length) {
      await writeAll(batch, end);
      bytes += end;
      end = 0;
    }
    view.setUint32(end, size);
    fill(view, end + 4, size, producer, seq);
    end += frame;
  }
  await writeAll(batch, end);
  bytes += end;
  return { sent: seq, bytes, waits: 0, inUse: 0, cpu: 0 };
}

async function writeAll(bytes: Uint8Array, end: number): Promise<void> {
  for (let start = 0; start < end;) {
    start += await conn!.write(
      start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end),
    );
  }
}

async function library(stopAt: number): Promise<Done> {
  const { size, producer, messages } = job;
  const pool = job.pool !== undefined
    ? BufferPool.attach(job.pool)
    : new BufferPool({ bufferSize: job.bufferSize, bufferCount: job.bufferCount });
  // A flusher of its own, writing to its own connection; or the main thread's.
  const flusher = job.flusher === undefined ? new WriteFlusher(pool) : null;
  const piped = flusher?.pipeTo(conn!);
  const writer = new Writer(pool, flusher ?? job.flusher!, { codec: lengthPrefix(4) });
  let seq = 0;
  let waits = 0;
  try {
    // A run per claim: as many messages as the buffer holds, one commit.
    // The clock is read as often as the hand-written producer reads it.
    let check = 0;
    while (seq < messages) {
      if (seq >= check) {
        if (performance.now() >= stopAt) break;
        check = seq + CHECK_EVERY;
      }
      const count = Math.min(messages - seq, RUN);
      let run = writer.tryClaim(size, count);
      if (run === null) {
        waits++;
        run = await writer.claim(size, { count });
      }
      seq += fillRun(run, producer, seq);
    }
  } finally {
    writer.close();
    flusher?.close();
  }
  await piped;
  // A shared pool is checked by the main thread once every worker is done.
  const inUse = job.pool === undefined ? pool.stats().inUse : 0;
  if (job.pool !== undefined) pool.detach();
  return { sent: seq, bytes: seq * (4 + size), waits, inUse, cpu: 0 };
}

async function ceiling(stopAt: number): Promise<Done> {
  const chunk = new Uint8Array(job.size).fill(7);
  let bytes = 0;
  while (performance.now() < stopAt) {
    for (let start = 0; start < chunk.length;) {
      start += await conn!.write(start === 0 ? chunk : chunk.subarray(start));
    }
    bytes += chunk.length;
  }
  return { sent: 0, bytes, waits: 0, inUse: 0, cpu: 0 };
}

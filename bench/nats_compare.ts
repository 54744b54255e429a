// The NATS benchmark (deno task bench:nats): the same workload through bab
// and through the npm `nats` client (2.29.3), against the same nats-server
// on 127.0.0.1, started here. Publishers and the subscriber each run in a
// worker. Each npm publisher has a connection of its own (a client's
// connection cannot be shared across workers); bab's publishers write
// through one connection made in the main thread, each with a Writer of
// its own on its flusher, which is how bab is meant to be used: many
// writers, one socket (bench/workers/nats_bab_worker.ts,
// bench/workers/nats_npm_worker.ts). Each subscriber has its own.
//
// - publish only: each publisher publishes its messages and flushes (bab:
//   the main connection's PING/PONG after the last one, so the server has
//   them all);
// - end to end: plus one subscriber, timed until it has every message.
//
// 32-byte and 1 KiB payloads, 1 and 2 publishers, npm and bab alternating,
// 3 rounds; the medians are printed with the ratio bab ÷ npm, and the
// server's CPU time per wall second during each case (near 1.0, its one
// busy core is the limit). `--soak` instead sends 10M 32-byte messages end
// to end through bab and prints the subscriber's heap after a GC every
// million: it stays flat. `--rounds=N` and `--messages=N` (of 32 B per run;
// default 1M) change the runs.
//
// A script, not a `deno bench` file (hence not *_bench.ts): each case starts
// its own workers and connections, and the figures are rates over whole runs.
import { BufferPool } from "../mod.ts";
import { NatsConnection } from "../nats.ts";
import { startNatsServer } from "../tests/nats/_nats_server.ts";
import { type NatsLoad, npmEndToEnd, npmPublishOnly, runSubject } from "./_nats_npm.ts";
import type { BabJob, BabReply, BabRequest } from "./workers/nats_bab_worker.ts";

interface Rate {
  msgsPerSecond: number;
  ms: number;
  /** The server's CPU seconds per wall second over the run. */
  serverCpu: number;
}

/** A bab worker and the reply it owes. */
class BabWorker {
  readonly #worker = new Worker(new URL("./workers/nats_bab_worker.ts", import.meta.url), {
    type: "module",
  });
  #waiting:
    | { kind: BabReply["kind"]; resolve(reply: BabReply): void; reject(e: Error): void }
    | null = null;

  constructor() {
    this.#worker.onmessage = (event: MessageEvent<BabReply>) => {
      const reply = event.data;
      const waiting = this.#waiting;
      if (reply.kind === "error") {
        this.#waiting = null;
        waiting?.reject(new Error(`bab worker: ${reply.message}`));
      } else if (waiting?.kind === reply.kind) {
        this.#waiting = null;
        waiting.resolve(reply);
      }
    };
  }

  ask(request: BabRequest, until: BabReply["kind"]): Promise<BabReply> {
    const { promise, resolve, reject } = Promise.withResolvers<BabReply>();
    this.#waiting = { kind: until, resolve, reject };
    this.#worker.postMessage(request);
    return promise;
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  // utime and stime, fields 14 and 15 of stat, in clock ticks (100 per second here).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * bab's run: publishers through one connection of the main thread
 * (`shared`), or each through a connection of its own.
 */
async function bab(
  load: NatsLoad,
  subscribe: boolean,
  shared: boolean,
  sampleEvery = 0,
): Promise<Rate & { heap: number[] }> {
  const subject = runSubject();
  const total = load.messages * load.publishers;
  // 60 KiB buffers: on loopback, writes of exactly 64 KiB are slow (a full
  // segment and a runt each).
  const pool = new BufferPool({ bufferSize: 60 * 1024, bufferCount: 128, shared: true });
  const conn = await NatsConnection.connect({
    pool,
    port: load.port,
    name: "bab-bench-publishers",
  });
  const job = (role: BabJob["role"]): BabJob => ({
    role,
    port: load.port,
    shared: shared ? { pool: pool.handle, nats: conn.publisherHandle } : null,
    subject,
    size: load.size,
    messages: role === "subscriber" ? total : load.messages,
    sampleEvery,
  });
  const subscriber = subscribe ? new BabWorker() : null;
  const publishers = Array.from({ length: load.publishers }, () => new BabWorker());
  const all = subscriber === null ? publishers : [subscriber, ...publishers];
  try {
    await Promise.all(
      all.map((w) =>
        w.ask({ kind: "start", job: job(w === subscriber ? "subscriber" : "publisher") }, "ready")
      ),
    );
    const start = performance.now();
    const finished = await Promise.all(
      all.map((w) =>
        w.ask({ kind: "go" }, "done").then(async (r) => {
          // A publisher is done once the server has its messages.
          if (w !== subscriber && shared) await conn.flush();
          return [performance.now() - start, r] as const;
        })
      ),
    );
    const ms = subscriber !== null ? finished[0]![0] : Math.max(...finished.map(([t]) => t));
    const heap = subscriber !== null ? (finished[0]![1] as BabReply & { kind: "done" }).heap : [];
    for (const w of all) {
      const closed = await w.ask({ kind: "close" }, "closed") as BabReply & { kind: "closed" };
      if (closed.inUse !== 0) {
        throw new Error(`a bab worker ended with ${closed.inUse} buffers out`);
      }
    }
    await conn.drain();
    if (pool.stats().inUse !== 0) throw new Error(`the publishers' pool has buffers out`);
    return { msgsPerSecond: total / (ms / 1000), ms, serverCpu: 0, heap };
  } finally {
    for (const w of all) w.terminate();
    if (!conn.ended) await conn.close();
  }
}

/** Runs `run` and adds the server's CPU per wall second over it. */
async function withCpu(
  pid: number,
  run: () => Promise<{ msgsPerSecond: number; ms: number }>,
): Promise<Rate> {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const rate = await run();
  const wall = (performance.now() - t0) / 1000;
  return {
    msgsPerSecond: rate.msgsPerSecond,
    ms: rate.ms,
    serverCpu: (cpuSeconds(pid) - cpu0) / wall,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const M = (rate: number) => `${(rate / 1e6).toFixed(2)}M`;

await using server = await startNatsServer();

if (Deno.args.includes("--soak")) {
  const messages = 10_000_000;
  const load: NatsLoad = {
    hostname: server.hostname,
    port: server.port,
    publishers: 1,
    size: 32,
    messages,
  };
  const rate = await bab(load, true, true, 1_000_000);
  console.log(
    `bab, 1 publisher, ${messages} messages of 32 B end to end: ${M(rate.msgsPerSecond)} msg/s`,
  );
  console.log(
    `subscriber heap after GC, every 1M messages (MB): ${
      rate.heap.map((bytes) => (bytes / 1e6).toFixed(2)).join(", ")
    }`,
  );
  Deno.exit(0);
}

const rounds = Number(Deno.args.find((a) => a.startsWith("--rounds="))?.slice(9) ?? 3);
/** Messages of 32 B per run (`--messages=N`); 1 KiB runs send a tenth as many. */
const small = Number(Deno.args.find((a) => a.startsWith("--messages="))?.slice(11) ?? 1_000_000);
if (!Number.isInteger(small) || small < 10) {
  throw new RangeError("--messages takes an integer from 10 up");
}
interface Case {
  name: string;
  size: number;
  publishers: 1 | 2;
  subscribe: boolean;
  messages: number;
}
const cases: Case[] = [];
for (const subscribe of [false, true]) {
  for (const size of [32, 1024]) {
    for (const publishers of [1, 2] as const) {
      cases.push({
        name: `${subscribe ? "end to end" : "publish only"}, ${size} B, ${publishers} publisher${
          publishers === 2 ? "s" : ""
        }`,
        size,
        publishers,
        subscribe,
        messages: size === 32 ? small : Math.max(1, Math.floor(small / 10)),
      });
    }
  }
}

console.log(`nats-server ${server.pid} on ${server.hostname}:${server.port}; ${rounds} rounds\n`);
console.log(
  "| case | npm nats | bab, a connection each | bab, one connection | bab ÷ npm (each / one) | server CPU (npm / each / one) |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const c of cases) {
  const load: NatsLoad = {
    hostname: server.hostname,
    port: server.port,
    publishers: c.publishers,
    size: c.size,
    messages: c.messages,
  };
  const npmRates: Rate[] = [];
  const eachRates: Rate[] = [];
  const oneRates: Rate[] = [];
  const eachRatios: number[] = [];
  const oneRatios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // The npm client's best of two: it must let the event loop run for its
    // socket writes to go out while it publishes, and the best interval
    // differs by case (measured: every 10,000 messages at best publishing
    // 32 B, every 1,000 at best end to end with 2 publishers).
    const npmRuns: Rate[] = [];
    for (const yieldEvery of [1000, 10_000]) {
      const paced = { ...load, yieldEvery };
      npmRuns.push(
        await withCpu(server.pid, () => c.subscribe ? npmEndToEnd(paced) : npmPublishOnly(paced)),
      );
    }
    const npm = npmRuns[0]!.msgsPerSecond >= npmRuns[1]!.msgsPerSecond ? npmRuns[0]! : npmRuns[1]!;
    const each = await withCpu(server.pid, () => bab(load, c.subscribe, false));
    const one = await withCpu(server.pid, () => bab(load, c.subscribe, true));
    npmRates.push(npm);
    eachRates.push(each);
    oneRates.push(one);
    eachRatios.push(each.msgsPerSecond / npm.msgsPerSecond);
    oneRatios.push(one.msgsPerSecond / npm.msgsPerSecond);
  }
  const rate = (rates: Rate[]) => M(median(rates.map((r) => r.msgsPerSecond)));
  const cpu = (rates: Rate[]) => median(rates.map((r) => r.serverCpu)).toFixed(2);
  console.log(
    `| ${c.name} | ${rate(npmRates)} | ${rate(eachRates)} | ${rate(oneRates)} | ${
      median(eachRatios).toFixed(2)
    }× / ${median(oneRatios).toFixed(2)}× | ${cpu(npmRates)} / ${cpu(eachRates)} / ${
      cpu(oneRates)
    } |`,
  );
}

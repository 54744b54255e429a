// Two bab processes that share nothing but a nats-server: this one runs
// producer workers that publish numbered messages through one NATS
// connection (each worker a Writer of its own on the connection's flusher,
// so a flush sends many messages per socket write); the other, a separate
// Deno process started here, subscribes and checks every message in place
// in its own pool's memory. It is how a bab bus grows past one machine: put
// the nats-server (or a cluster of them) between the machines.
//
//   deno run -A examples/nats_bridge.ts [--workers N] [--messages N] [--port PORT]
//
// Without --port it starts a nats-server on 127.0.0.1 (Debian's package, or
// NATS_SERVER) and stops it at the end.

import { parseArgs } from "node:util";
import { BufferPool } from "../mod.ts";
import { NatsConnection } from "../nats.ts";
import { MessageChecker } from "./_bus_message.ts";
import type { ProduceJob } from "./_nats_producer.ts";

const USAGE = `Usage: examples/nats_bridge.ts [flags]

  --workers N     producer workers, 1 to 16 (default 2)
  --messages N    messages in all, at least 1 (default 200000)
  --port PORT     use the nats-server on 127.0.0.1:PORT instead of starting one
  -h, --help      print this and exit`;

function badUsage(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  Deno.exit(2);
}

function flags(): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        workers: { type: "string", default: "2" },
        messages: { type: "string", default: "200000" },
        port: { type: "string" },
        role: { type: "string", default: "producers" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    return badUsage(error instanceof Error ? error.message : String(error));
  }
}

function integer(text: unknown, name: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    badUsage(`--${name} must be an integer from ${min} to ${max}, received ${text}`);
  }
  return value;
}

const values = flags();
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const workers = integer(values.workers, "workers", 1, 16);
const messages = integer(values.messages, "messages", 1, 1e9);

/** The other process: subscribes to every producer's subject and checks each message. */
async function consume(port: number): Promise<void> {
  const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 16 });
  const conn = await NatsConnection.connect({ pool, port, name: "bridge-consumer" });
  const checker = new MessageChecker(workers);
  const all = Promise.withResolvers<void>();
  let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  conn.subscribe("bus.producer.*", (message) => {
    // One view per staging buffer, not per message.
    if (view.buffer !== message.bytes.buffer) view = new DataView(message.bytes.buffer);
    const offset = message.bytes.byteOffset + message.payloadStart;
    checker.check(view, offset, message.payloadEnd - message.payloadStart);
    if (checker.received === messages) all.resolve();
  });
  await conn.flush();
  console.log("READY");
  await Promise.race([all.promise, conn.closed]);
  await conn.drain();
  const ok = checker.failure === undefined && checker.inOrder === messages;
  console.log(
    ok
      ? `the consumer process received every message once, intact, in order per producer (${checker.bytes} payload bytes); its pool in use: ${pool.stats().inUse}`
      : `FAILED: ${checker.failure ?? `${checker.inOrder} of ${messages} in order`}`,
  );
  Deno.exit(ok ? 0 : 1);
}

/** Starts a nats-server on a free port of 127.0.0.1; resolves once it accepts. */
async function startServer(): Promise<{ port: number; stop(): Promise<void> }> {
  const binary = Deno.env.get("NATS_SERVER") ??
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"].find((path) => {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    }) ?? "nats-server";
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const child = new Deno.Command(binary, {
    args: ["-a", "127.0.0.1", "-p", String(port)],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let tries = 0;; tries++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (error) {
      if (tries === 100) {
        child.kill();
        await child.status;
        throw new Error(`nats-server did not start on port ${port}: ${error}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** This process: the server (unless given), the consumer process, then the producer workers. */
async function produce(): Promise<void> {
  const server = values.port === undefined ? await startServer() : null;
  const port = server?.port ?? integer(values.port, "port", 1, 65535);
  try {
    const consumer = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--role",
        "consumer",
        "--port",
        String(port),
        "--workers",
        String(workers),
        "--messages",
        String(messages),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = consumer.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let said = "";
    while (!said.includes("READY\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`the consumer process ended before it subscribed: ${said}`);
      said += value;
    }

    const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 64, shared: true });
    const conn = await NatsConnection.connect({ pool, port, name: "bridge-producers" });
    const started = performance.now();
    const producers = Array.from({ length: workers }, (_, producer) => {
      const worker = new Worker(new URL("./_nats_producer.ts", import.meta.url), {
        type: "module",
      });
      const share = Math.floor(messages / workers) + (producer < messages % workers ? 1 : 0);
      const done = new Promise<void>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<{ ok: boolean; error?: string }>) =>
          event.data.ok ? resolve() : reject(new Error(event.data.error));
      });
      worker.postMessage(
        {
          pool: pool.handle,
          nats: conn.publisherHandle,
          producer,
          messages: share,
        } satisfies ProduceJob,
      );
      return { worker, done };
    });
    await Promise.all(producers.map((p) => p.done));
    await conn.flush(); // the server has every message
    const seconds = (performance.now() - started) / 1000;
    for (const p of producers) p.worker.terminate();
    await conn.drain();
    console.log(
      `${workers} producer workers published ${messages} messages (12 to 1,000 bytes) through one NATS connection in ${
        seconds.toFixed(2)
      } s, the workers' start included (${
        (messages / seconds / 1e6).toFixed(2)
      }M msg/s); this process's pool in use: ${pool.stats().inUse}`,
    );
    while (true) {
      const { value, done } = await lines.read();
      if (done) break;
      said += value;
    }
    const status = await consumer.status;
    console.log(said.replace("READY\n", "").trim());
    if (!status.success) Deno.exit(1);
  } finally {
    await server?.stop();
  }
}

if (values.role === "consumer") await consume(integer(values.port, "port", 1, 65535));
else await produce();

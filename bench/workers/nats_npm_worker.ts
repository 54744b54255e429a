// One npm `nats` client in a worker of its own, for the NATS benchmark's
// baseline (bench/_nats_npm.ts): a publisher that publishes and flushes, or
// a subscriber that counts. Each has its own connection, as separate
// processes of an application would. The protocol with the main thread is in
// bench/_nats_npm.ts; the worker never sends anything but replies to it and
// one "error" if its connection fails.
import { connect, type NatsConnection } from "npm:nats@2.29.3";
import type { NpmJob, NpmReply, NpmRequest } from "../_nats_npm.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<NpmRequest>) => void) | null;
  postMessage(reply: NpmReply): void;
};

let nc: NatsConnection | null = null;
let job: NpmJob | null = null;
// Set before a close we asked for, so that closing is not reported as a failure.
let closing = false;
// The subscriber's count; a publisher's count as of its last yield or its end.
let count = 0;
let allReceived: (() => void) | null = null;

scope.onmessage = (event) => {
  const request = event.data;
  const run = request.kind === "start"
    ? start(request.job)
    : request.kind === "go"
    ? go()
    : close();
  run.catch((error: unknown) => scope.postMessage({ kind: "error", message: describe(error) }));
};

async function start(next: NpmJob): Promise<void> {
  job = next;
  // No reconnecting: a server that goes away fails the run at once instead
  // of leaving the client buffering for a server that may never come back.
  const conn = await connect({
    servers: `${next.hostname}:${next.port}`,
    reconnect: false,
    name: `bab-bench-${next.role}`,
  });
  nc = conn;
  conn.closed().then((error) => {
    if (closing) return;
    const why = error === undefined ? "the connection closed" : describe(error);
    scope.postMessage({
      kind: "error",
      message: `${why} after ${count} of ${next.messages} messages`,
    });
  });
  if (next.role === "subscriber") {
    const done = new Promise<void>((resolve) => allReceived = resolve);
    // A callback, not the async iterator: measured faster (see bench/_nats_npm.ts).
    conn.subscribe(next.subject, {
      callback: () => {
        if (++count === next.messages) allReceived!();
      },
    });
    // The server has the subscription once the flush returns: no message is
    // published before the subscriber can get it.
    await conn.flush();
    done.then(() => scope.postMessage({ kind: "done", count }));
  }
  scope.postMessage({ kind: "ready" });
}

async function go(): Promise<void> {
  if (job === null || nc === null) throw new Error("go before start");
  if (job.role === "subscriber") return; // it reports when it has every message
  const payload = new Uint8Array(job.size).fill(0x61);
  const every = job.yieldEvery;
  if (every === 0) {
    for (let i = 0; i < job.messages; i++) nc.publish(job.subject, payload);
    count = job.messages;
  } else {
    for (let i = 0; i < job.messages; i++) {
      nc.publish(job.subject, payload);
      // A task, not a microtask: the socket's writes only go out when the
      // event loop gets a turn; until then the client keeps every message.
      if (i % every === every - 1) {
        count = i + 1;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    count = job.messages;
  }
  await nc.flush();
  scope.postMessage({ kind: "done", count });
}

async function close(): Promise<void> {
  closing = true;
  if (nc !== null && !nc.isClosed()) await nc.close();
  scope.postMessage({ kind: "closed" });
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

// The NATS benchmark's baseline: the npm `nats` client (2.29.3) as a
// competent user writes it, against a given nats-server. Publishers, and
// the subscriber, each run in a worker with a connection of their own
// (bench/workers/nats_npm_worker.ts), so that the figures compare with bab
// publishing from workers. Every run starts once each worker is connected
// (and the subscriber subscribed), and is timed from the main thread: from
// the "go" it posts to the last "done" it gets.
//
// The subscriber uses a callback: measured here against the async iterator
// (`for await (const m of sub)`), end to end, alternating, medians of 3:
// 32 B from 1 publisher 388k msg/s against 312k, from 2 publishers 457k
// against 310k; 1 KiB from 1 publisher 67k against 65k.

/** One run's load: who publishes how much to which server. */
export interface NatsLoad {
  /** The server's address. */
  hostname: string;
  /** The server's port. */
  port: number;
  /** How many publishing workers, each with its own connection. */
  publishers: 1 | 2;
  /** Each message's payload, in bytes (32 or 1024 in the benchmark). */
  size: number;
  /** Messages each publisher sends. */
  messages: number;
  /**
   * 0 or absent: publish in one plain loop, as the client's docs do. N:
   * let the event loop run after every N messages (a zero timer), so that
   * the socket writes go out while the loop runs; without it the client
   * holds every message until the loop ends (200 MB for 200,000 of 1 KiB),
   * and at 1 KiB publishing measured about 3 times slower here.
   */
  yieldEvery?: number;
}

/** A run's outcome: messages (of all publishers) per second, and the time it took. */
export interface NatsRate {
  /** All publishers' messages divided by the time. */
  msgsPerSecond: number;
  /** Milliseconds from the start to the end of the run. */
  ms: number;
}

/** What one worker is to do. */
export interface NpmJob {
  role: "publisher" | "subscriber";
  hostname: string;
  port: number;
  subject: string;
  size: number;
  /** For a publisher, what it sends; for the subscriber, what it waits for. */
  messages: number;
  /** {@link NatsLoad.yieldEvery}, 0 for a plain loop. */
  yieldEvery: number;
}

/** Main thread to worker: connect (and subscribe), then go, then close. */
export type NpmRequest =
  | { kind: "start"; job: NpmJob }
  | { kind: "go" }
  | { kind: "close" };

/** Worker to main thread: one reply per request, or an error at any time. */
export type NpmReply =
  | { kind: "ready" }
  | { kind: "done"; count: number }
  | { kind: "closed" }
  | { kind: "error"; message: string };

/**
 * Publishers only: each publishes `messages` payloads of `size` bytes in a
 * loop, then awaits `flush()`, which returns once the server has had them all.
 *
 * @param load the server and the load
 * @returns the rate over all publishers, from the start to the last flush
 * @throws {Error} when a connection fails or the run does not end in time
 */
export function npmPublishOnly(load: NatsLoad): Promise<NatsRate> {
  return runLoad(load, false);
}

/**
 * Publishers as in {@link npmPublishOnly}, plus one subscriber in its own
 * worker that counts every message on the subject.
 *
 * @param load the server and the load
 * @returns the rate over all publishers, from the start until the subscriber has every message
 * @throws {Error} when a connection fails (a slow consumer cut off by the server, say) or the run does not end in time
 */
export function npmEndToEnd(load: NatsLoad): Promise<NatsRate> {
  return runLoad(load, true);
}

/** A worker and the replies it owes; an error reply fails whatever is awaited. */
class NpmWorker {
  readonly role: NpmJob["role"];
  readonly #worker: Worker;
  #waiting: { kind: NpmReply["kind"]; resolve(): void; reject(error: Error): void } | null = null;
  #failure: Error | null = null;

  constructor(role: NpmJob["role"]) {
    this.role = role;
    this.#worker = new Worker(new URL("./workers/nats_npm_worker.ts", import.meta.url), {
      type: "module",
      name: `npm nats ${role}`,
    });
    this.#worker.onmessage = (event: MessageEvent<NpmReply>) => {
      const reply = event.data;
      if (reply.kind === "error") this.#fail(new Error(`npm nats ${this.role}: ${reply.message}`));
      else if (this.#waiting?.kind === reply.kind) {
        const waiting = this.#waiting;
        this.#waiting = null;
        waiting.resolve();
      }
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(new Error(`npm nats ${this.role} worker crashed: ${event.message}`));
    };
  }

  /** Posts `request` and resolves on the reply of kind `until`. */
  ask(request: NpmRequest, until: NpmReply["kind"]): Promise<void> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const reply = new Promise<void>((resolve, reject) => {
      this.#waiting = { kind: until, resolve, reject };
    });
    this.#worker.postMessage(request);
    return reply;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(this.#failure);
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

/**
 * A subject of its own for each run, short as a real application's
 * ("ticks.eurusd"): the server's work per message grows with its length, and
 * at 32 B that work, not the client's, becomes the limit first. bab's runs use
 * the same form (bench/nats_compare.ts).
 */
export function runSubject(): string {
  return `b.${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
}

async function runLoad(load: NatsLoad, subscribe: boolean): Promise<NatsRate> {
  const { hostname, port, publishers, size, messages, yieldEvery = 0 } = load;
  if (!Number.isSafeInteger(messages) || messages < 1) {
    throw new RangeError(`Cannot send ${messages} messages: give a whole number, at least 1`);
  }
  if (!Number.isSafeInteger(yieldEvery) || yieldEvery < 0) {
    throw new RangeError(
      `Cannot yield every ${yieldEvery} messages: give a whole number, 0 for never`,
    );
  }
  const total = messages * publishers;
  const subject = runSubject();
  const job = { hostname, port, subject, size, yieldEvery };
  const workers: NpmWorker[] = [];
  // Generous: the slowest case measured here runs at over 100,000 msg/s.
  const timeoutMs = 30_000 + total / 10;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`npm nats run of ${total} messages did not end within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const run = async (): Promise<NatsRate> => {
      const subscriber = subscribe ? new NpmWorker("subscriber") : null;
      if (subscriber !== null) workers.push(subscriber);
      for (let i = 0; i < publishers; i++) workers.push(new NpmWorker("publisher"));
      await Promise.all(workers.map((worker) =>
        worker.ask(
          {
            kind: "start",
            job: { ...job, role: worker.role, messages: worker === subscriber ? total : messages },
          },
          "ready",
        )
      ));
      const start = performance.now();
      // Each worker's "done" time; the run ends with the subscriber's, or with
      // the last publisher's when there is none. All are awaited together, so
      // that any worker's failure fails the run.
      const finished = await Promise.all(
        workers.map((worker) =>
          worker.ask({ kind: "go" }, "done").then(() => performance.now() - start)
        ),
      );
      const ms = subscriber !== null ? finished[0]! : Math.max(...finished);
      await Promise.all(workers.map((worker) => worker.ask({ kind: "close" }, "closed")));
      return { msgsPerSecond: total / (ms / 1000), ms };
    };
    return await Promise.race([run(), timedOut]);
  } finally {
    clearTimeout(timer);
    for (const worker of workers) worker.terminate();
  }
}

// The request/response protocol spoken with tests/workers/pool_worker.ts, and
// the main-thread side of it. Every request gets exactly one reply; a worker
// never sends anything unasked, so a test only ever waits on replies.
import type {
  BufferPool,
  BufferPoolHandle,
  BufferPoolStats,
  SendBatch,
  SendPacket,
} from "../mod.ts";

/** An error as it crosses the worker boundary. */
export interface ErrorInfo {
  name: string;
  message: string;
}

/** What one packet carries across a MessagePort in the exchange. */
export interface WirePacket {
  sent: SendPacket;
  /** {@link checksum} of the packet's bytes, computed by the sender. */
  sum: number;
}

/** Each op's arguments and the result its reply carries. */
export interface Ops {
  /** `BufferPool.attach(handle)`. */
  attach: { args: { handle: BufferPoolHandle }; result: Record<never, never> };
  /** `pool.detach()`. */
  detach: { args: Record<never, never>; result: Record<never, never> };
  /** Nothing: the reply's `stats` is the point. Also proves earlier ops finished. */
  stats: { args: Record<never, never>; result: Record<never, never> };
  /** `tryAcquire()` n times, each must succeed; the buffers are held. */
  hold: { args: { n: number }; result: { indices: number[] } };
  /** Releases the `n` most recently held buffers (all by default), newest first. */
  release: { args: { n?: number }; result: { indices: number[] } };
  /** Acquires `n` buffers and releases them again, so that they sit in the cache. */
  warm: { args: { n: number }; result: Record<never, never> };
  /**
   * Calls `acquire()` (with its own AbortController and a 5 s timeout) and
   * replies at once, so the reply proves the call was made.
   */
  startAcquire: { args: { key: string }; result: Record<never, never> };
  /** Replies once that acquire settles; a fulfilled one leaves its buffer held. */
  settled: { args: { key: string }; result: Settled };
  /** Whether that acquire is still pending. */
  pending: { args: { key: string }; result: { pending: boolean } };
  /** Aborts that acquire with `new Error(reason)`. */
  abort: { args: { key: string; reason: string }; result: Record<never, never> };
  /**
   * Receives a packet, checks its checksum, flips every byte (x ^ 0xff) in
   * place and sends it back.
   */
  flip: { args: { packet: WirePacket }; result: { packet: WirePacket } };
  /** `flip` for a whole batch: checks each packet's sum, flips it, sends the batch back. */
  flipBatch: {
    args: { batch: SendBatch; sums: number[] };
    result: { batch: SendBatch; sums: number[] };
  };
  /** Keeps `port` as the line to worker `peer` for the exchange. */
  connect: { args: { peer: number; port: MessagePort }; result: Record<never, never> };
  /**
   * Sends `perPeer` checksummed packets to each peer and receives as many
   * from each; replies when all were sent, received, checked and released.
   */
  exchange: {
    args: { peers: number[]; perPeer: number; seed: number };
    result: { sent: number; received: number; waits: number };
  };
}

export type OpName = keyof Ops;

/** How an acquire ended; `seq` orders settlements within one worker. */
export type Settled =
  | { seq: number; index: number; error?: undefined }
  | { seq: number; index?: undefined; error: ErrorInfo };

export interface RequestMessage<K extends OpName = OpName> {
  id: number;
  op: K;
  args: Ops[K]["args"];
}

export type ReplyMessage =
  | { id: number; ok: true; result: unknown; stats: BufferPoolStats | null }
  | { id: number; ok: false; error: ErrorInfo };

/**
 * A reply's result plus the worker's `pool.stats()` taken just before
 * replying (null while it is not attached).
 */
export type Reply<K extends OpName> = Ops[K]["result"] & { stats: BufferPoolStats | null };

/** FNV-1a over the bytes: cheap, and any changed byte changes it. */
export function checksum(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  }
  return hash >>> 0;
}

/** A worker running tests/workers/pool_worker.ts, driven by request/response. */
export class PoolWorker {
  readonly name: string;
  readonly #worker: Worker;
  readonly #calls = new Map<number, { resolve(reply: unknown): void; reject(e: Error): void }>();
  #nextId = 1;
  #crash: Error | undefined = undefined;

  constructor(name: string) {
    this.name = name;
    this.#worker = new Worker(new URL("./workers/pool_worker.ts", import.meta.url), {
      type: "module",
      name,
    });
    this.#worker.onmessage = (event: MessageEvent<ReplyMessage>) => {
      const reply = event.data;
      const call = this.#calls.get(reply.id);
      if (call === undefined) return;
      this.#calls.delete(reply.id);
      if (reply.ok) {
        call.resolve({ ...(reply.result as object), stats: reply.stats });
      } else {
        const error = new Error(`${this.name}: ${reply.error.name}: ${reply.error.message}`);
        error.name = reply.error.name;
        call.reject(error);
      }
    };
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#crash = new Error(`${this.name} crashed: ${event.message}`);
      for (const call of this.#calls.values()) call.reject(this.#crash);
      this.#calls.clear();
    };
  }

  /** Sends one request; the promise settles with its reply. */
  call<K extends OpName>(
    op: K,
    args: Ops[K]["args"],
    transfer: Transferable[] = [],
  ): Promise<Reply<K>> {
    if (this.#crash !== undefined) return Promise.reject(this.#crash);
    const id = this.#nextId++;
    const message: RequestMessage<K> = { id, op, args };
    return new Promise<Reply<K>>((resolve, reject) => {
      this.#calls.set(id, { resolve: resolve as (reply: unknown) => void, reject });
      this.#worker.postMessage(message, transfer);
    });
  }

  /** Ends the worker; replies still owed are dropped (nobody awaits them by then). */
  terminate(): void {
    this.#worker.terminate();
    this.#calls.clear();
  }
}

/**
 * Starts `count` workers and attaches each to `pool`, one after the other so
 * that worker i takes worker slot i + 1 (slot 0 is the pool's creator);
 * runs `body`; terminates every worker whatever happens.
 */
export async function withWorkers(
  pool: BufferPool,
  count: number,
  body: (workers: PoolWorker[]) => Promise<void>,
): Promise<void> {
  const workers: PoolWorker[] = [];
  try {
    for (let i = 0; i < count; i++) workers.push(new PoolWorker(`worker ${i}`));
    for (const worker of workers) await worker.call("attach", { handle: pool.handle });
    await body(workers);
  } finally {
    for (const worker of workers) worker.terminate();
  }
}

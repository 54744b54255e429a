// A worker that attaches to a shared BufferPool and does what the main thread
// asks, one request at a time or several at once; the protocol is described
// in ../_worker_helpers.ts. Every wait here is bounded by a 5 s abort signal,
// so a lost wakeup fails the test instead of hanging it.
import { BufferPool, type Packet, type PooledBuffer } from "../../mod.ts";
import { prng } from "../_helpers.ts";
import {
  checksum,
  type ErrorInfo,
  type OpName,
  type Ops,
  type ReplyMessage,
  type RequestMessage,
  type Settled,
  type WirePacket,
} from "../_worker_helpers.ts";

const TIMEOUT_MS = 5_000;
/** Received packets the exchange keeps alive before releasing the oldest. */
const RECEIVE_WINDOW = 6;

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<RequestMessage>) => void) | null;
  postMessage(message: ReplyMessage): void;
};

let current: BufferPool | null = null;
let attached = false;
/** Buffers acquired and held, oldest first. */
const held: PooledBuffer[] = [];

interface PendingAcquire {
  controller: AbortController;
  settled: Settled | null;
  done: Promise<Settled>;
}
const acquires = new Map<string, PendingAcquire>();
let settleSeq = 0;

// The exchange's receiving side runs whenever a peer's batch arrives, which
// may be before this worker's own "exchange" request does.
const ports = new Map<number, MessagePort>();
const window: { packet: Packet; sum: number }[] = [];
let received = 0;
let exchangeFailure: Error | null = null;
let onArrival: (() => void) | null = null;

function pool(): BufferPool {
  if (current === null) throw new Error("not attached");
  return current;
}

function info(error: unknown): ErrorInfo {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "NonError", message: String(error) };
}

function verify(packet: Packet, sum: number, what: string): void {
  const actual = checksum(packet.bytes);
  if (actual !== sum) {
    throw new Error(`${what}: checksum ${actual} != ${sum} (length ${packet.length})`);
  }
}

function onBatch(event: MessageEvent<WirePacket[]>): void {
  try {
    for (const wire of event.data) {
      const packet = pool().receive(wire.sent);
      verify(packet, wire.sum, "on receipt");
      received++;
      window.push({ packet, sum: wire.sum });
      if (window.length > RECEIVE_WINDOW) {
        const oldest = window.shift()!;
        verify(oldest.packet, oldest.sum, "before release");
        oldest.packet.release();
      }
    }
  } catch (error) {
    exchangeFailure ??= error instanceof Error ? error : new Error(String(error));
  }
  onArrival?.();
}

async function exchange(
  { peers, perPeer, seed }: Ops["exchange"]["args"],
): Promise<Ops["exchange"]["result"]> {
  const p = pool();
  const random = prng(seed);
  const targets: number[] = [];
  for (let i = 0; i < perPeer; i++) targets.push(...peers);
  const batches = new Map<number, WirePacket[]>(peers.map((peer) => [peer, []]));
  const flush = (peer: number): void => {
    const batch = batches.get(peer)!;
    if (batch.length === 0) return;
    ports.get(peer)!.postMessage(batch);
    batches.set(peer, []);
  };
  let batchLimit = 1 + random(8);
  /** A clone of a packet already sent, kept to check its bytes stay put. */
  let kept: { packet: Packet; sum: number } | null = null;
  let sent = 0;
  let waits = 0;

  let t = 0;
  while (t < targets.length) {
    let buffer = p.tryAcquire();
    if (buffer === null) {
      // Whatever sits in unsent batches is what the others wait for.
      for (const peer of peers) flush(peer);
      waits++;
      buffer = await p.acquire({ signal: AbortSignal.timeout(TIMEOUT_MS) });
    }
    const length = 1 + random(p.bufferSize);
    const bytes = buffer.bytes;
    for (let i = 0; i < length; i++) bytes[i] = random(256);
    const out: Packet[] = [];
    const mode = random(3);
    if (mode === 0 && length >= 2 && t + 1 < targets.length) {
      // Two packets on one buffer, to two peers: the buffer is shared three ways.
      const cut = 1 + random(length - 1);
      out.push(buffer.toPacket(0, cut), buffer.toPacket(cut, length));
      buffer.release();
    } else {
      const packet = buffer.intoPacket(0, length);
      if (mode === 1) {
        if (kept !== null) {
          verify(kept.packet, kept.sum, "kept clone");
          kept.packet.release();
        }
        kept = { packet: packet.clone(), sum: checksum(packet.bytes) };
      }
      out.push(packet);
    }
    for (const packet of out) {
      const peer = targets[t++]!;
      const batch = batches.get(peer)!;
      batch.push({ sum: checksum(packet.bytes), sent: packet.send() });
      sent++;
      if (batch.length >= batchLimit) {
        flush(peer);
        batchLimit = 1 + random(8);
      }
    }
  }
  for (const peer of peers) flush(peer);
  if (kept !== null) {
    verify(kept.packet, kept.sum, "kept clone");
    kept.packet.release();
  }

  const expected = perPeer * peers.length;
  await new Promise<void>((resolve) => {
    onArrival = () => {
      if (exchangeFailure !== null || received >= expected) resolve();
    };
    onArrival();
  });
  onArrival = null;
  if (exchangeFailure !== null) throw exchangeFailure;
  if (received !== expected) throw new Error(`received ${received}, expected ${expected}`);
  for (const { packet, sum } of window.splice(0)) {
    verify(packet, sum, "at the end");
    packet.release();
  }
  return { sent, received, waits };
}

const handlers: { [K in OpName]: (args: Ops[K]["args"]) => Promise<Ops[K]["result"]> } = {
  // deno-lint-ignore require-await
  async attach({ handle }) {
    current = BufferPool.attach(handle);
    attached = true;
    return {};
  },
  // deno-lint-ignore require-await
  async detach() {
    pool().detach();
    attached = false;
    return {};
  },
  // deno-lint-ignore require-await
  async stats() {
    return {};
  },
  // deno-lint-ignore require-await
  async hold({ n }) {
    const indices: number[] = [];
    for (let i = 0; i < n; i++) {
      const buffer = pool().tryAcquire();
      if (buffer === null) throw new Error(`hold: pool empty after ${i} of ${n}`);
      held.push(buffer);
      indices.push(buffer.index);
    }
    return { indices };
  },
  // deno-lint-ignore require-await
  async release({ n }) {
    const count = n ?? held.length;
    if (count > held.length) throw new Error(`release: ${count} asked, ${held.length} held`);
    const indices: number[] = [];
    for (let i = 0; i < count; i++) {
      const buffer = held.pop()!;
      indices.push(buffer.index);
      buffer.release();
    }
    return { indices };
  },
  // deno-lint-ignore require-await
  async warm({ n }) {
    const taken: PooledBuffer[] = [];
    for (let i = 0; i < n; i++) {
      const buffer = pool().tryAcquire();
      if (buffer === null) throw new Error(`warm: pool empty after ${i} of ${n}`);
      taken.push(buffer);
    }
    for (const buffer of taken) buffer.release();
    return {};
  },
  // deno-lint-ignore require-await
  async startAcquire({ key }) {
    if (acquires.has(key)) throw new Error(`startAcquire: ${key} already used`);
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(TIMEOUT_MS)]);
    const entry: PendingAcquire = {
      controller,
      settled: null,
      done: pool().acquire({ signal }).then(
        (buffer): Settled => {
          held.push(buffer);
          return (entry.settled = { seq: ++settleSeq, index: buffer.index });
        },
        (error: unknown): Settled => (entry.settled = { seq: ++settleSeq, error: info(error) }),
      ),
    };
    acquires.set(key, entry);
    return {};
  },
  async settled({ key }) {
    const entry = acquires.get(key);
    if (entry === undefined) throw new Error(`settled: no acquire ${key}`);
    return await entry.done;
  },
  // deno-lint-ignore require-await
  async pending({ key }) {
    const entry = acquires.get(key);
    if (entry === undefined) throw new Error(`pending: no acquire ${key}`);
    return { pending: entry.settled === null };
  },
  // deno-lint-ignore require-await
  async abort({ key, reason }) {
    const entry = acquires.get(key);
    if (entry === undefined) throw new Error(`abort: no acquire ${key}`);
    entry.controller.abort(new Error(reason));
    return {};
  },
  // deno-lint-ignore require-await
  async flip({ packet: wire }) {
    const packet = pool().receive(wire.sent);
    verify(packet, wire.sum, "flip");
    const bytes = packet.bytes;
    for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0xff;
    const sum = checksum(bytes);
    return { packet: { sent: packet.send(), sum } };
  },
  // deno-lint-ignore require-await
  async flipBatch({ batch, sums }) {
    const packets = pool().receiveBatch(batch);
    const out: number[] = [];
    packets.forEach((packet, i) => {
      verify(packet, sums[i]!, `flipBatch packet ${i}`);
      const bytes = packet.bytes;
      for (let j = 0; j < bytes.length; j++) bytes[j] = bytes[j]! ^ 0xff;
      out.push(checksum(bytes));
    });
    return { batch: pool().sendBatch(packets), sums: out };
  },
  // deno-lint-ignore require-await
  async connect({ peer, port }) {
    ports.set(peer, port);
    port.onmessage = onBatch;
    return {};
  },
  exchange,
};

scope.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    const handler = handlers[op] as (args: unknown) => Promise<unknown>;
    const result = await handler(args);
    scope.postMessage({ id, ok: true, result, stats: attached ? pool().stats() : null });
  } catch (error) {
    scope.postMessage({ id, ok: false, error: info(error) });
  }
};

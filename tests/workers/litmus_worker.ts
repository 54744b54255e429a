// One side of a litmus test from ../litmus_test.ts. Two of these workers
// attach to one shared pool and run a litmus loop in lockstep: they meet at
// barriers in a SharedArrayBuffer (Atomics.wait, spinning first), so an
// iteration costs microseconds, not a postMessage round trip. Each iteration
// records its outcome; the worker replies once, with the histogram of
// outcomes or the first violation. The protocol is in ../_litmus.ts.
import { BufferPool, type PooledBuffer, type SendPacket, Writer } from "../../mod.ts";
import { prng } from "../_helpers.ts";
import {
  ABORT,
  barrier,
  EVENTS,
  GEN,
  type LitmusReply,
  type LitmusRequest,
  MAILBOX,
  ORDER,
  OWNERS,
  PHASE_CALLED,
  PHASE_DONE,
  PHASE_HELD,
  SETS,
  waitAtLeast,
} from "../_litmus.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<LitmusRequest>) => void) | null;
  postMessage(message: LitmusReply): void;
};

/** How long one iteration of the waiting litmus may take before it counts as a lost wake-up. */
const STUCK_MS = 2_000;

class Litmus {
  readonly pool: BufferPool;
  readonly sync: Int32Array;
  readonly me: number;
  readonly role: number;
  readonly random: (n: number) => number;
  readonly histogram = new Map<string, number>();

  constructor(request: LitmusRequest) {
    this.pool = BufferPool.attach(request.handle);
    this.sync = new Int32Array(request.sync);
    this.role = request.role;
    this.me = request.role + 1;
    this.random = prng(request.seed);
  }

  count(outcome: string): void {
    this.histogram.set(outcome, (this.histogram.get(outcome) ?? 0) + 1);
  }

  /** Busy-waits a random few hundred nanoseconds, to shift the interleaving. */
  jitter(max: number): void {
    const n = this.random(max);
    for (let i = 0; i < n; i++) Atomics.load(this.sync, ABORT);
  }

  /** Claims `buffer` in the owner table and stamps its bytes with this worker's id and `tag`. */
  take(buffer: PooledBuffer, tag: number, what: string): void {
    const index = buffer.index;
    const owner = Atomics.compareExchange(this.sync, OWNERS + index, 0, this.me);
    if (owner !== 0) {
      throw new Error(`${what}: acquired buffer ${index}, which worker ${owner} still holds`);
    }
    stamp(buffer.bytes, this.me, tag);
  }

  /** Checks `buffer` is still this worker's (table and bytes), unclaims and releases it. */
  drop(buffer: PooledBuffer, tag: number, what: string): void {
    this.check(buffer.bytes, buffer.index, tag, what);
    Atomics.store(this.sync, OWNERS + buffer.index, 0);
    buffer.release();
  }

  check(bytes: Uint8Array, index: number, tag: number, what: string): void {
    const owner = Atomics.load(this.sync, OWNERS + index);
    if (owner !== this.me) {
      throw new Error(`${what}: buffer ${index} held by worker ${this.me} is owned by ${owner}`);
    }
    checkStamp(bytes, this.me, tag, `${what}: buffer ${index} held by worker ${this.me}`);
  }

  /** At a sync point, when nothing moves: every buffer is free or held, none twice. */
  checkCounts(held: number, what: string): void {
    const stats = this.pool.stats();
    if (stats.free + held !== stats.bufferCount) {
      throw new Error(
        `${what}: free ${stats.free} + held ${held} != bufferCount ${stats.bufferCount}`,
      );
    }
    let owned = 0;
    for (let i = 0; i < stats.bufferCount; i++) {
      if (Atomics.load(this.sync, OWNERS + i) !== 0) owned++;
    }
    if (owned !== held) throw new Error(`${what}: ${owned} buffers owned, ${held} held`);
  }

  done(): LitmusReply {
    this.pool.detach();
    return { ok: true, histogram: Object.fromEntries(this.histogram) };
  }
}

function stamp(bytes: Uint8Array, owner: number, tag: number): void {
  bytes[0] = owner;
  bytes[1] = tag;
  bytes[2] = tag >>> 8;
  bytes[3] = tag >>> 16;
  bytes[4] = tag >>> 24;
}

function checkStamp(bytes: Uint8Array, owner: number, tag: number, what: string): void {
  const found = bytes[0]!;
  const foundTag = (bytes[1]! | bytes[2]! << 8 | bytes[3]! << 16 | bytes[4]! << 24) >>> 0;
  if (found !== owner || foundTag !== tag >>> 0) {
    throw new Error(`${what}: stamp (${owner}, ${tag}) overwritten with (${found}, ${foundTag})`);
  }
}

function setKey(mask: number): string {
  let key = "";
  for (let i = 0; mask !== 0; i++, mask >>>= 1) if (mask & 1) key += i.toString(36);
  return `{${key}}`;
}

// -- (i) acquire/release against refill/spill --
function acquireRelease(t: Litmus, iterations: number): LitmusReply {
  const { sync, role } = t;
  const held: PooledBuffer[] = [];
  const what = () => `acquire/release, worker ${t.me}`;
  for (let i = 1; i <= iterations + 1; i++) {
    // Phase 1, both workers at once: release what the last iteration held,
    // then acquire some, release some, acquire some: every op crosses the
    // free stack once the small cache is drained or full.
    while (held.length !== 0) t.drop(held.pop()!, i - 1, what());
    if (i > iterations) break;
    t.jitter(64);
    const first = 1 + t.random(3);
    for (let n = 0; n < first; n++) {
      const buffer = t.pool.tryAcquire();
      if (buffer === null) break;
      t.take(buffer, i, what());
      held.push(buffer);
    }
    for (let n = t.random(held.length + 1); n > 0; n--) t.drop(held.shift()!, i, what());
    const second = t.random(3);
    for (let n = 0; n < second; n++) {
      const buffer = t.pool.tryAcquire();
      if (buffer === null) break;
      t.take(buffer, i, what());
      held.push(buffer);
    }
    let mask = 0;
    for (const buffer of held) mask |= 1 << buffer.index;
    Atomics.store(sync, SETS + role, mask);
    barrier(sync);
    // Phase 2, a sync point: nothing moves while worker 1 checks and counts.
    if (role === 0) {
      const a = Atomics.load(sync, SETS);
      const b = Atomics.load(sync, SETS + 1);
      if ((a & b) !== 0) throw new Error(`${what()}: both hold ${setKey(a & b)}`);
      t.checkCounts(popcount(a) + popcount(b), what());
      t.count(`A${setKey(a)} B${setKey(b)}`);
    }
    for (const buffer of held) t.check(buffer.bytes, buffer.index, i, what());
    barrier(sync);
  }
  barrier(sync);
  if (role === 0) t.checkCounts(0, `${what()} at the end`);
  return t.done();
}

function popcount(mask: number): number {
  let n = 0;
  for (; mask !== 0; mask &= mask - 1) n++;
  return n;
}

// -- (ii) send/receive against release --
const ORDER_NAMES = ["release", "receive", "drop"];

function sendReceive(t: Litmus, iterations: number): LitmusReply {
  const { sync, role, pool } = t;
  const what = () => `send/receive, worker ${t.me}`;
  let fresh: PooledBuffer | null = null;
  for (let i = 1; i <= iterations + 1; i++) {
    if (fresh !== null) t.drop(fresh, i - 1, what());
    fresh = null;
    if (i > iterations) break;
    const sender = (i & 1) === role;
    let clone = null;
    if (sender) {
      const buffer = pool.tryAcquire();
      if (buffer === null) throw new Error(`${what()}: no buffer to send in iteration ${i}`);
      stamp(buffer.bytes, t.me, i);
      const packet = buffer.intoPacket(0, 8);
      clone = packet.clone();
      const sent = packet.send();
      sync[MAILBOX] = sent.pool;
      sync[MAILBOX + 1] = sent.index;
      sync[MAILBOX + 2] = sent.offset;
      sync[MAILBOX + 3] = sent.length;
      sync[MAILBOX + 4] = sent.ticket;
      sync[MAILBOX + 5] = sent.stamp;
      Atomics.store(sync, ORDER, 0);
    }
    barrier(sync);
    // The race: the sender drops its clone while the receiver receives and drops.
    t.jitter(96);
    let index: number;
    if (clone !== null) {
      index = sync[MAILBOX + 1]!;
      checkStamp(clone.bytes, t.me, i, `${what()}: sent clone`);
      clone.release();
      Atomics.store(sync, EVENTS, Atomics.add(sync, ORDER, 1));
    } else {
      const sent: SendPacket = {
        pool: sync[MAILBOX]!,
        index: sync[MAILBOX + 1]!,
        offset: sync[MAILBOX + 2]!,
        length: sync[MAILBOX + 3]!,
        ticket: sync[MAILBOX + 4]!,
        stamp: sync[MAILBOX + 5]!,
      };
      index = sent.index;
      const packet = pool.receive(sent);
      Atomics.store(sync, EVENTS + 1, Atomics.add(sync, ORDER, 1));
      checkStamp(packet.bytes, 2 - role, i, `${what()}: received packet`);
      packet.release();
      Atomics.store(sync, EVENTS + 2, Atomics.add(sync, ORDER, 1));
    }
    // A fresh buffer now: a double free would hand the sent one out twice.
    fresh = pool.tryAcquire();
    if (fresh !== null) t.take(fresh, i, what());
    Atomics.store(sync, SETS + role, fresh === null ? 0 : 1 << fresh.index);
    barrier(sync);
    if (role === 0) {
      const a = Atomics.load(sync, SETS);
      const b = Atomics.load(sync, SETS + 1);
      if ((a & b) !== 0) throw new Error(`${what()}: both hold ${setKey(a & b)}`);
      t.checkCounts(popcount(a) + popcount(b), `${what()}, iteration ${i}, sent buffer ${index}`);
      const order = [0, 1, 2].sort((x, y) => sync[EVENTS + x]! - sync[EVENTS + y]!);
      t.count(order.map((e) => ORDER_NAMES[e]).join(" < "));
    }
    if (fresh !== null) t.check(fresh.bytes, fresh.index, i, what());
    barrier(sync);
  }
  barrier(sync);
  if (role === 0) t.checkCounts(0, `${what()} at the end`);
  return t.done();
}

// -- (iii) reserve/commit against flush --
async function reserveCommit(
  t: Litmus,
  iterations: number,
  request: LitmusRequest,
): Promise<LitmusReply> {
  const writer = new Writer(t.pool, request.flusher!, { flush: "manual" });
  const signal = AbortSignal.timeout(60_000);
  let untilFlush = 1;
  let waits = 0;
  const put = (bytes: Uint8Array, seq: number) => {
    bytes[0] = seq;
    bytes[1] = seq >>> 8;
    bytes[2] = seq >>> 16;
    bytes[3] = seq >>> 24;
    const check = seq ^ 0x5a5a5a5a;
    bytes[4] = check;
    bytes[5] = check >>> 8;
    bytes[6] = check >>> 16;
    bytes[7] = check >>> 24;
  };
  for (let seq = 0; seq < iterations;) {
    let first = writer.tryReserve(8);
    if (first === null) {
      waits++;
      first = await writer.reserve(8, { signal });
    }
    // Sometimes two reservations at once, committed newest first.
    const second = seq + 1 < iterations && t.random(4) === 0 ? writer.tryReserve(8) : null;
    put(first.bytes, seq++);
    if (second !== null) {
      put(second.bytes, seq++);
      second.commit();
    }
    first.commit();
    if (--untilFlush <= 0) {
      writer.flush();
      untilFlush = 1 + t.random(12);
      t.jitter(32);
    }
  }
  writer.close();
  t.histogram.set("writer waited for a buffer", waits);
  return t.done();
}

// -- (iv) waiting against notify --
async function waitNotify(t: Litmus, iterations: number): Promise<LitmusReply> {
  const { sync, role, pool } = t;
  const what = (i: number) => `waiting/notify, worker ${t.me}, iteration ${i}`;
  const controller = new AbortController();
  const signal = controller.signal;
  let current = 0;
  let started = performance.now();
  // The watchdog is also the keepalive: a pending waitAsync alone keeps no worker alive.
  const watchdog = setInterval(() => {
    if (performance.now() - started > STUCK_MS) {
      controller.abort(
        new Error(`${what(current)}: stuck for more than ${STUCK_MS} ms: a lost wake-up`),
      );
    }
  }, 100);
  try {
    for (let i = 1; i <= iterations; i++) {
      current = i;
      started = performance.now();
      if ((i & 1) === role) {
        // The holder: takes the one buffer, lets the waiter start, releases.
        const buffer = await pool.acquire({ signal });
        t.take(buffer, i, what(i));
        Atomics.store(sync, PHASE_HELD, i);
        Atomics.notify(sync, PHASE_HELD);
        const mode = t.random(4);
        if (mode === 1) await Promise.resolve();
        else if (mode === 2) t.jitter(2000);
        else if (mode === 3) await waitAtLeast(sync, PHASE_CALLED, i, signal);
        // Ticket first: the waiter may read it as soon as the buffer is free.
        Atomics.store(sync, EVENTS, Atomics.add(sync, ORDER, 1));
        t.drop(buffer, i, what(i));
        await waitAtLeast(sync, PHASE_DONE, i, signal);
      } else {
        // The waiter: acquire() while the holder holds or has just released.
        await waitAtLeast(sync, PHASE_HELD, i, signal);
        Atomics.store(sync, EVENTS + 1, Atomics.add(sync, ORDER, 1));
        const acquired = pool.acquire({ signal });
        const queued = pool.stats().waiters !== 0;
        Atomics.store(sync, PHASE_CALLED, i);
        Atomics.notify(sync, PHASE_CALLED);
        const buffer = await acquired;
        t.take(buffer, i, what(i));
        const releasedFirst = Atomics.load(sync, EVENTS) < Atomics.load(sync, EVENTS + 1);
        t.count(
          `${releasedFirst ? "release < acquire()" : "acquire() < release"}, ${
            queued ? "queued" : "served at once"
          }`,
        );
        t.drop(buffer, i, what(i));
        Atomics.store(sync, ORDER, 0);
        Atomics.store(sync, PHASE_DONE, i);
        Atomics.notify(sync, PHASE_DONE);
      }
    }
  } finally {
    clearInterval(watchdog);
  }
  return t.done();
}

scope.onmessage = async (event) => {
  const request = event.data;
  const sync = new Int32Array(request.sync);
  try {
    const t = new Litmus(request);
    barrier(sync); // both attached
    let reply: LitmusReply;
    switch (request.kind) {
      case "acquireRelease":
        reply = acquireRelease(t, request.iterations);
        break;
      case "sendReceive":
        reply = sendReceive(t, request.iterations);
        break;
      case "reserveCommit":
        reply = await reserveCommit(t, request.iterations, request);
        break;
      case "waitNotify":
        reply = await waitNotify(t, request.iterations);
        break;
      default:
        throw new Error(`${request.kind} runs in shared_litmus_worker.ts`);
    }
    scope.postMessage(reply);
  } catch (error) {
    // Let the other worker out of its barrier instead of leaving it to time out.
    Atomics.store(sync, ABORT, 1);
    Atomics.add(sync, GEN, 1);
    Atomics.notify(sync, GEN);
    scope.postMessage({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
};

// The hybrid reference counts of a shared pool's buffer across workers
// (src/buffer_pool.ts receive, #takeTicket, #takeUnits, _send, #claimTicket,
// #moveRefs, #publishTicket, _recycle, reclaim; src/packet.ts clone, send,
// release), step by step, for one buffer. Each worker's `_refs` and
// `_units` are its own (thread-local, no step); the shared words are
// H_SHARED_REFS, H_OWNER, one holder bit per worker and the send tickets.
// A SendPacket travels by message (a mailbox per worker, as postMessage).
//
// A worker may die: a killer thread stops it, and a reclaimer runs
// reclaim(deadId) once it has stopped (terminate, then reclaim). Death
// comes either between the worker's operations (as a terminated worker
// stops between calls into the pool), or at any step ("anywhere").
//
// Documented limit of reclaim, modelled and allowed at rest: units carried
// by SendPackets nobody will receive (posted to the dead worker, or a send
// the dead worker had begun and never posted) stay in the shared count, so
// the buffer is never freed.

import { type Model, type Step, type Thread, Violation } from "./scheduler.ts";
import { H_OWNER, H_SHARED_REFS, HEADER_WORDS } from "../../src/_layout.ts";

// The real header words: a layout change that breaks the protocol fails
// the explorer. One buffer's header, then a word per worker for its holder bit.
const HOLDERS = HEADER_WORDS;

/** Deliberate bugs the explorer must catch. */
export type RefBug =
  | "none"
  /** `_recycle` reads the shared count, then writes it less its units: not one atomic step. */
  | "recycle-read-then-sub"
  /** `#takeUnits` keeps the extra travelling units instead of subtracting them. */
  | "take-units-keeps-extra";

/** What a worker does, in order. */
export type RefOp =
  /** Takes the buffer from its cache (only the worker it starts with). */
  | "acquire"
  /** Packet.clone: one more local reference. */
  | "clone"
  /** Packet.send, posted to these workers (two: a SendPacket posted twice). */
  | { send: readonly number[] }
  /** Waits for a SendPacket and receives it (pool.receive). */
  | "receive"
  /** Receives the last SendPacket it received once more: must fail. */
  | "receive-again"
  /** Releases one packet it holds. */
  | "release";

/** How a worker dies, if one does. */
export interface Death {
  readonly worker: number;
  readonly at: "between-ops" | "anywhere";
}

interface Sent {
  readonly id: number;
  readonly from: number;
  ticket: number;
  stamp: number;
  published: boolean;
  received: boolean;
}

/**
 * `scripts[w]` is worker w's operations; worker 0 starts with the buffer in
 * its cache (H_OWNER = 1, as #refill leaves it). Each worker has
 * `maxInFlight` send tickets.
 */
export function refCountModel(
  scripts: readonly (readonly RefOp[])[],
  options: { death?: Death; bug?: RefBug; maxInFlight?: number } = {},
): Model {
  const { death, bug = "none", maxInFlight = 2 } = options;
  const workers = scripts.length;
  const TICKETS = HOLDERS + workers;
  return () => {
    const words = new Int32Array(TICKETS + workers * maxInFlight);
    words[H_OWNER] = 1;
    // Thread-local: each worker's PooledBuffer fields and its packets.
    const refs = new Array<number>(workers).fill(0);
    const units = new Array<number>(workers).fill(0);
    const packets = new Array<number>(workers).fill(0);
    const stamps = new Array<number>(workers).fill(0);
    const cursors = new Array<number>(workers).fill(0);
    const mailbox: Sent[][] = scripts.map(() => []);
    // Ghost state.
    const sends: Sent[] = [];
    const stopped = new Array<boolean>(workers).fill(false);
    const killed = new Array<boolean>(workers).fill(false);
    const atBoundary = new Array<boolean>(workers).fill(false);
    /** The operation each worker is in, and whether it died inside one. */
    const doing = new Array<string>(workers).fill("start");
    let diedInside = false;
    let where: "used" | "stack" | { cache: number } = { cache: 0 };
    let frees = 0;

    const holderBit = (w: number) => HOLDERS + w;

    /** The buffer comes free (to `to`): checks nothing references it any more. */
    function freed(by: string, to: "stack" | { cache: number }): void {
      if (where !== "used") throw new Violation(`${by} frees the buffer, already free`);
      for (let w = 0; w < workers; w++) {
        if (!killed[w] && refs[w] !== 0) {
          throw new Violation(`${by} frees the buffer while worker ${w} holds ${refs[w]} refs`);
        }
      }
      const flying = sends.filter((s) => !s.received && !(killed[s.from] && !s.published));
      if (flying.length !== 0) {
        throw new Violation(`${by} frees the buffer while send ${flying[0]!.id} is in flight`);
      }
      frees++;
      where = to;
    }

    // -- BufferPool#setHolder --
    function* setHolder(w: number, holds: boolean): Thread {
      yield;
      if (holds) Atomics.or(words, holderBit(w), 1);
      else Atomics.and(words, holderBit(w), ~1);
    }

    // -- BufferPool#takeUnits --
    function* takeUnits(w: number, n: number): Thread {
      if (units[w] === 0) {
        units[w] = 1;
        yield* setHolder(w, true);
        n--;
      }
      if (n !== 0 && bug !== "take-units-keeps-extra") {
        yield;
        Atomics.sub(words, H_SHARED_REFS, n);
      }
    }

    // -- BufferPool#moveRefs --
    function* moveRefs(w: number, n: number): Thread {
      if (units[w] === 0) {
        // Exclusive until now.
        yield;
        words[H_OWNER] = 0;
        if (refs[w] === n) {
          yield;
          Atomics.store(words, H_SHARED_REFS, n);
        } else {
          yield;
          Atomics.store(words, H_SHARED_REFS, n + 1);
          units[w] = 1;
          yield* setHolder(w, true);
        }
      } else if (refs[w] === n) {
        const delta = n - units[w]!;
        if (delta !== 0) {
          yield;
          Atomics.add(words, H_SHARED_REFS, delta);
        }
        units[w] = 0;
        yield* setHolder(w, false);
      } else {
        yield;
        Atomics.add(words, H_SHARED_REFS, n);
      }
      refs[w]! -= n;
    }

    // -- BufferPool#recycle (the last local reference dropped) --
    function* recycle(w: number): Thread {
      const n = units[w]!;
      if (n !== 0) {
        units[w] = 0;
        yield* setHolder(w, false);
        yield;
        let old: number;
        if (bug === "recycle-read-then-sub") {
          old = words[H_SHARED_REFS]!;
          yield;
          words[H_SHARED_REFS] = old - n;
        } else {
          old = Atomics.sub(words, H_SHARED_REFS, n);
        }
        if (old !== n) return;
        yield;
        words[H_OWNER] = w + 1;
      }
      freed(`worker ${w}'s release`, { cache: w });
    }

    // -- Packet.send: _send (#claimTicket, #moveRefs, #publishTicket) --
    function* send(w: number, to: readonly number[]): Thread {
      let ticket = -1;
      for (let tried = 0; tried < maxInFlight; tried++) {
        const t = w * maxInFlight + cursors[w]!;
        cursors[w] = (cursors[w]! + 1) % maxInFlight;
        yield;
        if (Atomics.load(words, TICKETS + t) === 0) {
          ticket = t;
          break;
        }
      }
      if (ticket < 0) return; // RangeError: the packet stays here.
      const sent: Sent = {
        id: sends.length,
        from: w,
        ticket,
        stamp: 0,
        published: false,
        received: false,
      };
      sends.push(sent);
      packets[w]!--;
      yield* moveRefs(w, 1);
      let stamp = (stamps[w]! + 1) & 0x7fffffff;
      if (stamp === 0) stamp = 1;
      stamps[w] = stamp;
      yield;
      Atomics.store(words, TICKETS + ticket, stamp);
      sent.stamp = stamp;
      sent.published = true;
      for (const r of to) mailbox[r]!.push(sent);
    }

    // -- BufferPool.receive: #takeTicket, then _refs++ and #takeUnits --
    function* receive(w: number, sent: Sent): Generator<Step, boolean, void> {
      yield;
      if (Atomics.compareExchange(words, TICKETS + sent.ticket, sent.stamp, 0) !== sent.stamp) {
        if (!sent.received) {
          throw new Violation(`worker ${w}'s receive of send ${sent.id} failed, nobody had it`);
        }
        return false;
      }
      if (sent.received) throw new Violation(`send ${sent.id} received twice`);
      sent.received = true;
      refs[w]!++;
      packets[w]!++;
      yield* takeUnits(w, 1);
      return true;
    }

    // -- BufferPool.reclaim(dead), for the one buffer --
    function* reclaim(dead: number): Thread {
      yield () => killed[dead]!;
      yield;
      if (words[H_OWNER] === dead + 1) {
        yield;
        words[H_OWNER] = 0;
        if (typeof where === "object" && where.cache === dead) where = "stack";
        else if (where === "used") freed(`reclaim(${dead}) of its own buffer`, "stack");
        else {throw new Violation(
            `reclaim(${dead}) takes a buffer that is ${JSON.stringify(where)}`,
          );}
        return;
      }
      yield;
      if ((Atomics.and(words, holderBit(dead), ~1) & 1) !== 0) {
        yield;
        if (Atomics.sub(words, H_SHARED_REFS, 1) === 1) freed(`reclaim(${dead})`, "stack");
      }
    }

    function* worker(w: number): Thread {
      let last: Sent | undefined;
      for (const op of scripts[w]!) {
        if (death?.worker === w) {
          atBoundary[w] = true;
          yield;
          atBoundary[w] = false;
        }
        doing[w] = JSON.stringify(op);
        if (op === "acquire") {
          if (typeof where !== "object" || where.cache !== w) throw new Error("not in my cache");
          where = "used";
          refs[w] = 1;
          packets[w] = 1;
        } else if (op === "clone") {
          if (packets[w] === 0) continue;
          refs[w]!++;
          packets[w]!++;
        } else if (op === "release") {
          if (packets[w] === 0) continue;
          packets[w]!--;
          if (--refs[w]! === 0) yield* recycle(w);
        } else if (op === "receive") {
          // Blocks until a SendPacket arrives, or none can any more.
          yield () => mailbox[w]!.length !== 0 || stopped.every((s, v) => s || v === w);
          const sent = mailbox[w]!.shift();
          if (sent !== undefined && (yield* receive(w, sent))) last = sent;
        } else if (op === "receive-again") {
          if (last === undefined) continue;
          if (yield* receive(w, last)) throw new Violation(`send ${last.id} received twice`);
        } else {
          if (packets[w] === 0) continue;
          yield* send(w, op.send);
        }
      }
      doing[w] = "end";
    }

    /** Runs `inner`, stopping it for good once it is killed. */
    function* mortal(w: number, inner: Thread): Thread {
      for (;;) {
        const r = inner.next();
        if (r.done) break;
        const step = r.value;
        yield typeof step === "function" ? () => killed[w]! || step() : undefined;
        if (killed[w]) break;
      }
      stopped[w] = true;
    }

    function* killer(d: Death): Thread {
      if (d.at === "between-ops") yield () => atBoundary[d.worker]! || stopped[d.worker]!;
      else yield;
      killed[d.worker] = true;
      diedInside = !atBoundary[d.worker]! && !stopped[d.worker]!;
    }

    const threads: Thread[] = scripts.map((_, w) => mortal(w, worker(w)));
    if (death !== undefined) threads.push(killer(death), reclaim(death.worker));

    return {
      threads,
      check() {
        if (words[H_SHARED_REFS]! < 0) {
          return `H_SHARED_REFS is ${words[H_SHARED_REFS]}`;
        }
        return undefined;
      },
      finish() {
        for (let w = 0; w < workers; w++) {
          if (!killed[w] && packets[w] !== 0) return `script of worker ${w} ends holding packets`;
        }
        // Sends nobody will receive keep their units: the documented limit.
        // (A send the dead worker began but whose units never reached the
        // count leaves it to reclaim, which may then free the buffer.)
        if (sends.some((s) => !s.received)) return undefined;
        if (frees > 1) return `freed ${frees} times`;
        if (where === "used") {
          // Dying inside an operation may strand a unit (see the tests).
          if (diedInside && death?.at === "anywhere") return undefined;
          const died = death === undefined
            ? ""
            : `, worker ${death.worker} died in ${
              diedInside ? doing[death.worker] : "no operation"
            }`;
          return `leaked${died}: H_SHARED_REFS ${words[H_SHARED_REFS]}, H_OWNER ${words[H_OWNER]}` +
            `, holders ${Array.from(words.subarray(HOLDERS, HOLDERS + workers))}`;
        }
        for (let w = 0; w < workers; w++) {
          if (words[holderBit(w)] !== 0) return `worker ${w}'s holder bit set with the buffer free`;
        }
        if (typeof where === "object" && words[H_OWNER] !== where.cache + 1) {
          return `cached by worker ${where.cache} but H_OWNER is ${words[H_OWNER]}`;
        }
        return undefined;
      },
    };
  };
}

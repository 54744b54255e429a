// The hybrid reference counts of a shared pool's buffer across workers
// (src/_buffer_record.ts moveOut, takeIn, release, reclaimHeld;
// src/_send_tickets.ts claim, publish, takeTicket; src/_packet_post.ts send,
// receive; src/packet.ts clone, send, release), step by step, for one buffer.
// Each worker's reference count and unit are its own (thread-local, no
// step); the shared words are H_SHARED_REFS, H_OWNER, one holder bit per
// worker and the send tickets, in a real block of the real layout, and each
// step calls the real step function from src/ that the code fuses: a
// protocol or layout change that breaks a step fails the explorer. The
// branches around the steps repeat the record's methods, in the same order.
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
import {
  addShared,
  dropHolder,
  ownerOf,
  setHolder,
  setOwner,
  startShared,
  subShared,
} from "../../src/_buffer_record.ts";
import {
  computeLayout,
  firstTicket,
  H_SHARED_REFS,
  headerWord,
  holderBit,
  holderWord,
  wordsBeforeData,
} from "../../src/_layout.ts";
import { isTicketFree, SendTickets, takeTicket } from "../../src/_send_tickets.ts";

/** The one buffer the model follows. */
const INDEX = 0;

/** Deliberate bugs the explorer must catch. */
export type RefBug =
  | "none"
  /** The last release reads the shared count, then writes it less its unit: not one atomic step. */
  | "recycle-read-then-sub"
  /** `takeIn` keeps the extra travelling units instead of subtracting them. */
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
 * its cache (H_OWNER = 1, as WorkerCache#refill leaves it). Each worker has
 * `maxInFlight` send tickets.
 */
export function refCountModel(
  scripts: readonly (readonly RefOp[])[],
  options: { death?: Death; bug?: RefBug; maxInFlight?: number } = {},
): Model {
  const { death, bug = "none", maxInFlight = 2 } = options;
  const workers = scripts.length;
  const layout = computeLayout(64, 1, 1, workers, maxInFlight);
  const header = headerWord(layout, INDEX);
  const BIT = holderBit(INDEX);
  const holder = (w: number) => holderWord(layout, w, INDEX);
  return () => {
    const words = new Int32Array(wordsBeforeData(layout));
    setOwner(words, header, 1);
    // Thread-local: each worker's record fields, its packets and its send tickets.
    const refs = new Array<number>(workers).fill(0);
    const units = new Array<number>(workers).fill(0);
    const packets = new Array<number>(workers).fill(0);
    const tickets = scripts.map((_, w) => new SendTickets(words, layout, w));
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

    // -- BufferRecord#hold --
    function* hold(w: number, holds: boolean): Thread {
      yield;
      setHolder(words, holder(w), BIT, holds);
    }

    // -- BufferRecord.takeIn, after its `refs += n` --
    function* takeIn(w: number, n: number): Thread {
      if (units[w] === 0) {
        units[w] = 1;
        yield* hold(w, true);
        n--;
      }
      if (n !== 0 && bug !== "take-units-keeps-extra") {
        yield;
        subShared(words, header, n);
      }
    }

    // -- BufferRecord.moveOut --
    function* moveOut(w: number, n: number): Thread {
      if (units[w] === 0) {
        // Held alone until now.
        yield;
        setOwner(words, header, 0);
        if (refs[w] === n) {
          yield;
          startShared(words, header, n);
        } else {
          yield;
          startShared(words, header, n + 1);
          units[w] = 1;
          yield* hold(w, true);
        }
      } else if (refs[w] === n) {
        const delta = n - units[w]!;
        if (delta !== 0) {
          yield;
          addShared(words, header, delta);
        }
        units[w] = 0;
        yield* hold(w, false);
      } else {
        yield;
        addShared(words, header, n);
      }
      refs[w]! -= n;
    }

    // -- BufferRecord.release: #dropUnit, then the pool's _recycle --
    function* recycle(w: number): Thread {
      const n = units[w]!;
      if (n !== 0) {
        units[w] = 0;
        yield* hold(w, false);
        yield;
        let old: number;
        if (bug === "recycle-read-then-sub") {
          old = words[header + H_SHARED_REFS]!;
          yield;
          words[header + H_SHARED_REFS] = old - n;
        } else {
          old = subShared(words, header, n);
        }
        if (old !== n) return;
        yield;
        setOwner(words, header, w + 1);
      }
      freed(`worker ${w}'s release`, { cache: w });
    }

    // -- Packet.send: PacketPost.send (SendTickets.claim, moveOut, SendTickets.publish) --
    function* send(w: number, to: readonly number[]): Thread {
      let ticket = -1;
      for (let tried = 0; tried < maxInFlight; tried++) {
        const t = firstTicket(layout, w) + cursors[w]!;
        cursors[w] = (cursors[w]! + 1) % maxInFlight;
        yield;
        if (isTicketFree(words, layout, t)) {
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
      yield* moveOut(w, 1);
      yield;
      sent.stamp = tickets[w]!.publish(ticket);
      sent.published = true;
      for (const r of to) mailbox[r]!.push(sent);
    }

    // -- PacketPost.receive: takeTicket, then BufferRecord.takeIn --
    function* receive(w: number, sent: Sent): Generator<Step, boolean, void> {
      yield;
      if (!takeTicket(words, layout, sent.ticket, sent.stamp)) {
        if (!sent.received) {
          throw new Violation(`worker ${w}'s receive of send ${sent.id} failed, nobody had it`);
        }
        return false;
      }
      if (sent.received) throw new Violation(`send ${sent.id} received twice`);
      sent.received = true;
      refs[w]!++;
      packets[w]!++;
      yield* takeIn(w, 1);
      return true;
    }

    // -- reclaimHeld(dead), for the one buffer --
    function* reclaim(dead: number): Thread {
      yield () => killed[dead]!;
      yield;
      if (ownerOf(words, header) === dead + 1) {
        yield;
        setOwner(words, header, 0);
        if (typeof where === "object" && where.cache === dead) where = "stack";
        else if (where === "used") freed(`reclaim(${dead}) of its own buffer`, "stack");
        else {throw new Violation(
            `reclaim(${dead}) takes a buffer that is ${JSON.stringify(where)}`,
          );}
        return;
      }
      yield;
      if (dropHolder(words, holder(dead), BIT)) {
        yield;
        if (subShared(words, header, 1) === 1) freed(`reclaim(${dead})`, "stack");
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
        const count = words[header + H_SHARED_REFS]!;
        return count < 0 ? `H_SHARED_REFS is ${count}` : undefined;
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
          const holders = scripts.map((_, w) => (words[holder(w)]! & BIT) === 0 ? 0 : 1);
          return `leaked${died}: H_SHARED_REFS ${words[header + H_SHARED_REFS]}, H_OWNER ${
            ownerOf(words, header)
          }, holders ${holders}`;
        }
        for (let w = 0; w < workers; w++) {
          if ((words[holder(w)]! & BIT) !== 0) {
            return `worker ${w}'s holder bit set with the buffer free`;
          }
        }
        if (typeof where === "object" && ownerOf(words, header) !== where.cache + 1) {
          return `cached by worker ${where.cache} but H_OWNER is ${ownerOf(words, header)}`;
        }
        return undefined;
      },
    };
  };
}

// Model-based test of the whole bus at its edges. Each sequence is a seeded
// random run on a small pool (1-4 buffers of 16-64 bytes): writers reserve,
// commit out of order, cancel, abort, flush and close while a consumer reads
// slowly, holds regions, cancels, breaks or fails; then the bytes it got are
// fed, in random chunks and sometimes broken, to one of the readers on a
// small pool. Every run is checked against the plain model in _model.ts:
// each writer's messages arrive once, in order, byte-exact; each reader
// yields exactly the reference frames and the right typed error; nothing
// hangs (a deadline per sequence); every buffer is back at the end.
//
// MODEL_SEQUENCES, MODEL_WORKER_SEQUENCES and MODEL_SEED change the run;
// MODEL_SEQUENCE=i (with the same seed) replays sequence i alone, as each
// failure message says.
import { setImmediate } from "node:timers";
import {
  BatchFramer,
  BufferPool,
  type FlushRegion,
  FrameCutter,
  FrameError,
  Framer,
  FrameSink,
  type FrameVisitor,
  type Packet,
  readFrames,
  TruncatedError,
  visitFrames,
  WriteFlusher,
  Writer,
} from "../mod.ts";
import { chunkSource, prng, withinDeadline } from "./_helpers.ts";
import {
  codecOf,
  type CodecSpec,
  content,
  delivered,
  describeError,
  headerFor,
  type Item,
  largestPayload,
  pickSpec,
  READY,
  referenceDecode,
  show,
  type World,
  WriterScript,
} from "./_model.ts";
import type { ModelJob, ModelReport } from "./workers/model_worker.ts";

const SEED = Number(Deno.env.get("MODEL_SEED") ?? 0xb0b) >>> 0;
const SEQUENCES = Number(Deno.env.get("MODEL_SEQUENCES") ?? 10_000);
const WORKER_SEQUENCES = Number(Deno.env.get("MODEL_WORKER_SEQUENCES") ?? 150);
const ONLY = Deno.env.get("MODEL_SEQUENCE");
/** Run every sequence and sum the failures up by kind, instead of stopping at the first. */
const SURVEY = Deno.env.get("MODEL_SURVEY") !== undefined;
/** Far above any sequence's real time: reaching it means something hangs. */
const DEADLINE_MS = Number(Deno.env.get("MODEL_DEADLINE_MS") ?? 10_000);

function seedOf(index: number): number {
  return (SEED ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
}

function replay(index: number, workers: boolean): string {
  const count = workers ? "MODEL_SEQUENCES=0" : "MODEL_WORKER_SEQUENCES=0";
  return `replay: MODEL_SEED=${SEED} MODEL_SEQUENCE=${index} ${count} deno test -A --v8-flags=--expose-gc tests/model_test.ts`;
}

/**
 * Lets other work run for a random while: some microtasks, a turn of the
 * event loop, or now and then a timer's (which costs a millisecond or more).
 */
async function pause(r: (n: number) => number): Promise<void> {
  const how = r(32);
  if (how === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  else if (how < 8) await new Promise((resolve) => setImmediate(resolve));
  else for (let i = r(6); i >= 0; i--) await Promise.resolve();
}

/** Lets a consumer go on one step at a time, or for good. */
class Gate {
  #permits = 0;
  #open = false;
  #waiting: (() => void) | null = null;

  pass(): Promise<void> | undefined {
    if (this.#open) return undefined;
    if (this.#permits > 0) {
      this.#permits--;
      return undefined;
    }
    return new Promise((resolve) => this.#waiting = resolve);
  }

  give(permits: number): void {
    for (let i = 0; i < permits; i++) {
      const waiting = this.#waiting;
      if (waiting === null) this.#permits++;
      else {
        this.#waiting = null;
        waiting();
      }
    }
  }

  openForGood(): void {
    this.#open = true;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.();
  }
}

const CONSUMERS = ["read", "cancel", "break", "stream", "sink"] as const;
type ConsumerKind = typeof CONSUMERS[number];

/**
 * Reads the flusher the way one kind of user does: one batch per permit,
 * sometimes holding regions; and, by kind, stopping once asked: cancelling
 * the reader, breaking out of `for await`, a failing or aborted pipe.
 */
class Consumer {
  readonly kind: ConsumerKind;
  readonly problems: string[] = [];
  /** Bytes per writer id, and every byte in delivery order. */
  readonly bytes = new Map<number, number[]>();
  readonly stream: number[] = [];
  readonly done: Promise<void>;
  readonly #flusher: WriteFlusher;
  readonly #world: World;
  readonly #r: (n: number) => number;
  readonly #gate = new Gate();
  readonly #held: FlushRegion[] = [];
  readonly #abort = new AbortController();
  #reader: ReadableStreamDefaultReader<FlushRegion[]> | null = null;
  #stopAsked = false;
  #openedUp = false;
  #failure: Error | null = null;

  constructor(kind: ConsumerKind, flusher: WriteFlusher, world: World, seed: number) {
    this.kind = kind;
    this.#flusher = flusher;
    this.#world = world;
    this.#r = prng(seed);
    this.done = this.#run();
  }

  /** One random step: let it read, release held regions, or stop. */
  step(): void {
    const r = this.#r;
    const op = r(8);
    if (op < 4) this.#gate.give(1 + r(3));
    else if (op < 6) this.#releaseHeld(r(this.#held.length + 1));
    else if (op === 6 && this.kind !== "read" && r(3) === 0) this.#stop();
  }

  /** Lets it read everything from now on, and releases what it holds. */
  openUp(): void {
    this.#openedUp = true;
    this.#gate.openForGood();
    this.#releaseHeld(this.#held.length);
  }

  #stop(): void {
    if (this.#stopAsked) return;
    this.#stopAsked = true;
    const world = this.#world;
    switch (this.kind) {
      case "cancel":
        world.consumerStopped = true;
        this.#reader?.cancel(new Error("consumer cancelled")).catch((e: unknown) => {
          this.problems.push(`cancel rejected: ${describeError(e)}`);
        });
        break;
      case "stream":
      case "sink":
        if (this.#r(2) === 0) {
          world.consumerStopped = true;
          this.#abort.abort(new Error("pipe aborted"));
        } else {
          this.#failure = new Error("sink failed");
        }
        break;
      case "break":
        break; // at its next batch
    }
  }

  #releaseHeld(count: number): void {
    for (const region of this.#held.splice(0, count)) region.release();
  }

  #record(id: number, bytes: Uint8Array): void {
    let mine = this.bytes.get(id);
    if (mine === undefined) this.bytes.set(id, mine = []);
    for (let i = 0; i < bytes.length; i++) {
      mine.push(bytes[i]!);
      this.stream.push(bytes[i]!);
    }
  }

  #take(batch: FlushRegion[], mayHold: boolean): void {
    for (const region of batch) {
      this.#record(region.writerId, region.bytes);
      if (mayHold && !this.#openedUp && this.#r(3) === 0) this.#held.push(region);
      else region.release();
    }
  }

  /** Throws the sink's failure, once asked to fail, after marking the world. */
  #maybeFail(): void {
    const failure = this.#failure;
    if (failure === null) return;
    this.#world.consumerStopped = true;
    this.#world.consumerError = failure;
    throw failure;
  }

  async #run(): Promise<void> {
    const readable = this.#flusher.readable;
    switch (this.kind) {
      case "read":
      case "cancel": {
        const reader = this.#reader = readable.getReader();
        for (;;) {
          await this.#gate.pass();
          const { done, value } = await reader.read();
          if (done) return;
          this.#take(value, true);
        }
      }
      case "break":
        for await (const batch of readable) {
          await this.#gate.pass();
          if (this.#stopAsked) {
            this.#world.consumerStopped = true;
            for (const region of batch) region.release();
            break;
          }
          this.#take(batch, true);
        }
        return;
      case "stream": {
        // Half the pipes start late, with batches ready: the first is taken
        // as the pipe starts.
        if (this.#r(2) === 0) await this.#gate.pass();
        const sink = new WritableStream<FlushRegion[]>({
          write: async (batch) => {
            await this.#gate.pass();
            // A destination may fail on a batch it never used, which the
            // flusher must then release.
            if (this.#r(2) === 0) this.#maybeFail();
            this.#take(batch, false);
            this.#maybeFail();
          },
        });
        await this.#expectStop(readable.pipeTo(sink, { signal: this.#abort.signal }));
        return;
      }
      case "sink": {
        if (this.#r(2) === 0) await this.#gate.pass();
        let writing: Promise<unknown> = Promise.resolve();
        const sink = {
          write: (bytes: Uint8Array): Promise<number> => {
            const write = (async () => {
              await this.#gate.pass();
              const r = this.#r;
              const n = bytes.length > 1 && r(3) === 0 ? 1 + r(bytes.length - 1) : bytes.length;
              this.#record(0, bytes.subarray(0, n));
              this.#maybeFail();
              return n;
            })();
            writing = write.catch(() => {});
            return write;
          },
        };
        await this.#expectStop(this.#flusher.pipeTo(sink, { signal: this.#abort.signal }));
        // An aborted pipe settles at once; the region a write still reads is
        // released when that write ends, a turn of the event loop later.
        await writing;
        await new Promise((resolve) => setImmediate(resolve));
        return;
      }
    }
  }

  /** A pipe ends cleanly, or with the failure or abort this consumer caused. */
  async #expectStop(pipe: Promise<void>): Promise<void> {
    try {
      await pipe;
    } catch (error) {
      const expected = error === this.#failure || error === this.#abort.signal.reason;
      if (!expected) this.problems.push(`pipe rejected with ${describeError(error)}`);
    }
  }
}

interface BusResult {
  /** Every byte the consumer got, in order. */
  stream: Uint8Array;
  spec: CodecSpec;
  bufferSize: number;
}

/** One writer → flusher → consumer run. */
async function busRun(index: number, r: (n: number) => number): Promise<BusResult> {
  const bufferSize = 16 + r(49);
  const pool = new BufferPool({ bufferSize, bufferCount: 1 + r(4) });
  const spec = pickSpec(r, bufferSize);
  const kind = CONSUMERS[r(CONSUMERS.length)]!;
  const flusher = new WriteFlusher(pool);
  const world: World = { consumerStopped: false, consumerError: undefined };
  const writerCount = kind === "sink" ? 1 : 1 + r(3);
  const manual: boolean[] = [];
  const scripts: WriterScript[] = [];
  for (let id = 0; id < writerCount; id++) {
    manual.push(r(3) === 0);
    const flushBytes = r(4) === 0 ? 1 + r(2 * bufferSize) : undefined;
    const writer = new Writer(pool, flusher, {
      id,
      codec: codecOf(spec),
      flush: manual[id] ? "manual" : "microtask",
      ...(flushBytes === undefined ? {} : { flushBytes }),
    });
    scripts.push(new WriterScript(writer, spec, bufferSize, world));
  }
  const consumer = new Consumer(kind, flusher, world, r(2 ** 31));
  const where = `sequence ${index} (${describeRun(pool, spec, kind, writerCount)})`;

  const steps = 8 + r(56);
  for (let s = 0; s < steps; s++) {
    const who = r(writerCount + 2);
    if (who < writerCount) scripts[who]!.step(r, manual[who]!);
    else if (who === writerCount) consumer.step();
    else await pause(r);
  }
  consumer.openUp();
  for (const script of scripts) script.close();
  flusher.close();
  await withinDeadline(
    Promise.all([...scripts.map((s) => s.finish()), consumer.done]),
    where,
    DEADLINE_MS,
  );

  const problems = [...consumer.problems];
  for (const script of scripts) problems.push(...script.problems);
  const stats = pool.stats();
  if (stats.inUse !== 0 || stats.waiters !== 0) {
    problems.push(`${stats.inUse} buffers in use and ${stats.waiters} waiters at the end`);
  }
  for (let id = 0; id < writerCount; id++) {
    const bytes = new Uint8Array(consumer.bytes.get(id) ?? []);
    problems.push(...checkWriter(id, scripts[id]!.items, spec, bytes, world.consumerStopped));
  }
  if (problems.length !== 0) throw new Error(`${where}: ${problems.join("; ")}`);
  return { stream: new Uint8Array(consumer.stream), spec, bufferSize };
}

/** A few valid frames, for when the bus run delivered nothing. */
function someFrames(r: (n: number) => number, spec: CodecSpec, bufferSize: number): Uint8Array {
  const codec = codecOf(spec);
  const bytes: number[] = [];
  for (let seq = r(6); seq >= 0; seq--) {
    const length = spec.kind === "fixed" ? spec.size : r(largestPayload(spec, bufferSize) + 1);
    bytes.push(...codec.encode(content(99, seq, length)));
  }
  return new Uint8Array(bytes);
}

function describeRun(pool: BufferPool, spec: CodecSpec, kind: string, writers: number): string {
  const codec = spec.kind === "fixed" ? `fixed ${spec.size}` : spec.kind;
  return `${pool.bufferCount} × ${pool.bufferSize} B, ${codec}, ${writers} writers, ${kind} consumer`;
}

/** Whether one writer's delivered bytes are what its script allows. */
function checkWriter(
  id: number,
  items: readonly Item[],
  spec: CodecSpec,
  bytes: Uint8Array,
  stopped: boolean,
): string[] {
  const decoded = referenceDecode(spec, bytes, Infinity);
  if (decoded.end === "frame" || (decoded.end === "truncated" && !stopped)) {
    return [`writer ${id}: its bytes do not decode (${decoded.end})`];
  }
  const unsettled = items.filter((item) => item.state === "pending" || item.state === "open");
  if (unsettled.length !== 0) {
    const states = unsettled.map((item) => `${item.state} ${item.bytes.length} B`).join(", ");
    return [`writer ${id}: calls never settled (${states})`];
  }
  if (delivered(items, decoded.frames, stopped)) return [];
  const sent = items.filter((item) => item.state !== "dropped");
  return [
    `writer ${id}: delivered ${show(decoded.frames)}, expected ${stopped ? "a prefix of " : ""}${
      show(sent.map((item) => item.state === "cancelled" ? new Uint8Array(0) : item.bytes))
    } (cancelled shown empty)`,
  ];
}

const READERS = [
  "cutter",
  "framer",
  "batch",
  "readFrames",
  "visitCutter",
  "visitFrames",
  "frameSink",
] as const;
type ReaderKind = typeof READERS[number];

/** The stream, maybe broken: cut short, or given a frame over the limit. */
function damage(
  r: (n: number) => number,
  spec: CodecSpec,
  bytes: Uint8Array,
  max: number,
): Uint8Array {
  const how = r(4);
  if (how === 0 && bytes.length > 0) return bytes.subarray(0, r(bytes.length));
  if (how !== 1) return bytes;
  const { ends } = referenceDecode(spec, bytes, max);
  const cut = r(ends.length + 1) === 0 ? 0 : ends[r(ends.length)] ?? 0;
  let bad: number[] | null = headerFor(spec, Math.min(max + 1 + r(40), 255));
  if (spec.kind === "u8" && max >= 255) bad = null;
  if (spec.kind === "lf" || spec.kind === "crlf") {
    bad = new Array(max + spec.kind.length + r(8)).fill(0x41);
  }
  if (bad === null) return bytes.subarray(0, r(bytes.length + 1));
  const tail = new Array(r(8)).fill(7);
  return new Uint8Array([...bytes.subarray(0, cut), ...bad, ...tail]);
}

function chunksOf(r: (n: number) => number, bytes: Uint8Array, bufferSize: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = r(8) === 0 ? 0 : 1 + r(2 * bufferSize);
    chunks.push(bytes.slice(at, at + n));
    at += n;
  }
  return chunks;
}

/** How a reader run ended, by our hand or the reader's. */
type Ending = "clean" | "frame" | "truncated" | "stopped";

/**
 * Feeds `bytes` to one reader on a small pool and checks its frames and its
 * ending against the reference decoder.
 */
async function readerRun(
  index: number,
  r: (n: number) => number,
  spec: CodecSpec,
  bufferSize: number,
  valid: Uint8Array,
): Promise<void> {
  const pool = new BufferPool({ bufferSize, bufferCount: 1 + r(4) });
  const max = largestPayload(spec, bufferSize);
  const bytes = damage(r, spec, valid, max);
  const expected = referenceDecode(spec, bytes, max);
  const chunks = chunksOf(r, bytes, bufferSize);
  const kind = READERS[r(READERS.length)]!;
  // Stop after this many frames (cancel, break) or fail the source after this many chunks.
  const stopAfter = r(3) === 0 ? r(expected.frames.length + 1) : -1;
  const failAfter = stopAfter < 0 && r(6) === 0 ? r(chunks.length + 1) : -1;
  const frames: Uint8Array[] = [];
  const where = `sequence ${index}: ${kind} on ${pool.bufferCount} × ${bufferSize} B, ${
    spec.kind === "fixed" ? `fixed ${spec.size}` : spec.kind
  }, ${bytes.length} bytes in ${chunks.length} chunks${
    stopAfter >= 0 ? `, stop after ${stopAfter} frames` : ""
  }${failAfter >= 0 ? `, source fails after ${failAfter} chunks` : ""}`;
  const record = (frame: Uint8Array): boolean => {
    frames.push(frame);
    return stopAfter >= 0 && frames.length >= stopAfter;
  };
  const take = (packets: Packet[]): boolean => {
    let stop = false;
    for (const packet of packets) {
      stop = record(packet.bytes.slice());
      packet.release();
    }
    packets.length = 0;
    return stop;
  };
  const sourceFailure = new Error("source failed");
  const problems: string[] = [];
  let ending: Ending;
  try {
    const reading = kind === "visitCutter" || kind === "visitFrames" || kind === "frameSink"
      ? visitWith(kind, pool, spec, chunks, record, failAfter, sourceFailure, r, problems)
      : readWith(kind, pool, spec, chunks, take, failAfter, sourceFailure);
    ending = await withinDeadline(reading, where, DEADLINE_MS);
  } catch (error) {
    if (error === sourceFailure) ending = "stopped";
    else if (error instanceof FrameError) ending = "frame";
    else if (error instanceof TruncatedError) ending = "truncated";
    else throw new Error(`${where}: ${describeError(error)}`);
  }
  const stopped = ending === "stopped";
  const prefix = expected.frames.slice(0, frames.length);
  const same = frames.length <= expected.frames.length &&
    frames.every((f, i) =>
      f.length === prefix[i]!.length && f.every((b, j) => b === prefix[i]![j])
    );
  if (!same || (!stopped && frames.length !== expected.frames.length)) {
    problems.push(`frames ${show(frames)}, expected ${show(expected.frames)}`);
  }
  if (!stopped && ending !== expected.end) {
    problems.push(`ended ${ending}, expected ${expected.end}`);
  }
  const stats = pool.stats();
  if (stats.inUse !== 0 || stats.waiters !== 0) {
    problems.push(`${stats.inUse} buffers in use and ${stats.waiters} waiters at the end`);
  }
  if (problems.length !== 0) throw new Error(`${where}: ${problems.join("; ")}`);
}

/** A ByteSource over `chunks` that rejects with `failure` after `failAfter` of them (-1: never). */
function failingSource(chunks: Uint8Array[], failAfter: number, failure: Error) {
  const inner = chunkSource(failAfter < 0 ? chunks : chunks.slice(0, failAfter));
  return {
    read: async (p: Uint8Array): Promise<number | null> => {
      const n = await inner.read(p);
      if (n === null && failAfter >= 0) throw failure;
      return n;
    },
  };
}

/** A stream of `chunks`, one per pull, that errors with `failure` after `failAfter` of them. */
function failingStream(
  chunks: Uint8Array[],
  failAfter: number,
  failure: Error,
): ReadableStream<Uint8Array> {
  let c = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (c === failAfter) controller.error(failure);
      else if (c === chunks.length) controller.close();
      else controller.enqueue(chunks[c++]!);
    },
  }, { highWaterMark: 0 });
}

/**
 * Runs one of the visiting readers over the chunks, handing each frame to
 * `record` (which says when to stop). Now and then the visitor retains the
 * frame as a packet, checks it later, off the visit, and releases it.
 */
async function visitWith(
  kind: "visitCutter" | "visitFrames" | "frameSink",
  pool: BufferPool,
  spec: CodecSpec,
  chunks: Uint8Array[],
  record: (frame: Uint8Array) => boolean,
  failAfter: number,
  failure: Error,
  r: (n: number) => number,
  problems: string[],
): Promise<Ending> {
  const codec = codecOf(spec);
  const kept: [Packet, Uint8Array][] = [];
  const letGo = () => {
    for (const [packet, copy] of kept.splice(0)) {
      const bytes = packet.bytes;
      if (bytes.length !== copy.length || bytes.some((b, i) => b !== copy[i])) {
        problems.push(`a retained frame changed: ${show([bytes])}, was ${show([copy])}`);
      }
      packet.release();
    }
  };
  let stopped = false;
  const stop = new AbortController();
  const visit: FrameVisitor = (bytes, start, end, cutter) => {
    if (stopped) return;
    const frame = bytes.slice(start, end);
    if (r(4) === 0) {
      kept.push([cutter.retain(), frame]);
      // Off the visit, so that a reader waiting for a buffer is woken by it.
      if (kind !== "visitCutter") queueMicrotask(letGo);
    }
    if (!record(frame)) return;
    stopped = true;
    if (kind === "visitFrames") cutter.close();
    else if (kind === "frameSink") stop.abort(failure);
  };
  try {
    if (kind === "visitCutter") {
      using cutter = new FrameCutter(pool, { codec });
      for (let c = 0; c < chunks.length && !stopped; c++) {
        if (c === failAfter) throw failure;
        const chunk = chunks[c]!;
        for (let at = 0; at < chunk.length && !stopped;) {
          const taken = cutter.push(chunk.subarray(at), visit);
          at += taken;
          letGo();
          if (at < chunk.length && !stopped) {
            if (taken === 0 && !cutter.needsBuffer) throw new Error("push made no progress");
            await cutter.waitForBuffer();
          }
        }
      }
      if (stopped) return "stopped";
      if (failAfter === chunks.length) throw failure;
      cutter.end(visit);
      return "clean";
    }
    if (kind === "visitFrames") {
      const source = failingSource(chunks, failAfter, failure);
      await visitFrames(source, pool, { codec }, visit);
      return stopped ? "stopped" : "clean";
    }
    const source = failingStream(chunks, failAfter, failure);
    await source.pipeTo(new FrameSink(pool, { codec, visit, signal: stop.signal }));
    return "clean";
  } catch (error) {
    // Once we stopped, what the rest of the input would have done is moot.
    if (stopped) return "stopped";
    throw error;
  } finally {
    letGo();
  }
}

/**
 * Runs one reader over the chunks, handing each batch of packets to `take`
 * (which says when to stop); returns how it ended unless it threw.
 */
async function readWith(
  kind: ReaderKind,
  pool: BufferPool,
  spec: CodecSpec,
  chunks: Uint8Array[],
  take: (packets: Packet[]) => boolean,
  failAfter: number,
  failure: Error,
): Promise<Ending> {
  const codec = codecOf(spec);
  if (kind === "cutter") {
    using cutter = new FrameCutter(pool, { codec });
    const packets: Packet[] = [];
    try {
      for (let c = 0; c < chunks.length; c++) {
        if (c === failAfter) throw failure;
        const chunk = chunks[c]!;
        for (let at = 0; at < chunk.length || c === -1;) {
          const taken = cutter.push(chunk.subarray(at), packets);
          at += taken;
          if (take(packets)) return "stopped";
          if (at < chunk.length) {
            if (taken === 0 && !cutter.needsBuffer) throw new Error("push made no progress");
            await cutter.waitForBuffer();
          }
        }
      }
      if (failAfter === chunks.length) throw failure;
      cutter.end(packets);
    } finally {
      take(packets);
    }
    return "clean";
  }
  if (kind === "readFrames") {
    const source = failingSource(chunks, failAfter, failure);
    for await (const batch of readFrames(source, pool, { codec })) {
      if (take(batch)) return "stopped";
    }
    return "clean";
  }
  const source = failingStream(chunks, failAfter, failure);
  if (kind === "framer") {
    const reader = source.pipeThrough(new Framer(pool, { codec })).getReader();
    const one: Packet[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return "clean";
      one.push(value);
      if (take(one)) {
        await reader.cancel();
        return "stopped";
      }
    }
  }
  const reader = source.pipeThrough(new BatchFramer(pool, { codec })).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return "clean";
    if (take(value)) {
      await reader.cancel();
      return "stopped";
    }
  }
}

/** Runs `run` on each sequence: stops at the first failure, or (surveying) sums them up. */
async function runAll(
  count: number,
  workers: boolean,
  run: (index: number) => Promise<void>,
): Promise<void> {
  const kinds = new Map<string, { count: number; first: string }>();
  for (const index of indices(count)) {
    try {
      await run(index);
    } catch (error) {
      const message = `${describeError(error)}\n${replay(index, workers)}`;
      if (!SURVEY) throw new Error(message);
      const kind = describeError(error).replace(/^[^:]*\)?: /, "").replace(/\d+/g, "#").slice(
        0,
        120,
      );
      const seen = kinds.get(kind);
      if (seen === undefined) kinds.set(kind, { count: 1, first: message });
      else seen.count++;
    }
  }
  if (kinds.size === 0) return;
  const lines = [...kinds.values()].sort((a, b) => b.count - a.count)
    .map(({ count, first }) => `${count} × ${first}`);
  throw new Error(`failures by kind:\n${lines.join("\n\n")}`);
}

function indices(count: number): number[] {
  if (ONLY !== undefined) return count === 0 ? [] : [Number(ONLY)];
  return Array.from({ length: count }, (_, i) => i);
}

Deno.test(`model: ${SEQUENCES} writer → flusher → consumer → reader sequences on small pools (MODEL_SEED=${SEED})`, async () => {
  await runAll(SEQUENCES, false, async (index) => {
    const r = prng(seedOf(index));
    const { stream, spec, bufferSize } = await busRun(index, r);
    const bytes = stream.length > 0 ? stream : someFrames(r, spec, bufferSize);
    await readerRun(index, r, spec, bufferSize, bytes);
  });
});

/**
 * One shared-pool run: a writer in a worker and one in this thread, on a
 * 2-4 buffer pool, to a flusher read here by a consumer that holds regions
 * for a while.
 */
async function workerRun(index: number, worker: Worker): Promise<void> {
  const r = prng(seedOf(index));
  const bufferSize = 16 + r(49);
  const pool = new BufferPool({ bufferSize, bufferCount: 2 + r(3), shared: true });
  const spec = pickSpec(r, bufferSize);
  const flusher = new WriteFlusher(pool);
  const world: World = { consumerStopped: false, consumerError: undefined };
  const writer = new Writer(pool, flusher, { id: 0, codec: codecOf(spec) });
  const script = new WriterScript(writer, spec, bufferSize, world);
  const consumer = new Consumer("read", flusher, world, r(2 ** 31));
  const where = `worker sequence ${index} (${describeRun(pool, spec, "read", 2)})`;
  const report = new Promise<ModelReport>((resolve) => {
    worker.onmessage = (event: MessageEvent<ModelReport>) => resolve(event.data);
  });
  const job: ModelJob = {
    pool: pool.handle,
    flusher: flusher.handle,
    spec,
    id: 1,
    seed: r(2 ** 31),
    steps: 8 + r(40),
  };
  worker.postMessage(job);
  const steps = 8 + r(40);
  for (let s = 0; s < steps; s++) {
    const who = r(3);
    if (who === 0) script.step(r, false);
    else if (who === 1) consumer.step();
    else await pause(r);
  }
  // Ours lets go of its buffers first: the worker's writer may be waiting for one.
  consumer.openUp();
  await withinDeadline(script.finish(), where, DEADLINE_MS);
  const theirs = await withinDeadline(report, `${where}: the worker's writer`, DEADLINE_MS);
  if (!theirs.ok) throw new Error(`${where}: worker failed: ${theirs.error}`);
  flusher.close();
  await withinDeadline(consumer.done, where, DEADLINE_MS);

  const problems = [...consumer.problems, ...script.problems, ...theirs.problems];
  const stats = pool.stats();
  if (stats.inUse !== 0 || stats.waiters !== 0) {
    problems.push(`${stats.inUse} buffers in use and ${stats.waiters} waiters at the end`);
  }
  for (const [id, items] of [[0, script.items], [1, theirs.items]] as const) {
    const bytes = new Uint8Array(consumer.bytes.get(id) ?? []);
    problems.push(...checkWriter(id, items, spec, bytes, false));
  }
  if (problems.length !== 0) throw new Error(`${where}: ${problems.join("; ")}`);
}

Deno.test(`model: ${WORKER_SEQUENCES} sequences on a shared pool, writers in two workers (MODEL_SEED=${SEED})`, async () => {
  const worker = new Worker(new URL("./workers/model_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = (event) => event.data === READY && resolve();
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`the model worker failed to start: ${event.message}`));
      };
    });
    await runAll(WORKER_SEQUENCES, true, (index) => workerRun(index, worker));
  } finally {
    worker.terminate();
  }
});

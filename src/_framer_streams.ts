// The machinery behind Framer and BatchFramer: a writable side that feeds a
// FrameCutter and a readable side that hands out what it cut.
//
// It is a pair of streams rather than a TransformStream because cutting
// frames makes packets that hold pool buffers: a TransformStream keeps
// enqueued chunks in its readable queue, and cancelling the readable drops
// that queue without a word, stranding their buffers. Here the packets wait
// in a queue of our own and are enqueued one per read (the readable's
// high-water mark is 0), so whatever has not been read when either side is
// cancelled or aborted is still in our hands, and is released; and what a
// pipe of the readable was handed and its failed destination never used is
// released too.

import type { BufferPool } from "./buffer_pool.ts";
import { FrameCutter } from "./frame_cutter.ts";
import type { FrameCutterOptions } from "./frame_cutter_options.ts";
import type { Packet } from "./packet.ts";
import { PipedPackets } from "./_piped_packets.ts";
import { TrackedPipeReadable } from "./_tracked_pipe_readable.ts";

/** What the sides take: a cutter's options and the framer's signal (FramerOptions, seen from here). */
type SideOptions = FrameCutterOptions & { signal?: AbortSignal };

/** The two sides, as a `TransformStream` would have them. */
export interface FramerSides<T> {
  readable: ReadableStream<T>;
  writable: WritableStream<Uint8Array>;
}

/** Releases a packet or each packet of a batch. */
function releaseItem(item: Packet | Packet[]): void {
  if (Array.isArray(item)) {
    for (let i = 0; i < item.length; i++) item[i]!.release();
  } else {
    item.release();
  }
}

/**
 * A packet's bytes on a fresh ArrayBuffer, the packet released: the copy
 * is made as it is handed to a read, so the stream's queue never holds
 * pool memory and the packets not yet read stay in ours, to be released.
 */
function copyOut(packet: Packet): Uint8Array<ArrayBuffer> {
  const bytes = packet.bytes.slice();
  packet.release();
  return bytes;
}

/**
 * Builds the sides. With `batch`, each input chunk's packets go out as one
 * array (none when it completed no frame); without, one packet per read,
 * or with `copy` a copy of its bytes, the packet released.
 */
export function framerSides(
  pool: BufferPool,
  options: SideOptions,
  batch: true,
): FramerSides<Packet[]>;
export function framerSides(
  pool: BufferPool,
  options: SideOptions,
  batch: false,
  copy?: false,
): FramerSides<Packet>;
export function framerSides(
  pool: BufferPool,
  options: SideOptions,
  batch: false,
  copy: true,
): FramerSides<Uint8Array<ArrayBuffer>>;
export function framerSides(
  pool: BufferPool,
  options: SideOptions,
  batch: boolean,
  copy = false,
): FramerSides<Packet | Packet[] | Uint8Array<ArrayBuffer>> {
  const cutter = new FrameCutter(pool, options);
  const stop = new AbortController();
  const acquireOptions = { signal: stop.signal };
  const signal = options.signal;
  /** Cut but not yet read: packets, or batches of them. `head` is the next out. */
  let queue: (Packet | Packet[])[] = [];
  let head = 0;
  /** A read is waiting and the queue was empty when it asked. */
  let reading = false;
  /** The writable side closed: close the readable once the queue is empty. */
  let closing = false;
  /** The framing broke: error the readable with this once the queue is empty. */
  let failure: { reason: unknown } | null = null;
  let finished = false;
  /** Settles the write (or close) waiting for the queue to drain. */
  let drained: { resolve: () => void; reject: (reason: unknown) => void } | null = null;
  /** The per-packet form reuses one array for each chunk's packets. */
  const scratch: Packet[] = [];
  let readableController!: ReadableStreamDefaultController<
    Packet | Packet[] | Uint8Array<ArrayBuffer>
  >;
  let writableController!: WritableStreamDefaultController;
  /** What a pipe of the readable was handed, to release if it fails unused. */
  const pipes = new PipedPackets();

  /** Queues what one step cut, handing the first item to a waiting read. */
  function deliver(packets: Packet[]): void {
    if (packets.length === 0) return;
    if (batch) {
      if (reading) {
        reading = false;
        hand(readableController, packets);
      } else {
        queue.push(packets);
      }
      return;
    }
    let i = 0;
    if (reading) {
      reading = false;
      hand(readableController, packets[0]!);
      i = 1;
    }
    for (; i < packets.length; i++) queue.push(packets[i]!);
    packets.length = 0;
  }

  /** Enqueues an item for the read that waits: a packet's copy, or the item, noted if piped. */
  function hand(
    controller: ReadableStreamDefaultController<Packet | Packet[] | Uint8Array<ArrayBuffer>>,
    item: Packet | Packet[],
  ): void {
    if (copy) {
      controller.enqueue(copyOut(item as Packet));
      return;
    }
    controller.enqueue(item);
    pipes.handed(item);
  }

  /** Resolves when every queued item has been read. */
  function whenDrained(): Promise<void> | undefined {
    if (head === queue.length) return undefined;
    return new Promise((resolve, reject) => {
      drained = { resolve, reject };
    });
  }

  /** Ends everything: releases the queue and the staging buffer, settles waits. */
  function shutDown(reason: unknown): void {
    if (finished) return;
    finished = true;
    signal?.removeEventListener("abort", onAbort);
    cutter.close();
    for (let i = head; i < queue.length; i++) releaseItem(queue[i]!);
    queue = [];
    head = 0;
    stop.abort(reason);
    const waiting = drained;
    drained = null;
    waiting?.reject(reason);
  }

  /** The readable has handed out everything: it closes, or errors if the framing broke. */
  function finishReadable(): void {
    if (failure === null) {
      finished = true;
      signal?.removeEventListener("abort", onAbort);
      readableController.close();
    } else {
      shutDown(failure.reason);
      readableController.error(failure.reason);
    }
  }

  /** The caller's signal: stop both sides, wherever they are. */
  function onAbort(): void {
    const reason: unknown = signal!.reason;
    shutDown(reason);
    readableController.error(reason);
    writableController.error(reason);
  }

  /**
   * The bytes broke the framing, or the input ended mid-frame. The frames
   * cut before the bad one are good: they are read first, then the error.
   */
  function fail(error: unknown, cut: Packet[]): never {
    cutter.close();
    deliver(cut);
    failure = { reason: error };
    if (head === queue.length) finishReadable();
    throw error;
  }

  /** Pushes the rest of a chunk, waiting for buffers as the pool frees them. */
  async function pushSlowly(chunk: Uint8Array, taken: number): Promise<void> {
    while (taken < chunk.length) {
      await cutter.waitForBuffer(acquireOptions);
      const cut = batch ? [] : scratch;
      try {
        taken += cutter.push(chunk.subarray(taken), cut);
      } catch (error) {
        fail(error, cut);
      }
      deliver(cut);
    }
    await whenDrained();
  }

  const readable = new TrackedPipeReadable<Packet | Packet[] | Uint8Array<ArrayBuffer>>({
    start(controller) {
      readableController = controller;
    },
    pull(controller) {
      if (head === queue.length) {
        reading = true;
        return;
      }
      const item = queue[head]!;
      queue[head++] = undefined!;
      hand(controller, item);
      if (head === queue.length) {
        queue.length = 0;
        head = 0;
        if (closing || failure !== null) finishReadable();
        const waiting = drained;
        drained = null;
        waiting?.resolve();
      }
    },
    cancel(reason) {
      pipes.failed();
      shutDown(reason);
      writableController.error(reason);
    },
  }, pipes);

  const writable = new WritableStream<Uint8Array>({
    start(controller) {
      writableController = controller;
      // Fires at once on abort(), even while a write waits for the reader,
      // which the sink's own abort() would not be called before.
      controller.signal.addEventListener("abort", () => {
        const reason: unknown = controller.signal.reason;
        shutDown(reason);
        readableController.error(reason);
      }, { once: true });
    },
    write(chunk) {
      const cut = batch ? [] : scratch;
      let taken: number;
      try {
        taken = cutter.push(chunk, cut);
      } catch (error) {
        fail(error, cut);
      }
      deliver(cut);
      if (taken < chunk.length) return pushSlowly(chunk, taken);
      return whenDrained();
    },
    close() {
      const cut = batch ? [] : scratch;
      try {
        cutter.end(cut);
      } catch (error) {
        fail(error, cut);
      }
      deliver(cut);
      if (head === queue.length) {
        finishReadable();
        return;
      }
      closing = true;
      return whenDrained();
    },
    abort(reason) {
      // Already done by the signal; kept for runtimes without it.
      shutDown(reason);
      readableController.error(reason);
    },
  });

  if (signal !== undefined) {
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  }

  return { readable, writable };
}
